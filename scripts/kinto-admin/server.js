// Runs before kinto-admin's modules are evaluated (entry.js imports it first): the console reads
// its server history from localStorage when its store module loads.
const SERVER_HISTORY_KEY = 'kinto-admin-server-history'
/** multiauth policy names (as written in the ini) → the login form's authentication types. */
const AUTH_TYPES = {account: 'accounts', accounts: 'accounts', basicauth: 'basicauth', ldap: 'ldap', portier: 'portier', fxa: 'fxa'}

function serverSettings() {
  const node = document.getElementById('kinto-server-settings')
  if (!node) return {}
  try {
    return JSON.parse(node.textContent || '{}')
  } catch {
    return {}
  }
}

/** The server the page belongs to: <server>/v1/admin/ → <server>/v1/. */
function ownServer() {
  const url = new URL(window.location.href)
  url.hash = ''
  url.search = ''
  url.pathname = url.pathname.replace(/\/admin\/(index\.html)?$/, '/')
  return url.toString()
}

/** The first configured policy the form knows, remembered for this server unless one already is. */
function preselectAuthType(server, policies) {
  const authType = policies.map((p) => AUTH_TYPES[String(p).toLowerCase()]).find(Boolean)
  if (!authType) return
  try {
    const saved = JSON.parse(localStorage.getItem(SERVER_HISTORY_KEY) || '[]')
    const history = Array.isArray(saved) ? saved : []
    if (history.some((entry) => entry && entry.server === server)) return
    localStorage.setItem(SERVER_HISTORY_KEY, JSON.stringify([{server, authType}, ...history]))
  } catch {
    // No storage (private browsing): the form starts on "Anonymous".
  }
}

const settings = serverSettings()
export const singleServer = ownServer()
preselectAuthType(singleServer, Array.isArray(settings.authMethods) ? settings.authMethods : [])

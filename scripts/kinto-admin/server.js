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

/** The form's authentication type of a policy: its name's, or `openid-<provider>` as the server sends it. */
function authTypeOf(policy) {
  const name = String(policy)
  return name.startsWith('openid-') ? name : AUTH_TYPES[name.toLowerCase()]
}

/**
 * The first configured policy the form knows, remembered for this server unless one already is.
 * An entry saying `openid` (what kinto-admin 1.31 remembered after an OpenID sign-in, not one of the
 * form's choices: it opened with none) becomes the server's first OpenID provider.
 */
function preselectAuthType(server, policies) {
  const types = policies.map(authTypeOf).filter(Boolean)
  if (!types.length) return
  try {
    const saved = JSON.parse(localStorage.getItem(SERVER_HISTORY_KEY) || '[]')
    let history = Array.isArray(saved) ? saved : []
    const openid = types.find((t) => t.startsWith('openid-'))
    history = history
      .map((entry) => (entry && entry.server === server && entry.authType === 'openid' ? {...entry, authType: openid} : entry))
      .filter((entry) => !(entry && entry.server === server && !entry.authType))
    if (!history.some((entry) => entry && entry.server === server)) history = [{server, authType: types[0]}, ...history]
    localStorage.setItem(SERVER_HISTORY_KEY, JSON.stringify(history))
  } catch {
    // No storage (private browsing): the form starts on "Anonymous".
  }
}

const settings = serverSettings()
export const singleServer = ownServer()
preselectAuthType(singleServer, Array.isArray(settings.authMethods) ? settings.authMethods : [])

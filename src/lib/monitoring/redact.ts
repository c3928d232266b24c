/**
 * What a log line may carry. Secrets stay out by construction: a line keeps only the fields named
 * here (request headers, bodies, settings and credentials are never among them), errors become
 * their message and stack, and every string kept goes through `scrubSecrets` (URL passwords,
 * `Basic`/`Bearer` credentials). Upstream logs request headers and bodies at DEBUG; we never do.
 */

/** Fields a log line may carry (in `Fields` of a JSON line, as key=value on a readable one). */
const ALLOWED = new Set([
  // request.summary / subrequest.summary
  'agent',
  'path',
  'method',
  'lang',
  'rid',
  'errno',
  'querystring',
  'uid',
  'authn_type',
  'time',
  'code',
  't',
  'batch_size',
  // errors and denied permissions
  'error',
  'traceback',
  'userid',
  'uri',
  'perm',
  // runtime and start-up messages
  'msg',
  'url',
  'host',
  'port',
  'reason',
  'plugin',
  'listener',
  'backend',
  'setting',
  'section',
  'line',
])

/** Lets a plugin log more fields (never use it for values that may hold secrets). */
export function allowLogFields(...names: string[]): void {
  for (const name of names) ALLOWED.add(name)
}

/**
 * A URL's password: up to the first '@' in a database or cache URL, as upstream (SQLAlchemy) reads
 * it, so it may hold '/', '?' or '#'; in an http(s) URL as WHATWG reads it, so that a path with an
 * '@' (`http://host:8888/v1/accounts/bob@example.com`) is not taken for credentials.
 */
const URL_PASSWORD = /\b((?!https?:)[a-z][a-z0-9+.-]*:\/\/[^\s:/@?#]*):[^\s@]*@|\b(https?:\/\/[^\s:/@?#]*):[^\s@/?#]*@/gi
const PASSWORD_PARAM = /([?&;\s](?:password|passwd|pwd|secret)=)[^&\s]*/gi
const CREDENTIALS = /\b(Basic|Bearer|Token|Portier)\s+[A-Za-z0-9._~+/=-]{8,}/g

/** Masks passwords in URLs (`postgresql://u:***@h`), `password=` parameters and HTTP credentials. */
export function scrubSecrets(text: string): string {
  if (!text.includes('@') && !text.includes('=') && !/(Basic|Bearer|Token|Portier)\s/.test(text)) return text
  return text.replace(URL_PASSWORD, (_, other: string | undefined, http: string | undefined) => `${other ?? http}:***@`).replace(PASSWORD_PARAM, '$1***').replace(CREDENTIALS, '$1 ***')
}

const SECRET_KEY = /pass|secret|token|auth/i
/** OAuth parameters that are one-time credentials (`/openid/<provider>/token?code=…&state=…`). */
const OAUTH_KEYS = new Set(['code', 'state'])

function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubSecrets(value)
  if (value === null || typeof value !== 'object') return value
  if (depth > 4) return '[…]'
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    // `_token` (pagination) is not a secret; other keys that look like one are masked.
    out[k] = (SECRET_KEY.test(k) && k !== '_token') || OAUTH_KEYS.has(k) ? '***' : scrubValue(v, depth + 1)
  }
  return out
}

/** An error as mozlog shows it: `error` (its name and message) and `traceback` (its stack). */
function errorFields(err: unknown): {error: string; traceback?: string} {
  if (err instanceof Error) {
    const error = scrubSecrets(`${err.name}: ${err.message}`)
    return err.stack ? {error, traceback: scrubSecrets(err.stack)} : {error}
  }
  return {error: scrubSecrets(String(err))}
}

/**
 * The fields of a log line: allowed keys only, `err` expanded, strings scrubbed. `msg` is dropped
 * when empty or JSON-like, as upstream's formatter does.
 */
export function logFields(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key in obj) {
    const value = obj[key]
    if (value === undefined) continue
    if (key === 'err') {
      if (value !== null) Object.assign(out, errorFields(value))
      continue
    }
    if (!ALLOWED.has(key)) continue
    if (key === 'msg') {
      if (typeof value !== 'string' || value === '' || (value.startsWith('{') && value.endsWith('}'))) continue
    }
    out[key] = scrubValue(value, 0)
  }
  return out
}

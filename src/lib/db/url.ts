import path from 'node:path'

import {KintoError} from '../errors.js'

/**
 * Database URLs we accept:
 * - `postgresql://user:pass@host:port/db?options` and `postgres://…` (the production guide's form,
 *   which upstream's current code rejects; we accept both). `postgresql+psycopg2://` (SQLAlchemy
 *   driver suffix) is accepted and the suffix ignored.
 * - `pglite:` embedded PostgreSQL (PGlite). `pglite:PATH` or `pglite://PATH` keeps the data in folder
 *   PATH (absolute, or relative to the ini's folder); `pglite:memory:` (or `pglite:`) keeps it in memory.
 *   One query parameter is taken: `?shared_buffers=SIZE` (PostgreSQL's setting, default 16MB for
 *   the embedded engine). A `?` in a folder name is written %3F.
 */
export type ParsedDbUrl =
  | {driver: 'pg'; connectionString: string; host: string; port: number; database: string; user?: string}
  | {driver: 'pglite'; dataDir: string | null; sharedBuffers?: string}

const SIZE_UNITS: Record<string, [string, number]> = {kb: ['kB', 1024], mb: ['MB', 1024 ** 2], gb: ['GB', 1024 ** 3]}
/** PostgreSQL's floor (16 buffers); the ceiling leaves room in PGlite's 32-bit wasm memory. */
const SHARED_BUFFERS_MIN = 128 * 1024
const SHARED_BUFFERS_MAX = 1024 ** 3

function pgliteUrlError(url: string, problem: string): KintoError {
  return new KintoError(`Invalid embedded database URL ${url}: ${problem}.`, {
    code: 'KINTO_DB_URL_INVALID',
    hint: 'Write it as pglite:<folder> or pglite:<folder>?shared_buffers=64MB (a size in kB, MB or GB, from 128kB to 1GB).',
  })
}

/** The options of a pglite: URL's query string (only shared_buffers), normalised to PostgreSQL's spelling. */
function pgliteOptions(query: string, url: string): {sharedBuffers?: string} {
  const out: {sharedBuffers?: string} = {}
  if (query === '') return out
  for (const [key, value] of new URLSearchParams(query)) {
    if (key !== 'shared_buffers') throw pgliteUrlError(url, `unknown option ${JSON.stringify(key)} (the embedded engine takes shared_buffers)`)
    const m = /^\s*(\d+)\s*(kb|mb|gb)?\s*$/i.exec(value)
    const unit = m?.[2] ? SIZE_UNITS[m[2].toLowerCase()] : undefined
    // a bare number is in 8kB pages, as in postgresql.conf
    const bytes = m ? Number(m[1]) * (unit ? unit[1] : 8192) : NaN
    if (!m || !(bytes >= SHARED_BUFFERS_MIN && bytes <= SHARED_BUFFERS_MAX)) {
      throw pgliteUrlError(url, `shared_buffers=${value} is not a size from 128kB to 1GB`)
    }
    out.sharedBuffers = unit ? `${Number(m[1])}${unit[0]}` : String(Number(m[1]))
  }
  return out
}

/** libpq's sslmode values (how they are read: tls.ts). */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const
export type SslMode = (typeof SSL_MODES)[number]

/**
 * A parameter of a database URL that cannot be used (sslmode, port, a timeout), in the one form
 * every such refusal takes: `Invalid <name> "<value>" <where>.` config/validate.ts tells it from a
 * URL that is no database URL at all by its class, and passes it through with the ini line.
 */
export class UrlParamError extends KintoError {
  constructor(name: string, value: string, where: string, hint: string) {
    super(`Invalid ${name} ${JSON.stringify(value)} ${where}.`, {code: 'KINTO_DB_URL_INVALID', hint})
    this.name = 'UrlParamError'
  }
}

/** The sslmode of a URL, checked (libpq refuses an unknown one); undefined when not given. */
export function sslModeOf(params: URLSearchParams, where: string): SslMode | undefined {
  const mode = params.get('sslmode')
  if (mode === null) return undefined
  if ((SSL_MODES as readonly string[]).includes(mode)) return mode as SslMode
  throw new UrlParamError('sslmode', mode, where, `Use one of ${SSL_MODES.join(', ')} (libpq's values).`)
}

/**
 * Upstream reads a URL's credentials as SQLAlchemy does: the user up to ':' (or '/'), the password
 * up to the first '@', whatever it holds, such as the '/' of a generated base64 password. Here
 * its '/', '?' and '#' are percent-encoded, the form WHATWG URLs and node-postgres read the same.
 */
const SQLALCHEMY_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):([^@]*)@/i

function encodePassword(url: string): string {
  return url.replace(SQLALCHEMY_PASSWORD, (_, head: string, password: string) => `${head}:${password.replace(/[/?#]/g, encodeURIComponent)}@`)
}

export function isPostgresUrl(url: string): boolean {
  return /^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.test(url) || /^pglite:/i.test(url)
}

/** `user:pass@/db?host=/run/postgresql`: credentials and no host name, the server in the query. */
function hasNoHost(connectionString: string): boolean {
  return /^postgresql:\/\/[^@/?#]*@(?=[/?#]|$)/.test(connectionString)
}

/**
 * A `postgresql://` connection string (parseDbUrl's) as a WHATWG URL. The Unix-socket form
 * (hasNoHost: SQLAlchemy's and libpq's, so upstream's) is read by node-postgres as written;
 * WHATWG URLs refuse credentials without a host, so this reading only puts a stand-in host there.
 */
function whatwgUrl(connectionString: string): URL {
  return new URL(hasNoHost(connectionString) ? connectionString.replace('@', '@_') : connectionString)
}

/**
 * The password a PostgreSQL URL logs in with (its credentials, else libpq's `?password=`), or
 * undefined. A secret: for statements that set it (CREATE ROLE), never for output.
 */
export function dbUrlPassword(parsed: Extract<ParsedDbUrl, {driver: 'pg'}>): string | undefined {
  const url = whatwgUrl(parsed.connectionString)
  const password = url.password ? decodeURIComponent(url.password) : url.searchParams.get('password')
  return password || undefined
}

/** The URL parameters node-postgres sends to the server as parseInt of their text (milliseconds). */
const DRIVER_MS_PARAMS = ['statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout'] as const

export function parseDbUrl(url: string, baseDir: string = process.cwd()): ParsedDbUrl {
  const trimmed = url.trim()
  const pglite = /^pglite:(.*)$/i.exec(trimmed)
  if (pglite) {
    let rest = pglite[1]
    if (rest.startsWith('//')) rest = rest.slice(2)
    const q = rest.indexOf('?')
    const options = pgliteOptions(q < 0 ? '' : rest.slice(q + 1), trimmed)
    if (q >= 0) rest = rest.slice(0, q)
    if (rest === '' || rest === 'memory:' || rest === ':memory:') return {driver: 'pglite', dataDir: null, ...options}
    rest = decodeURIComponent(rest)
    return {driver: 'pglite', dataDir: path.resolve(baseDir, rest), ...options}
  }

  const m = /^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.exec(trimmed)
  if (!m) {
    throw new KintoError(`Unsupported database URL ${maskUrl(trimmed)}.`, {
      code: 'KINTO_DB_URL_INVALID',
      hint: 'Use postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine.',
    })
  }
  const connectionString = 'postgresql://' + encodePassword(trimmed).slice(m[0].length)
  let parsed: URL
  const noHost = hasNoHost(connectionString)
  try {
    parsed = whatwgUrl(connectionString)
  } catch {
    throw new KintoError(`Invalid database URL ${maskUrl(trimmed)}.`, {
      code: 'KINTO_DB_URL_INVALID',
      hint: 'Use postgresql://user:password@host:5432/dbname.',
    })
  }
  const where = `in the database URL ${maskUrl(trimmed)}`
  sslModeOf(parsed.searchParams, where)
  // node-postgres connects to a non-empty `?port=`, whatever the port after the host says.
  const port = parsed.searchParams.get('port') || parsed.port || '5432'
  // The driver is given the text: one that is no port number (`?port=abc`) never connected, nor
  // failed, and the command ended on an unsettled promise (exit 13) without a word; `?port=-1`
  // beside a host's port crashed on an unhandled socket error.
  if (!/^\d{1,5}$/.test(port.trim()) || Number(port) < 1 || Number(port) > 65535) {
    throw new UrlParamError('port', port, where, 'The port is a number from 1 to 65535 (5432 by default): postgresql://user:password@host:5432/dbname.')
  }
  for (const name of DRIVER_MS_PARAMS) {
    const value = parsed.searchParams.get(name)
    // node-postgres sends parseInt of the text: `abc` reached the server as "NaN", `10s` as 10 ms
    if (value !== null && value !== '' && !/^\d+$/.test(value.trim())) {
      throw new UrlParamError(name, value, where, `${name} is a whole number of milliseconds (0 for none), such as ${name}=30000: the driver sends only the number, without a unit.`)
    }
  }
  return {
    driver: 'pg',
    connectionString,
    host: (noHost ? '' : parsed.hostname) || parsed.searchParams.get('host') || 'localhost',
    port: Number(port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username) || 'postgres',
    user: parsed.username ? decodeURIComponent(parsed.username) : (parsed.searchParams.get('user') ?? undefined),
  }
}

/**
 * The URL with its password replaced by `***`: the only form of a URL that may be printed or logged.
 * A text that is not quite a URL (`postgresql//user:pw@host`, a typo) is masked the same way.
 */
export function maskUrl(url: string): string {
  // the password as upstream reads it: up to the first '@' (SQLALCHEMY_PASSWORD); http(s) as WHATWG
  const masked = /^https?:/i.test(url)
    ? url.replace(/^([a-z]+:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@')
    : url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):[^@]*@/i, '$1:***@')
  return (masked === url && !url.includes('://') ? url.replace(/^([^\s:@]*:?\/*[^\s:/@?#]*):[^\s@]*@/, '$1:***@') : masked).replace(/([?&]password=)[^&]*/gi, '$1***')
}

/** "host:port/database" for messages. */
export function describeDbUrl(url: string, baseDir?: string): string {
  try {
    const p = parseDbUrl(url, baseDir)
    if (p.driver === 'pglite') return p.dataDir ? `embedded database in ${p.dataDir}` : 'in-memory embedded database'
    return `${p.host}:${p.port}/${p.database}`
  } catch {
    return maskUrl(url)
  }
}

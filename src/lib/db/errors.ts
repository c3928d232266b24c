/**
 * Turning driver errors about reaching a database into one clear line: which server and database
 * (never the password), what went wrong, what to check.
 */
import {KintoError} from '../errors.js'

export interface DbTarget {
  host: string
  port: number
  database: string
  user?: string
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is PostgreSQL running and listening there?)',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'host name lookup failed (DNS)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
  ENOENT: 'no such Unix socket',
  EACCES: 'permission denied on the Unix socket',
}

/** The SQLSTATE of a database error, looked for through the errors that wrap it (`cause`). */
export function sqlStateOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as {code?: unknown}).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}

/**
 * A SQLSTATE and message of a parameter of the URL the server refuses at login: `?statement_timeout=…` or
 * `options=-c x=y` with a bad value (22023) or name (42704), `options=abc` (42601, "invalid
 * command-line argument for server process").
 */
function refusedUrlSetting(code: string, message: string): boolean {
  // 42601 is any syntax error too: only the login's own words are a setting of the URL
  return code === '22023' || code === '42704' || (code === '42601' && /command-line argument for server process|requires a value/.test(message))
}

/** SQLSTATE classes and codes that mean "could not get a usable session". */
function sqlStateReason(code: string, message: string): string | undefined {
  if (code === '3D000') return `database does not exist (${message})`
  if (code === '28P01') return 'password authentication failed'
  if (code.startsWith('28')) return `login refused: ${message}`
  if (code === '57P03') return `the server is not accepting connections yet (${message})`
  if (code === '57P01') return 'the server ended the connection (a restart, a shutdown or pg_terminate_backend)'
  if (code === '57P02') return 'the server ended the connection after a crash of another session (crash restart)'
  if (code === '53300') return `too many connections (${message})`
  if (code.startsWith('08')) return `connection failure: ${message}`
  if (refusedUrlSetting(code, message)) return `the server refused a setting of the URL: ${message}`
  return undefined
}

/** An administrator's URL on the target's server, for hints (the Unix-socket form for a socket). */
function adminUrlFor(target: DbTarget): string {
  return target.host.startsWith('/') ? `postgresql://postgres@/postgres?host=${target.host}` : `postgresql://postgres@${target.host}:${target.port}/postgres`
}

/** A KintoError for an error raised while connecting, or undefined for any other error. */
export function connectionError(error: unknown, target: DbTarget): KintoError | undefined {
  if (!(error instanceof Error)) return undefined
  const e = error as Error & {code?: string}
  let reason: string | undefined
  if (e.code && NETWORK[e.code]) reason = NETWORK[e.code]
  else if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) reason = sqlStateReason(e.code, e.message)
  else if (/timeout exceeded when trying to connect|connection timeout|^timeout expired$/i.test(e.message)) reason = 'connection timed out'
  else if (/^Query read timeout$/i.test(e.message)) reason = 'no answer within the statement timeout (the connection stopped answering)'
  else if (/Connection terminated unexpectedly/i.test(e.message)) reason = 'the server closed the connection'
  else if (/self.signed certificate|certificate|SSL|ssl/.test(e.message) && /connect|SSL|ssl/.test(e.message)) reason = `TLS: ${e.message}`
  // Node's certificate checks (verify-ca, verify-full): DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID…
  else if (e.code && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(e.code)) reason = `TLS: the server's certificate is not accepted (${e.message})`
  // A server asking for a password (scram, md5) of a URL without one: node-postgres's own words.
  else if (/client password must be a string/.test(e.message)) reason = 'the server asks for a password, and the URL has none'
  if (!reason) return undefined
  const who = target.user ? ` as ${target.user}` : ''
  const code = (error as {code?: string}).code
  return new KintoError(
    `Cannot connect to PostgreSQL at ${target.host}:${target.port}, database ${target.database}${who}: ${reason}.`,
    {
      code: 'KINTO_DB_UNREACHABLE',
      hint:
        code === '3D000'
          ? 'Create it with `kinto db create` (UTF8, UTC), or fix the database name in the URL.'
          : code === '28000' && /^role ".*" does not exist$/.test(e.message)
            ? `Create the role with \`kinto db create --admin-url ${adminUrlFor(target)}\` (an administrator's URL: it creates the role, with the URL's password, and the database), or fix the user name in the URL.`
            : code && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)
              ? "Give the URL the CA that signed the server's certificate (sslrootcert=<file>), or use sslmode=require to encrypt without checking it."
              : code && refusedUrlSetting(code, e.message)
              ? 'Fix or remove that setting in the URL (its query string, or its options=-c …).'
              : 'Check that the server runs and that the database URL (host, port, database, user, password) is right.',
      cause: error,
    },
  )
}

/**
 * A KintoError for a database condition the operator fixes, raised by any statement (not only
 * while connecting), or undefined: SQLSTATE 53100, the disk of the database (a PostgreSQL server's
 * data directory, the file system of an embedded folder) is full. The transaction was rolled back.
 */
export function databaseConditionError(error: unknown): KintoError | undefined {
  if (sqlStateOf(error) !== '53100') return undefined
  let detail = ''
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as {code?: unknown}).code === '53100') detail = e.message
  }
  return new KintoError(`The database has no space left to write${detail ? ` (${detail})` : ''}; the transaction was rolled back.`, {
    code: 'KINTO_DB_DISK_FULL',
    hint: "Free space on the database's disk (the PostgreSQL server's data directory, or the file system of the embedded folder), then run this again.",
    cause: error,
  })
}

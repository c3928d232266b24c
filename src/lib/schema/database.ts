/**
 * `kinto db create`: the storage database, UTF8 and UTC, as upstream's storage requires.
 * Idempotent: an existing database has its encoding checked and its timezone set.
 */
import {type SqlClient, dbUrlPassword, openDatabase, parseDbUrl, quoteIdent, quoteLiteral, scramVerifier} from '../db/index.js'
import type {Settings} from '../config/settings.js'
import {KintoError, UsageError} from '../errors.js'
import {checkAdminUrl, serverStorage, urlForDatabase} from './admin.js'
import {configuredBackends} from './targets.js'

export interface CreateDatabaseOptions {
  settings: Settings
  dir: string
  /** Database to create (default: the one in kinto.storage_url). */
  database?: string
  /** A role allowed to create databases (default: the storage URL's credentials on database postgres). */
  adminUrl?: string
  report?: (line: string) => void
}

export interface CreateDatabaseResult {
  database: string
  server: string
  created: boolean
  encoding: string
  timezone: 'UTC'
  /** Owner given to a new database (the storage URL's user), when it differs from the admin. */
  owner?: string
  /** `owner` did not exist and was created (LOGIN, with the storage URL's password). */
  roleCreated?: boolean
  /** The existing database was owned by another role and now belongs to `owner`. */
  ownerChanged?: boolean
  statements: string[]
}

/** Maximum identifier length in PostgreSQL (NAMEDATALEN - 1 bytes); longer names are truncated. */
export const MAX_IDENTIFIER_BYTES = 63

export function checkIdentifier(kind: string, name: string): string {
  if (name.length === 0) throw new UsageError(`The ${kind} name is empty.`)
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new UsageError(`The ${kind} name is longer than ${MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would truncate it.`)
  }
  if (name.includes('\0')) throw new UsageError(`The ${kind} name contains a NUL character.`)
  return name
}

async function exists(admin: SqlClient, database: string): Promise<{encoding: string} | undefined> {
  const res = await admin.query<{encoding: string}>(
    'SELECT pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = $1',
    [database],
  )
  return res.rows[0]
}

export async function createDatabase(opts: CreateDatabaseOptions): Promise<CreateDatabaseResult> {
  const backends = configuredBackends(opts.settings, opts.dir)
  const embedded = backends.find((b) => b.backend === 'storage' && b.kind === 'postgresql' && b.pgliteDir !== undefined)
  if (embedded) {
    // PGlite creates its folder on first use, always UTF8 and UTC: nothing to do.
    opts.report?.(`The storage is the embedded engine (${embedded.database}): it is created on first use, UTF8 and UTC.`)
    return {database: embedded.database!, server: 'embedded', created: false, encoding: 'UTF8', timezone: 'UTC', statements: []}
  }
  const storage = serverStorage(backends, 'kinto db create')
  const parsed = parseDbUrl(storage.url, opts.dir)
  if (parsed.driver !== 'pg') throw new Error('unreachable')
  const database = checkIdentifier('database', opts.database ?? parsed.database)
  // The target may not exist yet: connect to the maintenance database of the same server.
  const adminUrl = opts.adminUrl ? checkAdminUrl(opts.adminUrl) : urlForDatabase(storage.url, 'postgres')
  const adminParsed = parseDbUrl(adminUrl)
  const server = adminParsed.driver === 'pg' ? `${adminParsed.host}:${adminParsed.port}` : '?'
  const admin = openDatabase(adminUrl, {poolSize: 1, maxOverflow: 0, connectTimeoutMs: 10_000})
  const statements: string[] = []
  try {
    let found = await exists(admin, database)
    let created = false
    // The storage URL's role owns the database (so `kinto migrate` may create the schema in it),
    // unless it is the admin itself. A role that does not exist is an error, before anything is made.
    const who = await admin.query<{me: string; target: boolean; current: string | null}>(
      `SELECT current_user AS me, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS target,
              (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $2) AS current`,
      [parsed.user ?? '', database],
    )
    const {me, target, current} = who.rows[0]
    const owner = parsed.user && parsed.user !== me ? parsed.user : undefined
    let roleCreated = false
    if (owner && !target) {
      // The role Kinto logs in as, made as the URL says (the production guide's `createuser`):
      // LOGIN, with the URL's password when it has one (as a SCRAM verifier: the password itself
      // never reaches the server's logs), nothing more than owning the database below.
      const password = dbUrlPassword(parsed)
      const role = quoteIdent(owner)
      const sql = password ? `CREATE ROLE ${role} LOGIN PASSWORD ${quoteLiteral(scramVerifier(password))}` : `CREATE ROLE ${role} LOGIN`
      statements.push(password ? `CREATE ROLE ${role} LOGIN PASSWORD '***'` : sql)
      try {
        await admin.exec(sql)
        roleCreated = true
        opts.report?.(`Created role ${owner} on ${server} (LOGIN${password ? ', the password of kinto.storage_url' : ', no password: kinto.storage_url gives none'}).`)
      } catch (error) {
        const code = (error as {code?: string}).code
        // Created meanwhile by a concurrent run: fine.
        if (code !== '42710') {
          throw new KintoError(`The role ${owner} of kinto.storage_url does not exist on ${server}, and ${me} may not create it: ${(error as Error).message}.`, {
            code: 'KINTO_DB_ROLE_MISSING',
            hint: `Run kinto db create with --admin-url of a role allowed to create roles (CREATEROLE), or create it first (CREATE ROLE ${role} LOGIN PASSWORD '…').`,
          })
        }
      }
    }
    let ownerChanged = false
    if (!found) {
      // template0: the only template guaranteed to accept any encoding.
      const sql =
        `CREATE DATABASE ${quoteIdent(database)} WITH ENCODING 'UTF8' TEMPLATE template0` +
        (owner ? ` OWNER ${quoteIdent(owner)}` : '')
      statements.push(sql)
      try {
        await admin.exec(sql)
        created = true
        opts.report?.(`Created database ${database} on ${server} (UTF8${owner ? `, owner ${owner}` : ''}).`)
      } catch (error) {
        // Created meanwhile by a concurrent run: fine, it is checked below like any existing one.
        if ((error as {code?: string}).code !== '42P04') throw mapAdminError(error, database, server)
      }
      found = await exists(admin, database)
    } else {
      opts.report?.(`Database ${database} exists on ${server}.`)
      if (owner && current !== owner) {
        const sql = `ALTER DATABASE ${quoteIdent(database)} OWNER TO ${quoteIdent(owner)}`
        statements.push(sql)
        await admin.exec(sql).catch((error: unknown) => {
          throw mapAdminError(error, database, server)
        })
        ownerChanged = true
        opts.report?.(`Database ${database}: owner changed from ${current ?? '?'} to ${owner}.`)
      }
    }
    const encoding = found?.encoding ?? 'UTF8'
    if (encoding.toUpperCase() !== 'UTF8') {
      throw new KintoError(`The database ${database} on ${server} uses encoding ${encoding}; Kinto's storage needs UTF8.`, {
        code: 'KINTO_DB_ENCODING',
        hint: 'Dump it, create it again (kinto db create on a new name, or CREATE DATABASE … ENCODING UTF8 TEMPLATE template0) and restore.',
      })
    }
    const tz = `ALTER DATABASE ${quoteIdent(database)} SET TIMEZONE TO 'UTC'`
    statements.push(tz)
    await admin.exec(tz).catch((error: unknown) => {
      throw mapAdminError(error, database, server)
    })
    opts.report?.(`Database ${database}: timezone set to UTC (for new sessions).`)
    return {database, server, created, encoding, timezone: 'UTC', ...(owner ? {owner} : {}), ...(roleCreated ? {roleCreated} : {}), ...(ownerChanged ? {ownerChanged} : {}), statements}
  } finally {
    await admin.close()
  }
}

export function mapAdminError(error: unknown, database: string, server: string): unknown {
  const code = (error as {code?: string}).code
  if (code === '42501') {
    return new KintoError(`Permission denied on ${server} for database ${database}: ${(error as Error).message}.`, {
      code: 'KINTO_DB_PERMISSION',
      hint: 'Use --admin-url with a role allowed to do this (e.g. postgresql://postgres@host/postgres).',
      cause: error,
    })
  }
  return error
}

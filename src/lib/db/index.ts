import {PgClient} from './pg-driver.js'
import {PgliteClient} from './pglite-driver.js'
import type {PoolOptions, SqlClient} from './types.js'
import {KintoError} from '../errors.js'
import {parseDbUrl} from './url.js'

export type {DriverKind, PoolOptions, Queryable, QueryResult, SqlClient} from './types.js'
export {DEFAULT_CONNECT_TIMEOUT_MS} from './pg-driver.js'
export {dbUrlPassword, describeDbUrl, isPostgresUrl, maskUrl, parseDbUrl} from './url.js'
export {isDatabaseFolder, refuseForeignFolder} from './pglite-template.js'
export {scramVerifier} from './scram.js'

/** Opens a client for a URL (see url.ts for the accepted forms). The caller closes it. */
export function openDatabase(url: string, options: PoolOptions = {}): SqlClient {
  const parsed = parseDbUrl(url, options.baseDir)
  if (parsed.driver === 'pglite') return new PgliteClient(parsed.dataDir, {sharedBuffers: parsed.sharedBuffers})
  return new PgClient(parsed.connectionString, options)
}

/**
 * One client per database URL, as upstream keeps one pool per URL: a permission backend on the
 * storage URL shares the storage pool. PGlite must be opened once per folder per process.
 */
export class DatabaseRegistry {
  private readonly clients = new Map<string, SqlClient>()

  constructor(private readonly baseDir?: string) {}

  get(url: string, options: PoolOptions = {}): SqlClient {
    const parsed = parseDbUrl(url, this.baseDir)
    const key = parsed.driver === 'pglite' ? `pglite:${parsed.dataDir ?? ':memory:'}` : parsed.connectionString
    let client = this.clients.get(key)
    if (!client) {
      client = openDatabase(url, {...options, baseDir: this.baseDir})
      this.clients.set(key, client)
    } else if (parsed.driver === 'pglite' && parsed.sharedBuffers !== undefined && client instanceof PgliteClient) {
      // One engine per folder: a shared_buffers given on any of its URLs applies; two different ones are an error.
      if (!client.adopt({sharedBuffers: parsed.sharedBuffers})) {
        throw new KintoError(`The embedded database ${parsed.dataDir ?? 'in memory'} is given two different shared_buffers in its URLs.`, {
          code: 'KINTO_DB_URL_INVALID',
          hint: 'Give shared_buffers once, or the same on every pglite: URL of that folder (storage, permission, cache).',
        })
      }
    }
    return client
  }

  /** SqlClient.abort() of every client (those that have one). */
  abortAll(): void {
    for (const client of this.clients.values()) client.abort?.()
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()]
    this.clients.clear()
    await Promise.all(all.map((c) => c.close().catch(() => {})))
  }
}

/**
 * Runs fn with a registry of the databases it opens, and closes them all when fn ends, however it
 * ends (as graphile-migrate's withClient). `closeTimeoutMs` bounds the wait for the closing: a
 * database that stopped answering does not hold the caller. `borrowed`: the open registry of
 * another owner (a running server, through its control channel): fn runs on it, nothing is closed.
 */
export async function withRegistry<T>(
  baseDir: string | undefined,
  fn: (registry: DatabaseRegistry) => Promise<T>,
  options: {closeTimeoutMs?: number; borrowed?: DatabaseRegistry} = {},
): Promise<T> {
  if (options.borrowed) return fn(options.borrowed)
  const registry = new DatabaseRegistry(baseDir)
  try {
    return await fn(registry)
  } finally {
    const closing = registry.closeAll()
    if (options.closeTimeoutMs === undefined) await closing
    else {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.closeTimeoutMs)))
      await Promise.race([closing, timeout]).finally(() => clearTimeout(timer))
    }
  }
}

/** Double-quotes an SQL identifier (the one quoting helper: never concatenate input into SQL). */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('An SQL identifier cannot contain a NUL character.')
  return '"' + name.replaceAll('"', '""') + '"'
}

/** Single-quotes an SQL literal, for the few statements that take no parameters (CREATE ROLE … PASSWORD). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('An SQL literal cannot contain a NUL character.')
  return "'" + value.replaceAll("'", "''") + "'"
}

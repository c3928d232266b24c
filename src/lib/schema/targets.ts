/**
 * Which backends of a configuration live in PostgreSQL, and on which database: what migrate,
 * db status and db grant-readonly work on.
 */
import {DatabaseRegistry, DEFAULT_CONNECT_TIMEOUT_MS, describeDbUrl, parseDbUrl, type PoolOptions, type SqlClient} from '../db/index.js'
import {type BackendKind, backendKind} from '../config/backend-modules.js'
import {requireDatabaseUrl} from '../config/database-url.js'
import {asInt, asSeconds, asString, type Settings} from '../config/settings.js'
import {type BackendName, MIGRATION_ORDER} from './sql-files.js'

export interface ConfiguredBackend {
  backend: BackendName
  /** The configured module, e.g. `kinto.core.storage.postgresql`. */
  module: string
  /** postgresql, memory, redis, memcached ('' for a module kinto-ops does not know). */
  kind: BackendKind | ''
  /** Set for postgresql backends. */
  url?: string
  /** host:port/database or the embedded folder: safe to print. */
  database?: string
  /** Identifies the physical database (one migration lock each). */
  databaseKey?: string
  /** PGlite data folder (null: in memory) for embedded databases. */
  pgliteDir?: string | null
  /** A read-only command found no database in the folder (see withMigrationLocks): read as empty, not created. */
  absent?: boolean
  pool: PoolOptions
}

/** The storage, permission and cache backends of the settings, in migration order. */
export function configuredBackends(settings: Settings, dir: string): ConfiguredBackend[] {
  return MIGRATION_ORDER.map((backend) => {
    const module = asString(settings, `${backend}_backend`) ?? ''
    const kind = backendKind(module)
    const entry: ConfiguredBackend = {backend, module, kind, pool: {}}
    if (kind !== 'postgresql') return entry
    const url = requireDatabaseUrl(settings, backend)
    const parsed = parseDbUrl(url, dir)
    entry.url = url
    entry.database = describeDbUrl(url, dir)
    if (parsed.driver === 'pglite') {
      entry.pgliteDir = parsed.dataDir
      entry.databaseKey = `pglite:${parsed.dataDir ?? ':memory:'}`
    } else {
      entry.databaseKey = `pg:${parsed.host}:${parsed.port}/${parsed.database}`
    }
    entry.pool = {
      // migrate holds one connection for its lock and works on another
      poolSize: Math.max(2, asInt(settings, `${backend}_pool_size`, 25) ?? 25),
      maxOverflow: asInt(settings, `${backend}_max_overflow`, 10) ?? 10,
      connectTimeoutMs: Math.round((asSeconds(settings, `${backend}_connect_timeout`) ?? DEFAULT_CONNECT_TIMEOUT_MS / 1000) * 1000),
      baseDir: dir,
    }
    return entry
  })
}

/** Opens (once per URL, as upstream's one pool per URL) the client of a postgresql backend. */
export function clientFor(registry: DatabaseRegistry, b: ConfiguredBackend): SqlClient {
  if (!b.url) throw new Error(`${b.backend} is not a PostgreSQL backend`)
  return registry.get(b.url, b.pool)
}


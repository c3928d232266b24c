/**
 * Upstream's maintenance commands as library verbs: `flush-cache` (empty the cache backend: the
 * keys under `cache_prefix` only, on PostgreSQL, Redis or memcached) and
 * `purge-deleted` (keep only the newest N tombstones of each list). Both open the configured
 * PostgreSQL database themselves; an embedded folder is locked first (a running server holding
 * it makes them fail at once, naming its pid). Memory backends live inside each server process:
 * there is nothing to reach from here, and the result says so instead of pretending.
 */
import {networkCache} from '../cache/index.js'
import {PostgresCache} from '../cache/postgresql.js'
import {asBool, asString, type Settings} from '../config/settings.js'
import {withRegistry, type DatabaseRegistry, type SqlClient} from '../db/index.js'
import {sqlStateOf} from '../db/errors.js'
import {ExitCode, KintoError, UsageError} from '../errors.js'
import {withMigrationLocks} from '../schema/migrate.js'
import {requireSchema} from '../schema/require.js'
import type {BackendName} from '../schema/sql-files.js'
import {clientFor, type ConfiguredBackend, configuredBackends} from '../schema/targets.js'
import {PostgresStorage} from '../storage/postgresql.js'

export interface TaskOptions {
  settings: Settings
  /** The ini's folder (relative pglite: URLs). */
  dir: string
  /** The ini file, for hints. */
  iniPath: string
  /** Wait this long for a migration holding an embedded folder (default 10 s). */
  lockTimeoutMs?: number
  /** The open databases of a running server (through its control channel): no lock taken, nothing closed. */
  registry?: DatabaseRegistry
}

export interface FlushCacheResult {
  backend: string
  flushed: boolean
  /** The database or the cache servers (host:port, never a password). */
  database?: string
  /** cache_prefix when set: only the keys under it were deleted. */
  prefix?: string
  /** Why nothing was flushed. */
  note?: string
}

const MEMORY_NOTE = 'lives inside each server process; restart the servers (kinto reload --restart with workers) to empty it'

/**
 * `pglite:memory:` opened by this command: a new, empty database of its own, not the one any
 * server serves (a server's own registry, through its control socket, is another matter).
 */
function inMemoryEmbedded(options: TaskOptions, b: ConfiguredBackend): boolean {
  return b.kind === 'postgresql' && b.pgliteDir === null && options.registry === undefined
}

/** The configured storage, permission or cache backend of the task's settings. */
function configured(options: TaskOptions, name: BackendName): ConfiguredBackend {
  return configuredBackends(options.settings, options.dir).find((b) => b.backend === name)!
}

/**
 * Runs `fn` on the client of one PostgreSQL backend, as every task does: the task's registry (or
 * the running server's), the embedded folder locked (or the server's hold on it), the schema
 * checked as installed and current.
 */
async function withBackendClient<T>(options: TaskOptions, configuredBackend: ConfiguredBackend, fn: (client: SqlClient) => Promise<T>): Promise<T> {
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000
  const lockOpts = {lockTimeoutMs, held: options.registry !== undefined}
  // A statement may run long (a purge of many tombstones), but never waits longer than the lock
  // timeout behind another session's transaction.
  const backend = {...configuredBackend, pool: {...configuredBackend.pool, lockTimeoutMs}}
  return withRegistry(
    options.dir,
    (registry) =>
      withMigrationLocks([backend], registry, lockOpts, false, async () => {
        const client = clientFor(registry, backend)
        await requireSchema(client, backend.backend, backend.database!, options.iniPath)
        try {
          return await fn(client)
        } catch (error) {
          if (sqlStateOf(error) !== '55P03') throw error
          throw new KintoError(
            `Waited ${lockTimeoutMs / 1000} s for a lock on the ${backend.backend} tables of ${backend.database} (another session's transaction holds it), and gave up.`,
            {
              code: 'KINTO_DB_LOCKED',
              exit: ExitCode.LOCK_TIMEOUT,
              hint: 'Run it again once that transaction ends; it completes the work (pg_stat_activity shows the sessions idle in transaction).',
            },
          )
        }
      }),
    {borrowed: options.registry},
  )
}

export async function flushCache(options: TaskOptions): Promise<FlushCacheResult> {
  const cache = configured(options, 'cache')
  if (cache.kind === 'memory') return {backend: cache.module, flushed: false, note: `the memory cache ${MEMORY_NOTE}`}
  if (inMemoryEmbedded(options, cache)) return {backend: cache.module, flushed: false, note: `the in-memory embedded cache (pglite:memory:) ${MEMORY_NOTE}`}
  const prefix = asString(options.settings, 'cache_prefix') ?? ''
  const shared = networkCache(options.settings)
  if (shared) {
    try {
      await shared.flush()
    } catch (error) {
      throw new KintoError(`Could not flush the cache: ${(error as Error).message}`, {
        code: 'KINTO_CACHE_UNREACHABLE',
        hint: `Check that ${shared.address.backend} at ${shared.address.where} is running and reachable from this machine.`,
      })
    } finally {
      await shared.close()
    }
    return {backend: cache.module, flushed: true, database: shared.address.where, ...(prefix ? {prefix} : {})}
  }
  if (cache.kind !== 'postgresql') {
    throw new KintoError(`The cache backend '${cache.module}' is not supported by kinto-ops.`, {
      code: 'KINTO_BACKEND_UNSUPPORTED',
      hint: 'Use kinto.core.cache.postgresql, .redis, .memcached or .memory.',
    })
  }
  await withBackendClient(options, cache, (client) => new PostgresCache(client, {prefix}).flush())
  return {backend: cache.module, flushed: true, database: cache.database, ...(prefix ? {prefix} : {})}
}

export interface PurgeDeletedOptions extends TaskOptions {
  /** Resource names (`record`, `bucket`, `collection`, `group`…). */
  resources: string[]
  maxRetained: number
}

export interface PurgeDeletedResult {
  backend: string
  database?: string
  maxRetained: number
  /** Tombstones deleted per resource. */
  deleted: Record<string, number>
  total: number
  note?: string
}

/**
 * `kinto purge-deleted RESOURCE… MAX_RETAINED` as typed: the resource names, then the number of
 * tombstones to keep (a whole number the database can compare: 100000000000000000000 was out of
 * range for bigint, an unexpected failure).
 */
export function purgeArguments(positional: string[]): {resources: string[]; maxRetained: number} {
  if (positional.length < 2) throw new UsageError('Give at least one resource name and the number of tombstones to keep, e.g. `kinto purge-deleted record 1000`.')
  const last = positional.at(-1)!
  if (!/^\d+$/.test(last)) throw new UsageError(`max-retained: ${JSON.stringify(last)} is not a whole number (0 or more).`)
  const maxRetained = Number(last)
  if (!Number.isSafeInteger(maxRetained)) {
    throw new UsageError(`max-retained: ${last} is too large (at most ${Number.MAX_SAFE_INTEGER}).`, {hint: 'Give the number of tombstones to keep per list, e.g. 1000.'})
  }
  const resources = positional.slice(0, -1)
  const bad = resources.find((r) => !/^[a-z][a-z0-9_-]*$/i.test(r))
  if (bad) throw new UsageError(`${JSON.stringify(bad)} is not a resource name (e.g. record, collection, group, bucket).`)
  return {resources, maxRetained}
}

export async function purgeDeleted(options: PurgeDeletedOptions): Promise<PurgeDeletedResult> {
  const storage = configured(options, 'storage')
  const deleted: Record<string, number> = {}
  const base = {backend: storage.module, maxRetained: options.maxRetained, deleted, total: 0}
  if (storage.kind === 'memory') return {...base, note: `the memory storage ${MEMORY_NOTE.replace('empty it', 'start empty')}`}
  if (inMemoryEmbedded(options, storage)) {
    return {...base, note: `the in-memory embedded storage (pglite:memory:) ${MEMORY_NOTE.replace('empty it', 'start empty')}`}
  }
  if (asBool(options.settings, 'readonly')) {
    throw new KintoError('kinto.readonly is true, so kinto purge-deleted deletes nothing.', {
      code: 'KINTO_READONLY',
      exit: ExitCode.FAILED,
      hint: 'Run it with a writable configuration (kinto.readonly = false, or KINTO_READONLY=false).',
    })
  }
  await withBackendClient(options, storage, async (client) => {
    const backend = new PostgresStorage(client)
    for (const resource of options.resources) {
      deleted[resource] = (deleted[resource] ?? 0) + (await backend.purgeDeleted(resource, '*', {maxRetained: options.maxRetained}))
    }
  })
  return {...base, database: storage.database, total: Object.values(deleted).reduce((a, b) => a + b, 0)}
}

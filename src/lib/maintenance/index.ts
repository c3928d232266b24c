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
import {withRegistry, type DatabaseRegistry} from '../db/index.js'
import {ExitCode, KintoError} from '../errors.js'
import {withMigrationLocks} from '../schema/migrate.js'
import {requireSchema} from '../schema/require.js'
import {clientFor, configuredBackends} from '../schema/targets.js'
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

export async function flushCache(options: TaskOptions): Promise<FlushCacheResult> {
  const cache = configuredBackends(options.settings, options.dir).find((b) => b.backend === 'cache')!
  if (cache.kind === 'memory') return {backend: cache.module, flushed: false, note: `the memory cache ${MEMORY_NOTE}`}
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
  await withRegistry(
    options.dir,
    (registry) =>
        withMigrationLocks([cache], registry, {lockTimeoutMs: options.lockTimeoutMs ?? 10_000, held: options.registry !== undefined}, false, async () => {
        const client = clientFor(registry, cache)
        await requireSchema(client, 'cache', cache.database!, options.iniPath)
        const backend = new PostgresCache(client, {prefix})
        await backend.flush()
      }),
    {borrowed: options.registry},
  )
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

export async function purgeDeleted(options: PurgeDeletedOptions): Promise<PurgeDeletedResult> {
  const storage = configuredBackends(options.settings, options.dir).find((b) => b.backend === 'storage')!
  const deleted: Record<string, number> = {}
  const base = {backend: storage.module, maxRetained: options.maxRetained, deleted, total: 0}
  if (storage.kind === 'memory') return {...base, note: `the memory storage ${MEMORY_NOTE.replace('empty it', 'start empty')}`}
  if (asBool(options.settings, 'readonly')) {
    throw new KintoError('kinto.readonly is true, so kinto purge-deleted deletes nothing.', {
      code: 'KINTO_READONLY',
      exit: ExitCode.FAILED,
      hint: 'Run it with a writable configuration (kinto.readonly = false, or KINTO_READONLY=false).',
    })
  }
  await withRegistry(
    options.dir,
    (registry) =>
        withMigrationLocks([storage], registry, {lockTimeoutMs: options.lockTimeoutMs ?? 10_000, held: options.registry !== undefined}, false, async () => {
        const client = clientFor(registry, storage)
        await requireSchema(client, 'storage', storage.database!, options.iniPath)
        const backend = new PostgresStorage(client)
        for (const resource of options.resources) {
          deleted[resource] = (deleted[resource] ?? 0) + (await backend.purgeDeleted(resource, '*', {maxRetained: options.maxRetained}))
        }
      }),
    {borrowed: options.registry},
  )
  return {...base, database: storage.database, total: Object.values(deleted).reduce((a, b) => a + b, 0)}
}

/**
 * Builds the storage, permission and cache backends from Kinto settings (upstream module names),
 * and the per-request transaction spanning storage and permission.
 *
 * Settings read (keys without `kinto.`): `storage_backend`, `storage_url`, `permission_backend`,
 * `permission_url`, `cache_backend`, `cache_url`, `cache_hosts`, `<backend>_pool_size` / `_max_overflow` /
 * `_pool_timeout` / `_connect_timeout` / `_statement_timeout`, `cache_prefix`, `cache_max_size_bytes`,
 * `storage_max_fetch_size`, `readonly`.
 *
 * Transactions — `backends.transaction(fn)`:
 * - fn receives `{storage, permission}` bound to one transaction; it commits when fn resolves and rolls
 *   back when fn throws (the error is rethrown). Use ONLY these bound instances inside fn: on PGlite
 *   (one connection) calling `backends.storage` inside fn waits for the transaction forever, and on a
 *   PostgreSQL server it would run outside the transaction.
 * - postgresql storage and permission on the same URL share one connection: BEGIN … COMMIT covers
 *   both (upstream: one transaction per request, one per batch). On different URLs, or with one memory
 *   backend, each runs its own transaction, nested (storage outside, permission inside).
 * - memory backends run one transaction at a time and undo the transaction's changes on throw.
 * - Not reentrant: never call `backends.transaction` inside fn.
 * - Reads and writes also work outside any transaction (`backends.storage`…): each write is then atomic
 *   on its own.
 * - Writes to a list take a per-list lock (postgresql: `pg_advisory_xact_lock`) held until commit, so
 *   concurrent writers never collide on the unique timestamp index; a deadlock between two multi-list
 *   transactions (PostgreSQL aborts one) surfaces as `BackendError` with `retryable: true`.
 * - The cache is never part of a transaction (upstream: it commits after each operation). On a
 *   PostgreSQL server it has its own pool even on the storage URL (as upstream). On PGlite it shares
 *   the one connection: a cache call inside fn would wait for the transaction, so make cache calls
 *   before or after the transaction there.
 */
import type {Cache} from './cache/types.js'
import {networkCache} from './cache/index.js'
import {MemoryCache} from './cache/memory.js'
import {BACKEND_MODULES, type BackendFamily, type BackendKind, backendModules, POOL_CLASSES} from './config/backend-modules.js'
import {requireDatabaseUrl} from './config/database-url.js'
import {asBool, asInt, asSeconds, asString, type Settings} from './config/settings.js'
import {DatabaseRegistry, openDatabase, parseDbUrl, type PoolOptions, type SqlClient} from './db/index.js'
import {KintoError} from './errors.js'
import {MemoryPermission} from './permission/memory.js'
import {PostgresPermission} from './permission/postgresql.js'
import type {Permission} from './permission/types.js'
import {MemoryStorage} from './storage/memory.js'
import {runTransaction} from './db/backend.js'
import {PostgresStorage} from './storage/postgresql.js'
import type {Storage} from './storage/types.js'
import {PostgresCache} from './cache/postgresql.js'
import {postgresPrefetch, type Prefetched, type PrefetchQuery} from './prefetch.js'

export interface TransactionBackends {
  storage: Storage
  permission: Permission
  /** The read prefetch (src/lib/prefetch.ts) on this transaction; only when `Backends.prefetch` is offered. */
  prefetch?(query: PrefetchQuery): Promise<Prefetched>
}

export interface Backends {
  storage: Storage
  permission: Permission
  cache: Cache
  /** kinto.readonly: the storage never writes list timestamps. */
  readonly: boolean
  /** Runs fn in one transaction over storage and permission (see the top of this file). */
  transaction<T>(fn: (tx: TransactionBackends) => Promise<T>): Promise<T>
  /** Closes the backends, and the database clients when the registry was created here. */
  close(): Promise<void>
  /** Destroys the database connections at once, the registry's included (SqlClient.abort). */
  abort?(): void
  /**
   * What a read needs from storage and permission in one statement (src/lib/prefetch.ts); only
   * when both are PostgreSQL on one database. Outside any transaction.
   */
  prefetch?(query: PrefetchQuery): Promise<Prefetched>
}

export interface CreateBackendsOptions {
  /** Shared database clients (one per URL). When given, the caller closes it. */
  registry?: DatabaseRegistry
  /** Folder that relative `pglite:` URLs are resolved against (the ini's folder). */
  baseDir?: string
}

/** The kind of the configured `<family>_backend` module (src/lib/config/backend-modules.ts). */
function configuredKind(settings: Settings, family: BackendFamily): BackendKind {
  const key = `${family}_backend`
  const value = (asString(settings, key) ?? '').trim()
  const module = BACKEND_MODULES[value]
  if (module && module.family === family) return module.kind
  throw new KintoError(`Unknown ${family} backend '${value}' (setting kinto.${key}).`, {
    code: 'KINTO_CONFIG_INVALID',
    hint: `Use ${backendModules(family).join(' or ')}.`,
  })
}

/** Upstream's default `<backend>_pool_timeout` (seconds): the wait for a free pool connection. */
export const DEFAULT_POOL_TIMEOUT_SECONDS = 30

/** Server runtime default of `<backend>_statement_timeout` (seconds): no request holds a connection longer. */
export const DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30

const ms = (seconds: number | null) => (seconds === null ? undefined : Math.round(seconds * 1000))

function poolOptions(settings: Settings, prefix: string): PoolOptions {
  return {
    poolSize: asInt(settings, `${prefix}_pool_size`) ?? undefined,
    maxOverflow: asInt(settings, `${prefix}_max_overflow`) ?? undefined,
    poolTimeoutSeconds: asSeconds(settings, `${prefix}_pool_timeout`) ?? DEFAULT_POOL_TIMEOUT_SECONDS,
    maxBacklog: asInt(settings, `${prefix}_max_backlog`) ?? undefined,
    recycleSeconds: asInt(settings, `${prefix}_pool_recycle`) ?? undefined,
    noPooling: POOL_CLASSES[(asString(settings, `${prefix}_poolclass`) ?? '').trim()]?.pooled === false,
    connectTimeoutMs: ms(asSeconds(settings, `${prefix}_connect_timeout`)),
    statementTimeoutMs: ms(asSeconds(settings, `${prefix}_statement_timeout`) ?? DEFAULT_STATEMENT_TIMEOUT_SECONDS),
  }
}

export function createBackends(settings: Settings, options: CreateBackendsOptions = {}): Backends {
  const ownsRegistry = !options.registry
  const registry = options.registry ?? new DatabaseRegistry(options.baseDir)
  const readonly = asBool(settings, 'readonly')
  const maxFetchSize = asInt(settings, 'storage_max_fetch_size', 10000) ?? 10000

  const storageKind = configuredKind(settings, 'storage')
  const permissionKind = configuredKind(settings, 'permission')
  const cacheKind = configuredKind(settings, 'cache')

  // Storage first: a permission backend on the same URL shares its pool (and its pool settings).
  let storageClient: SqlClient | undefined
  let permissionClient: SqlClient | undefined
  const storage: MemoryStorage | PostgresStorage =
    storageKind === 'memory'
      ? new MemoryStorage({readonly, maxFetchSize})
      : new PostgresStorage((storageClient = registry.get(requireDatabaseUrl(settings, 'storage'), poolOptions(settings, 'storage'))), {readonly, maxFetchSize})
  const permission: MemoryPermission | PostgresPermission =
    permissionKind === 'memory'
      ? new MemoryPermission()
      : new PostgresPermission((permissionClient = registry.get(requireDatabaseUrl(settings, 'permission'), poolOptions(settings, 'permission'))))
  const cacheMaxSize = asInt(settings, 'cache_max_size_bytes', 524288)
  const cachePrefix = asString(settings, 'cache_prefix') ?? ''
  // The cache gets its own pool, as upstream: a cache call made while a request transaction holds a
  // connection then never waits for the storage pool. PGlite is one instance per folder: shared.
  let ownCacheClient: SqlClient | undefined
  let cache: Cache
  if (cacheKind === 'memory') {
    cache = new MemoryCache({prefix: cachePrefix, maxSizeBytes: cacheMaxSize})
  } else if (cacheKind === 'redis' || cacheKind === 'memcached') {
    cache = networkCache(settings)!
  } else {
    const url = requireDatabaseUrl(settings, 'cache')
    const embedded = parseDbUrl(url, options.baseDir).driver === 'pglite'
    const client = embedded
      ? registry.get(url, poolOptions(settings, 'cache'))
      : (ownCacheClient = openDatabase(url, {...poolOptions(settings, 'cache'), baseDir: options.baseDir}))
    cache = new PostgresCache(client, {prefix: cachePrefix, waitsForTransaction: embedded})
  }

  const shared = storageClient !== undefined && storageClient === permissionClient

  async function transaction<T>(fn: (tx: TransactionBackends) => Promise<T>): Promise<T> {
    if (shared) {
      const pgStorage = storage as PostgresStorage
      const pgPermission = permission as PostgresPermission
      return runTransaction(storageClient!, (q) =>
        fn({storage: pgStorage.bind(q), permission: pgPermission.bind(q), prefetch: (query: PrefetchQuery) => postgresPrefetch(q, query)}),
      )
    }
    return (storage as {transaction<R>(f: (s: Storage) => Promise<R>): Promise<R>}).transaction((s) =>
      (permission as {transaction<R>(f: (p: Permission) => Promise<R>): Promise<R>}).transaction((p) => fn({storage: s, permission: p})),
    )
  }

  return {
    storage,
    permission,
    cache,
    readonly,
    transaction,
    ...(shared ? {prefetch: (query: PrefetchQuery) => postgresPrefetch(storageClient!, query, storage as PostgresStorage)} : {}),
    abort() {
      registry.abortAll()
      ownCacheClient?.abort?.()
    },
    async close() {
      await Promise.all([storage.close(), permission.close(), cache.close()])
      await ownCacheClient?.close()
      if (ownsRegistry) await registry.closeAll()
    },
  }
}

/**
 * The one table of backend modules: upstream's module name -> the family it serves, the kind of
 * backend behind it, and the client library that reaches it. Validation, the runtime, migrate,
 * check, flush-cache and the worker rules all read it; nothing else maps module names.
 */

export type BackendFamily = 'storage' | 'permission' | 'cache'
export type BackendKind = 'memory' | 'postgresql' | 'redis' | 'memcached'

export interface BackendModule {
  family: BackendFamily
  kind: BackendKind
  /** The client library (`pg` also stands for PGlite: the URL chooses), none for memory. */
  driver: 'pg' | 'ioredis' | 'memjs' | null
}

export const BACKEND_MODULES: Readonly<Record<string, BackendModule>> = {
  'kinto.core.storage.postgresql': {family: 'storage', kind: 'postgresql', driver: 'pg'},
  'kinto.core.storage.memory': {family: 'storage', kind: 'memory', driver: null},
  'kinto.core.permission.postgresql': {family: 'permission', kind: 'postgresql', driver: 'pg'},
  'kinto.core.permission.memory': {family: 'permission', kind: 'memory', driver: null},
  'kinto.core.cache.postgresql': {family: 'cache', kind: 'postgresql', driver: 'pg'},
  'kinto.core.cache.memory': {family: 'cache', kind: 'memory', driver: null},
  'kinto.core.cache.memcached': {family: 'cache', kind: 'memcached', driver: 'memjs'},
  'kinto.core.cache.redis': {family: 'cache', kind: 'redis', driver: 'ioredis'},
}

/** The module names of one family, in table order (error messages list them). */
export function backendModules(family: BackendFamily): string[] {
  return Object.entries(BACKEND_MODULES)
    .filter(([, m]) => m.family === family)
    .map(([name]) => name)
}

/** `kinto.core.storage.postgresql` -> `postgresql`; '' for a module kinto-ops does not know. */
export function backendKind(module: unknown): BackendKind | '' {
  return BACKEND_MODULES[String(module ?? '').trim()]?.kind ?? ''
}

/**
 * The SQLAlchemy pool classes an upstream ini may name in `<family>_poolclass`, and whether each
 * pools connections. Upstream's default keeps them (a queue bounded by max_backlog); NullPool
 * opens one per checkout and closes it when given back (deployments behind PgBouncer use it).
 */
export const POOL_CLASSES: Readonly<Record<string, {pooled: boolean}>> = {
  'kinto.core.storage.postgresql.pool.QueuePoolWithMaxBacklog': {pooled: true},
  'sqlalchemy.pool.QueuePool': {pooled: true},
  'sqlalchemy.pool.impl.QueuePool': {pooled: true},
  'sqlalchemy.pool.NullPool': {pooled: false},
  'sqlalchemy.pool.impl.NullPool': {pooled: false},
}

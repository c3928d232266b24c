/** The cache backends that live on a server of their own (Redis, memcached), built from settings. */
import {backendKind} from '../config/backend-modules.js'
import {asList, asString, type Settings} from '../config/settings.js'
import {MemcachedCache} from './memcached.js'
import {RedisCache} from './redis.js'

export type NetworkCache = RedisCache | MemcachedCache

/** `cache_pool_timeout` (seconds) as the bound on one cache call; 5 s when unset. */
function callTimeoutMs(settings: Settings): number {
  const raw = settings.cache_pool_timeout
  const seconds = typeof raw === 'number' ? raw : Number(raw)
  return raw !== undefined && raw !== null && raw !== '' && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 5000
}

/** The Redis or memcached cache the settings name, or null for the other backends. */
export function networkCache(settings: Settings): NetworkCache | null {
  const kind = backendKind(settings.cache_backend)
  const prefix = asString(settings, 'cache_prefix') ?? ''
  if (kind === 'redis') {
    const poolSize = Number(settings.cache_pool_size)
    return new RedisCache({
      // Upstream reads an empty cache_url as localhost, port 6379, database 0.
      url: (asString(settings, 'cache_url') ?? '').trim() || 'redis://localhost:6379/0',
      prefix,
      poolSize: Number.isInteger(poolSize) && poolSize > 0 ? poolSize : 1,
      commandTimeoutMs: callTimeoutMs(settings),
    })
  }
  if (kind === 'memcached') {
    const hosts = asList(settings, 'cache_hosts').flatMap((h) => h.split(/\s+/)).filter(Boolean)
    return new MemcachedCache({hosts, prefix, timeoutMs: callTimeoutMs(settings)})
  }
  return null
}

/**
 * The production checklist item for a cache on a server of its own (Redis, memcached): it answers,
 * with the configured credentials, within the timeout. Writes nothing (a PING / `version`).
 */
import {networkCache} from '../cache/index.js'
import type {KintoConfig} from '../config/index.js'
import {type Finding, error, ok} from './types.js'

export async function checkCache(config: KintoConfig, options: {timeoutMs?: number} = {}): Promise<Finding[]> {
  const settings = {...config.settings}
  if (options.timeoutMs !== undefined) settings.cache_pool_timeout = options.timeoutMs / 1000
  const cache = networkCache(settings)
  if (!cache) return []
  const {backend, where} = cache.address
  try {
    await cache.ping()
    return [ok('cache-reachable', `The ${backend} cache at ${where} answers.`)]
  } catch (e) {
    return [
      error(
        'cache-reachable',
        `The ${backend} cache cannot be used: ${(e as Error).message}. Requests that need it (account logins, DELETE pagination tokens) would get 503.`,
        backend === 'Redis'
          ? 'Start Redis or fix kinto.cache_url (redis://[:password@]host:port/db).'
          : 'Start memcached or fix kinto.cache_hosts (host:port entries separated by spaces).',
      ),
    ]
  } finally {
    await cache.close()
  }
}

/**
 * The production checklist item for a cache on a server of its own (Redis, memcached): it answers,
 * with the configured credentials, within the timeout. Writes nothing (a PING / `version`).
 */
import {networkCache} from '../cache/index.js'
import {MemcachedCache} from '../cache/memcached.js'
import type {KintoConfig} from '../config/index.js'
import {type Finding, error, ok, warning} from './types.js'

export async function checkCache(config: KintoConfig, options: {timeoutMs?: number} = {}): Promise<Finding[]> {
  const settings = {...config.settings}
  if (options.timeoutMs !== undefined) settings.cache_pool_timeout = options.timeoutMs / 1000
  const cache = networkCache(settings)
  if (!cache) return []
  const {backend, where} = cache.address
  try {
    if (cache instanceof MemcachedCache) {
      const down = await cache.unreachable()
      if (down.length === cache.hosts.length) throw new Error(down.map((d) => d.reason).join('; '))
      // Some servers down: their keys go to the others (upstream's failover), nobody gets a 503.
      if (down.length > 0) {
        const one = down.length === 1
        const up = cache.hosts.filter((host) => !down.some((d) => d.where === host))
        return [
          warning(
            'cache-reachable',
            `${one ? 'One memcached server does' : `${down.length} memcached servers do`} not answer: ${down.map((d) => d.reason).join('; ')}. ` +
              `While ${one ? 'it is' : 'they are'} down, ${one ? 'its' : 'their'} keys go to ${up.join(' ')}; what was kept on ${one ? 'it' : 'them'} (account logins, pagination tokens, OpenID states) is not found meanwhile.`,
            `Start memcached on ${down.map((d) => d.where).join(' ')}, or remove ${one ? 'it' : 'them'} from kinto.cache_hosts.`,
          ),
        ]
      }
    } else await cache.ping()
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

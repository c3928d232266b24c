/**
 * memcached servers are host:port; an entry written with credentials (`user:password@host:port`,
 * as hosted memcached services hand them out) is refused without its password being quoted back,
 * by `kinto init --cache-hosts` and by the cache client given such an entry.
 */
import {describe, expect, it} from 'vitest'

import {MemcachedCache} from '../../src/lib/cache/memcached.js'
import {renderKintoIni} from '../../src/lib/config/init.js'

const PASSWORD = 'Mc-7hQ2-pX9w'

function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return (error as Error).message
  }
  throw new Error('expected an error')
}

describe('a memcached entry with credentials', () => {
  it('kinto init --cache-hosts refuses it with the password masked', () => {
    const message = messageOf(() => renderKintoIni({backend: 'memory', cacheBackend: 'memcached', cacheHosts: `10.0.0.5:11211 kinto:${PASSWORD}@10.0.0.6:11211`, host: '127.0.0.1'}))
    expect(message).toBe('--cache-hosts "kinto:***@10.0.0.6:11211" is not a list of memcached servers.')
  })

  it('the cache client refuses it with the password masked', () => {
    const message = messageOf(() => new MemcachedCache({hosts: [`kinto:${PASSWORD}@10.0.0.6:11211`]}))
    expect(message).toContain('"kinto:***@10.0.0.6:11211" is not a memcached server')
    expect(message).not.toContain(PASSWORD)
  })
})

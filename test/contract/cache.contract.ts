/**
 * The cache contract: every Cache implementation must pass it.
 * `make(prefix)` gives a cache on the shared store with that `cache_prefix` (as a second server
 * configured with another prefix would). `limits` says what the backend holds: a value of
 * `largeBytes` must round-trip, one of `tooLargeBytes` (when the backend has a limit a test can
 * reach) must fail with a clear error.
 */
import {beforeEach, describe, expect, it} from 'vitest'

import type {Cache} from '../../src/lib/cache/types.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs `first` then `second` on a fresh key and gives the key and what `second` returned, when
 * both took less than `ms` (a short TTL under test). When the machine stalled longer, the answer
 * proves nothing either way: it is done again on another key, and after five stalls the test fails.
 */
async function within<T>(ms: number, first: (key: string) => Promise<unknown>, second: (key: string) => Promise<T>): Promise<{key: string; value: T}> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const key = `short-${attempt}`
    const start = performance.now()
    await first(key)
    const value = await second(key)
    if (performance.now() - start < ms) return {key, value}
  }
  throw new Error(`Five tries could not make two calls within ${ms} ms: the machine is too loaded to test a ${ms} ms TTL.`)
}

export interface CacheLimits {
  largeBytes: number
  tooLargeBytes?: number
}

export function cacheContract(make: (prefix: string) => Cache, limits: CacheLimits = {largeBytes: 256 * 1024}): void {
  let cache: Cache
  beforeEach(async () => {
    cache = make('')
    await cache.flush()
  })

  describe('values', () => {
    it('stores JSON values and returns copies', async () => {
      const value = {a: [1, 'two', {three: null}], s: 'é "q"'}
      await cache.set('k', value, 60)
      const got = await cache.get<typeof value>('k')
      expect(got).toEqual(value)
      got!.a.push(4)
      expect(await cache.get('k')).toEqual(value)
      await cache.set('n', 42, 60)
      await cache.set('s', 'text', 60)
      await cache.set('z', null, 60)
      expect(await cache.get('n')).toBe(42)
      expect(await cache.get('s')).toBe('text')
      expect(await cache.get('z')).toBeNull()
    })

    it('a missing key is undefined', async () => {
      expect(await cache.get('missing')).toBeUndefined()
    })

    it('set overwrites value and ttl', async () => {
      await cache.set('k', 1, 60)
      await cache.set('k', 2, 600)
      expect(await cache.get('k')).toBe(2)
      expect(await cache.ttl('k')).toBeGreaterThan(590)
    })

    it('delete returns the previous value', async () => {
      await cache.set('k', {v: 1}, 60)
      expect(await cache.delete('k')).toEqual({v: 1})
      expect(await cache.get('k')).toBeUndefined()
      expect(await cache.delete('k')).toBeUndefined()
    })

    it('a key deleted by several callers at once is taken by one (login states and DELETE page tokens are single use)', async () => {
      for (let round = 0; round < 5; round++) {
        await cache.set('state', `callback-${round}`, 60)
        const taken = await Promise.all([cache.delete('state'), cache.delete('state'), cache.delete('state')])
        expect(taken.filter((v) => v !== undefined)).toEqual([`callback-${round}`])
      }
    })

    it('flush removes every key', async () => {
      await cache.set('a', 1, 60)
      await cache.set('b', 2, 60)
      await cache.flush()
      expect(await cache.get('a')).toBeUndefined()
      expect(await cache.get('b')).toBeUndefined()
    })

    it('keys are namespaced by the prefix', async () => {
      const other = make('other-')
      await cache.set('k', 'plain', 60)
      await other.set('k', 'prefixed', 60)
      expect(await cache.get('k')).toBe('plain')
      expect(await other.get('k')).toBe('prefixed')
      expect(await cache.get('other-k')).toBe('prefixed')
    })

    it('flush empties only its own prefix (two servers sharing one cache)', async () => {
      const a = make('a-')
      const b = make('b-')
      await a.set('k', 'from a', 60)
      await b.set('k', 'from b', 60)
      await b.set('other', 2, 60)
      await a.flush()
      expect(await a.get('k')).toBeUndefined()
      expect(await b.get('k')).toBe('from b')
      expect(await b.get('other')).toBe(2)
      expect(await a.delete('k')).toBeUndefined()
      expect(await b.delete('k')).toBe('from b')
    })

    it('values round-trip exactly: every code point, escapes, numbers, nesting', async () => {
      const text = 'nul\u0000 tab\t nl\n quote" backslash\\ é ß 漢字 emoji 😀 lone \ud800 bom \ufeff end'
      const value = {text, big: 9007199254740991, neg: -0.5, exp: 1e-7, nested: [[[{k: [true, false, null]}]]], '': 'empty key', 'sp ace': 1}
      await cache.set('exact', value, 60)
      const got = await cache.get('exact')
      expect(got).toEqual(value)
      expect(JSON.stringify(got)).toBe(JSON.stringify(value))
      await cache.set('str', text, 60)
      expect(await cache.get('str')).toBe(text)
    })

    // 150 two-byte characters: within PostgreSQL's VARCHAR(256), over memcached's 250-byte keys.
    it('keys may be long or hold any character', async () => {
      const keys = ['with space', 'tab\tand\nnewline', 'ünïcödé 😀', 'ü'.repeat(150), 'pagination-token-' + 'f'.repeat(36)]
      for (const [i, key] of keys.entries()) await cache.set(key, i, 60)
      for (const [i, key] of keys.entries()) expect(await cache.get(key)).toBe(i)
      expect(await cache.delete(keys[3]!)).toBe(3)
      expect(await cache.get(keys[3]!)).toBeUndefined()
    })

    it(`a large value (${limits.largeBytes} bytes) round-trips`, async () => {
      const big = 'x'.repeat(limits.largeBytes - 64) + '😀'.repeat(8)
      await cache.set('big', {big}, 60)
      expect(await cache.get('big')).toEqual({big})
    })

    if (limits.tooLargeBytes !== undefined) {
      const size = limits.tooLargeBytes
      it(`a value over the backend's limit (${size} bytes) fails with a clear error and stores nothing`, async () => {
        const error = await cache.set('huge', 'y'.repeat(size), 60).then(
          () => null,
          (e: Error) => e,
        )
        expect(error).toBeInstanceOf(Error)
        expect(error!.message).toMatch(/^The cache value for "huge" is [\d.]+ MB, more than .+ accepts \(.+\)\.$/)
        // Nothing was stored, and the connection still works.
        expect(await cache.get('huge')).toBeUndefined()
        await cache.set('after', 'ok', 60)
        expect(await cache.get('after')).toBe('ok')
      })
    }

    it('rejects values that are not JSON', async () => {
      await expect(cache.set('k', undefined, 60)).rejects.toThrow(TypeError)
    })
  })

  describe('expiry', () => {
    it('ttl gives the remaining seconds, -1 without ttl or key', async () => {
      await cache.set('k', 1, 3600)
      const ttl = await cache.ttl('k')
      expect(ttl).toBeGreaterThan(3590)
      expect(ttl).toBeLessThanOrEqual(3600)
      await cache.set('forever', 1)
      expect(await cache.ttl('forever')).toBe(-1)
      expect(await cache.ttl('missing')).toBe(-1)
    })

    it('expired keys are gone', async () => {
      await cache.set('long', 'y', 60)
      const short = await within(50, (k) => cache.set(k, 'x', 0.05), (k) => cache.get(k))
      expect(short.value).toBe('x')
      await sleep(120)
      expect(await cache.get(short.key)).toBeUndefined()
      expect(await cache.ttl(short.key)).toBe(-1)
      expect(await cache.get('long')).toBe('y')
    })

    it('expire changes the ttl of a key', async () => {
      await cache.set('k', 'v', 60)
      await cache.expire('k', 0.05)
      await sleep(120)
      expect(await cache.get('k')).toBeUndefined()
      // Lengthened before its 50 ms are up.
      const {key} = await within(50, (k) => cache.set(k, 'v', 0.05), (k) => cache.expire(k, 60))
      await sleep(120)
      expect(await cache.get(key)).toBe('v')
    })

    it('a key set without ttl never expires', async () => {
      await cache.set('k', 'v')
      expect(await cache.get('k')).toBe('v')
    })
  })

  it('heartbeat works and leaves nothing behind', async () => {
    expect(await cache.heartbeat()).toBe(true)
    expect(await cache.get('__heartbeat__')).toBeUndefined()
  })

  it('concurrent heartbeats all succeed (several workers, several load balancers)', async () => {
    // One shared key made them race: one ping's delete came between another's write and read,
    // and that ping answered false (a 503 from /__heartbeat__ with the cache up).
    const pings = await Promise.all(Array.from({length: 20}, () => cache.heartbeat()))
    expect(pings).toEqual(pings.map(() => true))
  })
}

/**
 * The cache contract against a real memcached started by the test on a free loopback port
 * (SKIPPED when the binary is missing), plus memcached's own limits: item size, key length,
 * second-granular expiry, flush by prefix.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {CacheValueTooLarge} from '../../src/lib/cache/codec.js'
import {networkCache} from '../../src/lib/cache/index.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {MemcachedCache} from '../../src/lib/cache/memcached.js'
import {BackendError} from '../../src/lib/storage/types.js'
import {memcachedMissing, startMemcached, stopAll} from '../helpers/cache-servers.js'
import {freePort} from '../helpers/deploy-servers.js'
import {cacheContract} from './cache.contract.js'

describe.skipIf(memcachedMissing !== '')(`memcached cache ${memcachedMissing}`, () => {
  let hosts = ''
  let port = 0
  const opened: MemcachedCache[] = []
  const make = (prefix: string, options: {hosts?: string} = {}) => {
    const cache = new MemcachedCache({hosts: (options.hosts ?? hosts).split(' '), prefix})
    opened.push(cache)
    return cache
  }
  beforeAll(async () => {
    ;({hosts, port} = await startMemcached())
  })
  afterAll(async () => {
    await Promise.all(opened.map((c) => c.close()))
    await stopAll()
  })

  // memcached's default item size is 1 MB: 900 KB fits, 2 MB does not.
  describe('contract', () => cacheContract((prefix) => make(prefix), {largeBytes: 900 * 1024, tooLargeBytes: 2 * 1024 * 1024}))

  it('a value over the item size is CacheValueTooLarge naming the limit', async () => {
    const error = await make('').set('huge', 'z'.repeat(1100 * 1024), 60).then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(CacheValueTooLarge)
    expect((error as Error).message).toBe(`The cache value for "huge" is 1.1 MB, more than memcached at ${hosts} accepts (its item size limit, 1 MB unless memcached -I says otherwise).`)
  })

  it('stores upstream’s envelope, readable by upstream: {"value", "ttl": expiry in epoch seconds}', async () => {
    const cache = make('env-')
    const before = Date.now() / 1000
    await cache.set('k', {a: 1}, 100)
    const memjs = await import('memjs')
    const direct = memjs.Client.create(hosts, {logger: {log() {}}})
    try {
      const {value} = await direct.get('env-k')
      const envelope = JSON.parse(value!.toString()) as {value: unknown; ttl: number}
      expect(envelope.value).toEqual({a: 1})
      expect(envelope.ttl).toBeGreaterThanOrEqual(before + 100)
      expect(envelope.ttl).toBeLessThan(Date.now() / 1000 + 100.01)
      // and a value upstream wrote (whole-second expiry) is read back
      await direct.set('env-up', JSON.stringify({value: 'from upstream', ttl: Math.ceil(Date.now() / 1000 + 50)}), {expires: 50})
      expect(await cache.get('up')).toBe('from upstream')
      expect(await cache.ttl('up')).toBeGreaterThan(48)
    } finally {
      direct.close()
    }
  })

  it('keys memcached refuses (over 250 bytes, spaces) are stored under a digest, still under the prefix', async () => {
    const a = make('dig-')
    const b = make('other-')
    const long = 'k'.repeat(400)
    await a.set(long, 'long', 60)
    await a.set('has space', 'spaced', 60)
    await b.set(long, 'other', 60)
    expect(await a.get(long)).toBe('long')
    expect(await a.get('has space')).toBe('spaced')
    await a.flush()
    expect(await a.get(long)).toBeUndefined()
    expect(await b.get(long)).toBe('other')
  })

  it('ttls over 30 days are kept (memcached reads them as dates)', async () => {
    const cache = make('')
    await cache.set('long-ttl', 'v', 60 * 60 * 24 * 45)
    expect(await cache.get('long-ttl')).toBe('v')
    expect(await cache.ttl('long-ttl')).toBeGreaterThan(60 * 60 * 24 * 44)
  })

  it('keys spread over two servers; each flush by prefix reaches both', async () => {
    const second = await startMemcached()
    const both = `${hosts} ${second.hosts}`
    const a = make('two-', {hosts: both})
    const keep = make('keep-', {hosts: both})
    for (let i = 0; i < 20; i++) await a.set(`k${i}`, i, 60)
    await keep.set('x', 'kept', 60)
    const onSecond = make('two-', {hosts: second.hosts})
    let found = 0
    for (let i = 0; i < 20; i++) if ((await onSecond.get(`k${i}`)) === i) found++
    expect(found).toBeGreaterThan(0)
    expect(found).toBeLessThan(20)
    await a.flush()
    for (let i = 0; i < 20; i++) expect(await a.get(`k${i}`)).toBeUndefined()
    expect(await keep.get('x')).toBe('kept')
  })

  it('with several servers, each key is on the server upstream (python-memcached) picks for it', async () => {
    const second = await startMemcached()
    const third = await startMemcached()
    // python-memcached's server index for the keys pm-0 … pm-19 over two and over three servers
    // (computed with Python's binascii.crc32, as cmemcache_hash does).
    const upstream: Record<number, number[]> = {
      2: [1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1],
      3: [0, 2, 1, 1, 2, 1, 2, 2, 1, 1, 1, 2, 1, 2, 0, 0, 0, 2, 2, 1],
    }
    for (const servers of [[hosts, second.hosts], [hosts, second.hosts, third.hosts]]) {
      const all = make('pm-', {hosts: servers.join(' ')})
      for (let i = 0; i < 20; i++) await all.set(`${i}`, i, 60)
      const singles = servers.map((h) => make('pm-', {hosts: h}))
      const holders: number[] = []
      for (let i = 0; i < 20; i++) {
        const found = []
        for (const [index, single] of singles.entries()) if ((await single.get(`${i}`)) === i) found.push(index)
        expect(found).toHaveLength(1)
        holders.push(found[0]!)
      }
      expect(holders).toEqual(upstream[servers.length])
      await all.flush()
    }
  })

  it('one of two servers down: its keys go to the other meanwhile, as upstream (not a failure for half the keys)', async () => {
    const first = await startMemcached()
    const second = await startMemcached()
    const both = make('dn-', {hosts: `${first.hosts} ${second.hosts}`})
    for (let i = 0; i < 20; i++) await both.set(`${i}`, i, 60)
    await second.stop()
    for (let i = 0; i < 20; i++) {
      await both.set(`${i}`, `again-${i}`, 60)
      expect(await both.get(`${i}`)).toBe(`again-${i}`)
    }
    // All on the live server now.
    const live = make('dn-', {hosts: first.hosts})
    for (let i = 0; i < 20; i++) expect(await live.get(`${i}`)).toBe(`again-${i}`)
    await first.stop()
    await expect(both.get('0')).rejects.toBeInstanceOf(BackendError)
  })

  it('a memcached that is not there fails within the timeout as a BackendError', async () => {
    const free = await freePort()
    const down = new MemcachedCache({hosts: [`127.0.0.1:${free}`], timeoutMs: 1000})
    opened.push(down)
    const started = Date.now()
    await expect(down.get('k')).rejects.toBeInstanceOf(BackendError)
    await expect(down.ping()).rejects.toThrow(`Cache backend failure (memcached 127.0.0.1:${free}, ping)`)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(port).toBeGreaterThan(0)
  })

  it("cache_hosts in upstream's (python-memcached's) forms: a host alone is port 11211, inet:host:port, inet6:[addr]:port; a unix: socket is refused clearly", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-memcached-hosts-'))
    const load = (hostsLine: string) => {
      const ini = path.join(dir, 'kinto.ini')
      writeFileSync(ini, `[app:main]\nkinto.cache_backend = kinto.core.cache.memcached\nkinto.cache_hosts = ${hostsLine}\n`)
      return loadConfig(ini, {env: {}}).settings
    }
    try {
      const listed = networkCache(load(`inet:127.0.0.1:${port} memcached.internal inet6:[::1]:11311 inet6:[::1]`)) as MemcachedCache
      opened.push(listed)
      expect(listed.hosts).toEqual([`127.0.0.1:${port}`, 'memcached.internal:11211', '[::1]:11311', '[::1]:11211'])
      const cache = networkCache(load(`inet:127.0.0.1:${port}`)) as MemcachedCache
      opened.push(cache)
      await cache.set('inet-form', {ok: true}, 60)
      expect(await make('').get('inet-form')).toEqual({ok: true})
      expect(() => load('unix:/var/run/memcached.sock')).toThrow(/"unix:\/var\/run\/memcached.sock" is a Unix socket, and kinto-ops reaches memcached over TCP only/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

/**
 * The cache contract against a real Redis (the machine's on 127.0.0.1:6379, else a private
 * redis-server), under a prefix of this run's own: the test never empties anything else.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {networkCache} from '../../src/lib/cache/index.js'
import {RedisCache} from '../../src/lib/cache/redis.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {BackendError} from '../../src/lib/storage/types.js'
import {redisBinary, redisMissing, startRedis, stopAll, testRedisUrl, uniquePrefix} from '../helpers/cache-servers.js'
import {freePort} from '../helpers/deploy-servers.js'
import {cacheContract} from './cache.contract.js'

it('an ini naming the Redis cache without kinto.cache_url loads, and uses upstream\'s default Redis (localhost:6379/0)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-redis-default-'))
  try {
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.cache_backend = kinto.core.cache.redis\n')
    const cache = networkCache(loadConfig(ini, {env: {}}).settings)
    try {
      expect(cache?.address).toEqual({backend: 'Redis', where: 'localhost:6379/0'})
    } finally {
      await cache?.close()
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

const skip = await redisMissing()
/** The tests that start and stop a redis-server of their own need the binary, not just a Redis to reach. */
const ownRedisSkip = redisBinary ? '' : ' (SKIPPED: redis-server is not installed; CI installs it)'
const url = (await testRedisUrl()) ?? ''

describe.skipIf(skip !== '')(`redis cache ${skip}`, () => {
  const base = uniquePrefix('redis')
  const opened: RedisCache[] = []
  const make = (prefix: string) => {
    const cache = new RedisCache({url, prefix: base + prefix})
    opened.push(cache)
    return cache
  }
  afterAll(async () => {
    await make('').flush()
    await Promise.all(opened.map((c) => c.close()))
    await stopAll()
  })

  describe('contract', () => cacheContract(make, {largeBytes: 4 * 1024 * 1024}))

  it('stores upstream’s layout: <prefix><key> holding the JSON text, the ttl as a Redis expiry', async () => {
    const cache = make('layout-')
    await cache.set('k', {a: 'é'}, 100)
    const raw = make('')
    const {Redis} = await import('ioredis')
    const direct = new Redis(url, {lazyConnect: true})
    try {
      expect(await direct.get(`${base}layout-k`)).toBe('{"a":"é"}')
      const pttl = await direct.pttl(`${base}layout-k`)
      expect(pttl).toBeGreaterThan(99_000)
      expect(pttl).toBeLessThanOrEqual(100_000)
    } finally {
      direct.disconnect()
    }
    expect(await raw.get('layout-k')).toEqual({a: 'é'})
  })

  it('a pool of connections shares one store', async () => {
    const pooled = new RedisCache({url, prefix: base, poolSize: 3})
    opened.push(pooled)
    await Promise.all(Array.from({length: 12}, (_, i) => pooled.set(`pool-${i}`, i, 60)))
    expect(await Promise.all(Array.from({length: 12}, (_, i) => pooled.get(`pool-${i}`)))).toEqual(Array.from({length: 12}, (_, i) => i))
  })

  it.skipIf(!redisBinary)(`cache_pool_size is the most connections, opened as calls overlap (as upstream's pool), not all at once${ownRedisSkip}`, async () => {
    const server = await startRedis([], 19305)
    const {Redis} = await import('ioredis')
    const probe = new Redis({port: server.port, host: '127.0.0.1', lazyConnect: true})
    const connections = async () => Number(/connected_clients:(\d+)/.exec(await probe.info('clients'))![1]) - 1
    const cache = new RedisCache({url: server.url, prefix: base, poolSize: 50})
    opened.push(cache)
    try {
      for (let i = 0; i < 60; i++) await cache.set(`seq-${i}`, i, 60)
      expect(await connections()).toBe(1)
      await Promise.all(Array.from({length: 8}, (_, i) => cache.get(`seq-${i}`)))
      const overlapping = await connections()
      expect(overlapping).toBeGreaterThan(1)
      expect(overlapping).toBeLessThanOrEqual(8)
      const small = new RedisCache({url: server.url, prefix: base, poolSize: 3})
      opened.push(small)
      expect(await Promise.all(Array.from({length: 30}, (_, i) => small.get(`seq-${i}`)))).toEqual(Array.from({length: 30}, (_, i) => i))
      expect((await connections()) - overlapping).toBe(3)
    } finally {
      probe.disconnect()
      await server.stop()
    }
  })

  it('a Redis that is not there fails each call within the timeout as a BackendError, without the password', async () => {
    const port = await freePort()
    const down = new RedisCache({url: `redis://:s3cret-pass@127.0.0.1:${port}/0`, commandTimeoutMs: 1000})
    opened.push(down)
    const started = Date.now()
    const error = await down.get('k').then(
      () => null,
      (e: Error) => e,
    )
    expect(error).toBeInstanceOf(BackendError)
    expect(error!.message).toContain(`Redis 127.0.0.1:${port}/0`)
    expect(error!.message).not.toContain('s3cret')
    expect(Date.now() - started).toBeLessThan(5000)
    await expect(down.heartbeat()).rejects.toBeInstanceOf(BackendError)
  })

  it.skipIf(!redisBinary)(`a stopped Redis fails each call at once (not after a reconnection wait), and is used again soon after it is back${ownRedisSkip}`, async () => {
    const server = await startRedis()
    const cache = new RedisCache({url: server.url, prefix: base, commandTimeoutMs: 5000})
    opened.push(cache)
    await cache.set('k', 'v', 60)
    await server.stop()
    // The first call may wait for the one attempt that finds Redis gone.
    await expect(cache.get('k')).rejects.toBeInstanceOf(BackendError)
    const started = Date.now()
    for (let i = 0; i < 10; i++) {
      const error = await cache.get('k').then(
        () => null,
        (e: Error) => e,
      )
      expect(error).toBeInstanceOf(BackendError)
      expect(error!.message).toContain('cannot connect')
    }
    // Each call used to wait for ioredis's next reconnection attempt (up to 2 s): over 20 s for these ten.
    expect(Date.now() - started).toBeLessThan(1500)
    const back = await startRedis([], server.port)
    try {
      const again = Date.now()
      let value: unknown
      while (Date.now() - again < 5000) {
        value = await cache.get('k').catch(() => 'down')
        if (value !== 'down') break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      // A fresh server: the key is gone, and the call succeeds.
      expect(value).toBeUndefined()
      expect(Date.now() - again).toBeLessThan(2000)
    } finally {
      await back.stop()
    }
  })

  it.skipIf(!redisBinary)(`a Redis older than 6.2 (no GETDEL): delete, the heartbeat and flush work, a key is taken once${ownRedisSkip}`, async () => {
    // Redis before 6.2 answers GETDEL with "unknown command", as this server does.
    const old = await startRedis(['--rename-command', 'getdel', ''], 19302)
    const cache = new RedisCache({url: old.url, prefix: base, commandTimeoutMs: 2000})
    opened.push(cache)
    try {
      expect(await cache.heartbeat()).toBe(true)
      await cache.set('state', 'https://app.example.com/#tokens=', 60)
      const taken = await Promise.all([cache.delete('state'), cache.delete('state'), cache.delete('state')])
      expect(taken.filter((v) => v !== undefined)).toEqual(['https://app.example.com/#tokens='])
      expect(await cache.get('state')).toBeUndefined()
      expect(await cache.delete('missing')).toBeUndefined()
      await cache.set('other', {a: 1}, 60)
      await cache.flush()
      expect(await cache.get('other')).toBeUndefined()
    } finally {
      await old.stop()
    }
  })

  it.skipIf(!redisBinary)(`a user name in cache_url: an ACL user authenticates as itself; any other name with the default password works, as upstream (which sends the password alone)${ownRedisSkip}`, async () => {
    const {port} = await startRedis(['--requirepass', 'default-pw', '--user', 'alice', 'on', '>alice-pw', '~alice:*', '+@all'], 19303)
    const upstreamForm = new RedisCache({url: `redis://h:default-pw@127.0.0.1:${port}/0`, prefix: 'h:', commandTimeoutMs: 2000, poolSize: 2})
    const acl = new RedisCache({url: `redis://alice:alice-pw@127.0.0.1:${port}/0`, prefix: 'alice:', commandTimeoutMs: 2000})
    const aclElsewhere = new RedisCache({url: `redis://alice:alice-pw@127.0.0.1:${port}/0`, prefix: 'bob:', commandTimeoutMs: 2000})
    const wrong = new RedisCache({url: `redis://h:wrong-secret-xyz@127.0.0.1:${port}/0`, commandTimeoutMs: 2000})
    opened.push(upstreamForm, acl, aclElsewhere, wrong)
    await Promise.all([upstreamForm.set('k', 'v', 60), upstreamForm.set('l', 'w', 60)])
    expect(await upstreamForm.get('k')).toBe('v')
    expect(await upstreamForm.get('l')).toBe('w')
    await upstreamForm.ping()
    await acl.set('k', 'mine', 60)
    expect(await acl.get('k')).toBe('mine')
    // alice's keys are alice:*: the ACL user is the one connected, not the default user.
    const refused = await aclElsewhere.set('k', 'v', 60).then(() => 'no error', (e: Error) => e.message)
    expect(refused).toMatch(/NOPERM/)
    const message = await wrong.get('k').then(() => 'no error', (e: Error) => e.message)
    expect(message).toMatch(new RegExp(`^Cache backend failure \\(Redis 127\\.0\\.0\\.1:${port}/0, get\\): .*(WRONGPASS|NOAUTH)`))
    expect(message).not.toContain('wrong-secret-xyz')
  })

  it.skipIf(!redisBinary)(`a password in cache_url authenticates; a wrong one fails clearly, the password never shown${ownRedisSkip}`, async () => {
    const {port} = await startRedis(['--requirepass', 'right-p@ss'])
    const good = new RedisCache({url: `redis://:${encodeURIComponent('right-p@ss')}@127.0.0.1:${port}/2`, commandTimeoutMs: 2000})
    const bad = new RedisCache({url: `redis://:wrong-secret-xyz@127.0.0.1:${port}/2`, commandTimeoutMs: 2000})
    const none = new RedisCache({url: `redis://127.0.0.1:${port}/2`, commandTimeoutMs: 2000})
    // redis-py's from_url (upstream) also reads the password from the query string
    const query = new RedisCache({url: `redis://127.0.0.1:${port}/2?password=${encodeURIComponent('right-p@ss')}`, commandTimeoutMs: 2000})
    opened.push(good, bad, none, query)
    await good.set('k', 'v', 60)
    expect(await good.get('k')).toBe('v')
    expect(await query.get('k')).toBe('v')
    for (const cache of [bad, none]) {
      const message = await cache.get('k').then(
        () => 'no error',
        (e: Error) => e.message,
      )
      expect(message).toMatch(new RegExp(`^Cache backend failure \\(Redis 127\\.0\\.0\\.1:${port}/2, get\\): .*(WRONGPASS|NOAUTH)`))
      expect(message).not.toContain('wrong-secret-xyz')
      expect(message).not.toContain('right-p@ss')
    }
  })
  it.skipIf(!redisBinary)(`a database the server does not have (cache_url …/5 on a Redis of 2 databases) fails each call, ping included, and writes nothing to database 0${ownRedisSkip}`, async () => {
    const server = await startRedis(['--databases', '2'], 21160)
    const cache = new RedisCache({url: `redis://127.0.0.1:${server.port}/5`, prefix: base, commandTimeoutMs: 2000})
    opened.push(cache)
    const {Redis} = await import('ioredis')
    const db0 = new Redis(`redis://127.0.0.1:${server.port}/0`, {lazyConnect: true})
    try {
      for (const call of [() => cache.set('k', 'v', 60), () => cache.ping(), () => cache.get('k'), () => cache.flush()]) {
        const error = await call().then(
          () => null,
          (e: Error) => e,
        )
        expect(error).toBeInstanceOf(BackendError)
        expect(error!.message).toMatch(/database 5.*(out of range|invalid DB index)/i)
      }
      // ioredis would otherwise go on with the connection on database 0, another application's.
      expect(await db0.dbsize()).toBe(0)
    } finally {
      db0.disconnect()
      await server.stop()
    }
  })
})

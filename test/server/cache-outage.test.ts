/**
 * A shared cache (Redis, memcached) going away and coming back, against real servers the test
 * starts and kills: requests that need the cache (an account login, a DELETE page whose token
 * must be stored: rolled back) get 503 errno 201 with
 * Retry-After, never a 500 or a crash; requests that do not need it are served; the heartbeat
 * reports the cache; once the server is back the next requests succeed without a restart.
 */
import bcrypt from 'bcryptjs'
import type {FastifyInstance} from 'fastify'
import {afterAll, describe, expect, it, vi} from 'vitest'

import {type CacheServer, memcachedMissing, redisBinary, startMemcached, startRedis, stopAll, uniquePrefix} from '../helpers/cache-servers.js'
import {waitFor} from '../helpers/deploy-servers.js'
import {basic, client} from './helpers.js'
import {ACCOUNTS, capturingLogger, pluginApp} from './plugins-helpers.js'

vi.mock('../../src/lib/accounts/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/lib/accounts/index.js')>()
  return {...original, hashPassword: (password: string) => bcrypt.hash(password, 4)}
})

afterAll(() => stopAll())

interface Kind {
  name: string
  skip: string
  start(port?: number): Promise<CacheServer>
  settings(server: CacheServer): Record<string, string>
}

const KINDS: Kind[] = [
  {
    name: 'redis',
    skip: redisBinary ? '' : 'SKIPPED: redis-server is not installed (CI installs redis-server)',
    start: (port) => startRedis([], port),
    settings: (s) => ({'kinto.cache_backend': 'kinto.core.cache.redis', 'kinto.cache_url': `redis://127.0.0.1:${s.port}/0`}),
  },
  {
    name: 'memcached',
    skip: memcachedMissing,
    start: (port) => startMemcached([], port),
    settings: (s) => ({'kinto.cache_backend': 'kinto.core.cache.memcached', 'kinto.cache_hosts': `127.0.0.1:${s.port}`}),
  },
]

for (const kind of KINDS) {
  describe.skipIf(kind.skip !== '')(`the ${kind.name} cache going away ${kind.skip}`, () => {
    let app: FastifyInstance
    afterAll(() => app?.close())

    it('503 for what needs the cache, the rest served, the heartbeat says so, recovery on its own', async () => {
      let server = await kind.start()
      const captured = capturingLogger()
      app = pluginApp({...ACCOUNTS, ...kind.settings(server), 'kinto.cache_prefix': uniquePrefix(kind.name), 'kinto.cache_pool_timeout': '1'}, captured)
      const req = client(app, null)
      const alice = basic('alice', 'alice-password')
      expect((await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'alice-password'}}})).status).toBe(201)
      expect((await req('GET', '/v1/', {auth: alice})).body.user?.id).toBe('account:alice')
      // A bucket anyone may write: anonymous requests need no cache, they show what keeps working.
      // (Any Authorization header goes through the accounts policy, which reads the cache first.)
      const records = '/v1/buckets/b/collections/c/records'
      expect((await req('PUT', '/v1/buckets/b', {auth: alice, body: {permissions: {write: ['system.Everyone']}}})).status).toBe(201)
      expect((await req('PUT', '/v1/buckets/b/collections/c')).status).toBe(201)
      for (let i = 0; i < 5; i++) expect((await req('POST', records, {body: {data: {i}}})).status).toBe(201)

      expect((await req('GET', '/v1/__heartbeat__')).body).toEqual({storage: true, permission: true, cache: true})

      await server.stop()

      // Not needing the cache: served as before.
      expect((await req('GET', '/v1/')).status).toBe(200)
      expect((await req('GET', '/v1/__lbheartbeat__')).status).toBe(200)
      expect((await req('GET', '/v1/buckets')).body.data.map((b: {id: string}) => b.id)).toEqual(['b'])
      expect((await req('GET', records)).body.data).toHaveLength(5)
      expect((await req('POST', records, {body: {data: {i: 5}}})).status).toBe(201)
      // Needing it: a DELETE page whose token must be stored (rolled back: nothing deleted)…
      const page = await req('DELETE', `${records}?_limit=2`)
      expect(page.status).toBe(503)
      expect(page.body).toMatchObject({code: 503, errno: 201})
      expect((await req('GET', records)).body.data).toHaveLength(6)
      // …and an account login.
      const down = await req('GET', '/v1/buckets', {auth: alice})
      expect(down.status).toBe(503)
      expect(down.body).toMatchObject({code: 503, errno: 201, error: 'Service Unavailable'})
      expect(Number(down.headers['retry-after'])).toBeGreaterThan(0)
      const heartbeat = await req('GET', '/v1/__heartbeat__')
      expect(heartbeat.status).toBe(503)
      expect(heartbeat.body).toEqual({storage: true, permission: true, cache: false})
      expect(captured.errors.some((e) => e.startsWith(`Cache backend failure (${kind.name === 'redis' ? 'Redis' : 'memcached'} 127.0.0.1:${server.port}`))).toBe(true)

      server = await kind.start(server.port)
      const started = Date.now()
      await waitFor(async () => (await req('GET', '/v1/buckets', {auth: alice})).status === 200, 10_000, () => 'login after the cache came back')
      expect(Date.now() - started).toBeLessThan(5000)
      expect((await req('GET', '/v1/__heartbeat__')).status).toBe(200)
      const again = await req('DELETE', `${records}?_limit=2`)
      expect(again.status).toBe(200)
      expect(again.headers['next-page']).toMatch(/_token=/)
      await server.stop()
    })
  })
}

/**
 * StatsD metrics of the runtime, received by a real UDP listener: upstream 26's names
 * (backend.*.seconds, request_summary sets, users, authentication…) and the production guide's
 * (view.*, storage.*, authn_type.*, authentication.permits), the wire forms, the prefix rules,
 * `kinto.statsd_url` alone or with `kinto.plugins.statsd`, and a StatsD host that does not resolve.
 */
import type {FastifyInstance} from 'fastify'
import {afterEach, describe, expect, test} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {StatsdMetrics} from '../../src/lib/monitoring/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {kintoErrorOf} from '../helpers/errors.js'
import {ALICE, client} from './helpers.js'
import {statsdListener, type StatsdListener} from './statsd-listener.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function listener(): Promise<StatsdListener> {
  const l = await statsdListener()
  cleanups.push(() => l.close())
  return l
}

function app(raw: Record<string, string>): FastifyInstance {
  const settings = buildSettings({'kinto.userid_hmac_secret': 'test', ...raw}, {})
  const backends = createBackends(settings)
  const a = createApp({settings, backends})
  cleanups.push(async () => {
    await a.close()
    await backends.close()
  })
  return a
}

/** A client session touching every kind of endpoint. */
async function drive(a: FastifyInstance): Promise<void> {
  const req = client(a)
  expect((await req('GET', '/v1/')).status).toBe(200)
  expect((await req('GET', '/v1/__heartbeat__')).status).toBe(200)
  expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b1/collections/c1', {body: {}})).status).toBe(201)
  expect((await req('POST', '/v1/buckets/b1/collections/c1/records', {body: {data: {title: 'x'}}})).status).toBe(201)
  expect((await req('GET', '/v1/buckets/b1/collections/c1/records')).status).toBe(200)
  expect((await req('GET', '/v1/buckets/b1/collections/c1/records/r1')).status).toBe(404)
  const batch = await req('POST', '/v1/batch', {body: {requests: [{method: 'PUT', path: '/buckets/b1/groups/g1', body: {data: {members: []}}}, {path: '/buckets/b1'}]}})
  expect(batch.status).toBe(200)
  expect((await req('GET', '/v1/nowhere')).status).toBe(404)
}

/** Names the issue and the production guide list, and upstream 26's. */
const EXPECTED = [
  // production guide (documented)
  'kinto.users',
  'kinto.authn_type.basicauth',
  'kinto.authentication.permits',
  'kinto.view.hello.GET',
  'kinto.view.heartbeat.GET',
  'kinto.view.batch.POST',
  'kinto.view.bucket-object.PUT',
  'kinto.view.collection-object.PUT',
  'kinto.view.record-plural.POST',
  'kinto.view.record-plural.GET',
  'kinto.view.group-object.PUT',
  'kinto.storage.create',
  'kinto.storage.get',
  'kinto.storage.list_all',
  'kinto.storage.resource_timestamp',
  'kinto.permission.get_user_principals',
  'kinto.permission.check_permission',
  'kinto.permission.replace_object_permissions',
  'kinto.cache.ping',
  // upstream 26
  'kinto.backend.storage.seconds.method.create',
  'kinto.backend.storage.seconds.method.list_all',
  'kinto.backend.permission.seconds.method.get_user_principals',
  'kinto.backend.cache.seconds.method.ping',
  'kinto.authentication.basicauth.seconds.method.authenticated_userid',
  'kinto.request_summary',
  'kinto.request_size',
  'kinto.authentication',
  'kinto.request_duration_seconds.method.get.endpoint.hello.bucket_id..collection_id..group_id..record_id.',
  'kinto.request_duration_seconds.method.post.endpoint.record-plural.bucket_id.b1.collection_id.c1.group_id..record_id.',
  'kinto.request_duration_seconds.method.get.endpoint.unknown.bucket_id..collection_id..group_id..record_id.',
]

describe('StatsD metrics', () => {
  test('kinto.statsd_url alone turns them on: every documented and upstream name arrives', async () => {
    const statsd = await listener()
    const a = app({'kinto.statsd_url': statsd.url})
    await drive(a)
    await statsd.waitFor('kinto.request_duration_seconds.method.get.endpoint.unknown.bucket_id..collection_id..group_id..record_id.')
    const names = statsd.names()
    const missing = EXPECTED.filter((n) => !names.has(n))
    expect(missing).toEqual([])
  })

  test('wire forms: timers |ms, counters |c, labelled counts as sets, size as a gauge', async () => {
    const statsd = await listener()
    const a = app({'kinto.statsd_url': statsd.url})
    await drive(a)
    await statsd.waitFor(/^kinto\.request_summary:method\.get\.endpoint\.unknown\./)
    const lines = statsd.lines
    expect(lines.find((l) => l.startsWith('kinto.view.hello.GET:'))).toMatch(/^kinto\.view\.hello\.GET:\d+(\.\d+)?\|ms$/)
    expect(lines).toContain('kinto.authn_type.basicauth:1|c')
    expect(lines).toContain('kinto.authentication:type.basicauth|s')
    expect(lines.find((l) => l.startsWith('kinto.users:'))).toMatch(/^kinto\.users:auth\.basicauth\.userid\.[0-9a-f]{64}\|s$/)
    expect(lines).toContain('kinto.request_summary:method.get.endpoint.hello.bucket_id..collection_id..group_id..record_id..status.200|s')
    expect(lines).toContain('kinto.request_summary:method.put.endpoint.collection-object.bucket_id.b1.collection_id.c1.group_id..record_id..status.201|s')
    // Error responses carry no matchdict values (no unbounded label values from 404s).
    expect(lines).toContain('kinto.request_summary:method.get.endpoint.record-object.bucket_id..collection_id..group_id..record_id..status.404|s')
    // Batch sub-requests count as requests of their own endpoint.
    expect(lines).toContain('kinto.request_summary:method.put.endpoint.group-object.bucket_id.b1.collection_id..group_id.g1.record_id..status.201|s')
    expect(lines.find((l) => l.startsWith('kinto.request_size:'))).toMatch(/^kinto\.request_size:\d+\|g$/)
  })

  test('kinto.plugins.statsd is accepted with the URL; refused without one', async () => {
    const statsd = await listener()
    const a = app({'kinto.statsd_url': statsd.url, 'kinto.includes': 'kinto.plugins.statsd'})
    expect((await client(a)('GET', '/v1/')).status).toBe(200)
    await statsd.waitFor('kinto.view.hello.GET')

    const settings = buildSettings({'kinto.includes': 'kinto.plugins.statsd'}, {})
    const backends = createBackends(settings)
    cleanups.push(() => backends.close())
    const refused = kintoErrorOf(() => createApp({settings, backends}))
    expect(refused.code).toBe('KINTO_CONFIG_INVALID')
    expect(refused.message).toContain('kinto.statsd_url is not set')
  })

  test.each([
    ['http://localhost:8125', /its scheme is http/],
    ['udp://localhost', /no port/],
    ['not a url', /not a URL/],
  ])('statsd_url = %s is a configuration error', (url, problem) => {
    const settings = buildSettings({'kinto.statsd_url': url}, {})
    const backends = createBackends(settings)
    cleanups.push(() => backends.close())
    expect(() => createApp({settings, backends})).toThrow(problem)
  })

  test('a refused statsd_url is quoted with its password masked', () => {
    const settings = buildSettings({'kinto.statsd_url': 'udp://kinto:Pw-9fQ2-zK7@localhost:8125'}, {})
    const backends = createBackends(settings)
    cleanups.push(() => backends.close())
    const refused = kintoErrorOf(() => createApp({settings, backends}))
    expect(refused.message).toContain('"udp://kinto:***@localhost:8125" is not a StatsD URL')
    expect(refused.message).not.toContain('Pw-9fQ2-zK7')
  })

  test("prefix: the project name; statsd_prefix when the project name is empty", async () => {
    const statsd = await listener()
    await client(app({'kinto.statsd_url': statsd.url, 'kinto.project_name': 'myproject'}))('GET', '/v1/')
    await statsd.waitFor('myproject.view.hello.GET')
    await client(app({'kinto.statsd_url': statsd.url, 'kinto.project_name': '', 'kinto.statsd_prefix': 'kinto-prod'}))('GET', '/v1/')
    await statsd.waitFor('kinto-prod.view.hello.GET')
  })

  test("a batch: each sub-request sends its size and its user, the batch its size only (as upstream's)", async () => {
    const statsd = await listener()
    const a = app({'kinto.statsd_url': statsd.url})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    await statsd.waitFor(/^kinto\.request_summary:method\.put\./)
    statsd.lines.length = 0
    const batch = await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b1'}, {path: '/buckets/b1/collections'}]}})
    expect(batch.status).toBe(200)
    await statsd.waitFor(/^kinto\.request_summary:method\.post\.endpoint\.batch\./)
    const sizes = statsd.lines.filter((l) => l.startsWith('kinto.request_size:'))
    const subSizes = batch.body.responses.map((r: {headers: Record<string, string>}) => `kinto.request_size:${r.headers['Content-Length']}|g`)
    expect(sizes).toEqual([...subSizes, `kinto.request_size:${Buffer.byteLength(batch.raw)}|g`])
    expect(statsd.lines.filter((l) => l.startsWith('kinto.users:'))).toHaveLength(2)
    expect(statsd.lines.filter((l) => l === 'kinto.authentication:type.basicauth|s')).toHaveLength(2)
    expect(statsd.lines.filter((l) => l === 'kinto.authn_type.basicauth:1|c')).toHaveLength(2)
  })

  test('the cache counts hits and misses', async () => {
    const statsd = await listener()
    const a = app({'kinto.statsd_url': statsd.url})
    const runtime = a.kinto
    await runtime.backends.cache.set('k', 'v', 60)
    await runtime.backends.cache.get('k')
    await runtime.backends.cache.get('absent')
    await statsd.waitFor('kinto.cache_misses')
    expect(statsd.lines).toContain('kinto.cache_hits:1|c')
    expect(statsd.lines).toContain('kinto.cache_misses:1|c')
    expect(statsd.names()).toContain('kinto.backend.cache.seconds.method.set')
  })

  test('without statsd_url nothing is wrapped', () => {
    const settings = buildSettings({}, {})
    const backends = createBackends(settings)
    const a = createApp({settings, backends})
    cleanups.push(async () => {
      await a.close()
      await backends.close()
    })
    expect(a.kinto.backends.storage).toBe(backends.storage)
    expect(a.kinto.backends.permission).toBe(backends.permission)
  })

  // Startup does not wait for the name: the test's 3 s bound covers building the app and a request.
  test('a StatsD host that does not resolve: requests are served, startup does not wait', async () => {
    const a = app({'kinto.statsd_url': 'udp://statsd.invalid:8125'})
    const res = await client(a, ALICE)('GET', '/v1/')
    expect(res.status).toBe(200)
  }, 3000)
})

describe('StatsdMetrics', () => {
  test('a name with IPv6 and IPv4 addresses (localhost, dual-stack): sent to IPv4, as upstream', async () => {
    const statsd = await listener()
    const asked: Array<number | undefined> = []
    const metrics = new StatsdMetrics(
      {host: 'statsd.dual-stack.example', port: statsd.port, prefix: 'kinto'},
      {
        maxBufferSize: 0,
        // A resolver answering IPv6 first unless asked for IPv4, as getaddrinfo often does.
        lookup: (_host, options, cb) => {
          asked.push(options.family)
          setImmediate(() => cb(null, options.family === 4 ? '127.0.0.1' : '::1'))
        },
      },
    )
    cleanups.push(() => metrics.close())
    const deadline = Date.now() + 5000
    while (!metrics.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    metrics.count('sent')
    await statsd.waitFor('kinto.sent')
    expect(asked).toEqual([4])
  })

  test('warns once while the host does not resolve, sends once it does', async () => {
    const statsd = await listener()
    const warnings: string[] = []
    const infos: string[] = []
    const logger = {info: (_o: unknown, m?: string) => void infos.push(m ?? ''), warn: (_o: unknown, m?: string) => void warnings.push(m ?? ''), error() {}}
    let attempts = 0
    const metrics = new StatsdMetrics(
      {host: 'statsd.example', port: statsd.port, prefix: 'kinto'},
      {
        logger,
        retryMs: 20,
        maxBufferSize: 0,
        resolve: (_host, cb) => {
          attempts++
          setImmediate(() => (attempts < 4 ? cb(Object.assign(new Error('getaddrinfo ENOTFOUND'), {code: 'ENOTFOUND'})) : cb(null, '127.0.0.1')))
        },
      },
    )
    cleanups.push(() => metrics.close())
    metrics.count('dropped') // not resolved yet: dropped, no throw
    const deadline = Date.now() + 5000
    while (!metrics.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(metrics.connected).toBe(true)
    expect(attempts).toBe(4)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/StatsD host statsd\.example does not resolve \(ENOTFOUND\)/)
    expect(infos[0]).toMatch(/resolves now/)
    metrics.count('sent', 2)
    await statsd.waitFor('kinto.sent')
    expect(statsd.lines).toEqual(['kinto.sent:2|c'])
  })
})

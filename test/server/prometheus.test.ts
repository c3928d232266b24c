/**
 * kinto.plugins.prometheus in process: upstream's settings (prefix, disabled metrics, created
 * series), StatsD and Prometheus fed together from the same hooks, and the runtime's hook points
 * themselves (response, sub-request, view, backend call) as a subscriber sees them.
 */
import pino from 'pino'
import {afterEach, describe, expect, test} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {prometheusFor} from '../../src/lib/monitoring/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {memoryApp, client} from './helpers.js'
import {statsdListener} from './statsd-listener.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function app(raw: Record<string, string>) {
  const a = memoryApp(raw)
  cleanups.push(() => a.close())
  return a
}

describe('kinto.plugins.prometheus', () => {
  test('default prefix is the project name; created series; anonymous GET, text format', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('GET', '/v1/')).status).toBe(200)
    const res = await req('GET', '/v1/__metrics__', {auth: null})
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(res.raw).toMatch(/^kinto_request_summary_total\{method="get",endpoint="hello",[^}]*status="200"\} 1$/m)
    expect(res.raw).toMatch(/^kinto_request_summary_created\{method="get",endpoint="hello",[^}]*\} \d+(\.\d+)?(e\+\d+)?$/m)
    expect(res.raw).toMatch(/^kinto_authentication_basicauth_seconds_count\{method="authenticated_userid"\} 1$/m)
    expect(res.raw).toMatch(/^kinto_backend_permission_seconds_count\{method="get_user_principals"\} 1$/m)
  })

  test('request_size is labelled as upstream 26 observes it: method, endpoint, matchdict fields', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('GET', '/v1/')).status).toBe(200)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^kinto_request_size_count\{method="get",endpoint="hello",bucket_id="",collection_id="",group_id="",record_id=""\} 1$/m)
    expect(text).toMatch(/^kinto_request_size_sum\{method="put",endpoint="bucket-object",bucket_id="b1",collection_id="",group_id="",record_id=""\} [1-9]\d*$/m)
  })

  test("a creation's writer ACE is timed under upstream's name, add_principal_to_ace (ours reads the ACL back in the same call)", async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^kinto_backend_permission_seconds_count\{method="add_principal_to_ace"\} 1$/m)
    expect(text).toMatch(/^kinto_permission_add_principal_to_ace_count 1$/m)
    expect(text).not.toMatch(/and_read/)
  })

  test("a batch's sub-requests observe request_size too: their body as a response of its own, as upstream", async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    const batch = await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b1'}]}})
    expect(batch.status).toBe(200)
    const sub = batch.body.responses[0]
    const text = (await req('GET', '/v1/__metrics__')).raw
    const series = 'method="get",endpoint="bucket-object",bucket_id="b1",collection_id="",group_id="",record_id=""'
    expect(text).toContain(`kinto_request_size_count{${series}} 1\n`)
    expect(text).toContain(`kinto_request_size_sum{${series}} ${sub.headers['Content-Length']}\n`)
  })

  test('a batch counts its sub-requests as users and authentications, not itself (it needs no identity), as upstream', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    expect((await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b1'}, {path: '/buckets/b1/collections'}]}})).status).toBe(200)
    expect((await req('POST', '/v1/batch', {body: {requests: []}})).status).toBe(200)
    const text = (await req('GET', '/v1/__metrics__')).raw
    // The PUT, then the two sub-requests: the batches themselves add nothing.
    expect(text).toMatch(/^kinto_users_total\{auth="basicauth",userid="[0-9a-f]{64}"\} 3$/m)
    expect(text).toMatch(/^kinto_authentication_total\{type="basicauth"\} 3$/m)
    expect(text).toMatch(/^kinto_authn_type_basicauth_total 3$/m)
  })

  test("paths outside /v1 are labelled with upstream's route, redirect_to_version; other redirects unnamed, 404s unknown", async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a, null)
    expect((await req('GET', '/')).status).toBe(307)
    expect((await req('GET', '/buckets/b1?_since=1')).status).toBe(307)
    expect((await req('OPTIONS', '/buckets')).status).toBe(200)
    expect((await req('GET', '/v1/buckets/')).status).toBe(307)
    expect((await req('GET', '/v2/buckets')).status).toBe(404)
    const text = (await req('GET', '/v1/__metrics__')).raw
    const summary = (method: string, endpoint: string, status: number) =>
      new RegExp(`^kinto_request_summary_total\\{method="${method}",endpoint="${endpoint}",bucket_id="",collection_id="",group_id="",record_id="",status="${status}"\\} (\\d+)$`, 'm')
    expect(text.match(summary('get', 'redirect_to_version', 307))?.[1]).toBe('2')
    expect(text.match(summary('options', 'redirect_to_version', 200))?.[1]).toBe('1')
    expect(text.match(summary('get', 'unnamed', 307))?.[1]).toBe('1')
    expect(text.match(summary('get', 'unknown', 404))?.[1]).toBe('1')
  })

  test('without the version redirect, a path outside /v1 is a 404: unknown', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus', 'kinto.version_prefix_redirect_enabled': 'false'})
    const req = client(a, null)
    expect((await req('GET', '/buckets')).status).toBe(404)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^kinto_request_summary_total\{method="get",endpoint="unknown",[^}]*status="404"\} 1$/m)
    expect(text).not.toMatch(/redirect_to_version/)
  })

  test('anonymous CORS preflights for made-up ids make no new series', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a, null)
    const preflight = {origin: 'https://app.example', 'access-control-request-method': 'GET'}
    for (let i = 0; i < 3; i++) expect((await req('OPTIONS', `/v1/buckets/made-up-${i}/collections/c${i}/records/r${i}`, {headers: preflight})).status).toBe(200)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).not.toMatch(/made-up-/)
    expect(text).toMatch(/^kinto_request_summary_total\{method="options",endpoint="record-object",bucket_id="",collection_id="",group_id="",record_id="",status="200"\} 3$/m)
  })

  test('bucket bounds are written as upstream (Python) writes them: le="1.0", not le="1"', async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('GET', '/v1/')).status).toBe(200)
    const text = (await req('GET', '/v1/__metrics__')).raw
    const bounds = [...text.matchAll(/^kinto_request_duration_seconds_bucket\{le="([^"]*)",method="get",endpoint="hello",/gm)].map((m) => m[1])
    expect(bounds).toEqual(['0.01', '0.05', '0.1', '0.5', '1.0', '3.0', '6.0', '+Inf'])
  })

  test("no line repeats, blank lines included (upstream's functional test: families back to back, as Python's client writes them)", async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus'})
    const req = client(a)
    expect((await req('GET', '/v1/')).status).toBe(200)
    expect((await req('POST', '/v1/buckets', {body: {data: {id: 'b'}}})).status).toBe(201)
    const lines = (await req('GET', '/v1/__metrics__')).raw.split('\n')
    // One final newline, no blank line inside.
    expect(lines.at(-1)).toBe('')
    expect(lines.slice(0, -1).filter((l) => l === '')).toEqual([])
    expect(new Set(lines).size).toBe(lines.length)
    expect(lines.filter((l) => l.startsWith('# TYPE ')).length).toBeGreaterThan(5)
  })

  test('prometheus_histogram_buckets out of order, repeated or not numbers stop the start, as upstream', async () => {
    for (const [buckets, word] of [
      ['0.5 0.1 1.0 Inf', '0.1'],
      ['0.1 0.1 1.0', '0.1'],
      ['0.1 Inf 1.0', '1.0'],
      ['0.1 fast', 'fast'],
    ]) {
      expect(() => memoryApp({'kinto.includes': 'kinto.plugins.prometheus', 'kinto.prometheus_histogram_buckets': buckets}), buckets).toThrow(
        new RegExp(`^kinto\\.prometheus_histogram_buckets has "${word.replace('.', '\\.')}", which is not`),
      )
    }
    const a = app({'kinto.includes': 'kinto.plugins.prometheus', 'kinto.prometheus_histogram_buckets': '0.005 0.1 1 Inf'})
    expect((await client(a)('GET', '/v1/')).status).toBe(200)
  })

  test("the process series of Python's client, as upstream's scrape has them", async () => {
    const a = app({'kinto.includes': 'kinto.plugins.prometheus', 'kinto.prometheus_prefix': 'remote-settings'})
    const text = (await client(a)('GET', '/v1/__metrics__')).raw
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1])
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m)
    expect(value('process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(1e6)
    expect(Math.abs(value('process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(5)
    if (process.platform === 'linux') {
      expect(value('process_virtual_memory_bytes')).toBeGreaterThanOrEqual(value('process_resident_memory_bytes'))
      expect(value('process_open_fds')).toBeGreaterThan(2)
      expect(value('process_max_fds')).toBeGreaterThanOrEqual(value('process_open_fds'))
    }
  })

  test('a prefix or matchdict field Prometheus cannot take stops the start, naming the setting', () => {
    const start = (raw: Record<string, string>) => () => memoryApp({'kinto.includes': 'kinto.plugins.prometheus', ...raw})
    expect(start({'kinto.prometheus_prefix': '1kinto'})).toThrow(/^kinto\.prometheus_prefix = 1kinto makes metric names \(1kinto_request_summary…\)/)
    expect(start({'kinto.project_name': 'kinto/prod'})).toThrow(/^kinto\.project_name = kinto\/prod makes metric names/)
    expect(start({'kinto.metrics_matchdict_fields': 'bucket_id 2nd'})).toThrow(/^kinto\.metrics_matchdict_fields has "2nd", which is not a label name/)
    expect(start({'kinto.metrics_matchdict_fields': 'bucket_id status'})).toThrow(/"status", which is already a label/)
    expect(start({'kinto.metrics_matchdict_fields': 'bucket_id bucket-id'})).toThrow(/"bucket-id", which is already a label/)
    expect(start({'kinto.metrics_matchdict_fields': 'le'})).toThrow(/"le", which is already a label/)
    // Without Prometheus, StatsD takes any name.
    expect(() => memoryApp({'kinto.project_name': 'kinto/prod'})).not.toThrow()
  })

  test('prometheus_prefix, prometheus_disabled_metrics, prometheus_created_metrics_enabled', async () => {
    const a = app({
      'kinto.includes': 'kinto.plugins.prometheus',
      'kinto.prometheus_prefix': 'remote-settings',
      'kinto.prometheus_disabled_metrics': 'remotesettings_request_size view_hello_GET',
      'kinto.prometheus_created_metrics_enabled': 'false',
    })
    const req = client(a)
    const hello = await req('GET', '/v1/')
    // The list as written, as upstream's capability shows it.
    expect(hello.body.capabilities.prometheus).toEqual({
      description: 'Prometheus metrics.',
      url: 'https://github.com/Kinto/kinto/',
      prefix: 'remotesettings_',
      disabled_metrics: ['remotesettings_request_size', 'view_hello_GET'],
    })
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^remotesettings_request_summary_total\{/m)
    expect(text).not.toMatch(/request_size|view_hello_GET/)
    expect(text).not.toMatch(/_created/)
    expect(text).not.toMatch(/^kinto_/m)
  })

  test('the history plugin is timed as upstream times it: plugins.history.seconds', async () => {
    const statsd = await statsdListener()
    cleanups.push(() => statsd.close())
    const a = app({'kinto.includes': 'kinto.plugins.prometheus kinto.plugins.history', 'kinto.statsd_url': statsd.url})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/b1/collections/c1', {body: {}})).status).toBe(201)
    expect((await req('GET', '/v1/buckets/b1/history')).body.data).toHaveLength(2)
    await statsd.waitFor(/^kinto\.plugins\.history\.seconds:\d+(\.\d+)?\|ms$/)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^# TYPE kinto_plugins_history_seconds histogram$/m)
    expect(text).toMatch(/^kinto_plugins_history_seconds_count 2$/m)
  })

  test('with kinto.statsd_url too, both exporters get the same measures', async () => {
    const statsd = await statsdListener()
    cleanups.push(() => statsd.close())
    const a = app({'kinto.includes': 'kinto.plugins.prometheus', 'kinto.statsd_url': statsd.url})
    const req = client(a)
    expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
    await statsd.waitFor(/^kinto\.view\.bucket-object\.PUT:/)
    const text = (await req('GET', '/v1/__metrics__')).raw
    expect(text).toMatch(/^kinto_view_bucket_object_PUT_count 1$/m)
  })
})

describe('runtime hook points', () => {
  test('a subscriber sees request start, response, sub-requests, views and backend calls', async () => {
    const a = app({})
    const hooks = a.kinto.hooks
    const seen: string[] = []
    hooks.on('requestStart', (req) => seen.push(`start ${req.method} ${req.path}`))
    hooks.on('response', ({req, response}) => seen.push(`response ${req.method} ${req.path} ${response.status}`))
    hooks.on('subrequest', ({req, response}) => seen.push(`sub ${req.method} ${req.path} ${response.status}`))
    hooks.on('view', ({service, method}) => seen.push(`view ${service.name} ${method}`))
    const req = client(a)
    const batch = await req('POST', '/v1/batch', {body: {requests: [{method: 'PUT', path: '/buckets/b1'}, {path: '/buckets/b1'}]}})
    expect(batch.status).toBe(200)
    expect(seen).toEqual([
      'start POST /v1/batch',
      'view bucket-object PUT',
      'sub PUT /v1/buckets/b1 201',
      'view bucket-object GET',
      'sub GET /v1/buckets/b1 200',
      'view batch POST',
      'response POST /v1/batch 200',
    ])
  })

  test('a failing metrics exporter does not fail the response (logged once)', async () => {
    const settings = buildSettings({'kinto.includes': 'kinto.plugins.prometheus'}, {})
    const backends = createBackends(settings)
    const lines: string[] = []
    const logger = pino({level: 'error'}, {write: (line: string) => void lines.push(line)})
    const a = createApp({settings, backends, logger})
    cleanups.push(async () => {
      await a.close()
      await backends.close()
    })
    const exporter = prometheusFor(settings)
    exporter.unique = () => {
      throw new Error('exporter bug')
    }
    const req = client(a)
    for (let i = 0; i < 2; i++) {
      const hello = await req('GET', '/v1/')
      expect(hello.status).toBe(200)
      expect(hello.body.project_name).toBe('kinto')
    }
    const batch = await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b1'}]}})
    expect(batch.status).toBe(200)
    expect(lines.filter((l) => /metrics of a response/.test(l))).toHaveLength(1)
  })

  test('a failing listener does not fail the request', async () => {
    const a = app({})
    a.kinto.hooks.on('response', () => {
      throw new Error('listener bug')
    })
    expect((await client(a)('GET', '/v1/')).status).toBe(200)
  })
})

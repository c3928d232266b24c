/**
 * How a real `kinto start` turns upstream Kinto's settings into what clients see, against upstream
 * 26.3.1 (Pyramid and webob under waitress): the absolute URLs it builds (hello's url, Next-Page,
 * the Location of redirects, __api__'s host); settings upstream starts with.
 */
import {connect} from 'node:net'

import {afterAll, describe, expect, test} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {httpRequest, stopAll} from '../helpers/deploy-servers.js'
import {type KintoServer, startMemoryKinto} from '../helpers/kinto-server.js'

afterAll(stopAll)

const SECRET = 'kinto.userid_hmac_secret = 5f0e1c2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100'
const BASIC = {authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}`}

/** A request with no Host header at all (HTTP/1.0), as the raw bytes a client sends. */
function http10(base: string, path: string): Promise<string> {
  const {hostname, port} = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect({host: hostname, port: Number(port)})
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d) => (text += d))
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.write(`GET ${path} HTTP/1.0\r\n\r\n`)
  })
}

describe('absolute URLs without the default port, as upstream (webob) writes them', () => {
  let plain: KintoServer
  let proxied: KintoServer

  test('servers start', async () => {
    ;[plain, proxied] = await Promise.all([
      startMemoryKinto('settings-urls-plain', ['multiauth.policies = basicauth', SECRET, 'kinto.bucket_create_principals = system.Authenticated', 'kinto.paginate_by = 1']),
      startMemoryKinto('settings-urls-proxied', [
        'multiauth.policies = basicauth',
        SECRET,
        'kinto.includes = kinto.plugins.admin kinto.plugins.default_bucket',
        'kinto.http_scheme = https',
        'kinto.http_host = kinto.example.com:443',
        'kinto.paginate_by = 1',
      ]),
    ])
  }, 90_000)

  test('Host: example.com:80 over http: hello, Location and Next-Page name http://example.com', async () => {
    const host = {host: 'example.com:80'}
    const hello = await httpRequest(`${plain.base}/v1/`, {headers: host})
    expect(JSON.parse(hello.body).url).toBe('http://example.com/v1/')
    const moved = await httpRequest(`${plain.base}/buckets?x=1`, {headers: host})
    expect(moved.status).toBe(307)
    expect(moved.headers.location).toBe('http://example.com/v1/buckets?x=1')
    for (const id of ['a', 'b']) {
      expect((await httpRequest(`${plain.base}/v1/buckets/${id}`, {method: 'PUT', headers: BASIC})).status).toBe(201)
    }
    const list = await httpRequest(`${plain.base}/v1/buckets`, {headers: {...host, ...BASIC}})
    expect(list.headers['next-page']).toMatch(/^http:\/\/example\.com\/v1\/buckets\?_limit=1&_token=/)
    // Another port is kept.
    const other = await httpRequest(`${plain.base}/v1/`, {headers: {host: 'example.com:8080'}})
    expect(JSON.parse(other.body).url).toBe('http://example.com:8080/v1/')
  })

  test('kinto.http_host = kinto.example.com:443 with https: https://kinto.example.com/v1/; __api__ host is http_host', async () => {
    const hello = await httpRequest(`${proxied.base}/v1/`)
    expect(JSON.parse(hello.body).url).toBe('https://kinto.example.com/v1/')
    const moved = await httpRequest(`${proxied.base}/v1/buckets/`)
    expect(moved.headers.location).toBe('https://kinto.example.com/v1/buckets')
    // Plugins' redirects are absolute too (webob makes every Location absolute).
    expect((await httpRequest(`${proxied.base}/v1/admin`)).headers.location).toBe('https://kinto.example.com/v1/admin/')
    const alias = await httpRequest(`${proxied.base}/v1/buckets/default/?a=1`, {headers: BASIC})
    expect(alias.headers.location).toBe('https://kinto.example.com/v1/buckets/default?a=1')
    // upstream's request.host is http_host once set, whatever the client sent
    const api = await httpRequest(`${proxied.base}/v1/__api__`, {headers: {host: '127.0.0.1:9'}})
    expect(JSON.parse(api.body)).toMatchObject({host: 'kinto.example.com:443', schemes: ['https']})
  })

  test('an HTTP/1.0 request without Host gets URLs naming the address it reached, not http:///v1/', async () => {
    const reply = await http10(plain.base, '/v1/')
    expect(reply).toMatch(/^HTTP\/1\.1 200/)
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as {url: string}
    expect(body.url).toBe(`${plain.base}/v1/`)
  })
})

describe('settings that upstream Kinto starts with', () => {
  let server: KintoServer
  test('kinto start accepts them', async () => {
    server = await startMemoryKinto('settings-upstream-values', ['multiauth.policies = basicauth', SECRET, 'kinto.batch_max_requests =', 'kinto.backoff = 10', 'kinto.backoff_percentage = 12.5'])
  }, 90_000)

  test('kinto.backoff_percentage = 12.5: Backoff on some responses, not all', async () => {
    const sent: boolean[] = []
    for (let i = 0; i < 200; i++) sent.push((await httpRequest(`${server.base}/v1/__lbheartbeat__`)).headers.backoff === '10')
    expect(sent).toContain(true)
    expect(sent).toContain(false)
  })

  test('kinto.batch_max_requests left empty: no limit, as upstream (its falsy test), not a refusal to start', async () => {
    const hello = JSON.parse((await httpRequest(`${server.base}/v1/`)).body) as {settings: Record<string, unknown>}
    expect(hello.settings.batch_max_requests).toBeNull()
    const requests = Array.from({length: 30}, () => ({path: '/'}))
    const batch = await httpRequest(`${server.base}/v1/batch`, {method: 'POST', headers: {...BASIC, 'content-type': 'application/json'}, body: JSON.stringify({requests})})
    expect(batch.status, batch.body).toBe(200)
    expect((JSON.parse(batch.body) as {responses: unknown[]}).responses).toHaveLength(30)
    const check = await runCli(['check', '--ini', server.ini, '--no-db', '--json'])
    const finding = (JSON.parse(check.stdout) as {findings: Array<{id: string; level: string; message: string}>}).findings.find((f) => f.id === 'batch-max-requests')
    expect(finding).toMatchObject({level: 'error', message: expect.stringContaining('is empty')})
  })
})

describe('environment variables, as upstream reads them', () => {
  test('KINTO_X wins over X; both override ini keys (prefixed or not) and defaults, JSON-decoded; none adds a setting', async () => {
    const env = {
      BATCH_MAX_REQUESTS: '9',
      KINTO_BATCH_MAX_REQUESTS: '7',
      KINTO_EXPLICIT_PERMISSIONS: 'false',
      KINTO_PROJECT_NAME: '"quoted-name"',
      KINTO_CORS_ORIGINS: '["https://app.example"]',
      // Not in the ini and no default: ignored, as upstream (anonymous writes stay refused).
      KINTO_BUCKET_WRITE_PRINCIPALS: 'system.Everyone',
      KINTO_BUCKET_CREATE_PRINCIPALS: 'system.Everyone',
    }
    const server = await startMemoryKinto('settings-env', ['multiauth.policies = basicauth', SECRET, 'explicit_permissions = true', 'kinto.bucket_create_principals = basicauth:nobody'], {env})
    const hello = JSON.parse((await httpRequest(`${server.base}/v1/`)).body) as {project_name: string; settings: Record<string, unknown>}
    expect(hello.project_name).toBe('quoted-name')
    expect(hello.settings).toEqual({batch_max_requests: 7, readonly: false, explicit_permissions: false})
    // explicit_permissions off: the creator gets no write permission of its own
    const created = await httpRequest(`${server.base}/v1/buckets/b1`, {method: 'PUT', headers: BASIC})
    expect(created.status).toBe(201)
    expect(JSON.parse(created.body).permissions).toEqual({})
    // bucket_create_principals from the environment: even anonymous requests may create
    expect((await httpRequest(`${server.base}/v1/buckets/b2`, {method: 'PUT'})).status).toBe(201)
    expect((await httpRequest(`${server.base}/v1/buckets/b1`, {method: 'PATCH', headers: {'content-type': 'application/json'}, body: '{"data": {}}'})).status).toBe(401)
    const cors = await httpRequest(`${server.base}/v1/`, {headers: {origin: 'https://app.example'}})
    expect(cors.headers['access-control-allow-origin']).toBe('https://app.example')
    const other = await httpRequest(`${server.base}/v1/`, {headers: {origin: 'https://elsewhere.example'}})
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  }, 90_000)
})

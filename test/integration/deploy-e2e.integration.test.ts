/**
 * End to end with the real proxies in front of a running `kinto start`:
 * - nginx (`kinto deploy nginx --cache`): hello's `url` shows the public host; ETag,
 *   Last-Modified, Next-Page and CORS headers reach the client; private URLs are refused from
 *   127.0.0.2 when only 127.0.0.1 is allowed while the admin console (/v1/admin/) stays public; a
 *   repeated GET is a cache hit, another `_limit` not; the console's page is never cached.
 * - Apache mod_proxy (`kinto deploy apache`): hello and a record GET work through it.
 * - nginx to the runtime on the unix socket of [server:main] (`unix_socket`).
 * Loopback ports only; every process is stopped in afterAll (also on failure).
 */
import {randomBytes} from 'node:crypto'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {apacheOptionsFrom, nginxOptionsFrom, renderApache, renderNginx} from '../../src/lib/deploy/index.js'
import {runCli} from '../helpers/cli.js'
import {
  APACHE_PROXY_MODULES,
  type HttpReply,
  freePort,
  httpRequest,
  missing,
  readLog,
  startApache,
  startNginx,
  stopAll,
  tempDir,
} from '../helpers/deploy-servers.js'
import {startMemoryKinto} from '../helpers/kinto-server.js'

const skipReason = missing('nginx') || missing('apache2', 'modProxyHttp')

const PUBLIC_HOST = 'kinto.example.test'
const AUTH = {Authorization: `Basic ${Buffer.from('deployer:secret').toString('base64')}`}
const JSON_HEADERS = {...AUTH, 'Content-Type': 'application/json'}

let kintoPort = 0
let kintoBase = ''
let kintoOutput: () => string = () => ''

/** The [app:main] lines of both servers (the one on a port, the one on a unix socket). */
const appLines = () => [
  `kinto.userid_hmac_secret = ${randomBytes(32).toString('hex')}`,
  'multiauth.policies = basicauth',
  'kinto.includes = kinto.plugins.admin kinto.plugins.prometheus',
]

async function api(method: string, p: string, body?: unknown): Promise<HttpReply> {
  const r = await httpRequest(`${kintoBase}${p}`, {method, headers: JSON_HEADERS, body: body === undefined ? undefined : JSON.stringify(body)})
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.body}`)
  return r
}

afterAll(stopAll)

describe.skipIf(skipReason !== '')(`real proxies in front of kinto start ${skipReason}`, () => {
  let dir = ''
  let ini = ''

  beforeAll(async () => {
    // Host and port come from [server:main], as for the deploy commands.
    const kinto = await startMemoryKinto('deploy-e2e', appLines())
    ;({dir, ini, base: kintoBase, output: kintoOutput} = kinto)
    kintoPort = kinto.port!
    // A collection that anonymous users may read, with cache headers (collection cache_expires).
    await api('PUT', '/v1/buckets/site')
    await api('PUT', '/v1/buckets/site/collections/articles', {data: {cache_expires: 3600}, permissions: {read: ['system.Everyone']}})
    for (const n of [1, 2, 3]) await api('PUT', `/v1/buckets/site/collections/articles/records/article-${n}`, {data: {title: `Article ${n}`}})
  }, 90_000)

  describe('nginx', () => {
    let base = ''
    let publicHost = ''
    let errorLog = ''

    beforeAll(async () => {
      const port = await freePort()
      const conf = await runCli([
        'deploy', 'nginx', '--ini', ini, '--server-name', PUBLIC_HOST, '--listen', `127.0.0.1:${port}`, '--allow', '127.0.0.1', '--cache-path', path.join(dir, 'nginx-cache'),
      ])
      expect(conf.code, conf.stderr).toBe(0)
      expect(conf.stdout).toContain(`server 127.0.0.1:${kintoPort};`)
      const nginx = await startNginx(conf.stdout, port)
      errorLog = nginx.setup.errorLog
      base = `http://127.0.0.1:${port}`
      publicHost = `${PUBLIC_HOST}:${port}`
    }, 60_000)

    const get = (p: string, headers: Record<string, string> = {}, localAddress?: string) =>
      httpRequest(`${base}${p}`, {headers: {Host: publicHost, ...headers}, localAddress})

    it("hello's url shows the public host", async () => {
      const r = await get('/v1/')
      expect(r.status, `${r.body} ${readLog(errorLog)} ${kintoOutput()}`).toBe(200)
      expect(JSON.parse(r.body).url).toBe(`http://${publicHost}/v1/`)
    })

    it('an HTTP/1.0 request without Host (a HAProxy health check) reaches Kinto with one', async () => {
      const {connect} = await import('node:net')
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect({host: '127.0.0.1', port: Number(new URL(base).port)}, () => socket.write('GET /v1/__lbheartbeat__ HTTP/1.0\r\n\r\n'))
        let text = ''
        socket.setEncoding('utf8')
        socket.on('data', (d) => (text += d))
        socket.on('end', () => resolve(text))
        socket.on('error', reject)
        socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer: ${text}`)))
      })
      expect(raw.split('\r\n')[0], raw).toMatch(/^HTTP\/1\.1 200 /)
    })

    it('ETag, Last-Modified, Next-Page and CORS headers reach the client', async () => {
      const r = await get('/v1/buckets/site/collections/articles/records?_limit=1&_sort=title', {Origin: 'https://app.example'})
      expect(r.status, r.body).toBe(200)
      expect(JSON.parse(r.body).data).toHaveLength(1)
      expect(r.headers.etag).toMatch(/^"\d+"$/)
      expect(r.headers['last-modified']).toMatch(/GMT$/)
      expect(r.headers['next-page']).toMatch(new RegExp(`^http://${publicHost.replaceAll('.', '\\.')}/v1/buckets/site/collections/articles/records\\?`))
      expect(r.headers['access-control-allow-origin']).toBeDefined()
      expect(String(r.headers['access-control-expose-headers'])).toMatch(/Next-Page/)
      const preflight = await httpRequest(`${base}/v1/buckets/site/collections/articles/records`, {
        method: 'OPTIONS',
        headers: {Host: publicHost, Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET'},
      })
      expect(preflight.status).toBe(200)
      expect(preflight.headers['access-control-allow-methods']).toMatch(/GET/)
    })

    it('private URLs are refused from 127.0.0.2 when only 127.0.0.1 is allowed', async () => {
      const allowed = await get('/v1/__heartbeat__')
      expect(allowed.status, allowed.body).toBe(200)
      // Prometheus' /__metrics__ too: served to the allowed address, refused to the others.
      expect((await get('/v1/__metrics__')).status).toBe(200)
      for (const p of ['/v1/__heartbeat__', '/v1/__lbheartbeat__', '/v1/__version__', '/v1/__metrics__', '/v1/__counters__']) {
        expect((await get(p, {}, '127.0.0.2')).status, p).toBe(403)
      }
      expect((await get('/v1/', {}, '127.0.0.2')).status).toBe(200)
    })

    it('the admin console stays public (also from 127.0.0.2); its page is never cached, its hashed files are', async () => {
      const page = await get('/v1/admin/', {}, '127.0.0.2')
      expect(page.status, `${page.body} ${readLog(errorLog)}`).toBe(200)
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
      expect((await get('/v1/admin', {}, '127.0.0.2')).status).toBe(307)
      expect((await get('/v1/admin/')).headers['x-cache-status']).toBe('MISS')
      const script = /src="(assets\/[^"]+\.js)"/.exec(page.body)![1]
      const first = await get(`/v1/admin/${script}`, {}, '127.0.0.2')
      expect(first.status).toBe(200)
      expect(first.headers['content-type']).toBe('text/javascript; charset=utf-8')
      const second = await get(`/v1/admin/${script}`)
      expect(second.headers['x-cache-status']).toBe('HIT')
      expect(second.body).toBe(first.body)
    })

    it('--cache: a repeated GET is a cache hit, a different _limit is not', async () => {
      const p = '/v1/buckets/site/collections/articles/records'
      const first = await get(`${p}?_limit=2`)
      expect(first.headers['cache-control']).toMatch(/max-age=3600/)
      expect(first.headers['x-cache-status']).toBe('MISS')
      const second = await get(`${p}?_limit=2`)
      expect(second.headers['x-cache-status']).toBe('HIT')
      expect(second.body).toBe(first.body)
      const other = await get(`${p}?_limit=1`)
      expect(other.headers['x-cache-status']).toBe('MISS')
      expect(JSON.parse(other.body).data).toHaveLength(1)
      const authed = await get(`${p}?_limit=2`, AUTH)
      expect(authed.headers['x-cache-status']).toBe('BYPASS')
    })

    it.each([
      ['a list with cache headers (cache_expires)', '/v1/buckets/site/collections/articles/records?_limit=3&_sort=title'],
      ['an object without them', '/v1/buckets/site/collections/articles'],
    ])('--cache: an anonymous If-None-Match GET of %s is answered 304 as Kinto answers it directly', async (_what, p) => {
      const direct = await httpRequest(`http://127.0.0.1:${kintoPort}${p}`)
      const etag = String(direct.headers.etag)
      expect((await httpRequest(`http://127.0.0.1:${kintoPort}${p}`, {headers: {'If-None-Match': etag}})).status).toBe(304)
      // not in nginx's cache yet
      const first = await get(p, {'If-None-Match': etag})
      expect(first.status, first.body).toBe(304)
      expect(first.body).toBe('')
      // after a plain GET (which may fill the cache) the conditional one is still 304; a stale ETag gets the page
      const plain = await get(p)
      expect(plain.status).toBe(200)
      expect((await get(p, {'If-None-Match': etag})).status).toBe(304)
      const stale = await get(p, {'If-None-Match': '"1"'})
      expect(stale.status).toBe(200)
      expect(stale.body).toBe(plain.body)
    })
  })

  describe('Apache mod_proxy', () => {
    let base = ''
    let errorLog = ''

    beforeAll(async () => {
      const port = await freePort()
      const conf = await runCli([
        'deploy', 'apache', '--ini', ini, '--server-name', PUBLIC_HOST, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${kintoPort}`,
      ])
      expect(conf.code, conf.stderr).toBe(0)
      const apache = await startApache(conf.stdout, APACHE_PROXY_MODULES, port)
      errorLog = apache.setup.errorLog
      base = `http://127.0.0.1:${port}`
    }, 60_000)

    it('hello works through it, with the public host', async () => {
      const r = await httpRequest(`${base}/v1/`, {headers: {Host: PUBLIC_HOST}})
      expect(r.status, `${r.body} ${readLog(errorLog)}`).toBe(200)
      expect(JSON.parse(r.body).url).toBe(`http://${PUBLIC_HOST}/v1/`)
    })

    it('a record GET works through it, with its ETag', async () => {
      const r = await httpRequest(`${base}/v1/buckets/site/collections/articles/records/article-2`, {headers: {Host: PUBLIC_HOST}})
      expect(r.status, `${r.body} ${readLog(errorLog)}`).toBe(200)
      expect(JSON.parse(r.body).data).toMatchObject({id: 'article-2', title: 'Article 2'})
      expect(r.headers.etag).toMatch(/^"\d+"$/)
    })

    it('private URLs are refused from 127.0.0.2', async () => {
      expect((await httpRequest(`${base}/v1/__heartbeat__`, {headers: {Host: PUBLIC_HOST}})).status).toBe(200)
      expect((await httpRequest(`${base}/v1/__heartbeat__`, {headers: {Host: PUBLIC_HOST}, localAddress: '127.0.0.2'})).status).toBe(403)
    })
  })

  describe('nginx to the unix socket of [server:main]', () => {
    let base = ''

    beforeAll(async () => {
      const kinto = await startMemoryKinto('deploy-e2e-socket', appLines(), {unixSocket: 'kinto.sock'})
      const socketIni = kinto.ini
      const socketPath = kinto.socket!
      const port = await freePort()
      const conf = await runCli(['deploy', 'nginx', '--ini', socketIni, '--server-name', PUBLIC_HOST, '--listen', `127.0.0.1:${port}`])
      expect(conf.code, conf.stderr).toBe(0)
      expect(conf.stdout).toContain(`server unix:${socketPath};`)
      await startNginx(conf.stdout, port)
      base = `http://127.0.0.1:${port}`
    }, 90_000)

    it('hello works through nginx over the socket, with the public host', async () => {
      const r = await httpRequest(`${base}/v1/`, {headers: {Host: PUBLIC_HOST}})
      expect(r.status, r.body).toBe(200)
      expect(JSON.parse(r.body).url).toBe(`http://${PUBLIC_HOST}/v1/`)
    })
  })
})

describe.skipIf(missing('nginx') !== '')(`nginx when Kinto does not answer ${missing('nginx')}`, () => {
  it.each([[false], [true]])('--cache %s: Kinto’s 503 (JSON, errno 201, Retry-After of kinto.retry_after_seconds), not nginx’s HTML 502', async (cache) => {
    const dir = tempDir('deploy-down')
    const [port, deadPort] = [await freePort(), await freePort()]
    const snippet = renderNginx(
      nginxOptionsFrom(
        {path: path.join(dir, 'kinto.ini'), dir, settings: {retry_after_seconds: 17}, server: {host: '127.0.0.1', port: deadPort}},
        {listen: `127.0.0.1:${port}`, 'server-name': [PUBLIC_HOST], cache, 'cache-path': cache ? path.join(dir, 'cache') : undefined},
      ),
    )
    await startNginx(snippet, port)
    for (const p of ['/v1/', '/v1/buckets/site/collections/articles/records']) {
      const r = await httpRequest(`http://127.0.0.1:${port}${p}`, {headers: {Host: PUBLIC_HOST}})
      expect(r.status, r.body).toBe(503)
      expect(r.headers['content-type']).toBe('application/json')
      expect(r.headers['retry-after']).toBe('17')
      expect(JSON.parse(r.body)).toMatchObject({code: 503, errno: 201, error: 'Service Unavailable'})
    }
  })
})

describe.skipIf(missing('apache2', 'modProxyHttp') !== '')(`Apache mod_proxy when Kinto does not answer ${missing('apache2', 'modProxyHttp')}`, () => {
  it('Kinto’s 503 (JSON, errno 201, Retry-After of kinto.retry_after_seconds), not Apache’s HTML page', async () => {
    const dir = tempDir('deploy-down-apache')
    const [port, deadPort] = [await freePort(), await freePort()]
    const snippet = renderApache(
      apacheOptionsFrom(
        {path: path.join(dir, 'kinto.ini'), dir, settings: {retry_after_seconds: 17}, server: {host: '127.0.0.1', port: deadPort}},
        {'server-name': [PUBLIC_HOST]},
      ),
    ).replace('<VirtualHost *:80>', `<VirtualHost 127.0.0.1:${port}>`)
    await startApache(snippet, APACHE_PROXY_MODULES, port)
    const r = await httpRequest(`http://127.0.0.1:${port}/v1/buckets`, {headers: {Host: PUBLIC_HOST}})
    expect(r.status, r.body).toBe(503)
    expect(r.headers['content-type']).toBe('application/json')
    expect(r.headers['retry-after']).toBe('17')
    expect(JSON.parse(r.body)).toMatchObject({code: 503, errno: 201, error: 'Service Unavailable'})
  })
})

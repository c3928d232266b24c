/**
 * `kinto check --url`: the probe of a live deployment.
 * - Against a small fake Kinto (node:http) that plays each CDN/proxy mistake: the host leak in
 *   hello's url and in Next-Page, headers stripped, a cache that ignores the query string, CORS
 *   refused, private URLs public, redirects to another host (never followed), a server that never
 *   answers (timeout), something that is not Kinto. The probe only ever sends GET and OPTIONS.
 * - Against the real runtime (`kinto start`): directly, the host leak is found (hello's url
 *   follows the Host header, private URLs answer); through nginx (`kinto deploy nginx`) with a
 *   proper kinto.http_host, the report is clean, the admin console reachable.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {Socket} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type CheckReport, type Finding, probeDeployment} from '../../src/lib/check/index.js'
import {runCli} from '../helpers/cli.js'
import {freePort, httpRequest, missing, startNginx, stopAll} from '../helpers/deploy-servers.js'
import {startMemoryKinto} from '../helpers/kinto-server.js'

// ------------------------------------------------------------------------------ a fake Kinto

interface Fake {
  /** hello's url; default: built from the Host header (kinto.http_host unset). */
  helloUrl?: (host: string) => string
  strip?: Array<'etag' | 'last-modified' | 'next-page'>
  /** Next-Page on this origin instead of the Host header's. */
  nextPageOrigin?: string
  /** A cache keyed on the path alone: every page size gets the first answer. */
  ignoreQuery?: boolean
  refusePreflight?: boolean
  noExposeHeaders?: boolean
  privatePublic?: boolean
  flushEndpoint?: boolean
  listStatus?: number
  redirectHelloTo?: string
  hang?: boolean
  html?: boolean
  /** Capability admin, and what GET /v1/admin/ gets. */
  admin?: 'served' | 'blocked'
  /** The list answers 401 unless this `user:password` comes as Basic credentials. */
  listAuth?: string
}

const RECORDS = [1, 2, 3].map((n) => ({id: `r${n}`, last_modified: 1700000000000 + n, title: `Record ${n}`}))
const LIST = '/v1/buckets/site/collections/articles/records'

interface FakeServer {
  url: string
  port: number
  methods: string[]
  hits: number
  close(): Promise<void>
}

const servers: FakeServer[] = []
/** The Authorization header of every request the fakes got, by path. */
const authorizations: Array<{path: string; authorization: string | undefined}> = []

async function fake(behaviour: Fake = {}): Promise<FakeServer> {
  const sockets = new Set<Socket>()
  let firstListAnswer: {headers: Record<string, string>; body: string} | undefined
  const state = {methods: [] as string[], hits: 0}
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    state.hits++
    state.methods.push(req.method ?? '?')
    if (behaviour.hang) return // never answers
    const host = req.headers.host ?? ''
    const url = new URL(req.url ?? '/', `http://${host}`)
    authorizations.push({path: url.pathname, authorization: req.headers.authorization})
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {'content-type': 'application/json', ...headers})
      res.end(typeof body === 'string' ? body : JSON.stringify(body))
    }
    const cors: Record<string, string> = req.headers.origin ? {'access-control-allow-origin': '*'} : {}
    if (behaviour.html) return void res.writeHead(200, {'content-type': 'text/html'}).end('<html>It works!</html>')
    if (req.method === 'OPTIONS') {
      if (behaviour.refusePreflight) return send(403, {error: 'Forbidden'})
      return send(200, '', {...cors, 'access-control-allow-methods': 'GET,HEAD,OPTIONS', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '3600'})
    }
    if (url.pathname === '/v1/') {
      if (behaviour.redirectHelloTo) return send(302, '', {location: behaviour.redirectHelloTo})
      return send(200, {
        project_name: 'kinto',
        project_version: '26.3.1',
        http_api_version: '1.23',
        url: behaviour.helloUrl ? behaviour.helloUrl(host) : `http://${host}/v1/`,
        settings: {batch_max_requests: 25, readonly: false, explicit_permissions: true},
        capabilities: {
          ...(behaviour.flushEndpoint ? {flush_endpoint: {description: 'flush', url: 'x'}} : {}),
          ...(behaviour.admin ? {admin: {description: 'Serves the admin console.', url: 'x', version: '3.7.0'}} : {}),
        },
      })
    }
    if (url.pathname === '/v1/admin/' && behaviour.admin === 'served') return void res.writeHead(200, {'content-type': 'text/html; charset=utf-8'}).end('<div id="root"></div>')
    if (url.pathname === '/v1/admin/' && behaviour.admin === 'blocked') return void res.writeHead(403, {'content-type': 'text/html'}).end('<html>403 Forbidden</html>')
    if (/^\/v1\/__\w+__$/.test(url.pathname)) {
      if (url.pathname === '/v1/__flush__' && behaviour.flushEndpoint) return send(405, {errno: 115})
      if (url.pathname === '/v1/__flush__') return send(404, {errno: 111})
      return behaviour.privatePublic ? send(200, {storage: true}) : send(403, '<html>403 Forbidden</html>')
    }
    if (url.pathname === LIST) {
      if (behaviour.listStatus) return send(behaviour.listStatus, {errno: 104})
      if (behaviour.listAuth && req.headers.authorization !== `Basic ${Buffer.from(behaviour.listAuth).toString('base64')}`) return send(401, {errno: 104}, cors)
      if (req.headers['if-none-match'] === '"1700000000003"') return send(304, '', {etag: '"1700000000003"'})
      if (behaviour.ignoreQuery && firstListAnswer) return send(200, firstListAnswer.body, firstListAnswer.headers)
      const limit = Number(url.searchParams.get('_limit') ?? 100)
      const headers: Record<string, string> = {
        ...cors,
        etag: '"1700000000003"',
        'last-modified': new Date(1700000000003).toUTCString(),
      }
      if (!behaviour.noExposeHeaders && req.headers.origin) headers['access-control-expose-headers'] = 'Next-Page, Last-Modified, ETag, Backoff'
      if (limit < RECORDS.length) headers['next-page'] = `${behaviour.nextPageOrigin ?? `http://${host}`}${LIST}?_limit=${limit}&_token=abc`
      for (const name of behaviour.strip ?? []) delete headers[name]
      const body = JSON.stringify({data: RECORDS.slice(0, limit)})
      firstListAnswer ??= {headers, body}
      return send(200, body, headers)
    }
    send(404, {errno: 111})
  }
  const server: Server = createServer(handler)
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as {port: number}).port
  const out: FakeServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    get methods() {
      return state.methods
    },
    get hits() {
      return state.hits
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  servers.push(out)
  return out
}

afterAll(async () => {
  for (const s of servers) await s.close()
})

async function probe(server: FakeServer, options: {listPath?: string; timeoutMs?: number; auth?: string} = {}): Promise<CheckReport> {
  return probeDeployment(server.url, {listPath: options.listPath ?? LIST, timeoutMs: options.timeoutMs ?? 3000, auth: options.auth})
}

const byId = (report: CheckReport, id: string): Finding[] => report.findings.filter((f) => f.id === id)
const levels = (report: CheckReport, id: string) => byId(report, id).map((f) => f.level)
const problems = (report: CheckReport) => report.findings.filter((f) => f.level !== 'ok').map((f) => `${f.level} ${f.id}`)

describe('probe against a fake Kinto', () => {
  it('a well-configured deployment is clean (the fake plays Kinto correctly)', async () => {
    let port = 0
    const good = await fake({helloUrl: () => `http://127.0.0.1:${port}/v1/`})
    port = good.port
    const report = await probe(good)
    expect(problems(report)).toEqual([])
    expect(report.summary.ok).toBe(report.findings.length)
    for (const id of ['hello', 'hello-url', 'host-leak', 'cors-preflight', 'etag', 'last-modified', 'next-page', 'limit-varies', 'cors-expose', 'if-none-match', 'private-urls', 'flush-endpoint']) {
      expect(levels(report, id), id).toEqual(['ok'])
    }
    expect(report.target).toEqual({kind: 'url', url: `${good.url}/v1/`})
  })

  it('hello names another host: the host leak, with the setting to fix it', async () => {
    const s = await fake({helloUrl: () => 'http://10.1.2.3:8888/v1/'})
    const report = await probe(s)
    const [f] = byId(report, 'hello-url')
    expect(f.level).toBe('error')
    expect(f.message).toContain(`hello's url is http://10.1.2.3:8888/v1/ but the public URL is ${s.url}/v1/`)
    expect(f.fix).toContain(`kinto.http_host = 127.0.0.1:${s.port}`)
    expect(f.fix).not.toContain('http_scheme')
  })

  it('hello names another scheme: the fix is kinto.http_scheme', async () => {
    const s = await fake({helloUrl: (host) => `https://${host}/v1/`})
    const [f] = byId(await probe(s), 'hello-url')
    expect(f.level).toBe('error')
    expect(f.fix).toContain('kinto.http_scheme = http')
    expect(f.fix).not.toContain('http_host')
  })

  it('hello follows a forged Host header: host-leak warning', async () => {
    const s = await fake() // url from the Host header: kinto.http_host unset
    const report = await probe(s)
    expect(levels(report, 'hello-url')).toEqual(['ok'])
    const [f] = byId(report, 'host-leak')
    expect(f.level).toBe('warning')
    expect(f.message).toContain('Host: kinto-check.invalid gave http://kinto-check.invalid/v1/')
    expect(f.fix).toBe(`Set kinto.http_host = 127.0.0.1:${s.port} in [app:main].`)
  })

  it('a CDN that strips ETag, Last-Modified and Next-Page', async () => {
    const s = await fake({strip: ['etag', 'last-modified', 'next-page']})
    const report = await probe(s)
    expect(levels(report, 'etag')).toEqual(['error'])
    expect(levels(report, 'last-modified')).toEqual(['error'])
    expect(levels(report, 'next-page')).toEqual(['error'])
    expect(byId(report, 'next-page')[0].message).toContain('no Next-Page header reached the client')
  })

  it('Next-Page naming the main server: the host leak in pagination', async () => {
    const s = await fake({nextPageOrigin: 'http://origin.internal:8888'})
    const [f] = byId(await probe(s), 'next-page')
    expect(f.level).toBe('error')
    expect(f.message).toContain('Next-Page is http://origin.internal:8888/v1/buckets/site/collections/articles/records?_limit=1&_token=abc, outside the public URL')
  })

  it('a cache keyed on the path alone: responses do not differ by _limit', async () => {
    const s = await fake({ignoreQuery: true})
    const [f] = byId(await probe(s), 'limit-varies')
    expect(f.level).toBe('error')
    expect(f.message).toContain('_limit=1 gave 1 object(s) and _limit=2 gave 1')
    expect(f.fix).toContain('whole query string')
  })

  it('CORS: preflight refused, headers not exposed', async () => {
    const refused = await probe(await fake({refusePreflight: true}))
    expect(levels(refused, 'cors-preflight')).toEqual(['error'])
    expect(byId(refused, 'cors-preflight')[0].message).toContain('got 403 without Access-Control-Allow-Origin')
    const hidden = await probe(await fake({noExposeHeaders: true}))
    expect(levels(hidden, 'cors-expose')).toEqual(['error'])
    expect(byId(hidden, 'cors-expose')[0].message).toContain('does not expose etag, last-modified, next-page')
  })

  it('private URLs answering anyone, and an open flush endpoint (probed with GET only)', async () => {
    const s = await fake({privatePublic: true, flushEndpoint: true})
    const report = await probe(s)
    const [priv] = byId(report, 'private-urls')
    expect(priv.level).toBe('error')
    expect(priv.message).toContain('/v1/__heartbeat__ (200), /v1/__lbheartbeat__ (200), /v1/__version__ (200)')
    // Probed on loopback: what answered this probe may be refused to everyone else (an allow list).
    expect(priv.message).toMatch(/^Private URLs answer this probe: /)
    expect(priv.message).toContain('This probe reached them from a loopback address (127.0.0.1 is loopback)')
    expect(priv.message).toContain('run kinto check --url from outside your network')
    const [flush] = byId(report, 'flush-endpoint')
    expect(flush.level).toBe('error')
    expect(flush.message).toContain('GET answered 405')
    expect(new Set(s.methods)).toEqual(new Set(['GET', 'OPTIONS']))
  })

  it('the admin console: advertised and served is ok; advertised but blocked is a warning; absent says nothing', async () => {
    const served = await probe(await fake({admin: 'served'}))
    expect(byId(served, 'admin-console')).toEqual([expect.objectContaining({level: 'ok', message: expect.stringMatching(/^The admin console \(kinto-admin 3\.7\.0\) is served at http:\/\/127\.0\.0\.1:\d+\/v1\/admin\/\.$/)})])
    const blocked = await probe(await fake({admin: 'blocked'}))
    const [finding] = byId(blocked, 'admin-console')
    expect(finding.level).toBe('warning')
    expect(finding.message).toMatch(/advertised \(capability admin\), but GET .*\/v1\/admin\/ answered 403 \(text\/html\)/)
    expect(finding.fix).toContain('kinto deploy nginx keeps it public')
    expect(byId(await probe(await fake()), 'admin-console')).toEqual([])
  })

  it('a list anonymous clients cannot read: one warning says the list checks were not verified, and how to fix that', async () => {
    const s = await fake({listStatus: 401})
    const report = await probe(s)
    for (const id of ['etag', 'last-modified', 'next-page', 'limit-varies', 'cors-expose', 'if-none-match']) expect(byId(report, id), id).toEqual([])
    const list = byId(report, 'list')
    expect(list.map((f) => f.level)).toEqual(['warning'])
    expect(list[0].message).toMatch(/^Not verified: ETag, Last-Modified, Next-Page, _limit, the CORS exposed headers and If-None-Match, because GET \/v1\/\S+ answered 401, so there is no list to look at anonymously\.$/)
    expect(list[0].fix).toContain('--list')
    expect(report.findings.filter((f) => f.message.startsWith('Not verified'))).toHaveLength(1)
  })

  it('a list only an account may read: the checks run with --user, whose credentials go to the list alone', async () => {
    const s = await fake({listAuth: 'reader:s3cret:pw'})
    const anonymous = await probe(s)
    expect(levels(anonymous, 'list')).toEqual(['warning'])
    expect(byId(anonymous, 'list')[0].message).toMatch(/answered 401, so there is no list to look at anonymously\.$/)
    expect(byId(anonymous, 'list')[0].fix).toContain('--user (KINTO_CHECK_AUTH) USER:PASSWORD')

    authorizations.length = 0
    const report = await probe(s, {auth: 'reader:s3cret:pw'})
    expect(problems(report)).toEqual(['warning host-leak'])
    for (const id of ['etag', 'last-modified', 'next-page', 'limit-varies', 'cors-expose', 'if-none-match']) expect(levels(report, id), id).toEqual(['ok'])
    const sent = authorizations.filter((a) => a.authorization !== undefined).map((a) => a.path)
    expect(sent.length).toBeGreaterThanOrEqual(3)
    expect(new Set(sent)).toEqual(new Set([LIST]))
    expect(authorizations.some((a) => a.path !== LIST && a.authorization === undefined)).toBe(true)
    expect(JSON.stringify(report)).not.toContain('s3cret')

    // An account that may not read it: the same warning, naming the account.
    const wrong = await probe(s, {auth: 'reader:wrong'})
    expect(byId(wrong, 'list')[0].message).toMatch(/answered 401, so there is no list to look at as reader\.$/)
  })

  it('a redirect to another host is not followed', async () => {
    const elsewhere = await fake()
    const s = await fake({redirectHelloTo: `${elsewhere.url.replace('127.0.0.1', 'localhost')}/v1/`})
    const report = await probe(s)
    expect(problems(report)).toEqual(['error hello'])
    expect(byId(report, 'hello')[0].message).toContain('redirects to http://localhost:')
    expect(byId(report, 'hello')[0].message).toContain('another host; not followed')
    expect(elsewhere.hits).toBe(0)
  })

  // No hang: the probe must end well within the test's 5 s bound.
  it('a server that never answers: an error within the timeout, no hang', async () => {
    const s = await fake({hang: true})
    const report = await probe(s, {timeoutMs: 500})
    expect(problems(report)).toEqual(['error hello'])
    expect(byId(report, 'hello')[0].message).toMatch(/no response within the timeout|no complete response/)
  }, 5000)

  it('something that is not Kinto', async () => {
    const report = await probe(await fake({html: true}))
    expect(problems(report)).toEqual(['error hello'])
    expect(byId(report, 'hello')[0].message).toContain("answered 200 with a body that is not JSON, not Kinto's hello")
  })

  it('nothing listening', async () => {
    const port = await freePort()
    const report = await probeDeployment(`http://127.0.0.1:${port}`, {timeoutMs: 2000})
    expect(problems(report)).toEqual(['error hello'])
    expect(byId(report, 'hello')[0].message).toContain('connection refused')
  })
})

describe('kinto check --url (CLI)', () => {
  it('--json: findings, exit 1 on an error', async () => {
    const s = await fake({helloUrl: () => 'http://10.1.2.3:8888/v1/'})
    const r = await runCli(['check', '--url', s.url, '--list', LIST, '--json'])
    expect(r.code, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as CheckReport
    expect(report.target).toEqual({kind: 'url', url: `${s.url}/v1/`})
    expect(levels(report, 'hello-url')).toEqual(['error'])
    expect(report.summary.errors).toBeGreaterThan(0)
  })

  it('readable report; warnings alone exit 0', async () => {
    const s = await fake() // only the forged-Host warning
    const r = await runCli(['check', '--url', `${s.url}/v1/`, '--list', LIST])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain(`kinto check ${s.url}/v1/`)
    expect(r.stdout).toMatch(/^WARN +host-leak: /m)
    expect(r.stdout).toMatch(/^0 errors, 1 warning, \d+ ok: review the warnings\.$/m)
  })

  it('KINTO_CHECK_AUTH reads the list as an account and is never printed; a value without a colon is a usage error', async () => {
    const s = await fake({listAuth: 'reader:s3cret'})
    const r = await runCli(['check', '--url', s.url, '--list', LIST, '--json'], {env: {KINTO_CHECK_AUTH: 'reader:s3cret'}})
    expect(r.code, r.stderr).toBe(0)
    expect(levels(JSON.parse(r.stdout) as CheckReport, 'etag')).toEqual(['ok'])
    expect(r.stdout + r.stderr).not.toContain('s3cret')
    const bad = await runCli(['check', '--url', s.url, '--user', 'reader'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--user (KINTO_CHECK_AUTH) must be USER:PASSWORD')
  })

  it('the list, origin and account flags need --url on the command line, not in the environment', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-check-env-'))
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.memory\n')
    const env = {KINTO_CHECK_AUTH: 'reader:s3cret', KINTO_CHECK_LIST: '/buckets', KINTO_CHECK_ORIGIN: 'https://app.example'}
    const plain = await runCli(['check', '--ini', ini, '--no-db', '--json'], {env})
    expect(JSON.parse(plain.stdout).target).toEqual({kind: 'ini', path: ini})
    const flag = await runCli(['check', '--ini', ini, '--no-db', '--list', '/buckets'])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toContain('--list only applies with --url.')
  })

  it('a URL that is not http(s): usage error, exit 2', async () => {
    const r = await runCli(['check', '--url', 'ftp://kinto.example.com'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('is not an http(s) URL')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

// ------------------------------------------------------------------------------ the real runtime

const nginxSkip = missing('nginx')

const AUTH = {Authorization: `Basic ${Buffer.from('editor:secret').toString('base64')}`, 'Content-Type': 'application/json'}

/** Starts `kinto start` on memory backends with a public collection of 3 records; returns its base URL. */
async function startKinto(extra: string[] = []): Promise<{base: string; ini: string; dir: string}> {
  const {base, ini, dir} = await startMemoryKinto('check-url', [`kinto.userid_hmac_secret = ${randomBytes(32).toString('hex')}`, 'multiauth.policies = basicauth', ...extra])
  const put = async (p: string, body: unknown) => {
    const r = await httpRequest(`${base}/v1${p}`, {method: 'PUT', headers: AUTH, body: JSON.stringify(body)})
    if (r.status >= 300) throw new Error(`PUT ${p}: ${r.status} ${r.body}`)
  }
  await put('/buckets/site', {})
  await put('/buckets/site/collections/articles', {permissions: {read: ['system.Everyone']}})
  for (const n of [1, 2, 3]) await put(`/buckets/site/collections/articles/records/article-${n}`, {data: {title: `Article ${n}`}})
  return {base, ini, dir}
}

afterAll(stopAll)

describe('kinto check --url against kinto start', () => {
  it('directly: the host leak is found (and the private URLs are public)', async () => {
    const {base} = await startKinto(['kinto.includes = kinto.plugins.prometheus kinto.plugins.counters'])
    const r = await runCli(['check', '--url', base, '--list', LIST, '--json'])
    const report = JSON.parse(r.stdout) as CheckReport
    expect(levels(report, 'hello'), JSON.stringify(report.findings)).toEqual(['ok'])
    const [leak] = byId(report, 'host-leak')
    expect(leak.level).toBe('warning')
    expect(leak.message).toContain("hello's url follows the request's Host header")
    expect(leak.fix).toBe(`Set kinto.http_host = ${new URL(base).host} in [app:main].`)
    expect(levels(report, 'private-urls')).toEqual(['error'])
    // The plugins' private URLs are probed when hello advertises them.
    expect(byId(report, 'private-urls')[0].message).toContain('/v1/__metrics__ (200)')
    expect(byId(report, 'private-urls')[0].message).toContain('/v1/__counters__ (200)')
    // what a client sees directly is otherwise right: CORS, ETag, Last-Modified, Next-Page, _limit
    for (const id of ['hello-url', 'cors-preflight', 'etag', 'last-modified', 'next-page', 'limit-varies', 'cors-expose', 'if-none-match', 'flush-endpoint']) {
      expect(levels(report, id), `${id}: ${JSON.stringify(byId(report, id))}`).toEqual(['ok'])
    }
    expect(r.code).toBe(1)
  }, 90_000)

  describe.skipIf(nginxSkip !== '')(`through nginx with a proper kinto.http_host ${nginxSkip}`, () => {
    let publicUrl = ''

    beforeAll(async () => {
      const nginxPort = await freePort()
      publicUrl = `http://127.0.0.1:${nginxPort}`
      const {ini} = await startKinto([`kinto.http_host = 127.0.0.1:${nginxPort}`, 'kinto.includes = kinto.plugins.admin kinto.plugins.prometheus kinto.plugins.counters'])
      // private URLs for nobody (the probe runs from 127.0.0.1)
      const conf = await runCli(['deploy', 'nginx', '--ini', ini, '--listen', `127.0.0.1:${nginxPort}`, '--allow', 'none'])
      expect(conf.code, conf.stderr).toBe(0)
      await startNginx(conf.stdout, nginxPort)
    }, 90_000)

    it('is clean: exit 0, no error, no warning', async () => {
      const r = await runCli(['check', '--url', publicUrl, '--list', LIST, '--json'])
      const report = JSON.parse(r.stdout) as CheckReport
      expect(problems(report), JSON.stringify(report.findings, null, 1)).toEqual([])
      expect(r.code).toBe(0)
      expect(byId(report, 'hello-url')[0].message).toBe(`hello's url is ${publicUrl}/v1/, the public URL.`)
      expect(byId(report, 'host-leak')[0].message).toContain('whatever the Host header (kinto.http_host is set)')
      expect(byId(report, 'private-urls')[0].message).toContain('__heartbeat__ 403')
      expect(byId(report, 'private-urls')[0].message).toContain('__metrics__ 403')
      expect(byId(report, 'private-urls')[0].message).toContain('__counters__ 403')
      // The console stays public while every private URL is closed (--allow none).
      expect(byId(report, 'admin-console')[0].message).toMatch(/^The admin console \(kinto-admin \d+\.\d+\.\d+\) is served at /)
    })
  })
})

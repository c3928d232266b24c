/**
 * Request logging of the runtime with the ini asking for JSON: one mozlog request.summary line
 * per request with upstream's fields, subrequest.summary lines for a batch, summaries for the
 * responses the runtime never sees (413), and no secret in any line: not the Authorization
 * header, not the hmac secret of the ini, not a password in a body or a database URL.
 */
import {existsSync} from 'node:fs'

import {afterEach, describe, expect, test} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {parseIni} from '../../src/lib/config/ini.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {flushLogLines, KintoLogging, loggingPlan} from '../../src/lib/monitoring/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {postgresqlSettings} from '../helpers/db.js'
import {tplLogging} from '../helpers/logging-ini.js'
import {basic} from './helpers.js'

const HMAC_SECRET = 'hmac-SECRET-6f1d0c'
const PASSWORD = 'pw-SECRET-93ab'
const BODY_PASSWORD = 'body-SECRET-77e2'

function jsonIni(level = 'INFO'): string {
  return tplLogging({formatter: 'json', stream: 'sys.stdout', rootLevel: level, formatters: ['json']})
}

interface Line {
  Type: string
  Severity: number
  Logger: string
  Fields: Record<string, unknown>
  [k: string]: unknown
}

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

function setup(raw: Record<string, string> = {}, level = 'INFO', patch?: (backends: ReturnType<typeof createBackends>) => void) {
  const out: string[] = []
  const logging = new KintoLogging(loggingPlan(parseIni(jsonIni(level))), {projectName: 'kinto', stdout: {write: (s: string) => void out.push(s)}})
  const settings = buildSettings({'kinto.userid_hmac_secret': HMAC_SECRET, ...raw}, {})
  const backends = createBackends(settings)
  patch?.(backends)
  const app = createApp({settings, backends, logger: logging.root, bodyLimit: 4096})
  closers.push(async () => {
    await app.close()
    await backends.close()
  })
  // Summaries wait to be written together (up to SUMMARY_LINGER_MS): write what waits before reading.
  const lines = () => (flushLogLines(), out).join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line)
  return {app, out, lines}
}

const auth = basic('alice', PASSWORD)

describe('request.summary', () => {
  test('one mozlog line per request, with upstream fields', async () => {
    const {app, lines} = setup()
    const res = await app.inject({
      method: 'GET',
      url: '/v1/buckets?_limit=2',
      headers: {authorization: auth, 'user-agent': 'tests/1.0', 'accept-language': 'fr', 'x-request-id': 'req-42'},
    })
    expect(res.statusCode).toBe(200)
    const summaries = lines().filter((l) => l.Type === 'request.summary')
    expect(summaries).toHaveLength(1)
    const [line] = summaries
    expect(line).toMatchObject({Logger: 'kinto', EnvVersion: '2.0', Severity: 6, Pid: process.pid})
    expect(typeof line.Hostname).toBe('string')
    expect(Number.isInteger(line.Timestamp)).toBe(true)
    expect(line.Fields).toMatchObject({
      agent: 'tests/1.0',
      path: '/v1/buckets',
      method: 'GET',
      lang: 'fr',
      rid: 'req-42',
      errno: 0,
      querystring: {_limit: '2'},
      authn_type: 'basicauth',
      code: 200,
    })
    expect(line.Fields.uid).toMatch(/^[0-9a-f]{64}$/)
    expect(typeof line.Fields.t).toBe('number')
    expect(typeof line.Fields.time).toBe('string')
    expect(line.Fields).not.toHaveProperty('msg') // upstream's summary message is empty
  })

  test('errors carry their errno; a request without X-Request-Id gets a UUID; anonymous has no uid', async () => {
    const {app, lines} = setup()
    const res = await app.inject({method: 'GET', url: '/v1/buckets/unknown'})
    expect(res.statusCode).toBe(401)
    const [line] = lines().filter((l) => l.Type === 'request.summary')
    expect(line.Fields).toMatchObject({path: '/v1/buckets/unknown', code: 401, errno: 104})
    expect(line.Fields.rid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(line.Fields).not.toHaveProperty('uid')
    expect(line.Fields).not.toHaveProperty('authn_type')
  })

  test("a line the runtime logs while serving a request carries that request's rid", async () => {
    const {app, lines} = setup()
    expect((await app.inject({method: 'PUT', url: '/v1/buckets/mine', headers: {authorization: auth}})).statusCode).toBe(201)
    const res = await app.inject({method: 'GET', url: '/v1/buckets/mine', headers: {authorization: basic('bob', 'other'), 'x-request-id': 'req-7'}})
    expect(res.statusCode).toBe(403)
    const denied = lines().filter((l) => l.Fields?.msg === 'Permission not granted.')
    expect(denied).toHaveLength(1)
    expect(denied[0]).toMatchObject({Type: 'kinto', Fields: {rid: 'req-7', uri: '/buckets/mine'}})
    const summary = lines().filter((l) => l.Type === 'request.summary').at(-1)!
    expect(summary.Fields).toMatchObject({rid: 'req-7', code: 403})
    // rid first, as upstream's lines (and the readable line: `… 403 2ms rid=req-7 …`).
    expect(Object.keys(summary.Fields)[0]).toBe('rid')
  })

  test('a batch logs one subrequest.summary per sub-request, and batch_size', async () => {
    const {app, lines} = setup()
    const res = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: {authorization: auth, 'content-type': 'application/json', 'x-request-id': 'batch-1'},
      payload: JSON.stringify({requests: [{method: 'PUT', path: '/buckets/b1'}, {path: '/buckets/b1'}, {path: '/buckets/missing'}]}),
    })
    expect(res.statusCode).toBe(200)
    const all = lines()
    const subs = all.filter((l) => l.Type === 'subrequest.summary')
    expect(subs.map((l) => [l.Fields.method, l.Fields.path])).toEqual([
      ['PUT', '/v1/buckets/b1'],
      ['GET', '/v1/buckets/b1'],
      ['GET', '/v1/buckets/missing'],
    ])
    for (const sub of subs) {
      expect(sub.Fields).toMatchObject({rid: 'batch-1', batch_size: 3, authn_type: 'basicauth', msg: 'subrequest.summary', errno: 0})
    }
    const summaries = all.filter((l) => l.Type === 'request.summary')
    expect(summaries).toHaveLength(1)
    expect(summaries[0].Fields).toMatchObject({path: '/v1/batch', method: 'POST', code: 200, batch_size: 3, rid: 'batch-1'})
  })

  test('responses the runtime never sees are summarized too (413, unroutable method)', async () => {
    const {app, lines} = setup()
    const big = await app.inject({method: 'POST', url: '/v1/buckets', headers: {authorization: auth, 'content-type': 'application/json'}, payload: JSON.stringify({data: {x: 'y'.repeat(5000)}})})
    expect(big.statusCode).toBe(413)
    const odd = await app.inject({method: 'PROPFIND' as 'GET', url: '/v1/', headers: {'x-request-id': 'odd-1'}})
    expect(odd.statusCode).toBe(405)
    const summaries = lines().filter((l) => l.Type === 'request.summary')
    expect(summaries.map((l) => [l.Fields.method, l.Fields.path, l.Fields.code, l.Fields.errno])).toEqual([
      ['POST', '/v1/buckets', 413, 113],
      ['PROPFIND', '/v1/', 405, 115],
    ])
    expect(summaries[1].Fields.rid).toBe('odd-1')
  })

  test('a backend failure is logged CRITICAL (mozlog Severity 2), as upstream', async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const url = 'postgresql://kinto:db-SECRET-5d1c@127.0.0.1:1/kinto'
    const {app, lines} = setup({
      ...postgresqlSettings(url, ['storage', 'permission']),
    })
    const res = await app.inject({method: 'GET', url: '/v1/buckets/b1', headers: {authorization: auth, 'x-request-id': 'req-db-down'}})
    expect(res.statusCode).toBe(503)
    const failure = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'req-db-down' && l.Fields.errno === 201)
    expect(failure).toHaveLength(1)
    expect(failure[0].Severity).toBe(2)
    expect(JSON.stringify(failure[0])).not.toContain('db-SECRET-5d1c')
    // one line that says it all, without the stack every request of the outage would repeat
    expect(failure[0].Fields.msg).toMatch(/^Cannot connect to PostgreSQL at 127\.0\.0\.1:1, database kinto as kinto: connection refused/)
    expect(JSON.stringify(failure[0])).not.toMatch(/\n\s+at |stack|traceback/i)
  })

  test('an attachment folder that cannot be written: a 500 and one line naming folder and reason, without the stack', async (ctx) => {
    // sysfs: a folder nobody (root included) may create files or folders in
    const base = '/sys/kernel/kinto-attachments-test'
    if (!existsSync('/sys/kernel')) {
      return ctx.skip('SKIPPED: no /sys/kernel here (a folder root may not write)')
    }
    const {app, lines} = setup({
      'kinto.includes': 'kinto_attachment',
      'kinto.bucket_create_principals': 'system.Authenticated',
      'kinto.attachment.base_path': base,
      'kinto.attachment.base_url': 'http://localhost/files/',
    })
    const json = {authorization: auth, 'content-type': 'application/json'}
    expect((await app.inject({method: 'PUT', url: '/v1/buckets/b', headers: json})).statusCode).toBe(201)
    expect((await app.inject({method: 'PUT', url: '/v1/buckets/b/collections/c', headers: json})).statusCode).toBe(201)
    const boundary = 'kinto-test-boundary'
    const payload = [`--${boundary}`, 'Content-Disposition: form-data; name="attachment"; filename="a.txt"', 'Content-Type: text/plain', '', 'hello', `--${boundary}--`, ''].join('\r\n')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/buckets/b/collections/c/records/r/attachment',
      headers: {authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-request-id': 'req-store'},
      payload,
    })
    expect(res.statusCode, res.body).toBe(500)
    expect(res.json()).toMatchObject({code: 500, errno: 999, error: 'Internal Server Error'})
    const failure = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'req-store')
    expect(failure).toHaveLength(1)
    expect(failure[0].Fields.msg).toBe('Cannot store the attachment in /sys/kernel/kinto-attachments-test: permission denied.')
    expect(JSON.stringify(failure[0])).not.toMatch(/\n\s+at |stack|traceback/i)
  })

  test("the default bucket's inner request is no batch sub-request: one request.summary, no subrequest.summary (as upstream)", async () => {
    const {app, lines} = setup({'kinto.includes': 'kinto.plugins.default_bucket'})
    const headers = {authorization: auth, 'x-request-id': 'req-default'}
    expect((await app.inject({method: 'PUT', url: '/v1/buckets/default/collections/c1', headers})).statusCode).toBe(201)
    expect((await app.inject({method: 'GET', url: '/v1/buckets/default/collections/c1/records', headers})).statusCode).toBe(200)
    const mine = lines().filter((l) => l.Fields.rid === 'req-default')
    expect(mine.map((l) => [l.Type, l.Fields.method, l.Fields.path])).toEqual([
      ['request.summary', 'PUT', '/v1/buckets/default/collections/c1'],
      ['request.summary', 'GET', '/v1/buckets/default/collections/c1/records'],
    ])
    expect(mine.every((l) => l.Fields.batch_size === undefined)).toBe(true)
  })

  test('an unexpected error (500) is logged ERROR with path, method, querystring and errno, as upstream', async () => {
    const {app, lines} = setup({}, 'INFO', (backends) => {
      const transaction = backends.transaction.bind(backends)
      backends.transaction = (fn) =>
        transaction((tx) => {
          const storage = Object.create(tx.storage) as typeof tx.storage
          storage.create = async () => {
            throw new TypeError('storage bug')
          }
          return fn({...tx, storage})
        })
    })
    const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1?_since=5&has_title=true', headers: {authorization: auth, 'x-request-id': 'req-500'}})
    expect(res.statusCode).toBe(500)
    const failure = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'req-500' && l.Severity === 3)
    expect(failure).toHaveLength(1)
    expect(failure[0].Fields).toMatchObject({path: '/v1/buckets/b1', method: 'PUT', errno: 999, querystring: {_since: '5', has_title: 'true'}, msg: 'storage bug'})
    expect(failure[0].Fields.traceback).toMatch(/TypeError: storage bug/)
  })

  test('a heartbeat check past heartbeat_timeout_seconds is named in the log, as upstream names it', async () => {
    const {app, lines} = setup({'kinto.heartbeat_timeout_seconds': '0.2'})
    await app.ready()
    app.kinto.heartbeats.set('slow', () => new Promise(() => {}))
    const res = await app.inject({method: 'GET', url: '/v1/__heartbeat__', headers: {'x-request-id': 'hb-slow'}})
    expect(res.statusCode).toBe(503)
    const errors = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'hb-slow' && l.Severity === 3)
    // one line per check still running (upstream: "'cache' heartbeat has exceeded timeout of 0.2 seconds.")
    expect(errors.map((l) => l.Fields.msg)).toEqual(["'slow' heartbeat has exceeded timeout of 0.2 seconds."])
  }, 5000)

  test('a heartbeat that cannot reach the database logs one line naming the check, without the stack', async () => {
    const url = 'postgresql://kinto:db-SECRET-5d1c@127.0.0.1:1/kinto'
    const {app, lines} = setup({
      ...postgresqlSettings(url, ['storage', 'permission']),
    })
    const res = await app.inject({method: 'GET', url: '/v1/__heartbeat__', headers: {'x-request-id': 'hb-db-down'}})
    expect(res.statusCode).toBe(503)
    expect(JSON.parse(res.body)).toEqual({storage: false, permission: false, cache: true})
    const failed = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'hb-db-down' && l.Severity === 3)
    expect(failed.map((l) => l.Fields.msg).sort()).toEqual(["'permission' heartbeat failed.", "'storage' heartbeat failed."])
    for (const line of failed) {
      expect(line.Fields.reason).toMatch(/^Cannot connect to PostgreSQL at 127\.0\.0\.1:1, database kinto as kinto: connection refused/)
      // what a load balancer polling every second during an outage would otherwise repeat
      expect(JSON.stringify(line)).not.toMatch(/\n\s+at |stack|traceback/i)
      expect(JSON.stringify(line)).not.toContain('db-SECRET-5d1c')
    }
  })

  test.each([
    ['Redis', {'kinto.cache_backend': 'kinto.core.cache.redis', 'kinto.cache_url': 'redis://:cache-SECRET-77a1@127.0.0.1:1/0'}, /^Cache backend failure \(Redis 127\.0\.0\.1:1\/0, set\): cannot connect \(.*ECONNREFUSED/],
    ['memcached', {'kinto.cache_backend': 'kinto.core.cache.memcached', 'kinto.cache_hosts': '127.0.0.1:1'}, /^Cache backend failure \(memcached 127\.0\.0\.1:1, set\): No servers available/],
  ])('a heartbeat that cannot reach %s logs one line naming the check, without the stack', async (_name, cache, reason) => {
    const {app, lines} = setup(cache)
    const res = await app.inject({method: 'GET', url: '/v1/__heartbeat__', headers: {'x-request-id': 'hb-cache-down'}})
    expect(res.statusCode).toBe(503)
    expect(JSON.parse(res.body)).toEqual({storage: true, permission: true, cache: false})
    const failed = lines().filter((l) => l.Type === 'kinto' && l.Fields.rid === 'hb-cache-down' && l.Severity === 3)
    expect(failed.map((l) => l.Fields.msg)).toEqual(["'cache' heartbeat failed."])
    expect(failed[0]!.Fields.reason).toMatch(reason)
    expect(JSON.stringify(failed[0])).not.toMatch(/\n\s+at |stack|traceback/i)
    expect(JSON.stringify(failed[0])).not.toContain('cache-SECRET-77a1')
  })

  test('the start-up and runtime messages go to the kinto logger', async () => {
    const {app, lines} = setup({'kinto.includes': 'kinto.plugins.quotas'})
    await app.ready()
    const warning = lines().find((l) => l.Type === 'kinto' && l.Severity === 4)
    expect(warning?.Fields.msg).toMatch(/kinto\.plugins\.quotas/)
  })
})

describe('no secret in the logs', () => {
  test('Authorization, the hmac secret, passwords in bodies: never in a line, even at DEBUG', async () => {
    const {app, out, lines} = setup({}, 'DEBUG')
    const headers = {authorization: auth, 'content-type': 'application/json'}
    await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers, payload: JSON.stringify({data: {password: BODY_PASSWORD}})})
    await app.inject({method: 'GET', url: '/v1/buckets/b1', headers})
    await app.inject({method: 'GET', url: '/v1/', headers: {authorization: `Bearer ${PASSWORD}`}})
    await app.inject({method: 'GET', url: '/v1/', headers: {authorization: 'Basic not-base64-' + PASSWORD}})
    await app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers,
      payload: JSON.stringify({defaults: {headers: {Authorization: basic('bob', PASSWORD)}}, requests: [{method: 'PUT', path: '/buckets/b2', body: {data: {password: BODY_PASSWORD}}}]}),
    })
    expect(lines().length).toBeGreaterThanOrEqual(6)
    const text = out.join('')
    const encoded = Buffer.from(`alice:${PASSWORD}`).toString('base64')
    for (const secret of [PASSWORD, BODY_PASSWORD, HMAC_SECRET, encoded, 'Basic ', 'Bearer ']) expect(text).not.toContain(secret)
  })

  test('account passwords are not logged', async () => {
    const {app, out, lines} = setup({
      'kinto.includes': 'kinto.plugins.accounts',
      'multiauth.policies': 'account',
      'multiauth.policy.account.use': 'kinto.plugins.accounts.authentication.AccountsAuthenticationPolicy',
      'kinto.account_create_principals': 'system.Everyone',
    })
    const created = await app.inject({method: 'PUT', url: '/v1/accounts/bob', headers: {'content-type': 'application/json'}, payload: JSON.stringify({data: {password: BODY_PASSWORD}})})
    expect(created.statusCode).toBe(201)
    const me = await app.inject({method: 'GET', url: '/v1/', headers: {authorization: basic('bob', BODY_PASSWORD)}})
    expect(JSON.parse(me.body).user.id).toBe('account:bob')
    expect(lines().length).toBeGreaterThanOrEqual(2)
    const text = out.join('')
    expect(text).toContain('"uid":"bob"')
    expect(text).not.toContain(BODY_PASSWORD)
    expect(text).not.toContain(Buffer.from(`bob:${BODY_PASSWORD}`).toString('base64'))
  })
})

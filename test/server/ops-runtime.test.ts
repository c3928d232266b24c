/**
 * The runtime's live operating state, in process: reload() after lossless ini edits (backoff,
 * readonly, maintenance, end of service), `*_expires` deadlines taking effect by themselves,
 * settings that need a restart reported and not applied, a file that does not load rejected
 * without changing anything, the run registry entry of a server.
 */
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import {connect} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'
import {afterEach, describe, expect, test} from 'vitest'

import {loadConfig, setIniValue, setIniValues} from '../../src/lib/config/index.js'
import {listRuns} from '../../src/lib/runs/registry.js'
import {backoffHeader} from '../../src/lib/server/headers.js'
import {DRAIN_GRACE_MS, startServer, type RunningServer} from '../../src/lib/server/start.js'
import {iniText} from '../client/helpers.js'
import {ALICE, client} from './helpers.js'

const open: Array<{server: RunningServer; dir: string}> = []
afterEach(async () => {
  for (const {server, dir} of open.splice(0)) {
    await server.close()
    rmSync(dir, {recursive: true, force: true})
  }
})

async function serve(settings: Record<string, string> = {}, record = false, clock?: () => number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-runtime-'))
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, iniText({'kinto.userid_hmac_secret': 'ops', ...settings}))
  const config = loadConfig(ini, {env: {}})
  const server = await startServer(config, {port: 0, logger: pino({level: 'silent'}), env: {}, record: record ? {role: 'server'} : undefined, clock})
  open.push({server, dir})
  const set = (key: string, value: string | null) => {
    setIniValue(ini, 'app:main', key, value)
    return server.reload()
  }
  return {server, ini, dir, request: client(server.app), set}
}

const iso = (ms: number) => new Date(ms).toISOString()

describe('backoff', () => {
  test('the header follows the ini after each reload', async () => {
    const {request, set} = await serve()
    expect((await request('GET', '/v1/')).headers.backoff).toBeUndefined()
    const r = set('kinto.backoff', '60')
    expect(r).toMatchObject({ok: true, applied: ['backoff'], needRestart: []})
    expect((await request('GET', '/v1/')).headers.backoff).toBe('60')
    // every response, errors included
    expect((await request('GET', '/v1/buckets/missing')).headers.backoff).toBe('60')
    set('kinto.backoff', null)
    expect((await request('GET', '/v1/')).headers.backoff).toBeUndefined()
  })

  test('backoff_percentage sends it on that share of responses', () => {
    const active = {backoff: 30, backoffPercentage: 25}
    expect(backoffHeader(active, () => 0.1)).toBe('30')
    expect(backoffHeader(active, () => 0.3)).toBeNull()
    expect(backoffHeader({backoff: 30, backoffPercentage: null}, () => 0.99)).toBe('30')
    expect(backoffHeader({backoff: null, backoffPercentage: 100}, () => 0)).toBeNull()
  })

  test('a deadline in the past turns it off; one reached while serving turns it off by itself', async () => {
    let now = Date.now()
    const {request, ini, server} = await serve({'kinto.backoff': '10', 'kinto.backoff_expires': iso(now - 1000)}, false, () => now)
    expect((await request('GET', '/v1/')).headers.backoff).toBeUndefined()
    setIniValues(ini, [{section: 'app:main', key: 'kinto.backoff_expires', value: iso(now + 60_000)}])
    expect(server.reload().ok).toBe(true)
    expect((await request('GET', '/v1/')).headers.backoff).toBe('10')
    now += 59_000
    expect((await request('GET', '/v1/')).headers.backoff).toBe('10')
    now += 2_000
    expect((await request('GET', '/v1/')).headers.backoff).toBeUndefined()
  })
})

describe('readonly', () => {
  test('started readonly: writes 405 errno 115, hello says so; switched off by a reload, writes work', async () => {
    const {request, set} = await serve({'kinto.readonly': 'true'})
    const put = await request('PUT', '/v1/buckets/b', {body: {}})
    expect(put.status).toBe(405)
    expect(put.body.errno).toBe(115)
    expect((await request('POST', '/v1/batch', {body: {requests: []}})).status).toBe(405)
    const hello = await request('GET', '/v1/')
    expect(hello.body.settings.readonly).toBe(true)
    expect(hello.headers['cache-control']).toMatch(/max-age=/)
    // reads of lists never written are served (no timestamp is stored)
    expect((await request('GET', '/v1/buckets')).status).toBe(200)
    // preflights do not offer writes
    const preflight = await request('OPTIONS', '/v1/buckets/b', {auth: null, headers: {origin: 'http://x.test', 'access-control-request-method': 'PUT'}})
    expect(preflight.status).toBe(400)

    expect(set('kinto.readonly', 'false')).toMatchObject({ok: true, applied: ['readonly']})
    expect((await request('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    expect((await request('GET', '/v1/')).body.settings.readonly).toBe(false)
    const ok = await request('OPTIONS', '/v1/buckets/b', {auth: null, headers: {origin: 'http://x.test', 'access-control-request-method': 'PUT'}})
    expect(ok.status).toBe(200)
  })

  test('switched on by a reload, and off again when readonly_expires passes', async () => {
    let now = Date.now()
    const {request, ini, server} = await serve({}, false, () => now)
    expect((await request('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    setIniValues(ini, [
      {section: 'app:main', key: 'kinto.readonly', value: 'true'},
      {section: 'app:main', key: 'kinto.readonly_expires', value: iso(now + 60_000)},
    ])
    expect(server.reload()).toMatchObject({ok: true, applied: ['readonly', 'readonly_expires']})
    expect((await request('PUT', '/v1/buckets/c', {body: {}})).status).toBe(405)
    expect((await request('GET', '/v1/buckets/b')).status).toBe(200)
    now += 61_000
    expect((await request('PUT', '/v1/buckets/c', {body: {}})).status).toBe(201)
    expect((await request('GET', '/v1/')).body.settings.readonly).toBe(false)
  })
})

describe('maintenance', () => {
  test('writes 503 errno 201 with Retry-After, reads and read batches served, hello and heartbeat say so', async () => {
    const {request, set} = await serve({'kinto.retry_after_seconds': '7'})
    expect((await request('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    set('kinto.maintenance', 'true')
    const put = await request('PUT', '/v1/buckets/c', {body: {}})
    expect(put.status).toBe(503)
    expect(put.body).toMatchObject({code: 503, errno: 201})
    expect(put.headers['retry-after']).toBe('7')
    expect((await request('DELETE', '/v1/buckets/b')).status).toBe(503)
    expect((await request('GET', '/v1/buckets/b')).status).toBe(200)
    const reads = await request('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b'}, {path: '/buckets'}]}})
    expect(reads.status).toBe(200)
    expect(reads.body.responses.map((r: {status: number}) => r.status)).toEqual([200, 200])
    const mixed = await request('POST', '/v1/batch', {body: {requests: [{path: '/buckets/b'}, {method: 'PUT', path: '/buckets/d', body: {}}]}})
    expect(mixed.status).toBe(503)
    expect(mixed.headers['retry-after']).toBe('7')
    expect((await request('GET', '/v1/buckets/d')).status).toBe(403) // nothing was written
    const hello = await request('GET', '/v1/')
    expect(hello.body.settings).toMatchObject({maintenance: true, readonly: false})
    const hb = await request('GET', '/v1/__heartbeat__', {auth: null})
    expect(hb.status).toBe(200)
    expect(hb.body).toMatchObject({storage: true, permission: true, cache: true, maintenance: true})

    set('kinto.maintenance', null)
    expect((await request('PUT', '/v1/buckets/c', {body: {}})).status).toBe(201)
    expect((await request('GET', '/v1/')).body.settings.maintenance).toBeUndefined()
    expect((await request('GET', '/v1/__heartbeat__', {auth: null})).body.maintenance).toBeUndefined()
  })
})

describe('end of service', () => {
  test('Alert before the date, 410 errno 202 after, both taken by a reload', async () => {
    const {request, ini, server} = await serve({'kinto.eos_message': 'Moved', 'kinto.eos_url': 'https://example.test/new'})
    setIniValue(ini, 'app:main', 'kinto.eos', '2999-01-01')
    server.reload()
    const soft = await request('GET', '/v1/')
    expect(soft.status).toBe(200)
    expect(JSON.parse(String(soft.headers.alert))).toEqual({code: 'soft-eol', message: 'Moved', url: 'https://example.test/new'})
    setIniValue(ini, 'app:main', 'kinto.eos', '2000-01-01')
    server.reload()
    const hard = await request('GET', '/v1/')
    expect(hard.status).toBe(410)
    expect(hard.body.errno).toBe(202)
    expect(JSON.parse(String(hard.headers.alert)).code).toBe('hard-eol')
  })

  test('before the date, error responses carry the soft-eol Alert too (upstream sets it on whatever the view answered)', async () => {
    const {request, ini, server} = await serve({'kinto.eos_message': 'Moved', 'kinto.eos_url': 'https://example.test/new'})
    setIniValue(ini, 'app:main', 'kinto.eos', '2999-01-01')
    server.reload()
    const expected = {code: 'soft-eol', message: 'Moved', url: 'https://example.test/new'}
    const answers = [
      await request('GET', '/v1/nothing'), // 404 from the router
      await request('GET', '/v1/buckets', {auth: null}), // 401
      await request('GET', '/v1/buckets/missing'), // 403
      await request('POST', '/v1/buckets/b1', {body: {}}), // 405
      await request('POST', '/v1/batch', {body: {requests: 'no'}}), // 400
    ]
    expect(answers.map((r) => r.status)).toEqual([404, 401, 403, 405, 400])
    for (const r of answers) expect(JSON.parse(String(r.headers.alert))).toEqual(expected)
  })

  test('the Alert header is written as upstream writes it (rapidjson dumps: compact, non-ASCII escaped as \\uXXXX), so any eos_message is served', async () => {
    const {ini, server} = await serve({'kinto.eos_message': 'Fin du service — merci 🙂 "é"', 'kinto.eos_url': 'https://example.test/new'})
    setIniValue(ini, 'app:main', 'kinto.eos', '2999-01-01')
    server.reload()
    // Over a real socket: Node refuses a header value with characters beyond Latin-1.
    const soft = await fetch(`${server.url}`)
    expect(soft.status).toBe(200)
    expect(soft.headers.get('alert')).toBe(
      '{"code":"soft-eol","message":"Fin du service \\u2014 merci \\uD83D\\uDE42 \\"\\u00E9\\"","url":"https://example.test/new"}',
    )
    setIniValue(ini, 'app:main', 'kinto.eos', '2000-01-01')
    server.reload()
    const hard = await fetch(`${server.url}buckets`)
    expect(hard.status).toBe(410)
    expect(JSON.parse(hard.headers.get('alert')!)).toEqual({code: 'hard-eol', message: 'Fin du service — merci 🙂 "é"', url: 'https://example.test/new'})
    // The deprecated `_to` filter's soft-eol Alert has the same form.
    const {request} = await serve({'kinto.bucket_create_principals': 'system.Authenticated'})
    await request('PUT', '/v1/buckets/b', {body: {}})
    await request('PUT', '/v1/buckets/b/collections/c', {body: {}})
    const to = await request('GET', '/v1/buckets/b/collections/c/records?_to=5')
    expect(String(to.headers.alert)).toMatch(/^\{"code":"soft-eol","message":"_to is now deprecated, you should use _before instead","url":"[^"]+"\}$/)
  })
})

describe('reload', () => {
  test('settings that need a restart are reported by name and not applied', async () => {
    const {request, ini, server} = await serve({'kinto.paginate_by': '2'})
    setIniValues(ini, [
      {section: 'app:main', key: 'kinto.storage_max_fetch_size', value: '5'},
      {section: 'app:main', key: 'kinto.userid_hmac_secret', value: 'changed-secret'},
      {section: 'app:main', key: 'kinto.paginate_by', value: '1'},
      {section: 'server:main', key: 'host', value: '0.0.0.0'},
    ])
    const r = server.reload()
    expect(r.ok).toBe(true)
    expect(r.applied).toEqual(['paginate_by'])
    expect(r.needRestart).toEqual(['storage_max_fetch_size', 'userid_hmac_secret', 'server:main host'])
    expect(JSON.stringify(r)).not.toContain('changed-secret')
    expect(server.app.kinto.settings.userid_hmac_secret).toBe('ops')
    for (const id of ['a', 'b']) await request('PUT', `/v1/buckets/${id}`, {body: {}, auth: ALICE})
    expect((await request('GET', '/v1/buckets')).body.data).toHaveLength(1) // paginate_by 1 applied
  })

  test('a file that does not load is rejected and the settings in force are kept', async () => {
    const {request, ini, server, set} = await serve()
    set('kinto.backoff', '5')
    writeFileSync(ini, readFileSync(ini, 'utf8').replace('kinto.backoff = 5', 'kinto.backoff = soon'))
    const r = server.reload()
    expect(r.ok).toBe(false)
    expect(r.error).toMatch(/backoff/)
    expect((await request('GET', '/v1/')).headers.backoff).toBe('5')
    writeFileSync(ini, readFileSync(ini, 'utf8').replace('kinto.backoff = soon', 'kinto.backoff = 5\nkinto.maintenance_expires = tomorrow'))
    const bad = server.reload()
    expect(bad.ok).toBe(false)
    expect(bad.error).toMatch(/maintenance_expires.*not a date/)
  })

  test('the run registry entry says what the server applied, and goes when it stops', async () => {
    const {server, ini, dir, set} = await serve({}, true)
    const [entry] = listRuns(ini)
    expect(entry).toMatchObject({pid: process.pid, role: 'server', url: server.url, needRestart: []})
    expect(entry.toggles).toMatchObject({backoff: null, readonly: false, maintenance: false})
    set('kinto.maintenance', 'true')
    set('kinto.storage_max_fetch_size', '9')
    const [after] = listRuns(ini)
    expect(after.toggles?.maintenance).toBe(true)
    expect(after.needRestart).toEqual(['storage_max_fetch_size'])
    expect(after.configHash).not.toBe(entry.configHash)
    const file = path.join(dir, '.kinto-run', `${process.pid}.json`)
    expect(existsSync(file)).toBe(true)
    await server.close()
    expect(existsSync(file)).toBe(false)
    expect(listRuns(ini)).toEqual([])
  })
})

describe('stopping under keep-alive load', () => {
  // A retiring worker of a rolling restart (or a server told SIGTERM) must not close a kept-alive
  // connection under a client that is about to reuse it: that client's request fails with
  // ECONNRESET. Such connections get `Connection: close` with their next answer instead.
  test('clients reusing their connections see no reset while the server closes', async () => {
    const {server} = await serve()
    const agent = new http.Agent({keepAlive: true, maxSockets: 4})
    const errors: string[] = []
    let stop = false
    let answered = 0
    const get = () =>
      new Promise<void>((resolve) => {
        const r = http.get(`${server.url}__heartbeat__`, {agent}, (res) => {
          res.resume()
          res.on('end', () => {
            answered++
            resolve()
          })
        })
        r.on('error', (e: NodeJS.ErrnoException) => {
          // Refused: the server no longer accepts new connections (expected once it closes).
          if (e.code === 'ECONNREFUSED') stop = true
          else errors.push(e.code ?? e.message)
          resolve()
        })
      })
    const loop = async () => {
      while (!stop) await get()
    }
    const loops = [loop(), loop(), loop(), loop()]
    await new Promise((r) => setTimeout(r, 300))
    const before = answered
    const report = await server.close()
    stop = true
    await Promise.all(loops)
    agent.destroy()
    expect(before).toBeGreaterThan(10)
    expect(errors).toEqual([])
    expect(report.forced).toBe(false)
  })

  /** A connection whose request (a PUT) never finishes sending its body, once the server has it. */
  async function requestNeverFinished(url: string) {
    const {port} = new URL(url)
    const socket = connect(Number(port), '127.0.0.1')
    await new Promise<void>((r) => socket.once('connect', () => r()))
    socket.on('error', () => {})
    socket.write('PUT /v1/buckets/b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
    await new Promise((r) => setTimeout(r, 200))
    return socket
  }

  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'still closing'>((r) => setTimeout(() => r('still closing'), ms))])

  // `kinto start` says `SIGTERM again: at once`: a second signal soon after the first (a test
  // harness stopping a server and starting the next on its port, an operator's double Ctrl-C) came
  // while kept-alive connections were being drained, and was lost: the server went on waiting for
  // its requests, up to the shutdown deadline.
  test('cutNow while close() still drains kept-alive connections cuts at once', async () => {
    const {server} = await serve()
    const socket = await requestNeverFinished(server.url)
    const closing = server.close()
    await new Promise((r) => setTimeout(r, 50))
    server.cutNow('A second SIGTERM')
    const report = await within(closing, DRAIN_GRACE_MS / 2)
    socket.destroy()
    expect(report).toEqual({forced: true})
  })

  test('cutNow just before close() (while the control socket closes) makes that close cut at once', async () => {
    const {server} = await serve()
    const socket = await requestNeverFinished(server.url)
    server.cutNow('A second SIGTERM')
    const report = await within(server.close(), DRAIN_GRACE_MS / 2)
    socket.destroy()
    expect(report).toEqual({forced: true})
  })
})

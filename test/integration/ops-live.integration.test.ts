/**
 * A live `kinto start` under a bounded loopback load: `kinto backoff 60` then `kinto backoff off`
 * while requests run — every response succeeds, the Backoff header appears and disappears within
 * a second of each edit, the process stays the same. Then SIGTERM during a slow request: the
 * request completes, the process exits 0. On memory, the embedded database and (CI) PostgreSQL.
 */
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'

import {afterAll, describe, expect, test} from 'vitest'

import {listRuns} from '../../src/lib/runs/registry.js'
import {runCli} from '../helpers/cli.js'
import {OPS_KINDS, opsIni, sleep, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

const inis: OpsIni[] = []
const servers: Started[] = []
afterAll(async () => {
  for (const s of servers) await s.stop()
  for (const i of inis) await i.cleanup()
})

/** A GET on a new connection (fetch would reuse one kept alive from an earlier request). */
function freshConnectionGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {agent: false}, (res) => {
      res.resume()
      resolve(res.statusCode!)
    })
    req.on('error', reject)
    req.end()
  })
}

const AUTH = 'Basic ' + Buffer.from('loader:pw').toString('base64')

interface Sample {
  start: number
  end: number
  status: number
  backoff: string | null
}

/** `concurrency` loops of requests (reads and writes) until stop(); every response is recorded. */
function load(base: string, concurrency = 3) {
  const samples: Sample[] = []
  const failures: string[] = []
  let running = true
  const loops = Array.from({length: concurrency}, async (_, n) => {
    let k = 0
    while (running) {
      const start = Date.now()
      const write = k++ % 3 === 0
      try {
        const res = await fetch(write ? `${base}buckets/load/collections/c${n}/records/r${k}` : `${base}buckets/load/collections/c${n}/records`, {
          method: write ? 'PUT' : 'GET',
          headers: {Authorization: AUTH, 'Content-Type': 'application/json'},
          body: write ? JSON.stringify({data: {k}}) : undefined,
        })
        await res.arrayBuffer()
        samples.push({start, end: Date.now(), status: res.status, backoff: res.headers.get('backoff')})
      } catch (error) {
        failures.push(String(error))
      }
      await sleep(5)
    }
  })
  return {
    samples,
    failures,
    async stop() {
      running = false
      await Promise.all(loops)
    },
  }
}

async function prepare(base: string): Promise<void> {
  const put = (p: string) => fetch(`${base}${p}`, {method: 'PUT', headers: {Authorization: AUTH, 'Content-Type': 'application/json'}, body: '{}'})
  expect((await put('buckets/load')).status).toBe(201)
  for (let n = 0; n < 3; n++) expect((await put(`buckets/load/collections/c${n}`)).status).toBe(201)
}

describe.each(OPS_KINDS)('%s', (kind) => {
  test('backoff on and off under load: no failed request, header within a second of each edit, same process', async () => {
    const i = await opsIni(kind)
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    servers.push(server)
    await prepare(server.url)
    const traffic = load(server.url)
    await sleep(500)

    const on = await runCli(['backoff', '60', '--ini', i.ini, '--json'])
    const onDone = Date.now()
    const onWritten = statSync(i.ini).mtimeMs
    expect(on.code, on.stderr).toBe(0)
    expect(JSON.parse(on.stdout).reload.servers).toEqual([expect.objectContaining({pid: server.pid, outcome: 'reloaded'})])
    await sleep(1000)
    const offStarted = Date.now()
    const off = await runCli(['backoff', 'off', '--ini', i.ini, '--json'])
    const offDone = Date.now()
    const offWritten = statSync(i.ini).mtimeMs
    expect(off.code, off.stderr).toBe(0)
    await sleep(1000)
    await traffic.stop()

    const {samples, failures} = traffic
    expect(failures).toEqual([])
    expect(samples.length).toBeGreaterThan(50)
    expect(samples.filter((s) => s.status !== 200 && s.status !== 201)).toEqual([])
    // before the first edit: no header; between the commands: always; after the second: never
    expect(samples.filter((s) => s.end < onWritten && s.backoff !== null)).toEqual([])
    const between = samples.filter((s) => s.start > onDone && s.end < offStarted)
    expect(between.length).toBeGreaterThan(10)
    expect(between.every((s) => s.backoff === '60')).toBe(true)
    expect(samples.filter((s) => s.start > offDone && s.backoff !== null)).toEqual([])
    // within a second of each edit of the file
    const firstOn = samples.find((s) => s.backoff === '60')!
    expect(firstOn.end - onWritten).toBeLessThan(1000)
    const lastOn = samples.filter((s) => s.backoff !== null).at(-1)!
    expect(lastOn.start - offWritten).toBeLessThan(1000)
    // the same process served it all
    expect(server.child.exitCode).toBeNull()
    expect(listRuns(i.ini).map((e) => e.pid)).toEqual([server.pid])
    expect(server.output()).toMatch(/SIGHUP: reloaded; applied backoff\./)
    expect(server.output()).not.toMatch(/Error|permission denied/i)
  }, 180_000)

  test('SIGTERM during a slow request: it completes, new connections are refused, exit 0', async () => {
    const i = inis.at(-1)!
    let server = servers.at(-1)!
    if (server.child.exitCode !== null) {
      server = await spawnStart(['--ini', i.ini, '--port', '0'])
      servers.push(server)
    }
    const url = new URL(server.url)
    const body = JSON.stringify({data: {slow: 'x'.repeat(2000)}})
    let req!: ReturnType<typeof httpRequest>
    const response = new Promise<{status: number; body: string}>((resolve, reject) => {
      req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'PUT',
          path: `${url.pathname}buckets/load/collections/c0/records/slow`,
          headers: {Authorization: AUTH, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)},
        },
        (res) => {
          let text = ''
          res.on('data', (d) => (text += d))
          res.on('end', () => resolve({status: res.statusCode!, body: text}))
        },
      )
      req.on('error', reject)
    })
    // Awaited below; marked handled meanwhile, so that a failure during the waits is reported there.
    response.catch(() => undefined)
    // In the test's own flow (not in timer callbacks, where a failed expect is an unhandled error
    // and leaves the request open until the test times out): the body is finished in any case.
    try {
      req.write(body.slice(0, 100))
      await sleep(300)
      server.child.kill('SIGTERM')
      await sleep(700)
      // the request is still in flight: the process waits for it and takes no new connection
      expect(server.child.exitCode).toBeNull()
      // (a connection of its own: one kept alive from the load above is still answered during
      // the stop's grace, with `Connection: close`, so that its client is not cut mid-request)
      await expect(freshConnectionGet(`${server.url}__lbheartbeat__`)).rejects.toThrow()
    } finally {
      req.end(body.slice(100))
    }
    const done = await response
    expect(done.status).toBe(201)
    expect(JSON.parse(done.body).data.slow).toHaveLength(2000)
    expect(await server.exit).toEqual({code: 0, signal: null})
    expect(server.output()).toMatch(/SIGTERM: finishing requests in flight/)
    expect(listRuns(i.ini)).toEqual([])
  }, 120_000)
})

test('backoff --for: the running server drops the header by itself when the time is up', async () => {
  const i = await opsIni('memory')
  inis.push(i)
  const server = await spawnStart(['--ini', i.ini, '--port', '0'])
  servers.push(server)
  const r = await runCli(['backoff', '15', '--for', '3s', '--ini', i.ini])
  expect(r.code, r.stderr).toBe(0)
  const until = Date.parse(/until (\S+)\./.exec(r.stdout)![1])
  const header = async () => (await fetch(server.url)).headers.get('backoff')
  if (Date.now() < until - 200) expect(await header()).toBe('15')
  await sleep(Math.max(0, until - Date.now()) + 100)
  expect(await header()).toBeNull()
  expect(server.output().match(/SIGHUP: reloaded/g)).toHaveLength(1)
  const s = JSON.parse((await runCli(['status', '--ini', i.ini, '--json'])).stdout)
  expect(s.configured.backoff).toMatchObject({set: true, active: false, expired: true})
  // The server applied the toggle with its date: past it, the server is shown without it too.
  expect(s.servers).toEqual([expect.objectContaining({pid: server.pid, current: true, backoff: null})])
}, 90_000)

test('status on an ini edited into an error still lists its running servers (exit 1, the error, what they run)', async () => {
  const i = await opsIni('memory')
  inis.push(i)
  const server = await spawnStart(['--ini', i.ini, '--port', '0'])
  servers.push(server)
  const original = readFileSync(i.ini, 'utf8')
  writeFileSync(i.ini, original.replace('[app:main]', '[app:main]\nkinto.paginate_by = many'))
  try {
    const json = await runCli(['status', '--ini', i.ini, '--json'])
    expect(json.code).toBe(1)
    const s = JSON.parse(json.stdout)
    expect(s.configError).toMatchObject({code: 'KINTO_CONFIG_INVALID', message: expect.stringContaining("key 'kinto.paginate_by'")})
    expect(s.configured).toBeNull()
    expect(s.servers).toEqual([expect.objectContaining({pid: server.pid, current: false})])
    const text = await runCli(['status', '--ini', i.ini])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain(`cannot be read: ${i.ini}`)
    expect(text.stdout).toMatch(new RegExp(`pid ${server.pid} .*runs an OLDER version of the file \\(fix the ini, then kinto reload\\)`))
  } finally {
    writeFileSync(i.ini, original)
  }
}, 60_000)

/**
 * `kinto start` as a real process: listens as configured, serves the API, exits 0 on SIGTERM
 * after finishing; refuses to start (exit 1, one line and a hint) on configuration errors.
 */
import type {ChildProcess} from 'node:child_process'
import {mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'
import {afterAll, afterEach, describe, expect, test} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {startServer} from '../../src/lib/server/start.js'
import {iniText} from '../client/helpers.js'
import {runCli} from '../helpers/cli.js'
import {until} from '../helpers/fault-load.js'
import {spawnStart} from '../helpers/ops-servers.js'

const dirs: string[] = []
function iniFile(settings: Record<string, string>, name = 'kinto.ini'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-start-'))
  dirs.push(dir)
  const file = path.join(dir, name)
  writeFileSync(file, iniText(settings))
  return file
}
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

describe('kinto start', () => {
  const running: ChildProcess[] = []
  afterEach(() => {
    for (const c of running.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
  })

  test('serves the API and stops with exit 0 on SIGTERM', async () => {
    const ini = iniFile({'kinto.userid_hmac_secret': 'x'})
    const started = await spawnStart(['--ini', ini, '--port', '0'])
    running.push(started.child)
    expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/$/)
    const hello = await fetch(started.url)
    expect(hello.status).toBe(200)
    expect(((await hello.json()) as {config: {path: string}}).config.path).toBe(ini)
    const put = await fetch(`${started.url}buckets/b`, {
      method: 'PUT',
      headers: {Authorization: 'Basic ' + Buffer.from('a:b').toString('base64'), 'Content-Type': 'application/json'},
      body: '{}',
    })
    expect(put.status).toBe(201)
    // Any Basic credentials were a user: upstream Kinto would have answered 401, so it is said.
    expect(started.stderr()).toMatch(/^Warning: multiauth\.policies is empty: .*where upstream Kinto authenticates nobody/m)
    started.child.kill('SIGTERM')
    expect(await started.exit).toEqual({code: 0, signal: null})
    expect(started.stderr()).toMatch(/SIGTERM: finishing requests in flight/)
  }, 90_000)

  test('a reader of its output that went away (a pipe to head, a logging daemon restarted) stops nothing: SIGHUP and SIGTERM still work, exit 0', async () => {
    const ini = iniFile({})
    const started = await spawnStart(['--ini', ini, '--port', '0'])
    running.push(started.child)
    // The read ends closed: every later line the server writes fails with EPIPE.
    started.child.stdout!.destroy()
    started.child.stderr!.destroy()
    expect((await fetch(started.url)).status).toBe(200)
    started.child.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 500))
    expect((await fetch(started.url)).status).toBe(200)
    started.child.kill('SIGTERM')
    expect(await started.exit).toEqual({code: 0, signal: null})
    // A graceful stop, not a crash: the run registry entry is gone.
    expect(readdirSync(path.join(path.dirname(ini), '.kinto-run')).filter((f) => f.startsWith(`${started.pid}.`))).toEqual([])
  }, 90_000)

  test('--reload: a change of the ini\'s content is reloaded (a file renamed over it too); the same content or a broken file keeps what is in force', async () => {
    const ini = iniFile({})
    const started = await spawnStart(['--ini', ini, '--port', '0', '--reload'])
    running.push(started.child)
    const backoff = async () => (await fetch(started.url)).headers.get('backoff')
    const reloads = () => started.stderr().match(/changed \(--reload\)/g)?.length ?? 0
    expect(await backoff()).toBeNull()
    // Saved as editors do: a new file renamed over the old one.
    writeFileSync(`${ini}.new`, iniText({'kinto.backoff': '7'}))
    renameSync(`${ini}.new`, ini)
    expect(await until(async () => (await backoff()) === '7', 10_000), 'the new backoff served').toBe(true)
    expect(started.stderr()).toMatch(/SIGHUP: reloaded; applied backoff/)
    expect(reloads()).toBe(1)
    // Written again with the same content: no reload.
    writeFileSync(ini, iniText({'kinto.backoff': '7'}))
    await new Promise((r) => setTimeout(r, 1000))
    expect(reloads()).toBe(1)
    // A broken file: refused, the settings in force kept.
    writeFileSync(ini, `${iniText({'kinto.backoff': '9'})}\nnot a setting\n`)
    expect(await until(() => /the ini was not reloaded \(.*not a setting/.test(started.stderr()), 10_000), started.stderr()).toBe(true)
    expect(await backoff()).toBe('7')
    started.child.kill('SIGTERM')
    expect(await started.exit).toEqual({code: 0, signal: null})
  }, 90_000)

  test('SIGUSR2 (the rolling restart of --workers) does not kill a single-process server: it says so and serves on', async () => {
    const ini = iniFile({})
    const started = await spawnStart(['--ini', ini, '--port', '0'])
    running.push(started.child)
    started.child.kill('SIGUSR2')
    await new Promise((r) => setTimeout(r, 500))
    expect([started.child.exitCode, started.child.signalCode]).toEqual([null, null])
    expect((await fetch(started.url)).status).toBe(200)
    expect(started.stderr()).toMatch(/SIGUSR2: .*restart it with its process manager/)
    started.child.kill('SIGTERM')
    expect(await started.exit).toEqual({code: 0, signal: null})
  }, 90_000)

  test('[server:main] port is used unless --port says otherwise', async () => {
    const free = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as {port: number}).port
        s.close(() => resolve(port))
      })
    })
    const ini = iniFile({})
    const started = await spawnStart(['--ini', ini, '--port', String(free)])
    running.push(started.child)
    expect(started.url).toBe(`http://127.0.0.1:${free}/v1/`)
    started.child.kill('SIGINT')
    expect((await started.exit).code).toBe(0)
  }, 90_000)

  test('an address in use is exit 1 with a hint', async () => {
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
    const port = (blocker.address() as {port: number}).port
    try {
      const r = await runCli(['start', '--ini', iniFile({}), '--port', String(port)])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/Cannot listen on 127\.0\.0\.1:\d+: the address is already in use/)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    } finally {
      blocker.close()
    }
  }, 90_000)

  test('an address this machine does not have is said in words, with a hint about --host (not node\'s "listen EADDRNOTAVAIL…")', async () => {
    // 203.0.113.0/24 is TEST-NET-3: on no interface
    const r = await runCli(['start', '--ini', iniFile({}), '--host', '203.0.113.5', '--port', '8080'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      'Error: Cannot listen on 203.0.113.5:8080: no network interface of this machine has that address.\n' +
        'Hint: Choose a --host this machine has (127.0.0.1, 0.0.0.0 for every interface), or [server:main] host in the ini.\n',
    )
    expect(r.stderr).not.toMatch(/\n\s+at /)
  }, 90_000)

  test('a host no resolver takes (a 300-character name) is said in words, not "unexpected failure: getaddrinfo EINVAL"', async () => {
    const host = 'x'.repeat(300)
    const r = await runCli(['start', '--ini', iniFile({}), '--host', host, '--port', '8080'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`Error: Cannot listen on ${host}:8080: the host is no address or host name.\n`)
    expect(r.stderr).not.toMatch(/unexpected failure|\n\s+at /)
  }, 90_000)

  test('unknown plugins and policies refuse to start', async () => {
    const plugin = await runCli(['start', '--ini', iniFile({'kinto.includes': 'kinto.plugins.unknown'}), '--port', '0'])
    expect(plugin.code).toBe(1)
    expect(plugin.stderr).toMatch(/Unknown plugin 'kinto.plugins.unknown' in kinto.includes/)
    const policy = await runCli(['start', '--ini', iniFile({'multiauth.policies': 'magic'}), '--port', '0'])
    expect(policy.code).toBe(1)
    expect(policy.stderr).toMatch(/Authentication policy 'magic'/)
  }, 90_000)

  test('an embedded database without schema refuses to start, naming kinto migrate', async () => {
    const settings: Record<string, string> = {}
    for (const b of ['storage', 'permission', 'cache']) {
      settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
      settings[`kinto.${b}_url`] = 'pglite:data'
    }
    const ini = iniFile(settings)
    const r = await runCli(['start', '--ini', ini, '--port', '0'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/schema is not installed/)
    expect(r.stderr).toMatch(/kinto migrate --ini/)
  }, 90_000)
})

describe('graceful close', () => {
  test('requests in flight finish before close() resolves', async () => {
    const config = loadConfig(iniFile({}), {env: {}})
    const server = await startServer(config, {port: 0, logger: pino({level: 'silent'})})
    let release!: () => void
    server.app.kinto.heartbeats.set('slow', () => new Promise((resolve) => (release = () => resolve(true))))
    const inFlight = fetch(`${server.url}__heartbeat__`)
    await new Promise((r) => setTimeout(r, 100))
    const closing = server.close()
    let closed = false
    void closing.then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 100))
    expect(closed).toBe(false)
    release()
    const response = await inFlight
    expect(response.status).toBe(200)
    await closing
    expect(closed).toBe(true)
    await expect(fetch(`${server.url}__lbheartbeat__`)).rejects.toThrow()
  }, 30_000)

  test('a request whose client went away is still waited for before the pools close', async () => {
    const config = loadConfig(iniFile({}), {env: {}})
    const server = await startServer(config, {port: 0, logger: pino({level: 'silent'})})
    let release!: () => void
    let finished = false
    server.app.kinto.heartbeats.set('slow', () => new Promise((resolve) => (release = () => resolve(true))))
    server.app.kinto.hooks.on('response', () => (finished = true))
    const client = new AbortController()
    const inFlight = fetch(`${server.url}__heartbeat__`, {signal: client.signal}).catch(() => 'aborted')
    await new Promise((r) => setTimeout(r, 100))
    // A client timing out, a proxy giving up: the connection is gone, the handler still runs.
    client.abort()
    expect(await inFlight).toBe('aborted')
    const closing = server.close()
    let closed = false
    void closing.then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 300))
    // The close waited for connections only: it closed the pools under the running handler,
    // whose next query failed ("Cannot use a pool after calling end on the pool", a stack trace).
    expect(closed).toBe(false)
    release()
    expect(await closing).toEqual({forced: false})
    expect(finished).toBe(true)
  }, 30_000)
})

/**
 * `kinto start` on a unix socket ([server:main] unix_socket, unix_socket_perms): the mode is
 * applied, a stale socket file is replaced, a live one or a regular file is refused; wait-ready,
 * status and backoff reach it. And the shutdown deadline: a request that never finishes is cut
 * at --shutdown-timeout and the exit code says so (1).
 */
import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {connect, type Socket} from 'node:net'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {Agent, request} from 'undici'
import {afterAll, describe, expect, test} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {runCli} from '../helpers/cli.js'
import {opsIni, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

const inis: OpsIni[] = []
const servers: Started[] = []
const dirs: string[] = []
afterAll(async () => {
  for (const s of servers) await s.stop()
  for (const i of inis) await i.cleanup()
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

async function socketIni(perms = '666'): Promise<{i: OpsIni; socket: string}> {
  // unix socket paths are short (108 bytes): a short folder of its own
  const dir = mkdtempSync(path.join('/tmp', 'ks-'))
  dirs.push(dir)
  const socket = path.join(dir, 'kinto.sock')
  const i = await opsIni('memory', {}, `unix_socket = ${socket}\nunix_socket_perms = ${perms}\n`)
  inis.push(i)
  return {i, socket}
}

async function getOverSocket(socket: string, p: string): Promise<{status: number; headers: Record<string, unknown>}> {
  const agent = new Agent({connect: {socketPath: socket}})
  try {
    const res = await request(`http://localhost/v1/${p}`, {dispatcher: agent})
    await res.body.text()
    return {status: res.statusCode, headers: res.headers}
  } finally {
    await agent.close()
  }
}

describe('unix socket', () => {
  test('config: unix_socket_perms as server.unixSocketMode; a bad mode is a config error', async () => {
    const {i} = await socketIni('0660')
    expect(loadConfig(i.ini, {env: {}}).server.unixSocketMode).toBe('660')
    const bad = await opsIni('memory', {}, 'unix_socket = kinto.sock\nunix_socket_perms = rw-rw-rw-\n')
    inis.push(bad)
    expect(() => loadConfig(bad.ini, {env: {}})).toThrow(/unix_socket_perms.*not a file mode/)
  })

  test('mode applied, stale socket replaced; wait-ready, status and backoff reach it', async () => {
    const {i, socket} = await socketIni('666')
    // a stale socket: its process was killed (SIGKILL) and left the file behind
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`])
    await new Promise<void>((r) => holder.stdout.once('data', () => r()))
    holder.kill('SIGKILL')
    await new Promise<void>((r) => holder.once('exit', () => r()))
    expect(existsSync(socket)).toBe(true)

    const server = await spawnStart(['--ini', i.ini])
    servers.push(server)
    expect(server.url).toBe(socket)
    expect(statSync(socket).mode & 0o777).toBe(0o666)
    expect((await getOverSocket(socket, '')).status).toBe(200)

    const ready = await runCli(['wait-ready', '--ini', i.ini, '--json'])
    expect(ready.code, ready.stderr).toBe(0)
    expect(JSON.parse(ready.stdout).url).toBe(`unix:${socket}`)
    const viaUrl = await runCli(['status', '--ini', i.ini, '--url', `unix:${socket}`, '--json'])
    expect(viaUrl.code, viaUrl.stderr).toBe(0)
    expect(JSON.parse(viaUrl.stdout).remote).toMatchObject({reachable: true, healthy: true})

    const b = await runCli(['backoff', '12', '--ini', i.ini])
    expect(b.code, b.stderr).toBe(0)
    expect((await getOverSocket(socket, '')).headers.backoff).toBe('12')

    // a second server on the live socket is refused, the first keeps serving
    const second = await runCli(['start', '--ini', i.ini])
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/another process is listening on it/)
    expect((await getOverSocket(socket, '__lbheartbeat__')).status).toBe(200)
    expect((await server.stop()).code).toBe(0)
  }, 120_000)

  test('a regular file where the socket goes is refused, not deleted', async () => {
    const {i, socket} = await socketIni()
    writeFileSync(socket, 'precious')
    const r = await runCli(['start', '--ini', i.ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/exists and is not a socket/)
    expect(statSync(socket).isFile()).toBe(true)
  }, 60_000)
})

/** A connection to `base` whose request (a PUT) never finishes sending its body, once the server has it. */
async function requestNeverFinished(base: string): Promise<Socket> {
  const url = new URL(base)
  const socket = connect(Number(url.port), url.hostname)
  await new Promise<void>((r) => socket.once('connect', () => r()))
  socket.write(`PUT ${url.pathname}buckets/b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`)
  await new Promise((r) => setTimeout(r, 300))
  return socket
}

/** A server on memory (stopped after the file) with a request it will never finish answering. */
async function serverWithRequestRunning(shutdownTimeout: string) {
  const i = await opsIni('memory')
  inis.push(i)
  const server = await spawnStart(['--ini', i.ini, '--port', '0', '--shutdown-timeout', shutdownTimeout])
  servers.push(server)
  return {server, socket: await requestNeverFinished(server.url)}
}

test('shutdown deadline: a request still running at --shutdown-timeout is cut, exit 1', async () => {
  const {server, socket} = await serverWithRequestRunning('1s')
  server.child.kill('SIGTERM')
  // The 1 s deadline cuts the request: the process is gone within 8 s, or the race says it is not.
  const status = await Promise.race([server.exit, sleep(8000).then(() => ({code: 'still running after 8 s'}))])
  socket.destroy()
  expect(status.code).toBe(1)
  expect(server.output()).toMatch(/Shutdown deadline reached/)
}, 60_000)

test('a second SIGINT or SIGTERM while requests finish cuts them at once, exit 1 (the deadline is not waited for)', async () => {
  const {server, socket} = await serverWithRequestRunning('60s')
  server.child.kill('SIGINT')
  // the first one waits for the request (up to 60 s)
  const first = await Promise.race([server.exit, sleep(1500).then(() => 'running' as const)])
  expect(first).toBe('running')
  expect(server.output()).toMatch(/SIGINT: finishing requests in flight, then stopping \(SIGINT again: at once\)\./)
  server.child.kill('SIGINT')
  const status = await Promise.race([server.exit, sleep(8000).then(() => ({code: 'still running 8 s after the second SIGINT'}))])
  socket.destroy()
  expect(status.code).toBe(1)
  expect(server.output()).toMatch(/SIGINT again: cutting the requests still running\./)
}, 60_000)

test('a second SIGTERM soon after the first (while kept-alive connections drain) still cuts at once', async () => {
  const {server, socket} = await serverWithRequestRunning('60s')
  server.child.kill('SIGTERM')
  await sleep(100)
  server.child.kill('SIGTERM')
  const status = await Promise.race([server.exit, sleep(3000).then(() => ({code: 'still running 3 s after the second SIGTERM'}))])
  socket.destroy()
  expect(status.code).toBe(1)
  expect(server.output()).toMatch(/SIGTERM again: cutting the requests still running\./)
}, 60_000)

/**
 * `kinto start --workers N`: N processes share the port and answer; SIGHUP (kinto reload) reaches
 * every one of them (so does a change of the ini with --reload); a crashed worker is replaced;
 * SIGUSR2 (kinto reload --restart) replaces them all one at a time without a failed request; SIGTERM stops them all, exit 0. Workers need
 * PostgreSQL (KINTO_TEST_DATABASE_URL); the refusals on memory and embedded run everywhere.
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'

import {afterAll, describe, expect, test} from 'vitest'

import {listRuns, type RunEntry} from '../../src/lib/runs/registry.js'
import {processAlive} from '../../src/lib/process.js'
import {runCli} from '../helpers/cli.js'
import {realServerUrl, serverSkip} from '../helpers/db.js'
import {freePort} from '../helpers/deploy-servers.js'
import {opsIni, sleep, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

const inis: OpsIni[] = []
const servers: Started[] = []
afterAll(async () => {
  for (const s of servers) await s.stop()
  for (const i of inis) await i.cleanup()
})

describe('refusals', () => {
  test('memory storage and embedded databases cannot be served by several processes (exit 2)', async () => {
    const mem = await opsIni('memory', {}, '\n[uwsgi]\nprocesses = 2\n')
    inis.push(mem)
    const r = await runCli(['start', '--ini', mem.ini, '--port', '0'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/Cannot serve with 2 workers: the storage backend is memory/)
    const lite = await opsIni('pglite')
    inis.push(lite)
    const l = await runCli(['start', '--ini', lite.ini, '--port', '0', '--workers', '3'])
    expect(l.code).toBe(2)
    expect(l.stderr).toMatch(/the storage, permission and cache backends use the embedded database in .*, which one process at a time may open/)
  }, 120_000)
})

/** One GET on a fresh connection (accepted by whichever worker is first); fails past `timeoutMs`. */
function freshGet(url: string, timeoutMs = 30_000): Promise<{status: number; backoff: string | undefined}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {agent: false, headers: {connection: 'close'}}, (res) => {
      res.resume()
      res.on('end', () => resolve({status: res.statusCode!, backoff: res.headers.backoff as string | undefined}))
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** The workers of the deployment started from `ini` that serve (their run records). */
function servingWorkers(ini: string): RunEntry[] {
  return listRuns(ini).filter((e) => e.role === 'worker' && e.url !== null)
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/**
 * `kinto start --workers 2` on a database of its own (port 0 unless `args` names one), once both
 * workers serve: the ini, the server, its serving workers now and then.
 */
async function twoWorkers(args: string[]): Promise<{i: OpsIni; server: Started; workers: () => RunEntry[]; before: RunEntry[]}> {
  const i = await opsIni('postgresql')
  inis.push(i)
  const server = await spawnStart(['--ini', i.ini, ...(args.includes('--port') ? [] : ['--port', '0']), '--workers', '2', ...args])
  servers.push(server)
  const workers = () => servingWorkers(i.ini)
  const before = await until('2 workers', () => workers().length === 2 && workers())
  return {i, server, workers, before}
}

/** SIGUSR2 to the primary, once the rolling restart has begun. */
async function beginRestart(server: Started): Promise<void> {
  server.child.kill('SIGUSR2')
  await until('the restart to begin', () => /SIGUSR2: restarting/.test(server.output()))
}

/** Two serving workers, none of `before`. */
function newWorkers(workers: () => RunEntry[], before: RunEntry[]): Promise<RunEntry[]> {
  return until('2 new workers', () => {
    const w = workers()
    return w.length === 2 && !w.some((e) => before.some((b) => b.pid === e.pid)) && w
  })
}

describe.skipIf(!realServerUrl)(`workers on PostgreSQL${serverSkip}`, () => {
  test('N processes answer, SIGHUP reaches each, crashes are replaced, rolling restart, SIGTERM stops all', async () => {
    const i = await opsIni('postgresql')
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0', '--workers', '3'])
    servers.push(server)
    expect(server.output()).toMatch(/with 3 workers, primary pid \d+/)
    // A worker counts once it listens (it registers before, with url null, while it starts).
    const workers = () => servingWorkers(i.ini)
    const first = await until('3 workers', () => workers().length === 3 && workers())
    expect(listRuns(i.ini).filter((e) => e.role === 'primary').map((e) => e.pid)).toEqual([server.pid])
    expect(first.every((w) => w.primaryPid === server.pid && w.url === server.url)).toBe(true)

    // Only one worker reloads (signalled directly): fresh connections see both states, so
    // several processes answer.
    const edit = await runCli(['backoff', '30', '--no-reload', '--ini', i.ini, '--json'])
    expect(edit.code, edit.stderr).toBe(0)
    const hash = JSON.parse(edit.stdout).reload.configHash as string
    process.kill(first[0].pid, 'SIGHUP')
    await until('the signalled worker to reload', () => workers().find((w) => w.pid === first[0].pid)?.configHash === hash)
    // Which worker accepts a connection is the kernel's choice (shared accept): batches until both
    // states have answered.
    const mixed: Array<{status: number; backoff: string | undefined}> = []
    for (let batch = 0; batch < 10 && !(mixed.some((r) => r.backoff === '30') && mixed.some((r) => r.backoff === undefined)); batch++) {
      mixed.push(...(await Promise.all(Array.from({length: 30}, () => freshGet(server.url)))))
    }
    expect(mixed.every((r) => r.status === 200)).toBe(true)
    expect(mixed.some((r) => r.backoff === '30')).toBe(true)
    expect(mixed.some((r) => r.backoff === undefined)).toBe(true)

    // kinto reload: the primary passes SIGHUP to every worker; all of them report it.
    const reload = await runCli(['reload', '--ini', i.ini, '--json'])
    expect(reload.code, reload.stderr).toBe(0)
    const reloaded = JSON.parse(reload.stdout)
    expect(reloaded.ok).toBe(true)
    expect(reloaded.servers).toHaveLength(4)
    expect(listRuns(i.ini).every((e: RunEntry) => e.configHash === hash)).toBe(true)
    const all = await Promise.all(Array.from({length: 20}, () => freshGet(server.url)))
    expect(all.every((r) => r.status === 200 && r.backoff === '30')).toBe(true)

    // A crashed worker is replaced.
    process.kill(first[1].pid, 'SIGKILL')
    const replaced = await until('a replacement worker', () => {
      const w = workers()
      return w.length === 3 && !w.some((e) => e.pid === first[1].pid) && w
    })
    expect(replaced.map((w) => w.pid)).toContain(first[0].pid)
    expect(server.output()).toMatch(new RegExp(`Worker ${first[1].pid} exited \\(SIGKILL\\); starting another`))

    // Rolling restart under load: every request succeeds; every worker is new; the primary stays.
    const failures: string[] = []
    let statuses = 0
    let running = true
    const loops = Array.from({length: 3}, async () => {
      while (running) {
        try {
          const r = await freshGet(server.url)
          statuses++
          if (r.status !== 200) failures.push(String(r.status))
        } catch (error) {
          failures.push(String(error))
        }
      }
    })
    const restart = await runCli(['reload', '--restart', '--ini', i.ini, '--json'])
    running = false
    await Promise.all(loops)
    expect(restart.code, restart.stderr).toBe(0)
    expect(JSON.parse(restart.stdout).servers).toEqual([expect.objectContaining({pid: server.pid, outcome: 'restarted'})])
    expect(failures).toEqual([])
    expect(statuses).toBeGreaterThan(10)
    const fresh = await until('3 new workers', () => {
      const w = workers()
      return w.length === 3 && w.every((e) => !replaced.some((o) => o.pid === e.pid)) && w
    })
    expect(fresh.every((w) => w.primaryPid === server.pid)).toBe(true)

    // SIGTERM to the primary stops every worker; exit 0; nothing left in the registry.
    expect(await server.stop()).toEqual({code: 0, signal: null})
    expect(listRuns(i.ini)).toEqual([])
    expect(fresh.some((w) => processAlive(w.pid))).toBe(false)
  }, 240_000)

  test('--reload: the primary sees the ini change and every worker reloads it', async () => {
    const i = await opsIni('postgresql')
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0', '--workers', '2', '--reload'])
    servers.push(server)
    await until('2 workers', () => servingWorkers(i.ini).length === 2)
    // The ini edited, no signal sent: --reload alone must bring the change.
    const edit = await runCli(['backoff', '30', '--no-reload', '--ini', i.ini, '--json'])
    expect(edit.code, edit.stderr).toBe(0)
    const hash = JSON.parse(edit.stdout).reload.configHash as string
    await until('both workers to reload', () => {
      const w = servingWorkers(i.ini)
      return w.length === 2 && w.every((e) => e.configHash === hash)
    })
    const all = await Promise.all(Array.from({length: 10}, () => freshGet(server.url)))
    expect(all.every((r) => r.status === 200 && r.backoff === '30')).toBe(true)
    expect(server.output()).toMatch(/changed \(--reload\): reloading it as on SIGHUP/)
    expect(await server.stop()).toEqual({code: 0, signal: null})
  }, 120_000)

  test('a worker that stops answering its primary (blocked event loop) is killed after --worker-timeout and replaced', async () => {
    const {server, workers, before} = await twoWorkers(['--worker-timeout', '3'])
    // SIGUSR2 sent to a worker too (to the process group) is the primary's business: the worker
    // ignores it instead of dying of it (checked below: it still serves, never replaced).
    process.kill(before[1].pid, 'SIGUSR2')
    // A stopped process runs nothing, as one stuck in an endless loop: connections handed to it
    // would hang until their clients give up, and it would never be replaced.
    const stuck = before[0].pid
    process.kill(stuck, 'SIGSTOP')
    const after = await until(
      'the stuck worker replaced',
      () => {
        const w = workers()
        return !processAlive(stuck) && w.length === 2 && !w.some((e) => e.pid === stuck) && w
      },
      40_000,
    )
    expect(after.map((w) => w.pid)).toContain(before[1].pid)
    expect(server.output()).toMatch(new RegExp(`Worker ${stuck} has not answered for more than 3 s`))
    expect(server.output()).toMatch(new RegExp(`Worker ${stuck} exited \\(SIGKILL\\); starting another`))
    expect((await freshGet(server.url)).status).toBe(200)
    expect(await server.stop()).toEqual({code: 0, signal: null})
  }, 120_000)

  test('a worker that does not run takes no new connection: the others accept every one at once', async () => {
    // The workers accept from the socket they share (SCHED_NONE). With node's round-robin the
    // primary handed the stopped worker its turn of new connections, which hung until the watchdog
    // killed it (30 s by default); a worker killed at that moment left one hanging for good.
    const {server, before} = await twoWorkers([])
    process.kill(before[0].pid, 'SIGSTOP')
    try {
      for (let n = 0; n < 20; n++) expect((await freshGet(server.url, 3000)).status).toBe(200)
    } finally {
      process.kill(before[0].pid, 'SIGCONT')
    }
    expect(await server.stop()).toEqual({code: 0, signal: null})
  }, 120_000)

  test('a primary killed (SIGKILL, OOM killer): each worker finishes its requests in flight, then stops', async () => {
    const {server, before} = await twoWorkers([])
    // A request in flight on a worker: its body arrives in two parts, the primary dies in between.
    const body = JSON.stringify({data: {id: 'orphaned'}})
    const answer = new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}buckets`, {
        method: 'POST',
        agent: false,
        headers: {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: 'Basic ' + Buffer.from('a:b').toString('base64')},
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', reject)
      req.write(body.slice(0, 5))
      setTimeout(() => {
        process.kill(server.pid, 'SIGKILL')
        setTimeout(() => req.end(body.slice(5)), 1000)
      }, 500)
    })
    expect(await answer).toBe(201)
    await until('the workers to stop', () => !before.some((w) => processAlive(w.pid)))
  }, 120_000)

  test('SIGTERM during a rolling restart stops everything, exit 0, without reporting the restart as failed', async () => {
    const {i, server} = await twoWorkers([])
    await beginRestart(server)
    expect(await server.stop()).toEqual({code: 0, signal: null})
    expect(server.output()).not.toMatch(/did not start/)
    expect(listRuns(i.ini)).toEqual([])
  }, 120_000)

  test('a worker that does not stop by the shutdown deadline is killed, said, and the exit is 1 (requests were cut)', async () => {
    const {server, before} = await twoWorkers(['--worker-timeout', '0', '--shutdown-timeout', '1'])
    process.kill(before[0].pid, 'SIGSTOP')
    expect(await server.stop()).toEqual({code: 1, signal: null})
    expect(server.output()).toMatch(new RegExp(`Worker ${before[0].pid} did not stop .*; killing it`))
    expect(processAlive(before[0].pid)).toBe(false)
  }, 120_000)

  test('a second SIGTERM to the primary while the workers finish kills them at once, said, exit 1', async () => {
    const {server, before} = await twoWorkers(['--worker-timeout', '0', '--shutdown-timeout', '60'])
    // A worker that cannot finish (stopped): the first SIGTERM waits up to the 60 s deadline.
    process.kill(before[0].pid, 'SIGSTOP')
    server.child.kill('SIGTERM')
    expect(await Promise.race([server.exit, sleep(1500).then(() => 'running' as const)])).toBe('running')
    server.child.kill('SIGTERM')
    const status = await Promise.race([server.exit, sleep(10_000).then(() => ({code: 'still running 10 s after the second SIGTERM', signal: null}))])
    expect(status).toEqual({code: 1, signal: null})
    expect(server.output()).toMatch(/SIGTERM again: killing the workers; their requests still running are cut\./)
    expect(processAlive(before[0].pid)).toBe(false)
  }, 120_000)

  test('a worker crashing during a rolling restart: replaced once, the deployment ends with its N new workers', async () => {
    // A fixed port: with both workers gone the primary closes the socket, and the next worker
    // to listen would get another port for port 0 (node:cluster asks for the address given).
    const {server, workers, before} = await twoWorkers(['--port', String(await freePort())])
    await beginRestart(server)
    // Both old workers die while the first new one starts: the one being replaced and the one
    // waiting for its turn. Each is replaced once, not once more by the restart.
    for (const w of before) process.kill(w.pid, 'SIGKILL')
    await until('the restart to end', () => /SIGUSR2: every worker was restarted/.test(server.output()), 60_000)
    const after = await newWorkers(workers, before)
    // Nothing more starts or stops afterwards.
    await sleep(2000)
    expect(workers().map((w) => w.pid).sort()).toEqual(after.map((w) => w.pid).sort())
    expect((await freshGet(server.url)).status).toBe(200)
    expect(await server.stop()).toEqual({code: 0, signal: null})
  }, 120_000)

  test('SIGHUP during a rolling restart: the worker starting is reloaded once it listens, not killed', async () => {
    const {server, workers, before} = await twoWorkers([])
    await beginRestart(server)
    // The new worker has just been forked: it has no SIGHUP handler yet, and the signal's default
    // action killed it, ending the restart ("a new worker did not start … (SIGHUP)").
    server.child.kill('SIGHUP')
    await until('the restart to end', () => /SIGUSR2: every worker was restarted|did not start/.test(server.output()), 60_000)
    expect(server.output()).not.toMatch(/did not start|exited \(SIGHUP\)/)
    const after = await newWorkers(workers, before)
    // The one starting took the SIGHUP once it listened (the other one started after it).
    await until('its reload', () => after.some((w) => new RegExp(`SIGHUP \\(worker ${w.pid}\\): reloaded`).test(server.output())), 20_000)
    expect(await server.stop()).toEqual({code: 0, signal: null})
  }, 120_000)

  test('a worker the rolling restart retires that does not stop (SIGSTOP) is killed past the shutdown deadline', async () => {
    const {i, server, before} = await twoWorkers(['--worker-timeout', '0', '--shutdown-timeout', '1'])
    process.kill(before[0].pid, 'SIGSTOP')
    server.child.kill('SIGUSR2')
    await until('the restart to end', () => /SIGUSR2: every worker was restarted/.test(server.output()), 60_000)
    // Retired, it got SIGTERM and cannot act on it: it stayed forever (the watchdog spares retiring
    // workers), the primary still handing it connections that hung.
    await until('the stopped worker to be killed', () => !processAlive(before[0].pid), 30_000)
    expect(server.output()).toMatch(new RegExp(`Worker ${before[0].pid} did not stop .*; killing it`))
    expect(await server.stop()).toEqual({code: 0, signal: null})
    expect(listRuns(i.ini)).toEqual([])
  }, 120_000)

  test('SIGTERM while a worker the rolling restart retires does not stop: it is killed and the primary exits 1', async () => {
    const {i, server, before} = await twoWorkers(['--worker-timeout', '0', '--shutdown-timeout', '1'])
    process.kill(before[0].pid, 'SIGSTOP')
    server.child.kill('SIGUSR2')
    await until('the restart to end', () => /SIGUSR2: every worker was restarted/.test(server.output()), 60_000)
    // The stop waited for the serving workers only: the retiring one was neither waited for nor
    // killed, and its open channel kept the primary from ever exiting.
    server.child.kill('SIGTERM')
    const status = await Promise.race([server.exit, sleep(25_000).then(() => ({code: 'still running 25 s after SIGTERM', signal: null}))])
    expect(status).toEqual({code: 1, signal: null})
    expect(processAlive(before[0].pid)).toBe(false)
    expect(listRuns(i.ini)).toEqual([])
  }, 120_000)

  test('a SIGUSR2 during a rolling restart runs another after it, said; a worker killed during a stop makes the exit 1', async () => {
    const {server, workers, before} = await twoWorkers([])
    await beginRestart(server)
    server.child.kill('SIGUSR2')
    server.child.kill('SIGUSR2')
    await until('two restarts', () => server.output().match(/SIGUSR2: every worker was restarted/g)?.length === 2, 60_000)
    expect(server.output().match(/another one follows it/g)).toHaveLength(1)
    expect(server.output().match(/SIGUSR2: restarting/g)).toHaveLength(2)
    const after = await newWorkers(workers, before)

    // A request in flight keeps its worker stopping; killed then (an operator, the OOM killer),
    // what it was serving is cut: not a clean stop.
    const body = JSON.stringify({data: {id: 'cut'}})
    const req = httpRequest(`${server.url}buckets`, {
      method: 'POST',
      agent: false,
      headers: {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: 'Basic ' + Buffer.from('a:b').toString('base64')},
    })
    req.on('error', () => {})
    req.write(body.slice(0, 5))
    await sleep(500)
    server.child.kill('SIGTERM')
    await until('the stop to begin', () => /SIGTERM: the workers finish/.test(server.output()))
    for (const w of after) if (processAlive(w.pid)) process.kill(w.pid, 'SIGKILL')
    const status = await Promise.race([server.exit, sleep(20_000).then(() => ({code: 'still running', signal: null}))])
    expect(status).toEqual({code: 1, signal: null})
    req.destroy()
  }, 120_000)

  test('a rolling restart whose new worker cannot start: the running workers stay, reload --restart says why and exits 1 at once', async () => {
    const {i, server, workers, before} = await twoWorkers([])
    // A file that loads, but with which no worker can start.
    const text = readFileSync(i.ini, 'utf8').replace('[app:main]\n', '[app:main]\nkinto.includes = kinto.plugins.nosuchplugin\n')
    writeFileSync(i.ini, text)
    const started = Date.now()
    const restart = await runCli(['reload', '--restart', '--ini', i.ini, '--json'])
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(restart.code, restart.stderr).toBe(1)
    const result = JSON.parse(restart.stdout)
    expect(result.ok).toBe(false)
    expect(result.servers).toEqual([expect.objectContaining({pid: server.pid, outcome: 'restart-failed', message: expect.stringMatching(/nosuchplugin/)})])
    // The deployment keeps serving with the workers it had, and does not fall into a crash loop.
    await sleep(3000)
    expect(server.child.exitCode).toBeNull()
    expect((await freshGet(server.url)).status).toBe(200)
    expect(workers().map((w) => w.pid).sort()).toEqual(before.map((w) => w.pid).sort())
    expect(server.output()).toMatch(/a new worker did not start \(Unknown plugin 'kinto.plugins.nosuchplugin'/)
    expect(server.output()).not.toMatch(/keep exiting/)
  }, 120_000)
})

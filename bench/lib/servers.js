// Starting and stopping the processes under test: `kinto start` (the runtime as operators run
// it, the built CLI) and the floor (bench/lib/floor.js). Each is its own process, so its RSS is
// its own; the load generator runs in the bench process. Their stderr (the runtime's request log
// with the bench's ini, which has no logging sections) goes to a file in the database's folder.
import {spawn} from 'node:child_process'
import {closeSync, openSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {freePort, kintoBin, processTree, root, rssMb, rssSumMb, sleep} from './util.js'

/** Children still running, stopped if the bench itself is interrupted. */
const live = new Set()
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of live) child.kill('SIGTERM')
    process.exit(130)
  })
}

/**
 * Waits for a line matching `pattern` in a log file the child writes its stderr to. (A file, not
 * a pipe: the runtime logs a line per request there, and a pipe would tie its speed to how fast
 * the busy load-generating bench process drains it.)
 */
function waitForLine(child, logFile, pattern, what, timeoutMs = 180_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const timer = setInterval(() => {
      let text = ''
      try {
        text = readFileSync(logFile, 'utf8')
      } catch {}
      const m = pattern.exec(text)
      if (m) {
        clearInterval(timer)
        resolve(m[1])
      } else if (child.exitCode !== null || child.signalCode !== null) {
        clearInterval(timer)
        reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before serving: ${text.slice(-2000)}`))
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer)
        child.kill('SIGKILL')
        reject(new Error(`${what} did not start within ${timeoutMs / 1000} s: ${text.slice(-2000)}`))
      }
    }, 100)
  })
}

function spawnLogged(args, logFile, env = {}) {
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, args, {cwd: root, env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'ignore', fd]})
  closeSync(fd)
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

function stopper(child) {
  const exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(killer)
  }
}

/**
 * `kinto start --ini <ini>` on a free loopback port (`workers`: `--workers N`); resolves when it
 * serves. Its log goes to a file beside the ini. `pids()`: the process and its workers.
 */
export async function startKinto(ini, {workers} = {}) {
  const port = await freePort()
  const logFile = path.join(path.dirname(ini), workers ? `kinto-start-workers-${workers}.log` : 'kinto-start.log')
  const args = [kintoBin(), 'start', '--ini', ini, '--host', '127.0.0.1', '--port', String(port), ...(workers ? ['--workers', String(workers)] : [])]
  const child = spawnLogged(args, logFile)
  const started = Date.now()
  const url = await waitForLine(child, logFile, /Serving (\S+)/, 'kinto start')
  const startMs = Date.now() - started
  const pids = () => (workers ? processTree(child.pid) : [child.pid])
  return {kind: 'kinto', pid: child.pid, pids, origin: `http://127.0.0.1:${port}`, url, startMs, rss: () => rssSumMb(pids()), stop: stopper(child), child}
}

/** The floor (bench/lib/floor.js) on a database URL (for PGlite, a copy of the runtime's folder). */
export async function startFloor(databaseUrl, secret, logDir) {
  const port = await freePort()
  const logFile = path.join(logDir, 'floor.log')
  const child = spawnLogged([path.join(root, 'bench', 'lib', 'floor.js'), '--url', databaseUrl, '--port', String(port)], logFile, {BENCH_FLOOR_SECRET: secret})
  const url = await waitForLine(child, logFile, /Floor serving (\S+)/, 'the floor server', 60_000)
  return {kind: 'floor', pid: child.pid, pids: () => [child.pid], origin: `http://127.0.0.1:${port}`, url, rss: () => rssMb(child.pid), stop: stopper(child), child}
}

/** GETs a URL until it answers 200 (or gives up). */
export async function waitReady(url, headers = {}) {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url, {headers})
      await res.arrayBuffer()
      if (res.ok) return
    } catch {}
    await sleep(100)
  }
  throw new Error(`${url} never answered 200`)
}

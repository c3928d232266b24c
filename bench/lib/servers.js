// Starting and stopping the processes under test: `kinto start` (the runtime as operators run
// it, the built CLI) and the floor (bench/lib/floor.js). Each is its own process, so its RSS is
// its own; the load generator runs in the bench process.
import {spawn} from 'node:child_process'
import path from 'node:path'

import {freePort, kintoBin, root, rssMb, sleep} from './util.js'

function waitForUrl(child, pattern, what, timeoutMs = 180_000) {
  return new Promise((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what} did not start within ${timeoutMs / 1000} s: ${stderr.slice(-2000)}`))
    }, timeoutMs)
    const onExit = (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}) before serving: ${stderr.slice(-2000)}`))
    }
    child.once('exit', onExit)
    child.stderr.on('data', (d) => {
      stderr += d
      const m = pattern.exec(stderr)
      if (m) {
        clearTimeout(timer)
        child.off('exit', onExit)
        resolve(m[1])
      }
    })
  })
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

/** `kinto start --ini <ini>` on a free loopback port; resolves when it serves. Logs go to /dev/null. */
export async function startKinto(ini) {
  const port = await freePort()
  const child = spawn(process.execPath, [kintoBin(), 'start', '--ini', ini, '--host', '127.0.0.1', '--port', String(port)], {
    cwd: root,
    env: {...process.env, NO_COLOR: '1'},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const started = Date.now()
  const url = await waitForUrl(child, /Serving (\S+)/, 'kinto start')
  const startMs = Date.now() - started
  return {kind: 'kinto', pid: child.pid, origin: `http://127.0.0.1:${port}`, url, startMs, rss: () => rssMb(child.pid), stop: stopper(child), child}
}

/** The floor: bare node:http + our SqlClient (same pool settings), same SQL as the runtime. */
export async function startFloor(databaseUrl, secret) {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(root, 'bench', 'lib', 'floor.js'), '--url', databaseUrl, '--port', String(port)], {
    cwd: root,
    env: {...process.env, BENCH_FLOOR_SECRET: secret},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const url = await waitForUrl(child, /Floor serving (\S+)/, 'the floor server', 60_000)
  return {kind: 'floor', pid: child.pid, origin: `http://127.0.0.1:${port}`, url, rss: () => rssMb(child.pid), stop: stopper(child), child}
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

// Small helpers shared by the bench scripts (plain ESM, no build step).
import {spawn} from 'node:child_process'
import {randomBytes, createHmac} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs'
import {createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * The kinto-ops under test: this checkout, or the folder in KINTO_BENCH_TARGET (run.js --head
 * builds the committed HEAD there, so that work in progress in the tree is not measured).
 */
export const targetRoot = () => process.env.KINTO_BENCH_TARGET || root
export const targetDist = () => path.join(targetRoot(), 'dist')
export const kintoBin = () => path.join(targetRoot(), 'bin', 'run.js')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
export const round = (x, digits = 0) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x)

/** A free TCP port on the loopback interface. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Resident set size of a process in MB (Linux /proc), or NaN. */
export function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function rssSampler(pid, everyMs = 200) {
  let peak = rssMb(pid)
  const timer = setInterval(() => {
    const v = rssMb(pid)
    if (v > peak || !Number.isFinite(peak)) peak = v
  }, everyMs)
  return {
    stop() {
      clearInterval(timer)
      const v = rssMb(pid)
      return Math.max(peak, Number.isFinite(v) ? v : 0)
    },
  }
}

/** Basic Authorization header. */
export const basic = (user, password) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')

/** The user id kinto's basicauth policy gives these credentials (HMAC-SHA256 of `user:password`). */
export const basicUserId = (secret, user, password) =>
  'basicauth:' + createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${user}:${password}`, 'utf8').digest('hex')

export const randomSecret = () => randomBytes(24).toString('hex')

/** Newest modification time (ms) of the files under a folder. */
export function newestMtime(dir, ext = '.ts') {
  let newest = 0
  const walk = (d) => {
    for (const e of readdirSync(d, {withFileTypes: true})) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(ext)) newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  if (existsSync(dir)) walk(dir)
  return newest
}

/** Runs a command to completion; resolves {code, stdout, stderr, ms}. Never throws on exit codes. */
export function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(cmd, args, {cwd: root, ...options, env: {...process.env, NO_COLOR: '1', ...options.env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({code: code ?? (signal ? 128 : 0), stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6})
    })
  })
}

export function machine() {
  const cpus = os.cpus()
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    memGb: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  }
}

/** Prints a progress line on stderr (results go to RESULTS.md and stdout). */
export const note = (msg) => process.stderr.write(`[bench] ${msg}\n`)

// Small helpers shared by the bench scripts (plain ESM, no build step).
import {execFileSync, spawn} from 'node:child_process'
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

/** Sum of the RSS of several processes in MB (shared pages counted in each), or NaN. */
export const rssSumMb = (pids) => pids.reduce((sum, pid) => sum + rssMb(pid), 0)

/** A process and its descendants (the workers of `kinto start --workers N`), from /proc. */
export function processTree(pid) {
  const parentOf = new Map()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // Field 4 of /proc/PID/stat, after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child)
  return tree
}

/**
 * Samples the RSS of a process (a pid, or a function giving the pids to add up) every `everyMs`
 * until stopped; returns the peak.
 */
export function rssSampler(pids, everyMs = 200) {
  const sample = () => (typeof pids === 'function' ? rssSumMb(pids()) : rssMb(pids))
  let peak = sample()
  const timer = setInterval(() => {
    const v = sample()
    if (v > peak || !Number.isFinite(peak)) peak = v
  }, everyMs)
  return {
    stop() {
      clearInterval(timer)
      const v = sample()
      return Math.max(peak, Number.isFinite(v) ? v : 0)
    },
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU seconds (user + system) a process has used, from /proc; 0 once it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return 0
  }
}

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
function machineJiffies() {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
  const n = values.map(Number)
  const idle = n[3] + (n[4] ?? 0) // idle + iowait
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0) // without guest time (counted in user)
  return {busy: total - idle, total}
}

/**
 * Where the cores went during a measurement: CPU used by the server's processes, by this (load
 * generating) process, and by the whole machine (PostgreSQL and everyone else included), each in
 * cores (1.0 = one core busy all along).
 */
export function cpuMeter(pids) {
  const t0 = performance.now()
  const server0 = pids.reduce((s, p) => s + cpuSeconds(p), 0)
  const self0 = process.cpuUsage()
  const m0 = machineJiffies()
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000
      const server = pids.reduce((s, p) => s + cpuSeconds(p), 0) - server0
      const self = process.cpuUsage(self0)
      const m1 = machineJiffies()
      const cores = os.cpus().length
      return {
        server: server / seconds,
        bench: (self.user + self.system) / 1e6 / seconds,
        machine: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * cores : NaN,
      }
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

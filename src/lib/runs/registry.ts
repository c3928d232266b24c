/**
 * The run registry: every running runtime started from an ini (each `kinto start`, the primary
 * and each worker of `--workers N`) keeps one small JSON file saying who it is (pid, role, URL)
 * and what it applied (sha256 of the ini it last loaded, the toggles in force, the changed settings
 * that need a restart). The CLI finds the runtimes of an ini there, signals them (SIGHUP: reload)
 * and reads back whether each took the new file.
 *
 * Where: `.kinto-run/` beside the ini; when that folder cannot be written (an ini in /etc owned
 * by root, a server running as another user), `<tmpdir>/kinto-run-<uid>/`. KINTO_RUN_DIR overrides
 * both. Files are `<pid>.json`, written atomically, removed when the runtime stops; an entry whose
 * process is gone (SIGKILL, crash) is stale: ignored, and removed when possible. No secrets are
 * recorded (setting names, never values, except the toggles).
 */
import {createHash} from 'node:crypto'
import {lstatSync, readFileSync, readdirSync, realpathSync, unlinkSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {writeFileAtomic} from '../config/atomic.js'
import {mkdirs} from '../fs.js'
import {processAlive} from '../process.js'

export type RunRole = 'server' | 'primary' | 'worker'

/** Toggle settings as a runtime applied them (raw values from its settings) and which are in force. */
export interface AppliedToggles {
  backoff: number | null
  backoffPercentage: number | null
  backoffExpires: string | null
  readonly: boolean
  readonlyExpires: string | null
  maintenance: boolean
  maintenanceExpires: string | null
}

export interface RunEntry {
  pid: number
  /** `server`: one process serving; `primary`: the supervisor of workers (serves nothing itself). */
  role: RunRole
  primaryPid?: number
  /** Absolute path of the ini. */
  ini: string
  /** Base URL of the API (`http://127.0.0.1:8888/v1/`) or the unix socket path; null until listening. */
  url: string | null
  startedAt: string
  /** Kernel start time of the process (Linux), so a reused pid is not mistaken for this runtime. */
  procStart?: string
  /** sha256 of the ini bytes last loaded (at start, or by the last successful reload). */
  configHash: string
  reloadedAt?: string
  /** The last reload that failed (the runtime kept its settings). */
  reloadError?: {configHash: string; message: string; at: string}
  /** Primary: the last rolling restart that stopped because a new worker could not start (the running workers were kept). */
  restartError?: {message: string; at: string}
  toggles?: AppliedToggles
  /** Settings changed in the file that the runtime cannot take without a restart. */
  needRestart: string[]
  /** The unix socket of its control channel (src/lib/ops/control.ts), when it offers one. */
  control?: string
  /** Primary: number of workers it keeps. */
  workers?: number
  version?: string
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

function canonical(file: string): string {
  try {
    return realpathSync(file)
  } catch {
    return path.resolve(file)
  }
}

function tmpRunDir(uid: number | string): string {
  return path.join(os.tmpdir(), `kinto-run-${uid}`)
}

/** Folders a runtime of this ini may write to, in order of preference. */
export function runDirs(iniPath: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.KINTO_RUN_DIR) return [path.resolve(env.KINTO_RUN_DIR)]
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  return [path.join(path.dirname(path.resolve(iniPath)), '.kinto-run'), tmpRunDir(uid)]
}

/** Folders to read: the preferred ones, and every user's fallback folder. */
function searchDirs(iniPath: string, env: NodeJS.ProcessEnv): string[] {
  if (env.KINTO_RUN_DIR) return runDirs(iniPath, env)
  const dirs = new Set([runDirs(iniPath, env)[0]])
  try {
    for (const name of readdirSync(os.tmpdir())) if (name.startsWith('kinto-run-')) dirs.add(path.join(os.tmpdir(), name))
  } catch {}
  return [...dirs]
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined off Linux. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19]
  } catch {
    return undefined
  }
}

function entryAlive(entry: RunEntry): boolean {
  if (!processAlive(entry.pid)) return false
  if (entry.procStart === undefined) return true
  const now = processStartTime(entry.pid)
  return now === undefined || now === entry.procStart
}

/** The uid owning a path (not following a last symbolic link), or undefined (none, or no uids here). */
function ownerOf(file: string): number | undefined {
  try {
    return lstatSync(file).uid
  } catch {
    return undefined
  }
}

function readEntry(file: string): RunEntry | null {
  try {
    const entry = JSON.parse(readFileSync(file, 'utf8')) as RunEntry
    return typeof entry?.pid === 'number' && typeof entry.ini === 'string' ? entry : null
  } catch {
    return null
  }
}

/** The live runtimes started from this ini (stale entries are removed when possible). */
export function listRuns(iniPath: string, env: NodeJS.ProcessEnv = process.env): RunEntry[] {
  const ini = canonical(iniPath)
  const found = new Map<number, RunEntry>()
  for (const dir of searchDirs(iniPath, env)) {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }
    for (const name of names) {
      if (!/^\d+\.json$/.test(name)) continue
      const file = path.join(dir, name)
      const entry = readEntry(file)
      if (!entry) continue
      // Every user may make a kinto-run-* folder in the temporary folder, and all are read: an
      // entry counts only when its writer runs the process it names (else an operator, root,
      // would signal a process of someone's choosing, or remove the path it names as its socket).
      const writer = ownerOf(file)
      const runner = ownerOf(`/proc/${entry.pid}`)
      if (writer !== undefined && runner !== undefined && writer !== runner) continue
      if (!entryAlive(entry)) {
        // A server killed outright leaves its entry and its control socket: both go (the socket
        // only when the entry's writer owns it).
        const control = entry.control && writer !== undefined && ownerOf(entry.control) === writer ? [entry.control] : []
        for (const stale of [file, ...control]) {
          try {
            unlinkSync(stale)
          } catch {}
        }
        continue
      }
      if (canonical(entry.ini) === ini && !found.has(entry.pid)) found.set(entry.pid, entry)
    }
  }
  return [...found.values()].sort((a, b) => a.pid - b.pid)
}

/**
 * This process's entry: written at once, rewritten by update(), removed by remove(). Writing
 * never throws (a runtime must not fail because its registry folder is read-only): the
 * first folder that takes the file is used; `error` tells why none did.
 */
export class RunRecord {
  private file: string | null = null
  error: string | null = null
  readonly entry: RunEntry

  constructor(
    entry: Omit<RunEntry, 'pid' | 'procStart' | 'startedAt'> & {startedAt?: string},
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.entry = {
      pid: process.pid,
      procStart: processStartTime(process.pid),
      startedAt: new Date().toISOString(),
      ...entry,
      ini: canonical(entry.ini),
    }
    this.write()
  }

  update(patch: Partial<RunEntry>): void {
    Object.assign(this.entry, patch)
    this.write()
  }

  get path(): string | null {
    return this.file
  }

  private write(): void {
    const data = JSON.stringify(this.entry, null, 2) + '\n'
    const candidates = this.file ? [path.dirname(this.file)] : runDirs(this.entry.ini, this.env)
    const errors: string[] = []
    for (const dir of candidates) {
      try {
        mkdirs(dir, 0o755)
        const file = path.join(dir, `${this.entry.pid}.json`)
        writeFileAtomic(file, data, {mode: 0o644})
        this.file = file
        this.error = null
        return
      } catch (error) {
        errors.push(`${dir}: ${(error as Error).message}`)
      }
    }
    this.error = errors.join('; ')
  }

  remove(): void {
    if (!this.file) return
    try {
      unlinkSync(this.file)
    } catch {}
    this.file = null
  }
}

export type SignalOutcome = {pid: number; sent: true} | {pid: number; sent: false; error: string}

/** Sends a signal to each pid (checking first that the entry is still its process). */
export function signalRuns(entries: RunEntry[], signal: NodeJS.Signals): SignalOutcome[] {
  return entries.map((entry) => {
    if (!entryAlive(entry)) return {pid: entry.pid, sent: false, error: 'the process is gone'}
    try {
      process.kill(entry.pid, signal)
      return {pid: entry.pid, sent: true}
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const why = code === 'EPERM' ? 'not allowed to signal it (another user: run as that user or root)' : (error as Error).message
      return {pid: entry.pid, sent: false, error: why}
    }
  })
}

export type ReloadWait =
  | {pid: number; outcome: 'reloaded'; entry: RunEntry}
  | {pid: number; outcome: 'failed'; entry: RunEntry; message: string}
  | {pid: number; outcome: 'gone'}
  | {pid: number; outcome: 'timeout'; entry: RunEntry}

/**
 * Waits until each of `pids` reports having loaded the ini with sha256 `configHash` (or a failed
 * reload of it), its process ends, or timeoutMs passes.
 */
export async function waitForConfig(
  iniPath: string,
  pids: number[],
  configHash: string,
  {timeoutMs = 3000, pollMs = 25, env = process.env}: {timeoutMs?: number; pollMs?: number; env?: NodeJS.ProcessEnv} = {},
): Promise<ReloadWait[]> {
  const deadline = Date.now() + timeoutMs
  const done = new Map<number, ReloadWait>()
  for (;;) {
    const entries = new Map(listRuns(iniPath, env).map((e) => [e.pid, e]))
    for (const pid of pids) {
      if (done.has(pid)) continue
      const entry = entries.get(pid)
      if (!entry) done.set(pid, {pid, outcome: 'gone'})
      else if (entry.configHash === configHash) done.set(pid, {pid, outcome: 'reloaded', entry})
      else if (entry.reloadError?.configHash === configHash) done.set(pid, {pid, outcome: 'failed', entry, message: entry.reloadError.message})
      else if (Date.now() >= deadline) done.set(pid, {pid, outcome: 'timeout', entry})
    }
    if (done.size === pids.length) return pids.map((pid) => done.get(pid)!)
    await sleep(pollMs)
  }
}

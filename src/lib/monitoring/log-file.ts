/**
 * A log file that survives rotation: what Python's WatchedFileHandler, RotatingFileHandler and
 * TimedRotatingFileHandler do, safe for the several processes of `kinto start --workers` writing
 * one file.
 *
 * - Watched (every file handler class): when the path no longer names the file we have open
 *   (logrotate moved or removed it), the next write reopens the path, creating it. Python stats the
 *   path before every record; we do it before the first write after WATCH_INTERVAL_MS since the
 *   last check (a boolean on the write path, a timer armed only while lines are written), so a line
 *   costs no system call and an idle process does nothing. Lines written in between still land in
 *   the moved file, which logrotate's `delaycompress` (or a `postrotate` SIGHUP: reopen()) covers.
 * - reopen(): closes and reopens the path at once (SIGHUP, logrotate's `postrotate kill -HUP`).
 * - Rotating (maxBytes > 0 and backupCount > 0, as Python: zero in either never rolls over): when
 *   a write would take the file to maxBytes or past it, the file is renamed file.1 (file.1 to
 *   file.2 …, the oldest beyond backupCount dropped) and a new one is opened. A write of several
 *   lines (a batch of request summaries) is cut at its last line that still fits, as Python decides
 *   line by line. The size is a counter of what this process wrote, refreshed from the file at each
 *   check: a cached number, no system call per line.
 *   A rotating file other processes write too (`shared`: the workers of `--workers`, or found out
 *   at a check or a rollover) is stat'ed before each write instead (a write(2) carries a batch of
 *   summaries, so that is one stat per batch): a process must not go on writing into a file another
 *   one rotated (its lines would pass maxBytes there, and be lost once it passes backupCount).
 * - Timed (timedSchedule): at the end of a period the file is renamed with the period's start
 *   (`kinto.log.2026-12-07`), the dated files beyond backupCount removed. A timer armed for the
 *   rollover time makes the next write look, so a line costs nothing more here either.
 * - Several processes: a rollover (by size or time) is done under a lock file (`<file>.lock`,
 *   created O_EXCL, holding the pid); whoever takes it first checks that the path is still the
 *   file it has open (else another process rotated already: it reopens) and that the file is
 *   really full (or its dated name free), so one crossing or period is one rollover. A process that finds the lock taken waits for it (LOCK_WAIT_MS at most, then
 *   writes on to its open file and looks again at its next write). A lock left by a dead process
 *   (its pid gone, or older than a minute) is removed.
 */
import {closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync} from 'node:fs'
import {basename, dirname} from 'node:path'

import {processAlive} from '../process.js'

/** How often (at most) the path is compared with the open file: Python does it before each record. */
export const WATCH_INTERVAL_MS = 1000
/** setTimeout's longest delay (a weekly rollover is further away: the timer is armed again). */
const MAX_TIMER_MS = 2 ** 31 - 1
/** A lock file older than this is stale whatever its pid (a rollover takes milliseconds). */
const STALE_LOCK_MS = 60_000

export interface LogFileOptions {
  /** Roll over before the file reaches this many bytes (0: never; RotatingFileHandler's maxBytes). */
  maxBytes?: number
  /** How many rolled-over files to keep (file.1 … file.N; 0: never roll over). */
  backupCount?: number
  /** Roll over by time (TimedRotatingFileHandler; see timedSchedule). */
  timed?: TimedRollover
  /** Truncate the file when first opened (FileHandler's mode 'w'). */
  truncate?: boolean
  /** Told once per distinct failure (a full disk, a removed folder); never throws. */
  onError?: (message: string) => void
  /**
   * Other processes write this file too (the workers of `kinto start --workers`): a rotating file
   * then compares the path with its open file, and takes its size, before each write. Found out
   * by itself at a check too (the file grew by more than this process wrote).
   */
  shared?: boolean
  /** Milliseconds between two checks of the path (tests). */
  watchIntervalMs?: number
}

export class LogFile {
  readonly isTTY = false
  private fd = -1
  private dev = 0
  private ino = 0
  /** This process's idea of the file's size (rotating files only). */
  private size = 0
  /** Whether the next write compares the path with the open file first. */
  private due = false
  private timer: NodeJS.Timeout | undefined
  private lastError = ''
  private readonly maxBytes: number
  private readonly intervalMs: number
  /** A rotating file that others write too: checked before each write (see LogFileOptions.shared). */
  private checkEachWrite: boolean
  private mtimeMs = 0
  /** Timed rollover: the schedule, the next rollover (ms) and the timer that makes it due. */
  private readonly schedule: TimedSchedule | null
  private rolloverAt = Number.POSITIVE_INFINITY
  private timeTimer: NodeJS.Timeout | undefined
  /** Until when a taken lock is not waited for again (a holder stopped, not dead: no wait per write). */
  private lockBusyUntil = 0

  constructor(
    readonly file: string,
    private readonly options: LogFileOptions = {},
  ) {
    this.maxBytes = (options.backupCount ?? 0) > 0 ? Math.max(0, options.maxBytes ?? 0) : 0
    this.intervalMs = options.watchIntervalMs ?? WATCH_INTERVAL_MS
    this.checkEachWrite = this.maxBytes > 0 && options.shared === true
    // The first open fails loudly (the caller writes elsewhere); later ones are reported and retried.
    mkdirSync(dirname(file), {recursive: true})
    this.adopt(openSync(file, options.truncate ? 'w' : 'a', 0o644))
    this.armWatch()
    this.schedule = options.timed ? timedSchedule(options.timed) : null
    // Python: from the file's last change (a server restarted late rolls the old file over at once).
    if (this.schedule) this.reschedule(Math.floor(this.mtimeMs / 1000) * 1000)
  }

  write(text: string): boolean {
    if (this.due || this.checkEachWrite) this.check()
    if (this.maxBytes > 0) return this.writeRotating(text)
    this.append(text)
    return true
  }

  /** Closes and reopens the path (creating it): after logrotate moved it (SIGHUP). */
  reopen(): void {
    this.close()
    this.open('a')
    // A timed rollover that was due stays due.
    this.due = this.rolloverAt <= Date.now()
    this.armWatch()
  }

  private close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.due = true
    if (this.fd >= 0) {
      try {
        closeSync(this.fd)
      } catch {
        // already gone: nothing to release
      }
      this.fd = -1
    }
  }

  private open(flags: 'a' | 'w'): void {
    try {
      this.adopt(openSync(this.file, flags, 0o644))
    } catch (error) {
      this.failed('open', error)
    }
  }

  private adopt(fd: number): void {
    const st = fstatSync(fd)
    this.fd = fd
    this.dev = st.dev
    this.ino = st.ino
    this.size = st.size
    this.mtimeMs = st.mtimeMs
  }

  /** Writes to the open file; without one (it could not be opened) the text is lost (reported once). */
  private append(text: string): void {
    if (this.fd < 0) return
    try {
      writeSync(this.fd, text)
    } catch (error) {
      this.failed('write to', error)
      this.due = true
    }
  }

  /** Python's WatchedFileHandler.reopenIfNeeded, at most once per interval; a timed rollover when due. */
  private check(): void {
    const st = this.stat()
    if (!this.stillOurs(st)) {
      this.reopen()
      // A new file (another process rolled it over, or logrotate moved it): its period starts now.
      if (this.schedule) this.reschedule(Date.now())
    } else {
      // More than this process wrote: another one writes it too.
      if (this.maxBytes > 0 && st.size > this.size) this.checkEachWrite = true
      this.size = st.size
      this.due = false
      this.armWatch()
    }
    if (this.schedule && Date.now() >= this.rolloverAt) this.rolloverByTime()
  }

  /** The path's dev, inode and size (undefined: gone, or not readable). */
  private stat(): {dev: number; ino: number; size: number} | undefined {
    try {
      return statSync(this.file, {throwIfNoEntry: false})
    } catch {
      return undefined
    }
  }

  /** Whether the path (its stat) still names the file we have open (not moved, removed or rotated). */
  private stillOurs<S extends {dev: number; ino: number}>(st: S | undefined): st is S {
    return st !== undefined && st.dev === this.dev && st.ino === this.ino && this.fd >= 0
  }

  /** Whether `bytes` more stay under maxBytes (an empty file takes anything: Python's rule). */
  private fits(bytes: number): boolean {
    return this.size === 0 || this.size + bytes < this.maxBytes
  }

  private armWatch(): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.due = true
    }, this.intervalMs).unref()
  }

  private writeRotating(text: string): boolean {
    let rest = text
    for (;;) {
      const bytes = Buffer.byteLength(rest)
      if (this.fits(bytes)) {
        this.append(rest)
        this.size += bytes
        return true
      }
      // The lines that still fit go to this file (Python decides line by line).
      const cut = fittingPrefix(rest, this.maxBytes - this.size)
      if (cut > 0) {
        const head = rest.slice(0, cut)
        this.append(head)
        this.size += Buffer.byteLength(head)
        rest = rest.slice(cut)
      }
      if (Date.now() < this.lockBusyUntil || !this.rollover(Buffer.byteLength(rest))) {
        // Another process holds the lock: write on, look again at the next write.
        this.append(rest)
        this.size += Buffer.byteLength(rest)
        this.due = true
        return true
      }
      // One rollover per write: a line longer than maxBytes gets a file of its own, no more.
      const after = Buffer.byteLength(rest)
      if (this.fits(after)) continue
      this.append(rest)
      this.size += after
      return true
    }
  }

  /**
   * Rolls the file over unless another process just did (then reopens it). False when the lock is
   * taken (another process is rotating).
   */
  private rollover(nextBytes: number): boolean {
    const lock = `${this.file}.lock`
    if (!this.lock(lock)) return false
    try {
      const st = this.stat()
      if (!this.stillOurs(st)) {
        // Rotated by another process (or moved): the new file is ours too.
        this.checkEachWrite = true
        this.reopen()
        if (this.fits(nextBytes)) return true
      } else {
        this.size = fstatSync(this.fd).size
        if (this.fits(nextBytes)) return true
      }
      this.close()
      const backupCount = this.options.backupCount ?? 0
      // file.1 … file.(gap-1) move up one: nothing above the first missing one needs to move (Python
      // tries every number up to backupCount, which holds the lock for as many failing renames).
      let gap = 1
      while (gap < backupCount && existsSync(`${this.file}.${gap}`)) gap++
      for (let i = gap - 1; i >= 1; i--) renameIfThere(`${this.file}.${i}`, `${this.file}.${i + 1}`)
      renameIfThere(this.file, `${this.file}.1`)
      this.reopen()
      return true
    } catch (error) {
      this.failed('roll over', error)
      if (this.fd < 0) this.open('a')
      // Not again before the next check: a rename that fails would fail on every line.
      this.lockBusyUntil = Date.now() + this.intervalMs
      return false
    } finally {
      releaseLock(lock)
    }
  }

  /** Takes the rollover lock, waiting for it unless it was found taken for that long lately. */
  private lock(lock: string): boolean {
    const now = Date.now()
    try {
      if (takeLock(lock, now < this.lockBusyUntil ? 0 : LOCK_WAIT_MS)) return true
    } catch (error) {
      // The folder takes no lock file (read-only, full): reported once, the log goes on growing.
      this.failed('lock (for a rollover)', error)
    }
    this.lockBusyUntil = now + this.intervalMs
    return false
  }

  /**
   * The next timed rollover after `from` (a file's last change, or now), and the timer that makes
   * the next write look at it. From an old file's time it may be past: the first write rolls over.
   */
  private reschedule(from: number): void {
    this.rolloverAt = this.schedule!.next(from)
    if (this.rolloverAt <= Date.now()) this.due = true
    else this.armTime()
  }

  private armTime(): void {
    clearTimeout(this.timeTimer)
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, this.rolloverAt - Date.now()))
    this.timeTimer = setTimeout(() => {
      this.timeTimer = undefined
      if (Date.now() >= this.rolloverAt) this.due = true
      else this.armTime()
    }, wait).unref()
  }

  /**
   * TimedRotatingFileHandler.doRollover: the file is renamed with the date of the period it holds
   * (`kinto.log.2026-12-07`), the oldest beyond backupCount removed. Under the lock: a process that
   * finds the path changed (another one rolled over) or the dated name taken only reopens.
   */
  private rolloverByTime(): void {
    const lock = `${this.file}.lock`
    if (!this.lock(lock)) {
      this.due = true
      return
    }
    const schedule = this.schedule!
    try {
      const st = this.stat()
      if (!this.stillOurs(st)) {
        this.reopen()
      } else {
        const dated = `${this.file}.${schedule.suffix(this.rolloverAt)}`
        if (!existsSync(dated)) {
          this.close()
          renameSync(this.file, dated)
          this.reopen()
          this.removeOldDated(schedule)
        }
      }
    } catch (error) {
      this.failed('roll over', error)
      if (this.fd < 0) this.open('a')
    } finally {
      releaseLock(lock)
    }
    this.reschedule(Date.now())
  }

  /** Python's getFilesToDelete: the dated files of this log beyond the newest backupCount. */
  private removeOldDated(schedule: TimedSchedule): void {
    const keep = this.options.timed?.backupCount ?? 0
    if (keep <= 0) return
    const dir = dirname(this.file)
    const prefix = `${basename(this.file)}.`
    const dated = readdirSync(dir)
      .filter((name) => name.startsWith(prefix) && schedule.ext.test(name.slice(prefix.length)))
      .sort()
    for (const name of dated.slice(0, Math.max(0, dated.length - keep))) unlinkSync(`${dir}/${name}`)
  }

  private failed(what: string, error: unknown): void {
    const e = error as NodeJS.ErrnoException
    const message = `Cannot ${what} the log file ${this.file} (${e.code ?? e.message}).`
    if (message === this.lastError) return
    this.lastError = message
    this.options.onError?.(message)
  }
}

function releaseLock(lock: string): void {
  try {
    unlinkSync(lock)
  } catch {
    // removed as stale by another process: nothing to release
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

/** The length of the longest run of whole lines of `text` within `bytes` bytes (0: not even one). */
export function fittingPrefix(text: string, bytes: number): number {
  let end = 0
  for (;;) {
    const next = text.indexOf('\n', end)
    if (next < 0 || next + 1 === text.length) return end
    if (Buffer.byteLength(text.slice(0, next + 1)) >= bytes) return end
    end = next + 1
  }
}

/** How long a process waits for another one's rollover (one takes well under a millisecond). */
const LOCK_WAIT_MS = 20
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/**
 * Creates the lock file (O_EXCL) with our pid, waiting up to LOCK_WAIT_MS for another process to
 * release it (a sleep, not a spin); a stale one (dead pid, or old) is removed. False: still taken.
 */
function takeLock(lock: string, waitMs: number): boolean {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), {flag: 'wx'})
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    if (staleLock(lock)) {
      try {
        unlinkSync(lock)
      } catch {
        // removed meanwhile
      }
    } else if (Date.now() >= deadline) return false
    else Atomics.wait(sleeper, 0, 0, 1)
  }
}

function staleLock(lock: string): boolean {
  try {
    const st = statSync(lock)
    if (Date.now() - st.mtimeMs > STALE_LOCK_MS) return true
    const pid = Number(readFileSync(lock, 'utf8'))
    if (!Number.isInteger(pid) || pid <= 0) return false
    return !processAlive(pid)
  } catch {
    // the lock went away meanwhile (released): not stale, try to take it again
    return false
  }
}

/** TimedRotatingFileHandler's parameters (its `when` as given: S, M, H, D, midnight, W0-W6). */
export interface TimedRollover {
  when: string
  interval: number
  backupCount: number
  utc: boolean
}

/** When a timed file rolls over and what its rolled-over copy is named. */
export interface TimedSchedule {
  /** The first rollover after `t` (ms). */
  next(t: number): number
  /** The name's suffix of the file a rollover at `rolloverAt` closes (the start of its period). */
  suffix(rolloverAt: number): string
  /** Suffixes of this schedule's files (with a compression extension: `.gz`). */
  ext: RegExp
}

const DAY_MS = 86_400_000
const FIXED_UNITS: Readonly<Record<string, [number, string, string]>> = {
  S: [1000, '%Y-%m-%d_%H-%M-%S', String.raw`\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}`],
  M: [60_000, '%Y-%m-%d_%H-%M', String.raw`\d{4}-\d{2}-\d{2}_\d{2}-\d{2}`],
  H: [3_600_000, '%Y-%m-%d_%H', String.raw`\d{4}-\d{2}-\d{2}_\d{2}`],
  D: [DAY_MS, '%Y-%m-%d', String.raw`\d{4}-\d{2}-\d{2}`],
}

/** Whether `when` is one TimedRotatingFileHandler takes (case-insensitive, as Python upper-cases it). */
export function validWhen(when: string): boolean {
  return /^(?:[SMHD]|MIDNIGHT|W[0-6])$/i.test(when)
}

/**
 * Python's schedule: S/M/H/D roll over `interval` units after the file's period began;
 * `midnight` at the next midnight (then every `interval` days), `W0`…`W6` at the midnight that
 * ends that weekday (0 is Monday; then every `interval` weeks), local time unless utc. Local
 * midnights are calendar ones (a DST day is 23 or 25 hours), as Python's DST correction aims at.
 */
export function timedSchedule({when, interval, utc}: TimedRollover): TimedSchedule {
  const kind = when.toUpperCase()
  const n = Math.max(1, Math.floor(interval))
  const at = (t: number) => {
    const d = new Date(t)
    return utc
      ? {y: d.getUTCFullYear(), m: d.getUTCMonth(), d: d.getUTCDate(), H: d.getUTCHours(), M: d.getUTCMinutes(), S: d.getUTCSeconds(), wday: (d.getUTCDay() + 6) % 7}
      : {y: d.getFullYear(), m: d.getMonth(), d: d.getDate(), H: d.getHours(), M: d.getMinutes(), S: d.getSeconds(), wday: (d.getDay() + 6) % 7}
  }
  const midnight = (y: number, m: number, d: number) => (utc ? Date.UTC(y, m, d) : new Date(y, m, d).getTime())
  const format = (t: number, fmt: string) => {
    const p = at(t)
    const two = (v: number) => String(v).padStart(2, '0')
    return fmt.replace(/%([YmdHMS])/g, (_, k: string) => (k === 'Y' ? String(p.y) : two(k === 'm' ? p.m + 1 : k === 'd' ? p.d : k === 'H' ? p.H : k === 'M' ? p.M : p.S)))
  }
  const fixed = FIXED_UNITS[kind]
  if (fixed) {
    const [unit, fmt, ext] = fixed
    return {
      next: (t) => Math.floor(t / 1000) * 1000 + n * unit,
      suffix: (rolloverAt) => format(rolloverAt - n * unit, fmt),
      ext: new RegExp(`^${ext}(?:\\.\\w+)?$`),
    }
  }
  const days = kind === 'MIDNIGHT' ? n : 7 * n
  const dayOfWeek = kind === 'MIDNIGHT' ? -1 : Number(kind.slice(1))
  return {
    next(t) {
      const p = at(t)
      let wait = 0
      if (dayOfWeek >= 0 && p.wday !== dayOfWeek) wait = p.wday < dayOfWeek ? dayOfWeek - p.wday : 6 - p.wday + dayOfWeek + 1
      // The midnight ending today (or the weekday), then the interval's further days or weeks.
      return midnight(p.y, p.m, p.d + 1 + wait + days - (dayOfWeek >= 0 ? 7 : 1))
    },
    suffix(rolloverAt) {
      const p = at(rolloverAt)
      return format(midnight(p.y, p.m, p.d - days), '%Y-%m-%d')
    },
    ext: new RegExp(String.raw`^\d{4}-\d{2}-\d{2}(?:\.\w+)?$`),
  }
}

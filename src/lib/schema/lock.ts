/**
 * Serialising concurrent `kinto migrate` runs.
 *
 * PostgreSQL: a session-level advisory lock. The key is a constant: the first 8 bytes of
 * sha256("kinto-ops:migrate") read as a signed big-endian int64 (MIGRATION_LOCK_KEY). Advisory locks
 * are scoped to the current database, so the same key serialises runs per database. We poll with
 * pg_try_advisory_lock instead of blocking in pg_advisory_lock: a blocked waiter can deadlock
 * with other sessions, cannot time out cleanly and cannot say who holds the lock.
 *
 * PGlite (embedded): one process may open a data folder at a time, so the lock is a file next to
 * the folder (`<folder>.kinto-migrate.lock`, holding the owner's pid), taken before the folder is
 * opened. A lock file whose process is gone is stale and taken over (a lock file of a server also
 * records which process it was, so that a later process given the same pid, after a reboot, is
 * not taken for it). A server (`kinto start`) holds
 * it for its whole life and says so in the file (second line, JSON owner): the other commands then
 * fail at once naming its pid instead of waiting for a lock that will not be released.
 */
import {closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync} from 'node:fs'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Queryable} from '../db/index.js'
import {ExitCode, isKintoError, KintoError, type KintoErrorOptions} from '../errors.js'
import {mkdirs} from '../fs.js'
import {type ProcessIdentity, processIdentity, sameProcessAlive} from '../process.js'

export const MIGRATION_LOCK_NAME = 'kinto-ops:migrate'
/** int64 of the first 8 bytes of sha256(MIGRATION_LOCK_NAME), big-endian, signed. */
export const MIGRATION_LOCK_KEY = '1303967871420726987'

export interface LockWaitOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number
  /** Fail at once when the lock is held (no waiting). */
  noWait?: boolean
  /** Poll interval (default 100 ms, with jitter). */
  pollMs?: number
  /** Called when the lock is held by someone else (again whenever the holder changes). */
  onWait?: (holder: string) => void
  /** What is being locked, for messages ("database localhost:5432/kinto"). */
  target: string
  /** What to do when the wait times out (default: wait for the other migration, or raise --lock-timeout). */
  timeoutHint?: string
  /** File locks held by a server: what else the operator can do (appended to "stop that server"). */
  inUseHint?: string
  /** File locks: who takes it, written in the lock file for the messages of other processes. */
  owner?: LockOwner
}

/** Who holds a lock file. `serves`: a server that keeps it until it stops (waiting is pointless). */
export interface LockOwner {
  command: string
  serves?: boolean
  /** e.g. the URL served. */
  detail?: string
  /**
   * processIdentity of the holder (written by acquireFileLock): a later process given the same
   * pid (a container restarted, a reboot) is not taken for the holder.
   */
  process?: ProcessIdentity
}

export interface FileLockHolder {
  pid: number
  owner?: LockOwner
}

/** A lock that stayed taken (`--no-wait`, or past the timeout), with who held it when known. */
export class LockWaitError extends KintoError {
  constructor(
    message: string,
    options: KintoErrorOptions,
    readonly holder: string | undefined,
  ) {
    super(message, options)
  }
}

function lockError(kind: 'busy' | 'timeout', opts: LockWaitOptions, holder: string | undefined): KintoError {
  const who = holder ? ` (held by ${holder})` : ''
  if (kind === 'busy') {
    return new LockWaitError(
      `Another migration holds the migration lock on ${opts.target}${who}.`,
      {code: 'KINTO_MIGRATE_LOCKED', exit: ExitCode.LOCK_TIMEOUT, hint: 'Run again without --no-wait to wait for it, or later.'},
      holder,
    )
  }
  return new LockWaitError(
    `Timed out after ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s waiting for the migration lock on ${opts.target}${who}.`,
    {
      code: 'KINTO_MIGRATE_LOCK_TIMEOUT',
      exit: ExitCode.LOCK_TIMEOUT,
      hint: opts.timeoutHint ?? 'Wait for the other migration to finish, or raise --lock-timeout.',
    },
    holder,
  )
}

/** Splits the int64 key into pg_locks' (classid, objid) pair. */
function keyParts(key: string): [string, string] {
  const k = BigInt.asUintN(64, BigInt(key))
  return [(k >> 32n).toString(), (k & 0xffffffffn).toString()]
}

async function advisoryHolder(conn: Queryable, key: string): Promise<string | undefined> {
  const [classid, objid] = keyParts(key)
  const res = await conn.query<{pid: number}>(
    `SELECT l.pid FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1
      LIMIT 1`,
    [classid, objid],
  )
  return res.rows[0] ? `PostgreSQL backend pid ${res.rows[0].pid}` : undefined
}

/**
 * Runs fn while holding the advisory lock `key` on conn (a dedicated connection). The lock is
 * session-level and released in `finally` (and by the server if the connection dies).
 */
export async function withAdvisoryLock<T>(
  conn: Queryable,
  key: string,
  opts: LockWaitOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const started = Date.now()
  const timeoutMs = opts.timeoutMs ?? 60_000
  let lastHolder: string | undefined
  for (;;) {
    const res = await conn.query<{locked: boolean}>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key])
    if (res.rows[0]?.locked) break
    const holder = await advisoryHolder(conn, key)
    if (opts.noWait) throw lockError('busy', opts, holder)
    if (holder && holder !== lastHolder) opts.onWait?.(holder)
    lastHolder = holder ?? lastHolder
    if (Date.now() - started >= timeoutMs) throw lockError('timeout', opts, holder)
    await sleep(Math.min(jitter(opts.pollMs ?? 100), Math.max(1, timeoutMs - (Date.now() - started))))
  }
  try {
    return await fn()
  } finally {
    await conn.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => {})
  }
}

const jitter = (ms: number) => Math.round(ms * (0.75 + Math.random() * 0.5))

function parseLockFile(text: string): FileLockHolder {
  const [first, second] = text.split('\n')
  const holder: FileLockHolder = {pid: Number(first.trim())}
  if (second?.trim()) {
    try {
      const owner = JSON.parse(second) as LockOwner
      if (owner && typeof owner.command === 'string') holder.owner = owner
    } catch {}
  }
  return holder
}

function describeHolder(h: FileLockHolder): string {
  const what = h.owner ? `, ${h.owner.command}${h.owner.detail ? ` on ${h.owner.detail}` : ''}` : ''
  return `process ${h.pid}${what}`
}

/** The live holder of a lock file, or null (no file, or its process is gone). */
export function readFileLockHolder(lockPath: string): FileLockHolder | null {
  let holder: FileLockHolder
  try {
    holder = parseLockFile(readFileSync(lockPath, 'utf8'))
  } catch {
    return null
  }
  return Number.isInteger(holder.pid) && holder.pid > 0 && sameProcessAlive(holder.pid, holder.owner?.process) ? holder : null
}

/** Whether the lock file exists but this user may not read it (another user's). */
export function lockFileUnreadable(lockPath: string): boolean {
  try {
    readFileSync(lockPath)
    return false
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === 'EACCES' || code === 'EPERM'
  }
}

function inUseError(opts: LockWaitOptions, h: FileLockHolder): KintoError {
  return new KintoError(
    `The ${opts.target} is open in a running server (${describeHolder(h)}); PGlite lets one process use a folder at a time.`,
    {
      code: 'KINTO_DB_IN_USE',
      exit: ExitCode.LOCK_TIMEOUT,
      hint: `Stop that server (kill -TERM ${h.pid}) and run this again${opts.inUseHint ? `; ${opts.inUseHint}` : '.'}`,
    },
  )
}

/** A lock file without a pid this old is stale: its writer failed to write the pid (see acquireFileLock). */
const PIDLESS_STALE_MS = 5000

const LOCK_FILE_FAILURES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EIO: 'an input/output error',
}

/** KINTO_DB_FOLDER_INVALID for a lock file that cannot be made, written or read, or undefined. */
function lockFileError(lockPath: string, opts: LockWaitOptions, error: unknown, verb: 'create' | 'read' = 'create'): KintoError | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? ''
  const reason = LOCK_FILE_FAILURES[code]
  if (!reason) return undefined
  if (verb === 'read') {
    // Another user's lock (its process, e.g. a server, holds the folder): waiting would never end.
    return new KintoError(`Cannot read the lock file ${lockPath} of the ${opts.target}: ${reason}.`, {
      code: 'KINTO_DB_FOLDER_INVALID',
      hint: 'Run as the user that owns the embedded folder (and runs its server, if one holds it).',
      cause: error,
    })
  }
  const hint =
    code === 'EROFS'
      ? // No user can help there: the engine writes to its folder even to read it.
        'Remount that file system read-write, or copy the embedded folder to a writable place and point the ini at the copy (the engine writes to its folder even to read it).'
      : reason === 'permission denied'
        ? 'Run as the user that owns the embedded folder and the folder it is in (the lock file goes beside it).'
        : 'Free space on the file system of the embedded folder (the lock file goes beside it), then run this again.'
  return new KintoError(`Cannot create the lock file ${lockPath} of the ${opts.target}: ${reason}.`, {code: 'KINTO_DB_FOLDER_INVALID', hint, cause: error})
}

export function pgliteLockPath(dataDir: string): string {
  return `${dataDir.replace(/[\\/]+$/, '')}.kinto-migrate.lock`
}

/**
 * Takes the exclusive lock file (holding our pid), waiting as opts say; a file left by a dead
 * process is taken over. Returns the release function. For a process that keeps an embedded
 * folder open for its whole life (e.g. a server), so that `kinto migrate` waits instead of
 * opening the folder twice.
 */
export async function acquireFileLock(lockPath: string, opts: LockWaitOptions): Promise<() => void> {
  mkdirs(path.dirname(lockPath))
  const started = Date.now()
  const timeoutMs = opts.timeoutMs ?? 60_000
  let lastHolder: string | undefined
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600)
      try {
        const identity = processIdentity(process.pid)
        const owner = opts.owner && identity ? {...opts.owner, process: identity} : opts.owner
        writeSync(fd, owner ? `${process.pid}\n${JSON.stringify(owner)}\n` : String(process.pid))
      } catch (error) {
        // A lock file without our pid would hold every other command off: take it back.
        closeSync(fd)
        try {
          unlinkSync(lockPath)
        } catch {}
        throw lockFileError(lockPath, opts, error) ?? error
      }
      closeSync(fd)
      break
    } catch (error) {
      if (isKintoError(error)) throw error
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw lockFileError(lockPath, opts, error) ?? error
    }
    let pid = Number.NaN
    let held: FileLockHolder
    let stale: boolean
    try {
      held = parseLockFile(readFileSync(lockPath, 'utf8'))
      pid = held.pid
      // Dead owner; or no pid in a file some seconds old (its writer could not write it: a full
      // disk, before this took the file back; a fresh one is a writer about to write its pid).
      stale = Number.isInteger(pid) && pid > 0 ? !sameProcessAlive(pid, held.owner?.process) : Date.now() - statSync(lockPath).mtimeMs > PIDLESS_STALE_MS
    } catch (error) {
      // Removed between open and read: try again at once. Any other failure (a lock file of
      // another user this one may not read) would come back on every turn of this loop.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw lockFileError(lockPath, opts, error, 'read') ?? error
    }
    if (stale) {
      // Stale: its owner died (e.g. SIGKILL). Move it aside (rename is atomic), and if what we moved
      // turns out to be a fresh lock another process took meanwhile, put it back.
      const aside = `${lockPath}.${process.pid}.stale`
      try {
        renameSync(lockPath, aside)
      } catch {
        continue
      }
      try {
        if (!Object.is(parseLockFile(readFileSync(aside, 'utf8')).pid, pid)) linkSync(aside, lockPath)
      } catch {}
      try {
        unlinkSync(aside)
      } catch {}
      continue
    }
    if (held.owner?.serves && Number.isInteger(pid) && pid > 0) throw inUseError(opts, held)
    const holder = Number.isInteger(pid) && pid > 0 ? describeHolder(held) : undefined
    if (opts.noWait) throw lockError('busy', opts, holder)
    if (holder && holder !== lastHolder) opts.onWait?.(holder)
    lastHolder = holder ?? lastHolder
    if (Date.now() - started >= timeoutMs) throw lockError('timeout', opts, holder)
    await sleep(jitter(opts.pollMs ?? 100))
  }
  let released = false
  return () => {
    if (released) return
    released = true
    try {
      if (parseLockFile(readFileSync(lockPath, 'utf8')).pid === process.pid) unlinkSync(lockPath)
    } catch {}
  }
}

/** Runs fn holding the lock file (see acquireFileLock); released in finally. */
export async function withFileLock<T>(lockPath: string, opts: LockWaitOptions, fn: () => Promise<T>): Promise<T> {
  const release = await acquireFileLock(lockPath, opts)
  try {
    return await fn()
  } finally {
    release()
  }
}

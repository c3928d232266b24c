/**
 * Atomic file writes: the data goes to a temporary file in the same folder, is flushed to disk,
 * then takes the target's name in one step (rename, or link when the target must not exist).
 * A reader sees the old file or the new one, never half of one; a crash leaves at most a stray
 * temporary file.
 */
import {randomBytes} from 'node:crypto'
import {
  closeSync,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  linkSync,
  openSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import path from 'node:path'

import {KintoError, UsageError} from '../errors.js'
import {mkdirs, nonRegularKind} from '../fs.js'

export interface AtomicWriteOptions {
  /** File mode of the result (umask does not apply). */
  mode: number
  /** Replace an existing file (default). When false and the file exists: KINTO_FILE_EXISTS. */
  overwrite?: boolean
  /** Create missing parent folders. */
  mkdirs?: boolean
  /**
   * Owner and group to give the new file (those of the file it replaces): an ini edited by root
   * stays readable by the server's own user. Not settable (a user other than root): left as made.
   */
  owner?: {uid: number; gid: number}
}

export class FileExistsError extends KintoError {
  constructor(readonly file: string) {
    super(`${file} already exists.`, {code: 'KINTO_FILE_EXISTS', hint: 'Add --force to overwrite it.'})
  }
}

const WRITE_FAILURES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  ENOTDIR: 'a parent is not a folder',
  EEXIST: 'a parent is not a folder',
  ENOENT: 'a folder on its path cannot be made',
  EIO: 'an input/output error',
}

/** Why a file could not be written, in words (permissions, a read-only or full disk), or undefined for any other error. */
export function writeFailureReason(error: unknown): string | undefined {
  return WRITE_FAILURES[(error as NodeJS.ErrnoException | null)?.code ?? '']
}

/**
 * KINTO_CONFIG_WRITE_FAILED for an ini that could not be written (permissions, a read-only or
 * full disk), or undefined for any other error. An existing file is unchanged (the write is
 * atomic): the message says so.
 */
export function configWriteError(file: string, error: unknown, options: {existing: boolean; hint: string}): KintoError | undefined {
  const reason = writeFailureReason(error)
  if (!reason) return undefined
  return new KintoError(`Cannot write ${file}: ${reason}${options.existing ? '; it was left as it was' : ''}.`, {
    code: 'KINTO_CONFIG_WRITE_FAILED',
    hint: options.hint,
    cause: error,
  })
}

function fsyncFolder(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some platforms and file systems cannot fsync a folder; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Follows a symbolic link so that the link is kept and its target is replaced. */
function resolveTarget(file: string): string {
  try {
    return realpathSync(file)
  } catch {
    return path.resolve(file)
  }
}

/**
 * What stands at `target` when it is neither a regular file nor absent: the rename would put a
 * regular file in place of a device (/dev/full), a named pipe or a link that leads nowhere
 * (/dev/stdout on a pipe), which nobody asks for even with --force. Folders are the callers' to word.
 */
function notAFile(target: string): string | undefined {
  const kind = nonRegularKind(target)
  if (kind === null || kind === 'a folder') return undefined
  // resolveTarget() followed any link that leads somewhere.
  return kind === 'a symbolic link' ? 'a symbolic link that leads nowhere' : kind
}

/**
 * A path that ends with a separator names a folder: `--ini conf/` wrote a file named `conf`, which
 * `--ini conf/` could not read back. Refused, with the file name to add.
 */
export function assertFilePath(file: string, example: string): void {
  if (file.endsWith('/') || file.endsWith(path.sep)) {
    throw new UsageError(`${file} ends with '/': it names a folder, and a file is written here.`, {hint: `Give the file's path, e.g. ${path.join(file, example)}.`})
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions): string {
  const target = resolveTarget(file)
  const kind = notAFile(target)
  if (kind) {
    throw new UsageError(`${file} is ${kind}: it is written only as a regular file, and was left as it was.`, {
      code: 'KINTO_NOT_A_FILE',
      hint: 'Give the path of a regular file (new or existing).',
    })
  }
  const dir = path.dirname(target)
  if (options.mkdirs) mkdirs(dir)
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openSync(tmp, 'wx', options.mode)
  let done = false
  try {
    try {
      fchmodSync(fd, options.mode)
      if (options.owner) {
        try {
          fchownSync(fd, options.owner.uid, options.owner.gid)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error
        }
      }
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
      let offset = 0
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    if (options.overwrite === false) {
      try {
        linkSync(tmp, target)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EEXIST') throw new FileExistsError(file)
        // File systems without hard links: check, then rename (a small window, but no partial file).
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error
        if (existsSync(target)) throw new FileExistsError(file)
        renameSync(tmp, target)
      }
      if (existsSync(tmp)) unlinkSync(tmp)
    } else {
      renameSync(tmp, target)
    }
    done = true
    fsyncFolder(dir)
    return target
  } finally {
    if (!done) {
      try {
        unlinkSync(tmp)
      } catch {
        // already gone
      }
    }
  }
}

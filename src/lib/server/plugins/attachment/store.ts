/**
 * Attachment files on local disk (kinto-attachment's local storage). A file is streamed to a
 * temporary name in its final folder (sha256 and size computed on the way, a size limit enforced
 * while streaming, fsync), then linked under its final name, which never overwrites a file.
 * Names never come from the client: a random UUID plus the (sanitised) extension, or the
 * operator's `filename_pattern`. Every path is checked to stay below base_path.
 */
import {createHash, randomUUID} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {chmod, link, mkdir, open, rm, unlink} from 'node:fs/promises'
import path from 'node:path'
import {Transform, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'

import {writeFailureReason} from '../../../config/atomic.js'
import {KintoError} from '../../../errors.js'
import type {ResourceOptions} from './settings.js'

/**
 * Folder mode: others may read and traverse (a web server serves base_path), nobody else writes.
 * Set whatever the process's umask (a service's UMask=0077 would otherwise hide every file from
 * the web server `kinto deploy nginx` sends to base_path).
 */
const FOLDER_MODE = 0o755
const FILE_MODE = 0o644

/**
 * KINTO_ATTACHMENT_STORE_FAILED for a file that could not be stored because of the folder or its
 * disk (permissions, a read-only or full file system), or undefined for any other error. The
 * operator's problem, said whole in one line: the server logs it without a stack (error-mapping.ts),
 * once per failing upload, and answers the client's 500 as upstream.
 */
export function storeFailure(err: unknown, folder: string): KintoError | undefined {
  const reason = writeFailureReason(err)
  if (!reason) return undefined
  return new KintoError(`Cannot store the attachment in ${folder}: ${reason}.`, {code: 'KINTO_ATTACHMENT_STORE_FAILED', cause: err})
}

export class FileTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`File size (${size} bytes) exceeds the limit (${limit} bytes).`)
  }
}

export interface WrittenFile {
  /** Absolute path of the temporary file (below the destination folder). */
  tempPath: string
  size: number
  hash: string
}

/** upstream's secure_filename: the last path component, ASCII letters, digits, `_`, `.`, `-` only. */
export function secureFilename(filename: string): string {
  const base = filename.split(/[/\\]/).pop() ?? ''
  // eslint-disable-next-line no-control-regex -- keeps the ASCII range, NUL included
  const ascii = base.normalize('NFKD').replace(/[^\x00-\x7f]/g, '')
  return ascii
    .split(/\s+/)
    .filter(Boolean)
    .join('_')
    .replace(/[^A-Za-z0-9_.-]/g, '')
    .replace(/^[._]+|[._]+$/g, '')
}

/** The extension of a client's filename as stored (lower-case, with its dot; '' for none). */
export function storedExtension(filename: string): string {
  return path.extname(secureFilename(filename)).toLowerCase()
}

/** upstream's `{datetime}`: local time as YYYYmmddHHMMSS. */
function compactDate(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`
}

/**
 * The longest stored name: file systems refuse names over 255 bytes (ENAMETOOLONG), and commit()
 * may add `-999` before the extension. Stored names are ASCII, so characters are bytes.
 */
export const MAX_STORED_NAME = 240

/**
 * The name a new file gets in its folder: a random UUID with the extension, through filename_pattern
 * if set. Never longer than MAX_STORED_NAME: a longer extension is cut (the client's filename is
 * kept in the record), a pattern that makes a longer name (a long record id) gives the random name.
 */
export function newFileName(options: ResourceOptions, filename: string, recordId: string, now = new Date()): string {
  const uuid = randomUUID()
  const random = `${uuid}${storedExtension(filename).slice(0, MAX_STORED_NAME - uuid.length)}`
  if (!options.filenamePattern) return random
  const formatted = options.filenamePattern.replace(/\{(datetime|rid|filename)\}/g, (_, key: string) =>
    key === 'datetime' ? compactDate(now) : key === 'rid' ? recordId : random,
  )
  const name = secureFilename(formatted)
  return name && name.length <= MAX_STORED_NAME ? name : random
}

export class LocalStore {
  readonly basePath: string

  constructor(basePath: string) {
    this.basePath = path.resolve(basePath)
  }

  /** Absolute path of a location relative to base_path; throws when it would leave it. */
  resolve(relative: string): string {
    const full = path.resolve(this.basePath, relative)
    if (full !== this.basePath && !full.startsWith(this.basePath + path.sep)) {
      throw new Error(`Attachment path '${relative}' is outside of the attachments folder.`)
    }
    return full
  }

  /** Creates base_path/folder (and its parents) with mode 0755; returns its absolute path. */
  async ensureFolder(folder: string): Promise<string> {
    const full = this.resolve(folder)
    const first = await mkdir(full, {recursive: true, mode: FOLDER_MODE})
    // the folders made here, from the first one down to `full` (never base_path's own parents)
    for (let dir = full; first && dir.length >= first.length; dir = path.dirname(dir)) await chmod(dir, FOLDER_MODE)
    return full
  }

  /**
   * Streams `source` to a temporary file in `folder` (relative to base_path). Past `maxSize`
   * bytes (0: no limit) nothing more is written, the rest is read and counted, the temporary
   * file removed and a FileTooLargeError thrown with the full size.
   */
  async write(source: Readable, folder: string, maxSize: number): Promise<WrittenFile> {
    try {
      return await this.writeTemp(source, folder, maxSize)
    } catch (err) {
      throw storeFailure(err, this.resolve(folder)) ?? err
    }
  }

  private async writeTemp(source: Readable, folder: string, maxSize: number): Promise<WrittenFile> {
    const dir = await this.ensureFolder(folder)
    const tempPath = path.join(dir, `.upload-${randomUUID()}.tmp`)
    const fh = await open(tempPath, 'wx', FILE_MODE)
    const hash = createHash('sha256')
    let size = 0
    let closed = false
    try {
      await fh.chmod(FILE_MODE)
      let tooLarge = false
      for await (const chunk of source as AsyncIterable<Buffer>) {
        size += chunk.length
        if (tooLarge) continue
        if (maxSize > 0 && size > maxSize) {
          tooLarge = true
          continue
        }
        hash.update(chunk)
        let offset = 0
        while (offset < chunk.length) offset += (await fh.write(chunk, offset)).bytesWritten
      }
      if (tooLarge) throw new FileTooLargeError(size, maxSize)
      await fh.sync()
      await fh.close()
      closed = true
      return {tempPath, size, hash: hash.digest('hex')}
    } catch (err) {
      if (!closed) await fh.close().catch(() => undefined)
      await rm(tempPath, {force: true})
      throw err
    }
  }

  /** Gzips a written file into a new temporary file beside it (the original is removed). */
  async gzip(file: WrittenFile): Promise<WrittenFile> {
    const tempPath = `${file.tempPath}.gz`
    const hash = createHash('sha256')
    let size = 0
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk)
        size += chunk.length
        done(null, chunk)
      },
    })
    try {
      await pipeline(createReadStream(file.tempPath), createGzip(), tap, createWriteStream(tempPath, {flags: 'wx', mode: FILE_MODE}))
      const fh = await open(tempPath, 'r')
      await Promise.all([fh.chmod(FILE_MODE), fh.sync()]).finally(() => fh.close())
    } catch (err) {
      await rm(tempPath, {force: true})
      throw err
    } finally {
      await rm(file.tempPath, {force: true})
    }
    return {tempPath, size, hash: hash.digest('hex')}
  }

  /**
   * Gives a temporary file its final name in its folder (never replacing a file: `name-1.ext`,
   * `name-2.ext`… as upstream when the name is taken) and returns the location relative to base_path.
   */
  async commit(tempPath: string, folder: string, name: string): Promise<string> {
    const dir = path.dirname(tempPath)
    const ext = path.extname(name)
    const stem = name.slice(0, name.length - ext.length)
    for (let counter = 0; counter < 1000; counter++) {
      const candidate = counter === 0 ? name : `${stem}-${counter}${ext}`
      try {
        await link(tempPath, path.join(dir, candidate))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
        throw err
      }
      await unlink(tempPath)
      await syncFolder(dir)
      return folder ? `${folder.replace(/\/+$/, '')}/${candidate}` : candidate
    }
    throw new Error(`No free file name for '${name}' in the attachments folder.`)
  }

  /** Removes a stored file (a location relative to base_path); true when there was one. */
  async delete(relative: string): Promise<boolean> {
    try {
      await unlink(this.resolve(relative))
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
  }
}

/** fsync of a folder, so that a rename survives a crash (not supported everywhere: best effort). */
async function syncFolder(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    await fh.sync().finally(() => fh.close())
  } catch {
    // Some file systems refuse fsync on folders; the file itself was synced.
  }
}

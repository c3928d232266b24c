/**
 * Reading an attachment upload (a multipart/form-data body): the file field `attachment`,
 * optional `data` and `permissions` fields holding JSON. The file is streamed to disk while the
 * parts arrive; every other part is read to its end so that the connection stays usable, and
 * the first problem is reported as upstream reports it (400, Kinto's error body) once the body
 * has been read, with nothing left on disk.
 */
import path from 'node:path'
import type {Readable} from 'node:stream'

import {isKintoError} from '../../../errors.js'
import {ERRNO, HttpError, invalid, requestTooLarge} from '../../errors.js'
import type {AttachmentSettings, ResourceOptions} from './settings.js'
import {FileTooLargeError, type LocalStore, type WrittenFile} from './store.js'

export const FILE_FIELD = 'attachment'

/** One part of a multipart body, as @fastify/multipart yields it. */
export type MultipartPart =
  | {type: 'file'; fieldname: string; filename: string; mimetype: string; file: Readable}
  | {type: 'field'; fieldname: string; value: unknown; valueTruncated: boolean}

/** A multipart body the HTTP layer left unread for the attachment view. */
export interface MultipartBody {
  parts(): AsyncIterable<MultipartPart>
  /** Called once the response is decided; removes what a failed upload left. */
  settle(): Promise<void>
  /** Work to run in settle(). */
  readonly settlers: Array<() => Promise<void>>
}

export interface ReceivedFile extends WrittenFile {
  /** The client's filename (metadata only; never used for the stored name). */
  filename: string
  mimetype: string
  original?: {filename: string; hash: string; mimetype: string; size: number}
}

export interface ReceivedUpload {
  file: ReceivedFile
  data?: Record<string, unknown>
  permissions?: Record<string, unknown>
}

function postedDataError(message: string): HttpError {
  return new HttpError(400, {errno: ERRNO.INVALID_POSTED_DATA, message})
}

/** Reads a stream to its end; returns how many bytes it held. */
async function drain(stream: Readable): Promise<number> {
  let size = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) size += chunk.length
  return size
}

function extensionAllowed(filename: string, extensions: Set<string>): boolean {
  if (extensions.size === 0) return true
  return extensions.has(path.extname(filename).replace(/^\./, '').toLowerCase())
}

function pyRepr(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

/**
 * Reads the whole body; returns the file (in a temporary file) and the JSON fields, or throws
 * the first problem (400 as upstream, 413 for a field over the body limit) with the file removed.
 */
export async function receiveUpload(
  body: MultipartBody,
  store: LocalStore,
  settings: AttachmentSettings,
  options: ResourceOptions,
  folder: string,
): Promise<ReceivedUpload> {
  let file: ReceivedFile | undefined
  const fields = new Map<string, string>()
  // Upstream's order of checks: the file, then the JSON fields, then unexpected fields.
  let fileError: HttpError | undefined
  let fieldError: HttpError | undefined
  let textAttachment = false
  try {
    for await (const part of body.parts()) {
      if (part.type === 'field') {
        if (part.valueTruncated) fieldError ??= requestTooLarge()
        else if (part.fieldname === FILE_FIELD) textAttachment = true
        else if (part.fieldname === 'data' || part.fieldname === 'permissions') fields.set(part.fieldname, String(part.value))
        else fieldError ??= postedDataError(`body: ${pyRepr(part.fieldname)} not in ('data', 'permissions')`)
        continue
      }
      if (part.fieldname !== FILE_FIELD) {
        await drain(part.file)
        fieldError ??=
          part.fieldname === 'data' || part.fieldname === 'permissions'
            ? postedDataError(`body: ${pyRepr(part.fieldname)} field should be passed as form data, not files`)
            : postedDataError(`body: ${pyRepr(part.fieldname)} not in ('data', 'permissions')`)
        continue
      }
      if (!part.filename) {
        // A file part without a name (a form sent with no file chosen) is no file, as upstream.
        await drain(part.file)
        textAttachment = true
        continue
      }
      if (file || fileError) {
        await drain(part.file)
        fileError ??= postedDataError(`body: only one ${pyRepr(FILE_FIELD)} file is accepted.`)
        continue
      }
      if (!extensionAllowed(part.filename, settings.extensions)) {
        // Upstream checks the size first: a file both too large and of a refused type is refused for its size.
        const size = await drain(part.file)
        const tooLarge = options.maxSizeBytes > 0 && size > options.maxSizeBytes
        fileError = invalid('body', null, tooLarge ? new FileTooLargeError(size, options.maxSizeBytes).message : 'File extension is not allowed.')
        continue
      }
      try {
        const written = await store.write(part.file, folder, options.maxSizeBytes)
        file = {...written, filename: part.filename, mimetype: settings.mimetypes[path.extname(part.filename)] ?? part.mimetype}
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') {
          // kinto.attachment.folder with long bucket or collection ids (Kinto sets no length limit).
          await drain(part.file)
          fileError = invalid('path', null, 'The attachment folder of this bucket and collection is a name too long for the file system (kinto.attachment.folder).')
          continue
        }
        if (!(err instanceof FileTooLargeError)) throw err
        fileError = invalid('body', null, err.message)
      }
    }
  } catch (err) {
    await removeTemp(store, file)
    throw multipartError(err)
  }
  try {
    if (fileError) throw fileError
    if (!file) throw textAttachment ? invalid('body', null, 'Filename is required.') : postedDataError('Attachment missing.')
    const received: ReceivedUpload = {file}
    for (const name of ['data', 'permissions'] as const) {
      const raw = fields.get(name)
      if (raw === undefined) continue
      let value: unknown
      try {
        value = JSON.parse(raw)
      } catch (err) {
        throw postedDataError(`body: ${name} is not valid JSON (${(err as Error).message})`)
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw postedDataError(`body: ${name} should be a JSON object`)
      }
      received[name] = value as Record<string, unknown>
    }
    if (fieldError) throw fieldError
    if (options.gzipped) {
      const gz = await store.gzip(file)
      received.file = {
        ...gz,
        filename: `${file.filename}.gz`,
        mimetype: 'application/x-gzip',
        original: {filename: file.filename, hash: file.hash, mimetype: file.mimetype, size: file.size},
      }
    }
    return received
  } catch (err) {
    await removeTemp(store, file)
    throw err
  }
}

async function removeTemp(store: LocalStore, file: ReceivedFile | undefined): Promise<void> {
  if (file) await store.delete(path.relative(store.basePath, file.tempPath)).catch(() => undefined)
}

/** A failure of the multipart parser itself (malformed body, client gone): 400 as upstream. */
function multipartError(err: unknown): unknown {
  // Ours (the store's KINTO_ATTACHMENT_STORE_FAILED): not the parser's.
  if (err instanceof HttpError || isKintoError(err)) return err
  const e = err as {code?: string; message?: string; statusCode?: number}
  if (typeof e?.code === 'string' && e.code.startsWith('FST_') && e.statusCode === 413) return requestTooLarge()
  if (typeof e?.code === 'string' && e.code.startsWith('FST_')) return new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: e.message})
  if (err instanceof Error && !(err as NodeJS.ErrnoException).syscall) {
    // busboy's parse errors (Unexpected end of form, Malformed part header…). A Content-Type
    // without a boundary is said as upstream's parser (Python's cgi) says it.
    const message = err.message === 'Multipart: Boundary not found' ? "Invalid boundary in multipart form: b''" : err.message
    return new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message})
  }
  return err
}

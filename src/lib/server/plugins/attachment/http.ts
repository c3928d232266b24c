/**
 * The HTTP side of attachments, outside the runtime's single route:
 * - `POST …/records/{id}/attachment` gets its own Fastify route, in an encapsulated context where
 *   @fastify/multipart parses multipart/form-data: the body is not buffered but handed to the
 *   attachment view as a stream of parts. Every other route keeps the runtime's body handling.
 * - the files below base_path are served at base_url's path (when base_url names a path outside
 *   the API), with ETag, Last-Modified, Range and Content-Type, so `kinto start` alone serves
 *   the locations it writes into records.
 */
import {createReadStream} from 'node:fs'
import {realpath, stat} from 'node:fs/promises'
import path from 'node:path'

import fastifyMultipart from '@fastify/multipart'
import type {FastifyInstance, FastifyReply, FastifyRequest} from 'fastify'

import {ERRNO, HttpError, MESSAGES} from '../../errors.js'
import type {Runtime} from '../../runtime.js'
import {attachmentsOf, type AttachmentRuntime} from './index.js'
import {servedPrefix} from './settings.js'
import type {MultipartBody, MultipartPart} from './upload.js'

export type Serve = (req: FastifyRequest, reply: FastifyReply, multipart?: MultipartBody) => Promise<FastifyReply>

/** Extension → Content-Type for served files (kinto.attachment.mimetypes first). */
const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.ini': 'text/plain; charset=utf-8',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpe': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.bmp': 'image/bmp',
  '.tiff': 'image/tiff',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
  '.mp3': 'audio/mpeg',
  '.mp4': 'video/mp4',
}

/** The policy of a served file: no script, no plugin, no request, its own opaque origin. */
const FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

/** Adds the attachment routes when kinto_attachment is included. */
export function registerAttachmentHttp(app: FastifyInstance, runtime: Runtime, serve: Serve, fieldSizeLimit: number): void {
  const a = attachmentsOf(runtime)
  if (!a) return
  const limits = {fileSize: Infinity, fieldSize: fieldSizeLimit, files: 10, fields: 100, parts: 110}
  app.register(async (child) => {
    await child.register(fastifyMultipart, {limits, throwFileSizeLimit: false})
    child.route({
      method: 'POST',
      url: `/${runtime.routePrefix}/buckets/:bucket_id/collections/:collection_id/records/:id/attachment`,
      handler: (req, reply) => serve(req, reply, req.isMultipart() ? multipartBody(req, limits) : undefined),
    })
  })
  const prefix = servedPrefix(a.settings.baseUrl, runtime.routePrefix)
  if (prefix) {
    const missing = (reply: FastifyReply) =>
      reply.code(404).header('Content-Type', 'application/json').send(JSON.stringify(new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, message: MESSAGES.notFound}).body()))
    const files = (req: FastifyRequest, reply: FastifyReply) => serveFile(a, prefix, req, reply, async () => missing(reply))
    app.route({method: ['GET', 'HEAD'], url: `${prefix}*`, handler: files})
  }
}

function multipartBody(req: FastifyRequest, limits: Record<string, number>): MultipartBody {
  const settlers: Array<() => Promise<void>> = []
  return {
    settlers,
    parts: () => req.parts({limits}) as AsyncIterable<MultipartPart>,
    async settle() {
      for (const settle of settlers.splice(0)) await settle()
    },
  }
}

/** Parses `bytes=a-b` (one range); null: serve everything; 'unsatisfiable': 416. */
function parseRange(header: string | undefined, size: number): {start: number; end: number} | null | 'unsatisfiable' {
  if (!header) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
    if (end < start && m[2] !== '') return null
  }
  if (start >= size) return 'unsatisfiable'
  return {start, end}
}

async function serveFile(a: AttachmentRuntime, prefix: string, req: FastifyRequest, reply: FastifyReply, fallback: () => Promise<FastifyReply>) {
  const rawPath = (req.raw.url ?? '/').split('?')[0]
  let relative: string
  try {
    relative = decodeURIComponent(rawPath.slice(prefix.length))
  } catch {
    return fallback()
  }
  const segments = relative.split('/')
  // No hidden files (uploads in progress are `.upload-…`), no `..`, no NUL.
  if (relative === '' || relative.includes('\0') || segments.some((s) => s === '' || s.startsWith('.'))) return fallback()
  let full: string
  let info
  try {
    full = await realpath(a.store.resolve(relative))
    if (!full.startsWith(a.store.basePath + path.sep) && !full.startsWith((await realpath(a.store.basePath)) + path.sep)) return fallback()
    info = await stat(full)
  } catch {
    return fallback()
  }
  if (!info.isFile()) return fallback()
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`
  const ext = path.extname(full).toLowerCase()
  const type = a.settings.mimetypes[ext] ?? CONTENT_TYPES[ext] ?? 'application/octet-stream'
  reply.header('Content-Type', type)
  // Files are served from the API's (and the admin console's) origin: one opened in a browser
  // must run no script there (an uploaded SVG, XML or HTML file would). Not on PDFs: Chromium
  // refuses to show them in a sandboxed document.
  if (!/^application\/pdf\b/i.test(type)) reply.header('Content-Security-Policy', FILE_CSP)
  reply.header('ETag', etag)
  reply.header('Last-Modified', info.mtime.toUTCString())
  reply.header('Accept-Ranges', 'bytes')
  reply.header('Cache-Control', 'public, max-age=3600')
  reply.header('X-Content-Type-Options', 'nosniff')
  const inm = req.headers['if-none-match']
  if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*')) {
    return reply.code(304).send()
  }
  let range = parseRange(req.headers.range, info.size)
  const ifRange = req.headers['if-range']
  if (range && ifRange && ifRange !== etag) range = null
  if (range === 'unsatisfiable') {
    reply.header('Content-Range', `bytes */${info.size}`)
    return reply.code(416).header('Content-Type', 'application/json').send(JSON.stringify(new HttpError(416, {error: 'Requested Range Not Satisfiable'}).body()))
  }
  const start = range ? range.start : 0
  const end = range ? range.end : info.size - 1
  if (range) reply.code(206).header('Content-Range', `bytes ${start}-${end}/${info.size}`)
  reply.header('Content-Length', String(info.size === 0 ? 0 : end - start + 1))
  if (req.method === 'HEAD' || info.size === 0) return reply.send()
  return reply.send(createReadStream(full, {start, end}))
}

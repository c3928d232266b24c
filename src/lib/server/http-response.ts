/**
 * A runtime response on the wire. Every answer of the API leaves through writeResponse(), whether
 * Fastify routed the request or the server's direct path did (app.ts), so the two cannot differ.
 * It writes what Fastify's reply.send() wrote for the same response (the wire format clients and
 * tests have seen since the first release): lower-case header names, `; charset=utf-8` after a
 * JSON type on a text body, `Content-Length` always (0 for an empty body, except on HEAD, 204 and
 * 304), no body nor body headers on 1xx and 204, and `Connection: close` while the server stops.
 */
import type {ServerResponse} from 'node:http'

/** Header names as they go out: the runtime's few names, lower-cased once each. */
const lowerNames = new Map<string, string>()

function lowerName(name: string): string {
  let lower = lowerNames.get(name)
  if (lower === undefined) {
    lower = name.toLowerCase()
    // Names come from views and plugins (a bounded set); a cap keeps a misbehaving one harmless.
    if (lowerNames.size < 1000) lowerNames.set(name, lower)
  }
  return lower
}

const CHARSET = /;\s*charset\s*=/i

/** Content types of text bodies as they go out (a handful: the runtime's and its plugins'). */
const textTypes = new Map<string, string>()

/** The Content-Type of a text body: a JSON type without a charset gets `; charset=utf-8`. */
function textContentType(type: string | undefined): string {
  if (type === undefined || type === '') return 'text/plain; charset=utf-8'
  let out = textTypes.get(type)
  if (out === undefined) {
    out = !type.toLowerCase().includes('json') || CHARSET.test(type) ? type : `${type.trimEnd().replace(/;+$/, '')}; charset=utf-8`
    if (textTypes.size < 100) textTypes.set(type, out)
  }
  return out
}

/** A JSON answer's Content-Type on the wire, for the answers without a body to write (HEAD). */
export const JSON_WITHOUT_BODY = textContentType('application/json')

export interface WireOptions {
  /** The request's method (HEAD keeps a Content-Length the view set). */
  method: string
  /** The server is stopping: the connection closes after this answer. */
  closing?: boolean
}

/**
 * Writes status, headers and payload (already serialised; undefined: no body) and ends the
 * response. Throws what Node throws for an invalid header (the caller answers 500 instead).
 */
export function writeResponse(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  payload: string | Buffer | undefined,
  {method, closing = false}: WireOptions,
): void {
  // Name, value, name, value…: what writeHead() takes with the least work. A name given twice in
  // other cases keeps its last value, as an object keyed by the lower-case name would.
  const out: string[] = []
  let type: string | undefined
  let length: string | undefined
  for (const name in headers) {
    const lower = lowerName(name)
    const value = headers[name]
    if (lower === 'content-type') type = value
    else if (lower === 'content-length') length = value
    else {
      let i = 0
      while (i < out.length && out[i] !== lower) i += 2
      out[i] = lower
      out[i + 1] = value
    }
  }
  let body = payload
  if (body === undefined) {
    if (status >= 200 && status !== 204 && status !== 304 && method !== 'HEAD') length = '0'
  } else if (status < 200 || status === 204) {
    // No body on these: no body headers either (RFC 9110 §8.6).
    type = length = body = undefined
  } else {
    type = typeof body === 'string' ? textContentType(type) : (type ?? 'application/octet-stream')
    if (!length || (method !== 'HEAD' && Number(length) !== Buffer.byteLength(body))) length = String(Buffer.byteLength(body))
  }
  if (type !== undefined) out.push('content-type', type)
  if (length !== undefined) out.push('content-length', length)
  if (closing) out.push('connection', 'close')
  res.writeHead(status, out)
  res.end(body)
}

/**
 * The Fastify application: HTTP in and out of the Kinto runtime. Fastify parses nothing but the
 * raw body (with a size limit) and hands every request to one handler; routing, errors and
 * headers are the runtime's, so that batch sub-requests take exactly the same path. Reads without
 * a body below the API prefix skip Fastify altogether (see servedDirectly); every answer, routed
 * by Fastify or not, leaves through writeResponse (http-response.ts).
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {Socket} from 'node:net'
import type {TLSSocket} from 'node:tls'

import Fastify, {LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply} from 'fastify'

import {asString, type Settings} from '../config/settings.js'
import {createMonitoring, newRequestScope, type Monitoring, type RequestScope} from '../monitoring/index.js'
import {ERRNO, HttpError, invalid, methodNotAllowed, rawHttpResponse, requestTooLarge, writeClientError} from './errors.js'
import {RuntimeHooks} from './hooks.js'
import {writeResponse} from './http-response.js'
import {registerAttachmentHttp, type Serve} from './plugins/attachment/http.js'
import {registerPlugin} from './plugins/index.js'
import {statsdPlugin} from './plugins/statsd.js'
import {parsePlugins} from './setup.js'
import type {Logger} from '../logger.js'
import {stringifyJsonOrBytes} from '../json.js'
import {decodePath} from './router.js'
import {Runtime, type ConfigInfo} from './runtime.js'
import {parseQuery} from './querystring.js'
import {RawBody, type Backends, type KintoRequest, type KintoResponse} from './types.js'

/** Largest request body accepted (413 errno 113 beyond). */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024

/**
 * Largest request line and headers accepted together (431 beyond): upstream's server (waitress)
 * takes 256 KiB, and clients send long querystrings (`in_id=` with hundreds of ids) where Node's
 * default (16 KiB) would refuse them.
 */
export const MAX_HEADER_BYTES = 256 * 1024

/**
 * How long a connection may stay silent while a request is read from it, or an answer written to
 * it (nginx's client_body_timeout and send_timeout; waitress's channel_timeout is 120 s). A body
 * that stops arriving is then answered 408 and the connection closed; a client that stops reading
 * its answer is cut. The server's own work on a request it has read is not bounded by this.
 * Node's `server.timeout`, which tests may lower.
 */
export const IDLE_TIMEOUT_MS = 60_000

export interface CreateAppOptions {
  settings: Settings
  backends: Backends
  /** hello's `config`: the ini path, its sha256 and mtime (null: not shown; a function: per hello). */
  configInfo?: ConfigInfo | (() => ConfigInfo | null) | null
  /** A pino logger (Fastify's and the runtime's); none: silent. */
  logger?: Logger & object
  /** The runtime's clock for deadlines (RuntimeOptions.clock); default Date.now. */
  clock?: () => number
  /** Folder of the ini (relative `version_json_path`). */
  baseDir?: string
  bodyLimit?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    kinto: Runtime
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH'])

registerPlugin(statsdPlugin)

/** Builds the app (synchronously: configuration errors are thrown here, as KintoError). */
export function createApp(options: CreateAppOptions): FastifyInstance {
  // Metrics (kinto.statsd_url) and request-summary logging: src/lib/monitoring.
  // They subscribe to the runtime's hook points before it is built (backend calls are observed
  // only when someone listens).
  const hooks = new RuntimeHooks()
  const monitoring = createMonitoring({settings: options.settings, logger: options.logger, hooks})
  const runtime = new Runtime({
    settings: options.settings,
    backends: options.backends,
    configInfo: options.configInfo ?? null,
    logger: options.logger,
    hooks,
    clock: options.clock,
  })
  try {
    parsePlugins(runtime, options.baseDir)
    monitoring.attach(
      (path) => runtime.route(path),
      (path) => (runtime.redirectsToVersion(path) ? 'redirect_to_version' : null),
    )
  } catch (err) {
    void monitoring.close()
    throw err
  }

  const app = Fastify({
    ...(options.logger ? {loggerInstance: options.logger as unknown as FastifyBaseLogger} : {logger: false}),
    // The runtime logs one request.summary line per request itself.
    logController: new LogController({disableRequestLogging: true}),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    exposeHeadRoutes: false,
    // Ids have no length limit in Kinto: the upload route's parameters must match ids of any length
    // (past Fastify's default of 100 characters the upload fell to the catch-all route, which reads
    // no multipart body). The request line is bounded by maxHeaderSize anyway.
    routerOptions: {maxParamLength: MAX_HEADER_BYTES},
    // Requests Node's parser refuses (bad request line, oversized headers) get Kinto's JSON error
    // body; a request without Host is refused by toKintoRequest(), with the same body.
    clientErrorHandler: writeClientError,
    http: {requireHostHeader: false, maxHeaderSize: MAX_HEADER_BYTES},
    connectionTimeout: IDLE_TIMEOUT_MS,
    // While closing (SIGTERM, a worker's rolling restart), a request already on an open connection is
    // served, not answered with Fastify's own 503: the server stops accepting new connections, idle
    // keep-alive ones are closed, and in-flight ones finish (bounded by --shutdown-timeout).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // No route has a Fastify schema (the runtime validates requests itself): Fastify's default
    // compilers would load ajv and fast-json-stringify (~100 modules, several MB resident) for nothing.
    schemaController: {compilersFactory: {buildValidator: unusedSchemaCompiler, buildSerializer: unusedSchemaCompiler}},
    frameworkErrors(error, req, reply) {
      const err = new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Invalid URL path.'})
      const minimal = minimalRequest(runtime, req.raw)
      void replyWith(reply, minimal, runtime.errorResponse(err, minimal))
      void error
    },
  })
  app.decorate('kinto', runtime)
  // A GET or HEAD may carry a body, which upstream's request validator reads as it reads any other
  // (an unreadable JSON body is a 400 there): Fastify would leave it unread.
  for (const method of ['GET', 'HEAD']) app.addHttpMethod(method, {hasBody: true, overrideExisting: true})
  // From the start of close() on, answers say `Connection: close` (as Fastify's own did).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  /** Writes a runtime response (finalized: handle() already added the common headers). */
  const respond = (res: ServerResponse, req: KintoRequest, response: KintoResponse, elapsedMs: () => number, finalized = false): void =>
    sendResponse(runtime, monitoring, res, req, response, {elapsedMs, finalized, closing})
  /** The same through Fastify's reply, which then leaves the response to us. */
  const replyWith = (reply: FastifyReply, req: KintoRequest, response: KintoResponse, finalized = false): FastifyReply => {
    reply.hijack()
    respond(reply.raw, req, response, () => reply.elapsedTime, finalized)
    return reply
  }
  app.addHook('onReady', async () => {
    for (const policy of runtime.policies) await policy.ready?.()
  })
  app.addHook('onClose', async () => monitoring.close())
  // CONNECT never reaches Fastify (Node hands the socket to 'connect' listeners and, without
  // one, drops it): answer 405. A bad `Expect` would get Node's empty 417.
  app.server.on('connect', (_req, socket) => socket.end(rawHttpResponse(methodNotAllowed())))
  app.server.on('checkExpectation', (_req, res) => {
    const err = new HttpError(417, {errno: ERRNO.INVALID_PARAMETERS, error: 'Expectation Failed', message: 'Only "Expect: 100-continue" is supported.'})
    res.shouldKeepAlive = false
    res.socket?.end(rawHttpResponse(err))
  })
  // `Expect: 100-continue` with a declared body over the limit: 413 at once, without inviting the
  // body (RFC 9110 §10.1.1), and the connection closed rather than kept to swallow a body that may
  // still come. Other requests get Node's 100 Continue. (Uploads have no size limit.)
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers['content-length']) > bodyLimit && !/^\s*multipart\//i.test(req.headers['content-type'] ?? '')) {
      const minimal = minimalRequest(runtime, req)
      res.shouldKeepAlive = false
      const started = performance.now()
      respond(res, minimal, runtime.errorResponse(requestTooLarge(), minimal), () => performance.now() - started)
      return
    }
    res.writeContinue()
    app.server.emit('request', req, res)
  })
  // An empty `Content-Type:` is read as none (upstream parses the body as JSON then); Fastify
  // would refuse it as an invalid media type before the runtime sees the request.
  app.addHook('onRequest', (req, _reply, done) => {
    const type = req.headers['content-type']
    if (type !== undefined && type.trim() === '') delete req.headers['content-type']
    done()
  })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', {parseAs: 'buffer'}, (_req, body, done) => done(null, body))

  const serve: Serve = async (req, reply, multipart) => {
    const scope = newRequestScope(req.headers)
    let kreq: KintoRequest
    try {
      kreq = toKintoRequest(runtime, req.raw, Buffer.isBuffer(req.body) ? req.body : null, scope)
    } catch (err) {
      await multipart?.settle()
      const minimal = minimalRequest(runtime, req.raw, scope)
      return replyWith(reply, minimal, runtime.errorResponse(err, minimal))
    }
    if (multipart) kreq.multipart = multipart
    const response = await runtime.handle(kreq)
    // An upload's file is kept only if its record was committed.
    if (multipart) await multipart.settle()
    return replyWith(reply, kreq, response, true)
  }
  app.route({method: METHODS, url: '*', handler: (req, reply) => serve(req, reply)})
  registerAttachmentHttp(app, runtime, serve, options.bodyLimit ?? DEFAULT_BODY_LIMIT)

  // Reads without a body below the API prefix (nearly all of the traffic) skip Fastify's request
  // and reply objects, hooks and routing: the runtime routes, and nothing of Fastify's applies to
  // them (no body to parse, no content type to check, no route of its own there). Everything
  // else, and every request of app.inject(), goes through Fastify as before. The answer is the
  // same either way (writeResponse).
  const apiPrefix = `/${runtime.routePrefix}/`
  const serveDirect = async (raw: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now()
    const elapsedMs = () => performance.now() - started
    const scope = newRequestScope(raw.headers)
    let kreq: KintoRequest
    try {
      kreq = toKintoRequest(runtime, raw, null, scope)
    } catch (err) {
      const minimal = minimalRequest(runtime, raw, scope)
      return respond(res, minimal, runtime.errorResponse(err, minimal), elapsedMs)
    }
    respond(res, kreq, await runtime.handle(kreq), elapsedMs, true)
  }
  const routing = app.routing
  const listeners = app.server.listeners('request')
  if (listeners.length === 1 && listeners[0] === routing) {
    app.server.removeListener('request', routing)
    app.server.on('request', (raw: IncomingMessage, res: ServerResponse) => {
      // Node applies `server.timeout` to a connection's first request only (a keep-alive
      // connection then has none): every request gets it.
      raw.socket.setTimeout(app.server.timeout)
      inTurn(raw, res, () => {
        if (!servedDirectly(raw, apiPrefix)) routing(raw, res)
        else {
          serveDirect(raw, res).catch((err: unknown) => {
            // handle() answers every failure and sendResponse() its own: this is a bug, not a request's fault.
            runtime.logger.error({err}, 'Unable to answer a request.')
            res.destroy()
          })
        }
      })
    })
    app.server.on('timeout', onIdle)
  }

  // Methods Fastify does not route (PROPFIND…) go to the runtime as any other: a 405 with the
  // endpoint's Allow, a 404 off every route, the redirects (upstream routes them the same way).
  app.setNotFoundHandler((req, reply) => serve(req, reply))

  app.setErrorHandler(async (error: Error & {code?: string; statusCode?: number}, req, reply) => {
    const minimal = minimalRequest(runtime, req.raw)
    let err: unknown = error
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') err = requestTooLarge()
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' && !WRITE_METHODS.has(req.method)) {
      // Only a write's body must be of a type the view reads (415); upstream leaves any other
      // request's body of an unknown type unread, as here.
      return serve(req, reply)
    } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      err = invalid('header', 'Content-Type', 'Content-Type header is not supported')
      err = new HttpError(415, {errno: ERRNO.INVALID_PARAMETERS, error: 'Invalid parameters', message: (err as HttpError).publicMessage})
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      err = new HttpError(error.statusCode === 413 ? 413 : 400, {
        errno: error.statusCode === 413 ? ERRNO.REQUEST_TOO_LARGE : ERRNO.INVALID_PARAMETERS,
        message: error.message,
      })
    }
    return replyWith(reply, minimal, runtime.errorResponse(err, minimal))
  })

  return app
}

/** Per connection, the pipelined requests waiting for the one being served to be answered. */
const waitingTurn = new WeakMap<Socket, Array<() => void>>()
/** Per connection, the request being served (until its answer is written). */
const serving = new WeakMap<Socket, {raw: IncomingMessage; res: ServerResponse}>()
/** Per connection, how many bytes had been read when its last answer was written. */
const readAtLastAnswer = new WeakMap<Socket, number>()

/**
 * A connection silent for IDLE_TIMEOUT_MS (Node's 'timeout'; with this listener, Node leaves the
 * socket to it). While a request's body is awaited: 408, closed. While the server works on a
 * request it has read whole: kept (the answer's writes wake the timer again). Request headers
 * begun and not finished: 408, closed (as Node's headersTimeout answers later). Otherwise (an
 * answer the client does not read, an idle connection): closed, as Node would.
 */
function onIdle(socket: Socket): void {
  const current = serving.get(socket)
  const awaited = current ? !current.raw.complete : socket.bytesRead > (readAtLastAnswer.get(socket) ?? 0)
  if (current?.res.headersSent) socket.destroy()
  else if (awaited) writeClientError(Object.assign(new Error('Request timeout'), {code: 'ERR_HTTP_REQUEST_TIMEOUT'}), socket)
  else if (!current) socket.destroy()
}

/**
 * Serves a request once every request read before it on the same connection has been answered.
 * Node's parser hands over each pipelined request (several written before the first answer) as
 * soon as it is read, and answers go back in order, but the work would run concurrently: a GET
 * written after a PUT could read before the PUT's body was even parsed. RFC 9112 §9.3.2 allows
 * that only for safe methods; upstream's server (waitress) serves a connection's requests one at
 * a time. A connection that is not pipelining never waits.
 */
function inTurn(raw: IncomingMessage, res: ServerResponse, serve: () => void): void {
  const socket = raw.socket
  const start = () => {
    serving.set(socket, {raw, res})
    // 'close' follows the end of the answer, or the connection's loss.
    res.once('close', () => {
      if (serving.get(socket)?.res === res) serving.delete(socket)
      readAtLastAnswer.set(socket, socket.bytesRead)
      const next = waitingTurn.get(socket)?.shift()
      if (next) next()
      else waitingTurn.delete(socket)
    })
    serve()
  }
  const queue = waitingTurn.get(socket)
  if (queue) queue.push(start)
  else {
    waitingTurn.set(socket, [])
    start()
  }
}

/** A read with no body below the API prefix: served without Fastify (see createApp). */
function servedDirectly(raw: IncomingMessage, apiPrefix: string): boolean {
  const method = raw.method
  if (method !== 'GET' && method !== 'HEAD') return false
  const headers = raw.headers
  return headers['content-length'] === undefined && headers['transfer-encoding'] === undefined && (raw.url ?? '').startsWith(apiPrefix)
}

function unusedSchemaCompiler(): never {
  throw new Error('Fastify route schemas are not used by the runtime.')
}

function requestOrigin(runtime: Runtime, raw: IncomingMessage): {scheme: string; host: string} {
  const scheme = asString(runtime.settings, 'http_scheme') || ((raw.socket as TLSSocket | null)?.encrypted ? 'https' : 'http')
  const host = asString(runtime.settings, 'http_host') || raw.headers.host || listeningAddress(raw)
  return {scheme, host}
}

/**
 * The address a request without a Host header (HTTP/1.0) reached, for the URLs built for it, as
 * upstream falls back to the server's name and port (`http://127.0.0.1:8888/v1/`, not `http:///v1/`).
 */
function listeningAddress(raw: IncomingMessage): string {
  const {localAddress, localPort} = raw.socket
  if (!localAddress || !localPort) return 'localhost' // a unix socket
  const address = localAddress.startsWith('::ffff:') ? localAddress.slice('::ffff:'.length) : localAddress
  return address.includes(':') ? `[${address}]:${localPort}` : `${address}:${localPort}`
}

function headersOf(raw: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {}
  const given = raw.headers
  for (const k in given) {
    const v = given[k]
    headers[k] = Array.isArray(v) ? v.join(', ') : v
  }
  return headers
}

function splitUrl(target: string): {rawPath: string; rawQuery: string} {
  let url = target
  // An absolute-form target (`GET http://host/v1/ HTTP/1.1`, RFC 9112 §3.2.2): its path and query.
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)
  if (absolute) url = url.slice(absolute[0].length) || '/'
  if (!url.startsWith('/')) url = `/${url}`
  const q = url.indexOf('?')
  return q < 0 ? {rawPath: url, rawQuery: ''} : {rawPath: url.slice(0, q), rawQuery: url.slice(q + 1)}
}

function toKintoRequest(runtime: Runtime, raw: IncomingMessage, body: Buffer | null, scope?: RequestScope): KintoRequest {
  const {rawPath, rawQuery} = splitUrl(raw.url ?? '/')
  const {scheme, host} = requestOrigin(runtime, raw)
  if (raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1 && !raw.headers.host) {
    throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'HTTP/1.1 requests need a Host header.'})
  }
  const path = decodePath(rawPath)
  if (path.includes('\u0000')) throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Invalid URL path.'})
  return {
    method: (raw.method ?? 'GET').toUpperCase(),
    path,
    rawPath,
    rawQuery,
    query: parseQuery(rawQuery),
    headers: headersOf(raw),
    body,
    scheme,
    host,
    scope,
  }
}

/** A request for error responses produced before the request could be read. */
function minimalRequest(runtime: Runtime, raw: IncomingMessage, scope?: RequestScope): KintoRequest {
  const {rawPath} = splitUrl(raw.url ?? '/')
  const {scheme, host} = requestOrigin(runtime, raw)
  return {method: raw.method ?? 'GET', path: rawPath, rawPath, rawQuery: '', query: new Map(), headers: headersOf(raw), body: null, scheme, host, scope}
}

/** The serialised body (undefined: none, as for HEAD and 304). */
function payloadOf(req: KintoRequest, response: KintoResponse): string | Buffer | undefined {
  const body = response.body
  if (body === undefined || req.method === 'HEAD' || response.status === 304) return undefined
  return body instanceof RawBody ? body.bytes : stringifyJsonOrBytes(body)
}

interface SendOptions {
  /** Since the request arrived (the summary's and the metrics' duration). */
  elapsedMs: () => number
  /** handle() already added the headers every response gets. */
  finalized: boolean
  closing: boolean
}

/**
 * Serialises and writes a runtime response. When that fails (a value JSON cannot hold, a header
 * Node refuses), the client gets a 500 in Kinto's shape instead, and the error hook hears of it.
 */
function sendResponse(runtime: Runtime, monitoring: Monitoring, res: ServerResponse, req: KintoRequest, response: KintoResponse, options: SendOptions): void {
  try {
    if (!options.finalized) runtime.finalizeHeaders(req, response)
    sendAnswer(monitoring, res, req, response, options)
  } catch (err) {
    if (res.headersSent) {
      res.destroy(err as Error)
      return
    }
    const failed = runtime.errorResponse(err, req)
    runtime.finalizeHeaders(req, failed)
    runtime.hooks.emit('error', {req, error: err, status: failed.status})
    sendAnswer(monitoring, res, req, failed, options)
  }
}

/** Serialises an answer, tells monitoring, writes it. */
function sendAnswer(monitoring: Monitoring, res: ServerResponse, req: KintoRequest, answer: KintoResponse, options: SendOptions): void {
  const payload = payloadOf(req, answer)
  monitoring.responded(req, answer, payload, options.elapsedMs())
  writeResponse(res, answer.status, answer.headers, payload, {method: req.method, closing: options.closing})
}

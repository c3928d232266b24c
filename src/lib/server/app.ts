/**
 * The Fastify application: HTTP in and out of the Kinto runtime. Fastify parses nothing but the
 * raw body (with a size limit) and hands every request to one handler; routing, errors and
 * headers are the runtime's, so that batch sub-requests take exactly the same path.
 */
import Fastify, {LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest} from 'fastify'

import {asString, type Settings} from '../config/settings.js'
import {createMonitoring, newRequestScope, type Monitoring, type RequestScope} from '../monitoring/index.js'
import {ERRNO, HttpError, invalid, methodNotAllowed, rawHttpResponse, requestTooLarge, writeClientError} from './errors.js'
import {RuntimeHooks} from './hooks.js'
import {registerAttachmentHttp, type Serve} from './plugins/attachment/http.js'
import {registerPlugin} from './plugins/index.js'
import {statsdPlugin} from './plugins/statsd.js'
import {parsePlugins} from './setup.js'
import type {Logger} from '../logger.js'
import {stringifyJson} from '../json.js'
import {decodePath} from './router.js'
import {Runtime, type ConfigInfo} from './runtime.js'
import {parseQuery} from './querystring.js'
import {RawBody, type Backends, type KintoRequest, type KintoResponse} from './types.js'

/** Largest request body accepted (413 errno 113 beyond). */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024

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
    monitoring.attach((path) => runtime.route(path))
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
    // Requests Node's parser refuses (bad request line, oversized headers) get Kinto's JSON error
    // body; a request without Host is refused by toKintoRequest(), with the same body.
    clientErrorHandler: writeClientError,
    http: {requireHostHeader: false},
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
      void sendResponse(runtime, monitoring, reply, minimalRequest(runtime, req), runtime.errorResponse(err, minimalRequest(runtime, req)))
      void error
    },
  })
  app.decorate('kinto', runtime)
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
      kreq = toKintoRequest(runtime, req, scope)
    } catch (err) {
      await multipart?.settle()
      const minimal = minimalRequest(runtime, req, scope)
      return sendResponse(runtime, monitoring, reply, minimal, runtime.errorResponse(err, minimal))
    }
    if (multipart) kreq.multipart = multipart
    const response = await runtime.handle(kreq)
    // An upload's file is kept only if its record was committed.
    if (multipart) await multipart.settle()
    return sendResponse(runtime, monitoring, reply, kreq, response, true)
  }
  app.route({method: METHODS, url: '*', handler: (req, reply) => serve(req, reply)})
  registerAttachmentHttp(app, runtime, serve, options.bodyLimit ?? DEFAULT_BODY_LIMIT)

  app.setNotFoundHandler(async (req, reply) => {
    // Methods Fastify does not route (PROPFIND…): 405 as for any method an endpoint lacks.
    const minimal = minimalRequest(runtime, req)
    const err = new HttpError(405, {errno: ERRNO.METHOD_NOT_ALLOWED, message: 'Method not allowed on this endpoint.'})
    return sendResponse(runtime, monitoring, reply, minimal, runtime.errorResponse(err, minimal))
  })

  app.setErrorHandler(async (error: Error & {code?: string; statusCode?: number}, req, reply) => {
    const minimal = minimalRequest(runtime, req)
    let err: unknown = error
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') err = requestTooLarge()
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      err = invalid('header', 'Content-Type', 'Content-Type header is not supported')
      err = new HttpError(415, {errno: ERRNO.INVALID_PARAMETERS, error: 'Invalid parameters', message: (err as HttpError).publicMessage})
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      err = new HttpError(error.statusCode === 413 ? 413 : 400, {
        errno: error.statusCode === 413 ? ERRNO.REQUEST_TOO_LARGE : ERRNO.INVALID_PARAMETERS,
        message: error.message,
      })
    }
    return sendResponse(runtime, monitoring, reply, minimal, runtime.errorResponse(err, minimal))
  })

  return app
}

function unusedSchemaCompiler(): never {
  throw new Error('Fastify route schemas are not used by the runtime.')
}

function requestOrigin(runtime: Runtime, req: FastifyRequest): {scheme: string; host: string} {
  const scheme = asString(runtime.settings, 'http_scheme') || req.protocol || 'http'
  const host = asString(runtime.settings, 'http_host') || req.headers.host || `${req.hostname}`
  return {scheme, host}
}

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v
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

function toKintoRequest(runtime: Runtime, req: FastifyRequest, scope?: RequestScope): KintoRequest {
  const {rawPath, rawQuery} = splitUrl(req.raw.url ?? '/')
  const {scheme, host} = requestOrigin(runtime, req)
  if (req.raw.httpVersionMajor === 1 && req.raw.httpVersionMinor >= 1 && !req.headers.host) {
    throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'HTTP/1.1 requests need a Host header.'})
  }
  const path = decodePath(rawPath)
  if (path.includes('\u0000')) throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Invalid URL path.'})
  return {
    method: req.method.toUpperCase(),
    path,
    rawPath,
    rawQuery,
    query: parseQuery(rawQuery),
    headers: headersOf(req),
    body: Buffer.isBuffer(req.body) ? req.body : null,
    scheme,
    host,
    scope,
  }
}

/** A request for error responses produced before the request could be read. */
function minimalRequest(runtime: Runtime, req: FastifyRequest, scope?: RequestScope): KintoRequest {
  const {rawPath} = splitUrl(req.raw.url ?? '/')
  const {scheme, host} = requestOrigin(runtime, req)
  return {method: req.method, path: rawPath, rawPath, rawQuery: '', query: new Map(), headers: headersOf(req), body: null, scheme, host, scope}
}

function sendResponse(
  runtime: Runtime,
  monitoring: Monitoring,
  reply: FastifyReply,
  req: KintoRequest,
  response: KintoResponse,
  finalized = false,
): FastifyReply {
  if (!finalized) runtime.finalizeHeaders(req, response)
  reply.code(response.status)
  for (const [k, v] of Object.entries(response.headers)) reply.header(k, v)
  const body = response.body
  const payload = body === undefined || req.method === 'HEAD' || response.status === 304 ? undefined : body instanceof RawBody ? body.bytes : stringifyJson(body)
  monitoring.responded(req, response, payload, reply.elapsedTime)
  return payload === undefined ? reply.send() : reply.send(payload)
}

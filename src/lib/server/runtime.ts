/**
 * The Kinto HTTP API v1 without the HTTP server: settings, backends, services and the request
 * pipeline. Fastify (app.ts) feeds it requests; batch feeds it sub-requests.
 *
 * Pipeline of a request, in upstream's order:
 *   end-of-service (410/Alert) → readonly guard (405) → version prefix redirect (307) → route
 *   (404/116, trailing-slash 307) → CORS preflight → method (405) → route factory (loads the target
 *   of writes; a record's collection, 404) → Accept (406) / Content-Type (415) → authentication and
 *   permission (401/403) → CORS origin → view (validation 400, …) → events → commit.
 * Every response then gets the CSP, nosniff, Backoff and CORS headers.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {asBool, asInt, asString, type Settings} from '../config/settings.js'
import {silentLogger, type Logger} from '../logger.js'
import {HTTP_API_VERSION} from '../version.js'
import {activeState, serviceStateFrom, type ActiveState, type ServiceState} from '../state/toggles.js'
import {policiesFromSettings, type AuthenticationPolicy} from './auth.js'
import {permits} from './authorization.js'
import {AbortTransaction, TRANSACTION_ATTEMPTS, attemptSnapshot, isRetryable} from './attempts.js'
import {RequestContext, newBoundData, type BoundData} from './context.js'
import {CorsPolicy, DEFAULT_EXPOSED_HEADERS, corsPolicyFrom, exposedHeadersValue, preflight} from './cors.js'
import {endOfService, eosAlertHeader} from '../state/eos.js'
import {httpErrorFor, isBackendFailure} from './error-mapping.js'
import {
  ERRNO,
  HttpError,
  MESSAGES,
  forbidden,
  isHttpError,
  methodNotAllowed,
  serviceUnavailable,
  unauthorized,
} from './errors.js'
import {EventBus, drainEvents} from './events.js'
import {RuntimeHooks, measure, observedBackends} from './hooks.js'
import {idGeneratorsFromSettings, type IdGenerator} from './ids.js'
import {checkNegotiation} from './negotiation.js'
import {parseQuery} from './querystring.js'
import {CONTENT_SECURITY_POLICY, backoffHeader, headLength, redirect} from './headers.js'
import {JSON_WITHOUT_BODY} from './http-response.js'
import {Router, decodePath, findView, methodNotAllowedFor, type Service, type ViewDef} from './router.js'
import {isReloadableSetting, type SettingsChange} from './settings-reload.js'
import type {Backends, KintoRequest, KintoResponse, TxBackends, ViewResult} from './types.js'

/** What hello's `config` shows about the ini file. */
export interface ConfigInfo {
  path: string
  hash: string
  modified: string
}

export interface Capability {
  description: string
  url: string
  [key: string]: unknown
}

export type Heartbeat = (backends: Backends, readonly: boolean) => Promise<boolean | null>

export interface RuntimeOptions {
  settings: Settings
  backends: Backends
  /** hello's `config`; a function is called on each hello (upstream re-reads the file). */
  configInfo?: ConfigInfo | (() => ConfigInfo | null) | null
  logger?: Logger
  /**
   * Hook points (src/lib/server/hooks.ts); backend calls are observed when a backendCall
   * listener is subscribed before the Runtime is built.
   */
  hooks?: RuntimeHooks
  /** The clock deadlines are read with (toggle `*_expires`, `eos`), in epoch ms; tests move it. */
  clock?: () => number
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export class Runtime {
  readonly settings: Settings
  readonly backends: Backends
  readonly logger: Logger
  readonly hooks: RuntimeHooks
  /** Now, in epoch ms, for the deadlines of the service state (RuntimeOptions.clock). */
  readonly clock: () => number
  private readonly configInfoSource: ConfigInfo | (() => ConfigInfo | null) | null
  readonly router = new Router()
  readonly events = new EventBus<RequestContext>()
  readonly capabilities: Record<string, Capability> = {}
  readonly heartbeats = new Map<string, Heartbeat>()
  readonly publicSettings = new Set(['batch_max_requests', 'readonly', 'explicit_permissions'])
  readonly policies: AuthenticationPolicy[]
  readonly idGenerators: Map<string, IdGenerator>
  cors: CorsPolicy
  readonly routePrefix: string
  retryAfter: number
  /** Resource names served (for cascades that must reach every kind of child). */
  readonly resourceNames = new Set<string>()
  /** backoff / readonly / maintenance as configured, deadlines included (src/lib/state/toggles.ts). */
  private serviceState: ServiceState
  /** Requests being handled, and who waits for there to be none (settled()). */
  private handling = 0
  private onSettled: Array<() => void> = []

  constructor(options: RuntimeOptions) {
    this.settings = options.settings
    this.hooks = options.hooks ?? new RuntimeHooks()
    this.backends = this.hooks.has('backendCall') ? observedBackends(options.backends, this.hooks) : options.backends
    this.logger = options.logger ?? silentLogger
    const reported = new Set<string>()
    this.hooks.onListenerError = (name, err) => {
      if (reported.has(name)) return
      reported.add(name)
      this.logger.error({err, hook: name}, `A ${name} hook listener failed; its later failures are not logged.`)
    }
    this.clock = options.clock ?? Date.now
    this.configInfoSource = options.configInfo ?? null
    this.serviceState = serviceStateFrom(this.settings)
    const apiVersion = asString(this.settings, 'http_api_version') ?? HTTP_API_VERSION
    this.routePrefix = `v${apiVersion.split('.')[0]}`
    this.retryAfter = asInt(this.settings, 'retry_after_seconds', 3) ?? 3
    this.policies = policiesFromSettings(this.settings)
    this.idGenerators = idGeneratorsFromSettings(this.settings)
    this.cors = corsPolicyFrom(this.settings)
  }

  /** The toggles in force now (a toggle whose `<name>_expires` date has passed is off). */
  get active(): ActiveState {
    return activeState(this.serviceState, this.clock())
  }

  /** kinto.readonly in force: writes answered 405 errno 115. */
  get readonly(): boolean {
    return this.active.readonly
  }

  /** kinto.maintenance in force: writes answered 503 errno 201 with Retry-After, reads served. */
  get maintenance(): boolean {
    return this.active.maintenance
  }

  /**
   * Takes reloaded settings: the reloadable ones (see RELOADABLE_SETTINGS) change in place, so
   * requests already running finish with the values they started with or the new ones, never a
   * mix that fails; the others are left as they are and listed as needing a restart. Invalid
   * toggle values throw before anything changes.
   */
  applySettings(next: Settings): SettingsChange {
    const nextState = serviceStateFrom(next)
    const nextRetryAfter = asInt(next, 'retry_after_seconds', 3) ?? 3
    const nextCors = corsPolicyFrom(next)
    const applied: string[] = []
    const needRestart: string[] = []
    for (const key of new Set([...Object.keys(this.settings), ...Object.keys(next)])) {
      if (JSON.stringify(this.settings[key]) === JSON.stringify(next[key])) continue
      if (!isReloadableSetting(key)) {
        needRestart.push(key)
        continue
      }
      applied.push(key)
      if (key in next) this.settings[key] = next[key]
      else delete this.settings[key]
    }
    this.serviceState = nextState
    this.retryAfter = nextRetryAfter
    this.cors = nextCors
    return {applied: applied.sort(), needRestart: needRestart.sort()}
  }

  get configInfo(): ConfigInfo | null {
    const source = this.configInfoSource
    return typeof source === 'function' ? source() : source
  }

  /** Adds a capability to hello (upstream's config.add_api_capability). */
  addCapability(id: string, capability: Capability): void {
    if (this.capabilities[id]) throw new Error(`The '${id}' API capability was already registered.`)
    this.capabilities[id] = capability
  }

  addService(service: Service): void {
    this.router.add(service)
    if (service.resourceName) this.resourceNames.add(service.resourceName)
  }

  idGeneratorFor(resourceName: string): IdGenerator {
    return this.idGenerators.get(resourceName) ?? this.idGenerators.get('')!
  }

  // ---------------------------------------------------------------------------------------------
  // Outer requests

  /**
   * Resolves once no request is being handled. A stopping server waits for it before closing the
   * pools: a request whose client went away (a timeout, a proxy giving up) holds no connection,
   * so the HTTP close does not wait for it, yet its handler still runs and needs the database.
   */
  settled(): Promise<void> {
    if (this.handling === 0) return Promise.resolve()
    return new Promise((resolve) => this.onSettled.push(resolve))
  }

  /** Serves one HTTP request. Never throws: every failure is a Kinto error response. */
  async handle(req: KintoRequest): Promise<KintoResponse> {
    const started = performance.now()
    this.hooks.emit('requestStart', req)
    let response: KintoResponse
    let ctx: RequestContext | undefined
    let alert: string | undefined
    // Counted while it may use the backends (settled()); what follows the try is synchronous.
    this.handling++
    try {
      const eos = endOfService(this.settings, this.clock())
      if (eos === 'hard') {
        throw new HttpError(410, {errno: ERRNO.SERVICE_DEPRECATED, message: MESSAGES.deprecated})
      }
      // Before the date every answer carries the Alert, errors included (as upstream's tween).
      if (eos === 'soft') alert = eosAlertHeader(this.settings, 'soft-eol')
      const result = await this.handleInner(req)
      response = result.response
      ctx = result.ctx
    } catch (err) {
      response = this.errorResponse(err, req)
      ctx = (err as {kintoContext?: RequestContext} | null)?.kintoContext
      if (isHttpError(err) && err.status === 410) alert = eosAlertHeader(this.settings, 'hard-eol')
      if (response.status >= 500) this.unexpected(err, req, response.status, ctx)
    } finally {
      if (--this.handling === 0) for (const resolve of this.onSettled.splice(0)) resolve()
    }
    if (alert) response.headers.Alert = alert
    this.finalizeHeaders(req, response, ctx)
    this.hooks.emit('response', {req, response, ctx, elapsedMs: performance.now() - started})
    return response
  }

  /** Whether a path is redirected to the current version (upstream's `redirect_to_version` route). */
  redirectsToVersion(path: string): boolean {
    return !/^\/v\d+/.test(path) && asBool(this.settings, 'version_prefix_redirect_enabled')
  }

  private async handleInner(req: KintoRequest): Promise<{response: KintoResponse; ctx?: RequestContext}> {
    const active = this.active
    if (active.readonly && !READ_METHODS.has(req.method)) throw methodNotAllowed()
    const prefix = `/${this.routePrefix}`
    // Paths outside of /v<digits> go to the current version (OPTIONS: upstream's route answers its
    // web framework's empty default response, HTML).
    if (this.redirectsToVersion(req.path)) {
      if (req.method === 'OPTIONS') return {response: {status: 200, headers: {'Content-Type': 'text/html; charset=UTF-8'}}}
      const location = `${prefix}${req.rawPath}${req.rawQuery ? `?${req.rawQuery}` : ''}`
      const ttl = asInt(this.settings, 'version_prefix_redirect_ttl_seconds', -1) ?? -1
      return {response: redirect(req, location, ttl)}
    }
    const match = this.route(req.path, false, req.method)
    if (!match) return {response: this.notFoundResponse(req, prefix)}

    const {service, params} = match
    // Preflight requests need no transaction (no preflight when CORS is off: a 405, as upstream).
    if (req.method === 'OPTIONS' && !service.views.has('OPTIONS') && this.cors.enabled) {
      return {response: preflight(req, service, this.cors, this.readonly)}
    }
    const view = findView(service, req.method)
    if (!view) throw methodNotAllowedFor(this, service, req, this.cors.enabled)
    // Maintenance: writes wait; a batch runs, and fails as a whole if it holds a write.
    if (active.maintenance && !READ_METHODS.has(req.method) && service.name !== 'batch') throw serviceUnavailable(this.retryAfter)

    const bound = newBoundData()
    const ctx = new RequestContext(this, req, this.backends, bound)
    ctx.service = service
    ctx.view = view
    ctx.params = params
    // Reads need no BEGIN/COMMIT (upstream's READ COMMITTED transaction gives no snapshot
    // across statements either): two round trips less on every GET.
    const readOnly = req.method === 'GET' || req.method === 'HEAD'
    const transactional = !service.noTransaction && !readOnly
    if (transactional || service.name === 'hello') {
      // Authenticate before the transaction opens: policies may reach the cache, which PGlite's
      // single connection cannot serve while a transaction holds it. Reads open none: they
      // authenticate when they need to (a resource read fetches the groups with its data).
      await ctx.identity(true)
    }
    if (view.beforeTransaction && !service.noTransaction) await view.beforeTransaction(ctx)
    let restore: (() => void) | undefined
    const run = async (tx: TxBackends) => {
      // A retried transaction (deadlock) starts again from what the request had before it; a
      // request without one runs once (nothing to take).
      if (restore) restore()
      else if (transactional) restore = attemptSnapshot(ctx)
      ctx.tx = tx
      const result = await this.runView(ctx, service, view)
      // A rolled-back batch runs no listeners (on PostgreSQL its transaction is already failed).
      if (bound.abort) throw new AbortTransaction(result, bound.abortRetryable)
      await drainEvents(this.events, bound.events, ctx)
      return result
    }
    let result: ViewResult
    try {
      result = transactional ? await this.inTransaction(run) : await run(this.backends)
    } catch (err) {
      if (err instanceof AbortTransaction) result = err.result
      else {
        // Not enumerable: loggers serialise errors, and the context holds settings (secrets)
        // and request headers (credentials).
        if (err !== null && typeof err === 'object') Object.defineProperty(err, 'kintoContext', {value: ctx, enumerable: false, configurable: true})
        throw err
      }
    } finally {
      ctx.tx = this.backends
    }
    for (const task of bound.afterTransaction) {
      try {
        await task()
      } catch (err) {
        this.logger.error({rid: req.scope?.rid, err}, 'Post-transaction task failed.')
      }
    }
    this.afterCommit(bound, ctx)
    return {response: toResponse(result, req.method), ctx}
  }

  /**
   * Runs fn in a backend transaction, running it again on deadlocks and serialisation failures, and
   * on a timestamp a writer outside our locks (upstream Kinto on the same database) took first
   * (also when it rolled a batch back).
   */
  private async inTransaction<T>(fn: (tx: TxBackends) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.backends.transaction(fn)
      } catch (err) {
        if (!isRetryable(err) || attempt >= TRANSACTION_ATTEMPTS) throw err
        // Apart, so that the transactions that deadlocked do not meet again at once.
        await sleep(5 + Math.random() * 20 * attempt)
      }
    }
  }

  private afterCommit(bound: BoundData, ctx: RequestContext | undefined): void {
    if (!ctx || !this.events.hasAfterListeners) return
    for (const event of bound.events.emitted) {
      for (const listener of this.events.listenersFor(event, true)) {
        Promise.resolve()
          .then(() => listener(event, ctx))
          .catch((error) => this.logger.error({rid: ctx.req.scope?.rid, err: error}, 'Unable to notify'))
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sub-requests (batch)

  /**
   * Runs a sub-request inside the parent's transaction, sharing its bound data. Returns the
   * response; 4xx are responses, 5xx are thrown (they fail the whole batch).
   */
  async subrequest(
    parent: RequestContext,
    req: KintoRequest,
    /** Awaited before the `subrequest` hook: sub-requests run side by side report in their order. */
    ready?: () => Promise<void>,
  ): Promise<{response: KintoResponse; req: KintoRequest}> {
    const started = performance.now()
    const result = await this.subrequestInner(parent, req)
    if (ready) await ready()
    this.hooks.emit('subrequest', {parent, req: result.req, response: result.response, elapsedMs: performance.now() - started})
    return result
  }

  private async subrequestInner(parent: RequestContext, req: KintoRequest): Promise<{response: KintoResponse; req: KintoRequest}> {
    let current = req
    for (let hops = 0; hops < 3; hops++) {
      let response: KintoResponse
      let ctx: RequestContext | undefined
      try {
        const match = this.route(current.path, false, current.method)
        if (!match) {
          response = this.notFoundResponse(current, `/${this.routePrefix}`)
        } else if (current.method === 'OPTIONS' && !match.service.views.has('OPTIONS') && this.cors.enabled) {
          response = preflight(current, match.service, this.cors, this.readonly)
        } else {
          const view = findView(match.service, current.method)
          if (!view) throw methodNotAllowedFor(this, match.service, current, this.cors.enabled)
          if (this.maintenance && !READ_METHODS.has(current.method)) throw serviceUnavailable(this.retryAfter)
          ctx = new RequestContext(this, current, parent.tx, parent.bound, parent)
          ctx.service = match.service
          ctx.view = view
          ctx.params = match.params
          response = toResponse(await this.runView(ctx, match.service, view), current.method)
        }
      } catch (err) {
        const rendered = this.errorResponse(err, current)
        if (rendered.status >= 500) throw err
        response = rendered
        if (response.status === 409) {
          parent.bound.abort = true
          if (isRetryable(err)) parent.bound.abortRetryable = true
        }
      }
      this.finalizeHeaders(current, response, ctx)
      if (response.status === 307 && response.headers.Location) {
        const location = new URL(response.headers.Location, `${current.scheme}://${current.host}`)
        current = {
          ...current,
          path: decodePath(location.pathname),
          rawPath: location.pathname,
          rawQuery: location.search.slice(1),
          query: parseQuery(location.search.slice(1)),
        }
        continue
      }
      return {response, req: current}
    }
    throw new HttpError(500, {message: 'Too many redirections in a batch sub-request.'})
  }

  // ---------------------------------------------------------------------------------------------
  // One view

  private async runView(ctx: RequestContext, service: Service, view: ViewDef): Promise<ViewResult> {
    const authz = view.prepare ? await view.prepare(ctx) : undefined
    const preparedAt = view.permission === 'dynamic' && view.prepare && this.hooks.has('permission') ? performance.now() : -1
    checkNegotiation(view, ctx)
    if (view.permission !== 'public') {
      const identity = ctx.knownIdentity ?? (await ctx.identity())
      let allowed: boolean
      if (view.permission === 'authenticated') {
        allowed = identity.userId !== null
      } else {
        if (!authz) throw new Error(`View ${service.name} ${view.method} has no authorization context.`)
        const result = await permits(this.settings, ctx.tx.permission, authz, identity.principals)
        allowed = result.allowed
        ctx.sharedIds = result.sharedIds
      }
      if (!allowed) {
        if (identity.userId === null) {
          throw unauthorized()
        }
        this.logger.info({rid: ctx.req.scope?.rid, userid: identity.userId, uri: ctx.uri, perm: authz?.requiredPermission}, 'Permission not granted.')
        throw forbidden()
      }
    }
    if (!view.checksOrigin) this.cors.checkOrigin(ctx.req)
    if (preparedAt >= 0) this.hooks.emit('permission', {service, elapsedMs: performance.now() - preparedAt})
    if (!this.hooks.has('view')) return view.handler(ctx)
    const method = ctx.req.method
    return measure(
      () => view.handler(ctx),
      (elapsedMs) => this.hooks.emit('view', {service, method, elapsedMs}),
    )
  }

  /** An unexpected failure (a 5xx that is not a deliberate 503): the error hook. */
  private unexpected(err: unknown, req: KintoRequest, status: number, ctx: RequestContext | undefined): void {
    // Deliberate 503s (maintenance, readonly timestamps) are no failure; a backend's is (an
    // unreachable database included).
    if (status === 503 && !isBackendFailure(err)) return
    if (err instanceof AbortTransaction) return
    this.hooks.emit('error', {req, error: err, status, ctx})
  }

  // ---------------------------------------------------------------------------------------------
  // Responses

  private notFoundResponse(req: KintoRequest, prefix: string): KintoResponse {
    if (!req.path.startsWith(prefix)) {
      throw new HttpError(404, {errno: ERRNO.VERSION_NOT_AVAILABLE, message: MESSAGES.versionNotAvailable})
    }
    if (asBool(this.settings, 'trailing_slash_redirect_enabled')) {
      const qs = req.rawQuery ? `?${req.rawQuery}` : ''
      let location: string | null = null
      if (req.path.endsWith('/')) location = req.rawPath.replace(/\/+$/, '') + qs
      else if (req.path === prefix) location = `${prefix}/${qs}`
      if (location !== null) {
        const ttl = asInt(this.settings, 'trailing_slash_redirect_ttl_seconds', 3600) ?? 3600
        return redirect(req, location || '/', ttl)
      }
    }
    throw new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, message: MESSAGES.notFound})
  }


  errorResponse(err: unknown, req: KintoRequest): KintoResponse {
    if (err instanceof AbortTransaction) return toResponse(err.result, req.method)
    const error = httpErrorFor(err, req, {logger: this.logger, retryAfter: this.retryAfter, settings: this.settings})
    const headers = {...error.headers}
    if (error.status === 503 && !headers['Retry-After']) headers['Retry-After'] = String(this.retryAfter)
    // "Please authenticate": as upstream's multiauth forget(), the challenge of every configured
    // policy (`Bearer realm="Realm"` for OpenID), not Basic alone.
    if (error.status === 401 && headers['WWW-Authenticate'] !== undefined) {
      const challenge = this.authenticationChallenge(fromPageScript(req))
      if (challenge) headers['WWW-Authenticate'] = challenge
      else delete headers['WWW-Authenticate']
    }
    const body = error.body()
    return {status: error.status, headers: req.method === 'HEAD' ? {...headers, 'Content-Length': headLength(body)} : headers, body}
  }

  /**
   * The policies' WWW-Authenticate challenges, in policy order, each once (comma-separated, RFC 9110).
   * `noBasic`: without the Basic ones (see fromPageScript).
   */
  private authenticationChallenge(noBasic = false): string {
    const challenges: string[] = []
    for (const policy of this.policies) {
      const value = policy.challenge?.()['WWW-Authenticate']
      if (noBasic && value && /^basic\b/i.test(value)) continue
      if (value && !challenges.includes(value)) challenges.push(value)
    }
    return challenges.join(', ')
  }
  /** Headers every response gets: CSP, nosniff, Backoff, CORS, content type. */
  finalizeHeaders(req: KintoRequest, response: KintoResponse, ctx?: RequestContext): void {
    const h = response.headers
    h['Content-Security-Policy'] ??= CONTENT_SECURITY_POLICY
    h['X-Content-Type-Options'] ??= 'nosniff'
    const backoff = backoffHeader(this.active)
    if (backoff !== null) h.Backoff = backoff
    const origin = req.headers.origin
    const service = ctx?.service ?? this.route(req.path)?.service
    if (service) {
      // As upstream's CORS layer: the exposed headers on every answer of a service (batch
      // sub-responses included), the allowed origin only when the request names one.
      if (origin && this.cors.matches(origin)) h['Access-Control-Allow-Origin'] = this.cors.allowOrigin(origin)
      const view = req.method === 'OPTIONS' || !this.cors.enabled ? undefined : findView(service, req.method)
      // A method the service lacks (405) is answered outside it: no exposed headers, as upstream
      // (nor any answer of a service when CORS is off).
      // A replayed answer keeps its view's; the replaying view's own (errors) the defaults, unspaced.
      if (view?.replaysExposedHeaders) h['Access-Control-Expose-Headers'] ??= DEFAULT_EXPOSED_HEADERS.join(',')
      else if (view) h['Access-Control-Expose-Headers'] = exposedHeadersValue(view)
    } else {
      // Outside every service (404, redirects): upstream's default exposed headers, Origin or not.
      if (origin) {
        const allowed = this.cors.allowOriginOutsideServices(origin)
        if (allowed) h['Access-Control-Allow-Origin'] = allowed
      }
      h['Access-Control-Expose-Headers'] = DEFAULT_EXPOSED_HEADERS.join(',')
    }
    this.cors.addVary(h)
    // HEAD and preflight answers carry GET's Content-Type (and a HEAD answered before any view, a
    // redirect, its length), as upstream's; a 304 has no body type. Without a body to write (HEAD),
    // the writer cannot add the charset a GET's JSON gets: given here.
    if (req.method === 'HEAD' && response.body !== undefined) h['Content-Length'] ??= headLength(response.body)
    if (!h['Content-Type']) {
      const head = req.method === 'HEAD'
      if (response.body !== undefined && !head) h['Content-Type'] = 'application/json'
      else if ((response.body !== undefined || head || req.method === 'OPTIONS') && response.status !== 304) h['Content-Type'] = JSON_WITHOUT_BODY
    }
  }

  /**
   * The service and route params serving a decoded path (`/v1/buckets/b1`), or null when none
   * does (outside the version prefix, or no route). `ignoreTrailingSlash` matches
   * `/v1/buckets/` as `/v1/buckets` (what its redirect leads to).
   */
  route(path: string, ignoreTrailingSlash = false, method?: string): {service: Service; params: Record<string, string>} | null {
    const prefix = `/${this.routePrefix}`
    if (!path.startsWith(`${prefix}/`)) return null
    const below = path.slice(prefix.length)
    return this.router.match(ignoreTrailingSlash ? below.replace(/(.)\/+$/, '$1') : below, method)
  }
}

function toResponse(result: ViewResult, method: string): KintoResponse {
  // The two headers every answer gets (finalizeHeaders) are in the object from the start, and a
  // view's own values replace them. Added later to the copy of the view's headers, their two
  // stores cost more than everything else finalizeHeaders does (~7 µs of a GET in the profile:
  // a new property on an object cloned by spread).
  const headers: Record<string, string> = {'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff', ...result.headers}
  const response: KintoResponse = {status: result.status ?? 200, headers}
  if (result.body !== undefined && method !== 'HEAD') response.body = result.body
  else if (result.body !== undefined) headers['Content-Length'] ??= headLength(result.body)
  return response
}

/**
 * A request made by a web page's script (fetch or XHR: `Sec-Fetch-Dest: empty`, which only browsers
 * send), such as the admin console's. Its 401 carries no Basic challenge: the browser would
 * answer one with its own sign-in dialog over the page (headless, by dropping the request), where
 * the page shows the error and its own sign-in form. Other clients and a page opened in the
 * browser get the challenge, as upstream (Node's fetch sends `Sec-Fetch-Mode: cors` but no
 * `Sec-Fetch-Dest`: kinto-http on Node keeps it).
 */
function fromPageScript(req: KintoRequest): boolean {
  return req.headers['sec-fetch-dest'] === 'empty'
}


/**
 * Observability of the runtime: StatsD metrics and the request-summary logs. createApp builds one
 * Monitoring per app and calls it at three points:
 *
 *   instrumentBackends(backends)  before the Runtime is built (timers, when metrics are on)
 *   instrumentRuntime(runtime)    once plugins are included (view/policy timers, batch summaries)
 *   responded(req, response, …)   as each response leaves (per-response metrics; the summary line
 *                                 of responses the runtime never saw: 413, unroutable methods…)
 *
 * Each request carries its scope (`rid`: newRequestScope() as it arrives, KintoRequest.scope).
 * The runtime logs `request.summary` itself (`logger.info(fields, 'request.summary')`); the logger
 * handed to it here adds `rid` and `batch_size`, and writes the line to the `request.summary`
 * logger when the app's logger comes from createLogging() (else to the app's logger as it is).
 */
import type {Backends as CreatedBackends} from '../backends.js'
import type {Settings} from '../config/settings.js'
import type {RequestContext} from '../server/context.js'
import {silentLogger, type Logger} from '../logger.js'
import type {Runtime} from '../server/runtime.js'
import type {Backends, KintoRequest, KintoResponse} from '../server/types.js'
import {instrumentBackends, instrumentRuntime, ResponseMetrics} from './instrument.js'
import {loggingOf, SUBREQUEST_LOGGER, SUMMARY_LOGGER} from './logging.js'
import {StatsdMetrics, type Metrics} from './metrics.js'
import {REQUEST_SCOPE, requestIdFrom, type RequestScope} from './request-scope.js'
import {statsdBackendWarning, statsdTarget} from './statsd-settings.js'

export {instrumentBackends, instrumentRuntime, matchService, upstreamMethodName} from './instrument.js'
export {createLogging, KintoLogging, loggingOf, renderReadable, RUNTIME_LOGGER, SUBREQUEST_LOGGER, SUMMARY_LOGGER, type LineSink, type LoggingOptions} from './logging.js'
export {defaultPlan, JSON_FORMATTER_CLASSES, loggingPlan, resolveLogger, type LoggingPlan} from './logging-config.js'
export {formatLabels, RecordingMetrics, sanitizeLabel, StatsdMetrics, type Label, type Metrics, type StatsdTarget} from './metrics.js'
export {allowLogFields, logFields, scrubSecrets} from './redact.js'
export {newRequestScope, REQUEST_SCOPE, requestIdFrom, type RequestScope} from './request-scope.js'
export {statsdTarget} from './statsd-settings.js'

export interface MonitoringOptions {
  settings: Settings
  /** The app's logger (pino; from createLogging() for mozlog routing). None: silent. */
  logger?: Logger & object
  /** Metrics to use instead of the StatsD client the settings ask for (tests); null: none. */
  metrics?: Metrics | null
}

type Write = (fields: Record<string, unknown>) => void

export class Monitoring {
  readonly metrics: Metrics | null
  /** The logger to give the Runtime (summaries get `rid`, `batch_size` and their own logger). */
  readonly runtimeLogger: Logger
  private readonly writeSummary: Write
  private readonly writeSubrequest: Write
  private responseMetrics?: ResponseMetrics

  constructor(private readonly options: MonitoringOptions) {
    const base: Logger = options.logger ?? silentLogger
    const logging = loggingOf(options.logger)
    if (logging) {
      const summary = logging.logger(SUMMARY_LOGGER)
      const subrequest = logging.logger(SUBREQUEST_LOGGER)
      this.writeSummary = logging.infoWriter(SUMMARY_LOGGER) ?? ((fields) => summary.info(fields))
      this.writeSubrequest = (fields) => subrequest.info(fields, 'subrequest.summary')
    } else {
      this.writeSummary = (fields) => base.info(fields, 'request.summary')
      this.writeSubrequest = (fields) => base.info(fields, 'subrequest.summary')
    }
    this.runtimeLogger = {
      info: (obj, msg) => (msg === 'request.summary' ? this.summary(obj as Record<string, unknown>) : base.info(obj, msg)),
      warn: (obj, msg) => base.warn(obj, msg),
      error: (obj, msg) => base.error(obj, msg),
      fatal: (obj, msg) => (base.fatal ?? base.error).call(base, obj, msg),
      debug: (obj, msg) => base.debug?.call(base, obj, msg),
    }
    if (options.metrics !== undefined) {
      this.metrics = options.metrics
    } else {
      const target = statsdTarget(options.settings)
      this.metrics = target ? new StatsdMetrics(target, {logger: base}) : null
      const warning = target ? statsdBackendWarning(options.settings) : null
      if (warning) base.warn({setting: 'statsd_backend'}, warning)
    }
  }

  /** The backends the runtime should use: timed when metrics are on. */
  instrumentBackends<B extends Backends | CreatedBackends>(backends: B): B {
    return this.metrics ? instrumentBackends(backends, this.metrics) : backends
  }

  /** Timers on views and policies (metrics on), and a summary line per batch sub-request. */
  instrumentRuntime(runtime: Runtime): void {
    if (this.metrics) {
      instrumentRuntime(runtime, this.metrics)
      this.responseMetrics = new ResponseMetrics(runtime, this.metrics, this.options.settings)
    }
    const subrequest = runtime.subrequest.bind(runtime)
    runtime.subrequest = async (parent, req) => {
      const scope = parent.req.scope
      if (scope && scope.batchSize === undefined) scope.batchSize = batchSize(parent)
      const started = performance.now()
      const result = await subrequest(parent, req)
      const fields = subrequestFields(parent, req, scope)
      this.writeSubrequest(fields)
      this.responseMetrics?.emit({
        method: result.req.method,
        path: result.req.path,
        status: result.response.status,
        durationMs: performance.now() - started,
        uid: fields.uid as string | undefined,
        authnType: fields.authn_type as string | undefined,
      })
      return result
    }
  }

  /**
   * A response leaves: per-response metrics, and the summary line when the runtime did not log
   * one (errors raised before a request reaches it).
   */
  responded(req: KintoRequest, response: KintoResponse, payload: string | Buffer | undefined, elapsedMs: number): void {
    const scope = req.scope
    let summary = scope?.summary
    if (!summary) {
      const body = response.body as {errno?: number} | undefined
      summary = {
        rid: scope?.rid ?? requestIdFrom(req.headers['x-request-id']),
        agent: req.headers['user-agent'],
        path: req.path,
        method: req.method,
        lang: req.headers['accept-language'],
        errno: response.status >= 400 && body?.errno ? body.errno : 0,
        code: response.status,
        t: Math.round(elapsedMs),
        time: new Date().toISOString(),
      }
      this.writeSummary(summary)
    }
    this.responseMetrics?.emit({
      method: req.method,
      path: req.path,
      status: response.status,
      durationMs: typeof summary.t === 'number' ? summary.t : elapsedMs,
      uid: summary.uid as string | undefined,
      authnType: summary.authn_type as string | undefined,
      bytes: payload === undefined ? 0 : Buffer.byteLength(payload),
    })
  }

  /** Sends buffered metrics and closes the StatsD socket. */
  async close(): Promise<void> {
    await this.metrics?.close()
  }

  private summary(obj: Record<string, unknown> & {[REQUEST_SCOPE]?: RequestScope}): void {
    const scope = obj[REQUEST_SCOPE]
    // `rid` first, where upstream's lines have it.
    const fields: Record<string, unknown> = scope ? {rid: scope.rid, ...obj} : {...obj}
    if (scope) {
      if (scope.batchSize !== undefined) fields.batch_size = scope.batchSize
      scope.summary = fields
    }
    this.writeSummary(fields)
  }
}

export function createMonitoring(options: MonitoringOptions): Monitoring {
  return new Monitoring(options)
}

function batchSize(parent: RequestContext): number | undefined {
  try {
    const body = parent.body() as {requests?: unknown}
    return Array.isArray(body.requests) ? body.requests.length : undefined
  } catch {
    return undefined
  }
}

/** upstream's subrequest.summary: the batch's own context, with the sub-request's path and method. */
function subrequestFields(parent: RequestContext, req: KintoRequest, scope: RequestScope | undefined): Record<string, unknown> {
  const outer = parent.req
  const fields: Record<string, unknown> = {
    rid: scope?.rid,
    agent: outer.headers['user-agent'],
    path: req.path,
    method: req.method,
    lang: outer.headers['accept-language'],
    errno: 0,
  }
  if (outer.rawQuery) fields.querystring = Object.fromEntries(outer.query)
  const identity = parent.knownIdentity
  if (identity?.userId) {
    fields.uid = identity.userId.slice(identity.userId.indexOf(':') + 1)
    fields.authn_type = identity.authnType
  }
  if (scope?.batchSize !== undefined) fields.batch_size = scope.batchSize
  return fields
}

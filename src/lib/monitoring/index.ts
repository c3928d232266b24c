/**
 * Observability of the runtime: metrics (StatsD, Prometheus) and the request-summary logs, all
 * subscribed to the runtime's hook points (src/lib/server/hooks.ts). createApp builds one
 * Monitoring per app with the hooks the Runtime will get, then:
 *
 *   attach(runtime)               once plugins are included (routes for the per-response metrics)
 *   responded(req, response, …)   as each response leaves (per-response metrics; the summary line
 *                                 of responses the runtime never saw: 413, unroutable methods…)
 *
 * Each request carries its scope (`rid`: newRequestScope() as it arrives, KintoRequest.scope).
 * The request.summary and subrequest.summary fields are built in one place (summaryFields), and
 * written to the `request.summary` logger when the app's logger comes from createLogging() (else
 * to the app's logger as it is).
 */
import type {Settings} from '../config/settings.js'
import {stringifyJson} from '../json.js'
import {silentLogger, type Logger} from '../logger.js'
import type {RequestContext} from '../server/context.js'
import type {ResponseEvent, RuntimeHooks, SubrequestEvent} from '../server/hooks.js'
import type {KintoRequest, KintoResponse} from '../server/types.js'
import {isoNow} from '../time-text.js'
import {ResponseMetrics, subscribeTimers, type ResponseFacts, type RouteOf, type NamedRouteOf} from './instrument.js'
import {loggingOf, SUBREQUEST_LOGGER, SUMMARY_LOGGER} from './logging.js'
import {FanoutMetrics, StatsdMetrics, type Metrics} from './metrics.js'
import {prometheusEnabled, prometheusFor} from './prometheus.js'
import {requestIdFrom, type RequestScope} from './request-scope.js'
import {startSentry, type SentryReporting} from './sentry.js'
import {statsdBackendWarning, statsdTarget} from './statsd-settings.js'

export {subscribeTimers, upstreamMethodName} from './instrument.js'
export {createLogging, flushLogLines, KintoLogging, loggingOf, renderReadable, RUNTIME_LOGGER, SUBREQUEST_LOGGER, SUMMARY_LINGER_MS, SUMMARY_LOGGER, type LineSink, type LoggingOptions} from './logging.js'
export {defaultPlan, fileHandlerParams, JSON_FORMATTER_CLASSES, loggingPlan, parsePyLiteral, resolveLogger, type LoggingPlan} from './logging-config.js'
export {FanoutMetrics, formatLabels, RecordingMetrics, sanitizeLabel, StatsdMetrics, type Label, type Metrics, type StatsdTarget} from './metrics.js'
export {allowLogFields, logFields, scrubSecrets} from './redact.js'
export {newRequestScope, REQUEST_SCOPE, requestIdFrom, type RequestScope} from './request-scope.js'
export {statsdTarget} from './statsd-settings.js'
export {PROMETHEUS_CONTENT_TYPE, prometheusEnabled, prometheusFor, primaryScrapeRelay, scrape, type PrometheusMetrics} from './prometheus.js'

export interface MonitoringOptions {
  settings: Settings
  /** The runtime's hook points (given to the Runtime when it is built). */
  hooks: RuntimeHooks
  /** The app's logger (pino; from createLogging() for mozlog routing). None: silent. */
  logger?: Logger & object
  /** Metrics to use instead of the exporters the settings ask for (tests); null: none. */
  metrics?: Metrics | null
}

type Write = (fields: Record<string, unknown>) => void

export class Monitoring {
  readonly metrics: Metrics | null
  private readonly writeSummary: Write
  private readonly writeSubrequest: Write
  private responseMetrics?: ResponseMetrics
  private readonly logger: Logger
  private metricsFailed = false
  /** Error reports (kinto.sentry_dsn), null when off. */
  readonly sentry: SentryReporting | null

  constructor(private readonly options: MonitoringOptions) {
    const base: Logger = options.logger ?? silentLogger
    this.logger = base
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
    if (options.metrics !== undefined) {
      this.metrics = options.metrics
    } else {
      const target = statsdTarget(options.settings)
      const exporters: Metrics[] = []
      if (target) exporters.push(new StatsdMetrics(target, {logger: base}))
      if (prometheusEnabled(options.settings)) exporters.push(prometheusFor(options.settings))
      this.metrics = exporters.length === 0 ? null : exporters.length === 1 ? exporters[0] : new FanoutMetrics(exporters)
      const warning = target ? statsdBackendWarning(options.settings) : null
      if (warning) base.warn({setting: 'statsd_backend'}, warning)
    }
    const {hooks} = options
    this.sentry = startSentry(options.settings, hooks, logging, base)
    hooks.on('response', (event) => this.summary(event))
    hooks.on('subrequest', (event) => this.subrequest(event))
    if (this.metrics) subscribeTimers(hooks, this.metrics)
  }

  /** Once the runtime's services are known (the app is built): per-response metrics need its routes. */
  attach(route: RouteOf, namedRoute?: NamedRouteOf): void {
    if (this.metrics) this.responseMetrics = new ResponseMetrics(route, this.metrics, this.options.settings, namedRoute)
    this.sentry?.started()
  }

  /**
   * A response leaves: per-response metrics, and the summary line when the runtime did not log
   * one (errors raised before a request reaches it).
   */
  responded(req: KintoRequest, response: KintoResponse, payload: string | Buffer | undefined, elapsedMs: number): void {
    const scope = req.scope
    let summary = scope?.summary
    if (!summary) {
      summary = summaryFields(req, response, undefined, elapsedMs, scope)
      this.writeSummary(summary)
    }
    // Only with metrics on: the facts (the payload's byte length) cost a request nothing otherwise.
    const identified = scope?.identityUsed !== false
    if (this.responseMetrics) this.emitMetrics({
      method: req.method,
      path: req.path,
      status: response.status,
      durationMs: typeof summary.t === 'number' ? summary.t : elapsedMs,
      uid: identified ? (summary.uid as string | undefined) : undefined,
      authnType: identified ? (summary.authn_type as string | undefined) : undefined,
      bytes: payload === undefined ? 0 : Buffer.byteLength(payload),
    })
  }

  /** A response's metrics: a failing exporter is logged once and never fails the response. */
  private emitMetrics(facts: ResponseFacts): void {
    try {
      this.responseMetrics!.emit(facts)
    } catch (err) {
      if (this.metricsFailed) return
      this.metricsFailed = true
      this.logger.error({err}, 'Recording the metrics of a response failed; its later failures are not logged.')
    }
  }

  /** Sends buffered metrics and error reports, closes the StatsD socket. */
  async close(): Promise<void> {
    await Promise.all([this.metrics?.close(), this.sentry?.close()])
  }

  private summary({req, response, ctx, elapsedMs}: ResponseEvent): void {
    const fields = summaryFields(req, response, ctx, elapsedMs, req.scope)
    if (req.scope) {
      req.scope.summary = fields
      if (ctx) req.scope.identityUsed = ctx.identityUsed
    }
    this.writeSummary(fields)
  }

  private subrequest({parent, req, response, elapsedMs}: SubrequestEvent): void {
    const scope = parent.req.scope
    // upstream's subrequest.summary is the batch's: the inner requests of the default bucket and of
    // attachments are told by their own request's summary line.
    const batch = parent.service?.name === 'batch'
    if (batch && scope && scope.batchSize === undefined) scope.batchSize = batchSize(parent)
    // upstream's subrequest.summary: the batch's own context, with the sub-request's path and method.
    const fields = summaryFields(parent.req, undefined, parent, undefined, scope, req)
    if (batch) this.writeSubrequest(fields)
    if (this.responseMetrics) this.emitMetrics({
      method: req.method,
      path: req.path,
      status: response.status,
      durationMs: elapsedMs,
      uid: fields.uid as string | undefined,
      authnType: fields.authn_type as string | undefined,
      // Its body as a response of its own (upstream observes every response, sub-requests included).
      bytes: req.method === 'HEAD' || response.body === undefined || response.status === 304 ? 0 : bodyLength(response.body),
    })
  }
}

/** A sub-response body's length as the response it would be alone: JSON, or raw bytes (RawBody). */
function bodyLength(body: unknown): number {
  const raw = body !== null && typeof body === 'object' ? (body as {bytes?: unknown}).bytes : undefined
  return Buffer.isBuffer(raw) ? raw.length : Buffer.byteLength(stringifyJson(body))
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

/**
 * The fields of upstream's request.summary (response given) and subrequest.summary (`sub` given:
 * the sub-request's path and method over the batch's context, errno 0, no code or time), with
 * `rid` first where upstream's lines have it and `batch_size` last.
 */
export function summaryFields(
  req: KintoRequest,
  response: KintoResponse | undefined,
  ctx: RequestContext | undefined,
  elapsedMs: number | undefined,
  scope: RequestScope | undefined,
  sub?: KintoRequest,
): Record<string, unknown> {
  const body = response?.body as {errno?: number} | undefined
  const fields: Record<string, unknown> = {
    rid: scope?.rid ?? requestIdFrom(req.headers['x-request-id']),
    agent: req.headers['user-agent'],
    path: (sub ?? req).path,
    method: (sub ?? req).method,
    lang: req.headers['accept-language'],
    errno: response && response.status >= 400 && body?.errno ? body.errno : 0,
  }
  if (response) {
    fields.code = response.status
    fields.t = Math.round(elapsedMs ?? 0)
    fields.time = isoNow()
  }
  if (req.rawQuery) fields.querystring = Object.fromEntries(req.query)
  const identity = ctx?.knownIdentity
  if (identity?.userId) {
    fields.uid = identity.userId.slice(identity.userId.indexOf(':') + 1)
    fields.authn_type = identity.authnType
  }
  if (scope?.batchSize !== undefined) fields.batch_size = scope.batchSize
  return fields
}

/**
 * kinto.plugins.prometheus' exporter: the same metric calls as StatsD (src/lib/monitoring/instrument.ts
 * decides what is measured) kept in a prom-client registry and served as Prometheus' text format
 * on /__metrics__, with upstream 26's mapping:
 *
 * - timer(key, ms, labels) → a histogram `<prefix>_<key>` in seconds (buckets from
 *   `prometheus_histogram_buckets`, default `0.01 0.05 0.1 0.5 1.0 3.0 6.0 Inf`);
 * - unique(key, labels) and count(key) → a counter `<prefix>_<key>_total`;
 * - observe(key, value, labels) → a summary `<prefix>_<key>` (count and sum, no quantiles);
 * - each series also has `<prefix>_<key>_created` (a gauge: when the series was first seen), as
 *   Python's client writes, unless `prometheus_created_metrics_enabled = false`;
 * - bucket bounds are written as Python's client writes them: `le="1.0"`, not `le="1"`.
 * - the process series Python's client adds (`process_cpu_seconds_total`, `process_resident_memory_bytes`…).
 *
 * Names: `.`, `-` and spaces become `_`; the prefix is `prometheus_prefix` (default the project
 * name) without its `_`, lower-cased, then `_` (`remote-settings` → `remotesettings_`).
 * `prometheus_disabled_metrics` lists names (with or without the prefix) never exported.
 *
 * With `--workers N` each worker keeps its own registry; the worker answering a scrape asks the
 * primary, which gathers the serving workers' (prom-client's messages over the cluster IPC
 * channel) and sums them: one scrape shows the whole server.
 */
import cluster from 'node:cluster'
import {readdirSync, readFileSync} from 'node:fs'

import type {Counter, Gauge, Histogram, Registry, Summary} from 'prom-client'

import {asBool, asList, asString, type Settings} from '../config/settings.js'
import {KintoError} from '../errors.js'
import {lazyRequire} from '../lazy.js'
import type {Label, Metrics} from './metrics.js'

// Loaded when the plugin is included: most servers never export to Prometheus.
const promClient = lazyRequire<typeof import('prom-client')>('prom-client')

export const PROMETHEUS_PLUGIN = 'kinto.plugins.prometheus'
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const DEFAULT_BUCKETS = '0.01 0.05 0.1 0.5 1.0 3.0 6.0 Inf'

/** Whether `kinto.includes` has the Prometheus plugin. */
export function prometheusEnabled(settings: Settings): boolean {
  return asList(settings, 'includes').includes(PROMETHEUS_PLUGIN)
}

/** `view.record-plural.POST` → `view_record_plural_POST`. */
export function prometheusName(key: string): string {
  return key.replace(/[-. ]/g, '_')
}

/** Upstream's prefix: `remote-settings` → `remotesettings_`, `` → ``. */
export function prometheusPrefix(settings: Settings): string {
  const configured = asString(settings, 'prometheus_prefix') ?? asString(settings, 'project_name') ?? 'kinto'
  return configured ? `${prometheusName(configured).replace(/_/g, '').toLowerCase()}_` : ''
}

interface Family {
  kind: 'histogram' | 'counter' | 'summary'
  metric: Histogram | Counter | Summary
  labelNames: string[]
  created?: Gauge
  /** The label values of each series (key: joined), the least recently observed first. */
  seen: Map<string, string[]>
}

/**
 * Series one metric keeps at most. The matchdict labels (`record_id`…) and `users` name objects
 * and users, without bound, and each series costs memory for the life of the process and lines
 * in every scrape: past the bound, the series observed least recently goes (seen again, it starts
 * from zero, which Prometheus reads as a counter reset).
 */
export const MAX_SERIES_PER_METRIC = 10_000

/**
 * The finite bounds of `prometheus_histogram_buckets` (or the default); throws for a word that is
 * no number, or a bound not above the one before it.
 */
export function histogramBuckets(settings: Settings): number[] {
  const buckets: number[] = []
  let previous = -Infinity
  const words = asList(settings, 'prometheus_histogram_buckets')
  for (const word of words.length > 0 ? words : DEFAULT_BUCKETS.split(' ')) {
    const value = Number(/^\+?inf$/i.test(word) ? Infinity : word)
    // Out of order, a bound would count the wrong observations (upstream refuses them too).
    const problem = Number.isNaN(value) ? 'which is not a number' : value <= previous ? `which is not above the bound before it (${previous})` : null
    if (problem) {
      throw new KintoError(`kinto.prometheus_histogram_buckets has ${JSON.stringify(word)}, ${problem}.`, {
        code: 'KINTO_CONFIG_INVALID',
        hint: `Give increasing bucket bounds in seconds, e.g. ${DEFAULT_BUCKETS}.`,
      })
    }
    previous = value
    if (value !== Infinity) buckets.push(value)
  }
  return buckets
}

export class PrometheusMetrics implements Metrics {
  readonly registry: Registry
  readonly prefix: string
  readonly disabled: Set<string>
  private readonly buckets: number[]
  private readonly created: boolean
  private readonly families = new Map<string, Family>()
  private readonly maxSeries: number

  constructor(settings: Settings, options: {maxSeries?: number} = {}) {
    this.maxSeries = options.maxSeries ?? MAX_SERIES_PER_METRIC
    const client = promClient()
    this.prefix = prometheusPrefix(settings)
    checkPrometheusNames(settings)
    this.disabled = new Set(asList(settings, 'prometheus_disabled_metrics').map((m) => (this.prefix && m.startsWith(this.prefix) ? m.slice(this.prefix.length) : m)))
    this.created = settings.prometheus_created_metrics_enabled === undefined || asBool(settings, 'prometheus_created_metrics_enabled')
    this.buckets = histogramBuckets(settings)
    this.registry = new client.Registry()
    // In a worker, this registry answers the primary's requests for its metrics.
    if (cluster.isWorker) answerPrimary(this.registry)
    registerProcessMetrics(client, this.registry)
  }

  private family(kind: Family['kind'], key: string, labels: readonly Label[] | undefined): {family: Family; values: string[]} | null {
    const name = prometheusName(key)
    if (this.disabled.has(name)) return null
    let family = this.families.get(name)
    const labelNames = (labels ?? []).map(([n]) => prometheusName(n))
    if (!family) {
      const client = promClient()
      const full = this.prefix + name
      const common = {name: full, labelNames, registers: [this.registry]}
      let metric: Family['metric']
      if (kind === 'histogram') metric = new client.Histogram({...common, help: `Histogram of ${full}`, buckets: this.buckets})
      else if (kind === 'summary') metric = new client.Summary({...common, help: `Summary of ${full}`, percentiles: []})
      else metric = new client.Counter({...common, name: `${full}_total`, help: `Counter of ${full}`})
      const created = this.created
        ? new client.Gauge({name: `${full}_created`, help: `${kind === 'counter' ? 'Counter' : kind === 'histogram' ? 'Histogram' : 'Summary'} of ${full}`, labelNames, registers: [this.registry], aggregator: 'min'})
        : undefined
      family = {kind, metric, labelNames, created, seen: new Map()}
      this.families.set(name, family)
    } else if (family.kind !== kind || family.labelNames.length !== labelNames.length) {
      // One name, one type and label set (upstream raises; a metric is never worth a failed request).
      return null
    }
    const values = (labels ?? []).map(([, v]) => v)
    this.observed(family, values)
    return {family, values}
  }

  /** Keeps the series' place among the most recent (MAX_SERIES_PER_METRIC), its `_created` when new. */
  private observed(family: Family, values: string[]): void {
    const id = values.join('\u0000')
    if (family.seen.delete(id)) {
      family.seen.set(id, values)
      return
    }
    family.seen.set(id, values)
    family.created?.set(labelObject(family.labelNames, values), Date.now() / 1000)
    if (family.seen.size <= this.maxSeries) return
    const [oldest, oldValues] = family.seen.entries().next().value!
    family.seen.delete(oldest)
    const gone = labelObject(family.labelNames, oldValues)
    family.metric.remove(gone)
    family.created?.remove(gone)
  }

  timer(key: string, ms: number, labels?: readonly Label[]): void {
    const found = this.family('histogram', key, labels)
    if (found) (found.family.metric as Histogram).observe(labelObject(found.family.labelNames, found.values), ms / 1000)
  }

  count(key: string, n = 1): void {
    const found = this.family('counter', key, undefined)
    if (found) (found.family.metric as Counter).inc(n)
  }

  unique(key: string, labels: readonly Label[]): void {
    const found = this.family('counter', key, labels)
    if (found) (found.family.metric as Counter).inc(labelObject(found.family.labelNames, found.values), 1)
  }

  observe(key: string, value: number, labels?: readonly Label[]): void {
    const found = this.family('summary', key, labels)
    if (found) (found.family.metric as Summary).observe(labelObject(found.family.labelNames, found.values), value)
  }

  /** This process' metrics in the text format. */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  async close(): Promise<void> {}
}

/**
 * Names Prometheus takes, checked at start-up (upstream's client refuses others as its app is
 * built): the prefix starts metric names, the matchdict fields are labels beside `method`,
 * `endpoint` and `status`.
 */
export function checkPrometheusNames(settings: Settings): void {
  const prefix = prometheusPrefix(settings)
  if (!/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    const key = asString(settings, 'prometheus_prefix') !== null ? 'prometheus_prefix' : 'project_name'
    throw new KintoError(`kinto.${key} = ${asString(settings, key)} makes metric names (${prefix}request_summary…) that Prometheus does not take.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: 'Set kinto.prometheus_prefix to letters, digits and underscores, not starting with a digit (e.g. kinto).',
    })
  }
  // `le` and `quantile` are the bucket and quantile labels of histograms and summaries.
  const labels = new Set(['method', 'endpoint', 'status', 'le', 'quantile'])
  for (const field of asList(settings, 'metrics_matchdict_fields')) {
    const label = prometheusName(field)
    const problem = !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label) || label.startsWith('__') ? 'is not a label name Prometheus takes' : labels.has(label) ? 'is already a label of the request metrics' : null
    if (problem) {
      throw new KintoError(`kinto.metrics_matchdict_fields has ${JSON.stringify(field)}, which ${problem}.`, {
        code: 'KINTO_CONFIG_INVALID',
        hint: 'List route fields such as bucket_id collection_id group_id record_id, each once.',
      })
    }
    labels.add(label)
  }
}

/** A number read from a /proc file at scrape time, or undefined (not Linux, or unreadable). */
function procNumber(file: string, pick: (text: string) => string | undefined): number | undefined {
  try {
    const value = Number(pick(readFileSync(file, 'utf8')))
    return Number.isFinite(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * The process series Python's client exports by default, so upstream's /__metrics__ has them
 * (one process per scrape): process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds, process_open_fds, process_max_fds.
 * Read when scraped, never on a request. With `--workers N` they are summed over the workers
 * (the start time is the earliest, the limit the first worker's).
 */
function registerProcessMetrics(client: typeof import('prom-client'), registry: Registry): void {
  const registers = [registry]
  const startTime = Date.now() / 1000 - process.uptime()
  new client.Counter({
    name: 'process_cpu_seconds_total',
    help: 'CPU time (user and system) used by the process, in seconds.',
    registers,
    collect() {
      const usage = process.cpuUsage()
      this.reset()
      this.inc((usage.user + usage.system) / 1e6)
    },
  })
  new client.Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory of the process, in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss())
    },
  })
  new client.Gauge({
    name: 'process_start_time_seconds',
    help: 'When the process started, in seconds since the Unix epoch.',
    registers,
    aggregator: 'min',
    collect() {
      this.set(startTime)
    },
  })
  if (process.platform !== 'linux') return
  new client.Gauge({
    name: 'process_virtual_memory_bytes',
    help: 'Virtual memory of the process, in bytes.',
    registers,
    collect() {
      // /proc/self/stat: the 23rd field (vsize), counted after the command name in parentheses.
      const vsize = procNumber('/proc/self/stat', (text) => text.slice(text.lastIndexOf(')') + 2).split(' ')[20])
      if (vsize !== undefined) this.set(vsize)
    },
  })
  new client.Gauge({
    name: 'process_open_fds',
    help: 'Open file descriptors of the process.',
    registers,
    collect() {
      try {
        this.set(readdirSync('/proc/self/fd').length)
      } catch {
        // not readable: the series keeps its last value
      }
    },
  })
  new client.Gauge({
    name: 'process_max_fds',
    help: 'Most file descriptors the process may open.',
    registers,
    aggregator: 'first',
    collect() {
      const max = procNumber('/proc/self/limits', (text) => /^Max open files\s+(\d+)/m.exec(text)?.[1])
      if (max !== undefined) this.set(max)
    },
  })
}

function labelObject(names: string[], values: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < names.length; i++) out[names[i]] = values[i]
  return out
}

const INSTANCES = new WeakMap<Settings, PrometheusMetrics>()

/** The exporter of an app's settings (one per app: monitoring feeds it, the plugin serves it). */
export function prometheusFor(settings: Settings): PrometheusMetrics {
  let metrics = INSTANCES.get(settings)
  if (!metrics) {
    metrics = new PrometheusMetrics(settings)
    INSTANCES.set(settings, metrics)
  }
  return metrics
}

// -------------------------------------------------------------------------------------------------
// Workers

interface ScrapeRequest {
  kind: 'kinto-metrics-request'
  id: number
}
interface ScrapeResponse {
  kind: 'kinto-metrics-response'
  id: number
  text?: string
  error?: string
}

const SCRAPE_TIMEOUT_MS = 5000
let scrapeIds = 0

/**
 * The text as Python's client writes it:
 * - bucket bounds in Go's float format: `le="1.0"` where prom-client writes `le="1"`. Prometheus 2
 *   stores the label as scraped, so a query or an alert written against upstream's `le="1.0"`
 *   would find no series;
 * - one family after the other, no blank line between them (prom-client writes one). Prometheus
 *   skips blank lines, but tools that read the lines (upstream's own functional test asserts that
 *   no line of /__metrics__ repeats) see them. A label value cannot hold a raw line break (it is
 *   escaped), so no line of a sample is touched.
 */
function pythonClientLayout(text: string): string {
  return text.replace(/\ble="(\d{1,6})"/g, 'le="$1.0"').replace(/\n{2,}/g, '\n')
}

/**
 * The metrics of the whole server: in a worker of `--workers N`, every worker's summed (asked to
 * the primary); else this process'.
 */
export async function scrape(metrics: PrometheusMetrics): Promise<string> {
  return pythonClientLayout(await scrapeText(metrics))
}

async function scrapeText(metrics: PrometheusMetrics): Promise<string> {
  if (!cluster.isWorker || !process.send) return metrics.text()
  const id = ++scrapeIds
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage)
      reject(new Error('The primary process did not answer for the other workers’ metrics in time.'))
    }, SCRAPE_TIMEOUT_MS)
    const onMessage = (msg: ScrapeResponse) => {
      if (msg?.kind !== 'kinto-metrics-response' || msg.id !== id) return
      clearTimeout(timer)
      process.off('message', onMessage)
      if (msg.error !== undefined || msg.text === undefined) reject(new Error(msg.error ?? 'no metrics'))
      else resolve(msg.text)
    }
    process.on('message', onMessage)
    // With a callback, a channel that just closed (the primary gone) fails this scrape; without
    // one, node emits the write error on the process, an uncaught exception.
    process.send!({kind: 'kinto-metrics-request', id} satisfies ScrapeRequest, undefined, {}, (error) => {
      if (!error) return
      clearTimeout(timer)
      process.off('message', onMessage)
      reject(new Error(`The primary process could not be asked for the other workers’ metrics (${error.message}).`))
    })
  })
}

/** The primary's request for a worker's metrics and the answer (prom-client's message types). */
const WORKER_METRICS_REQ = 'prom-client:getMetricsReq'
const WORKER_METRICS_RES = 'prom-client:getMetricsRes'

/** The registry a worker's answers come from (the last one made: one per process). */
let workerRegistry: Registry | undefined

/**
 * In a worker: answers the primary's requests with this registry's metrics, as JSON for
 * `AggregatorRegistry.aggregate`. prom-client's AggregatorRegistry listener did this, but wrote
 * without a callback: a request answered just after the worker disconnected (a retiring or
 * stopping worker) made node emit the write error on the process, an uncaught exception that
 * turned a clean stop into a crash.
 */
function answerPrimary(registry: Registry): void {
  if (workerRegistry === undefined) {
    process.on('message', (msg: {type?: unknown; requestId?: unknown} | null) => {
      if (msg?.type !== WORKER_METRICS_REQ) return
      const reply = (answer: object) => {
        if (process.connected) process.send?.({type: WORKER_METRICS_RES, requestId: msg.requestId, ...answer}, undefined, {}, () => {})
      }
      workerRegistry!.getMetricsAsJSON().then(
        (metrics) => reply({metrics: [metrics]}),
        (error: Error) => reply({error: error.message}),
      )
    })
  }
  workerRegistry = registry
}
/** How long the primary waits for the workers: below the scraping worker's own wait. */
const GATHER_TIMEOUT_MS = SCRAPE_TIMEOUT_MS - 1000

/** A worker as the primary sees it (node:cluster's Worker). */
export interface RelayWorker {
  /** node:cluster's: the callback gets the write's error, else emitted on the worker (uncaught). */
  send(msg: unknown, handle: undefined, options: object, callback: (error: Error | null) => void): unknown
  isConnected(): boolean
  once(event: 'exit', listener: () => void): unknown
  off(event: 'exit', listener: () => void): unknown
}

interface Gathering {
  waiting: Set<RelayWorker>
  parts: unknown[]
  timer: NodeJS.Timeout
  /** Removes the exit listeners this gathering added. */
  cleanups: Array<() => void>
  settle(error: Error | null): void
}

/**
 * In the primary of `--workers N` with Prometheus on: a handler of worker messages answering
 * scrape requests with the metrics of the workers that serve, summed (`serving()`: those
 * listening, retiring ones included until they exit). Returns null when Prometheus is off.
 *
 * prom-client's `clusterMetrics()` asked every forked worker, including one still starting
 * during a rolling restart (SIGUSR2) or after a crash: it answers nothing until it has loaded,
 * so scrapes then waited 5 s and failed (503, a target down on every deployment). A worker that
 * does not serve yet has counted no request; one that exits while asked is not waited for.
 */
export function primaryScrapeRelay(settings: Settings, serving: () => Iterable<RelayWorker>): ((worker: RelayWorker, msg: unknown) => boolean) | null {
  if (!prometheusEnabled(settings)) return null
  const {AggregatorRegistry} = promClient()
  const gatherings = new Map<number, Gathering>()
  let ids = 0

  const gather = (): Promise<string> => {
    const workers = [...serving()].filter((w) => w.isConnected())
    if (workers.length === 0) return Promise.resolve('')
    const id = ++ids
    return new Promise<string>((resolve, reject) => {
      const gathering: Gathering = {
        waiting: new Set(workers),
        parts: [],
        cleanups: [],
        timer: setTimeout(() => gathering.settle(new Error(`${gathering.waiting.size} of ${workers.length} workers did not send their metrics within ${GATHER_TIMEOUT_MS / 1000} s.`)), GATHER_TIMEOUT_MS),
        settle: (error) => {
          if (!gatherings.delete(id)) return
          clearTimeout(gathering.timer)
          for (const cleanup of gathering.cleanups) cleanup()
          if (error) reject(error)
          else AggregatorRegistry.aggregate(gathering.parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics().then(resolve, reject)
        },
      }
      gatherings.set(id, gathering)
      for (const worker of workers) {
        const gone = () => {
          if (!gathering.waiting.delete(worker)) return
          if (gathering.waiting.size === 0) gathering.settle(null)
        }
        worker.once('exit', gone)
        gathering.cleanups.push(() => worker.off('exit', gone))
        // A worker disconnecting as it retires can still look connected here: the write then
        // fails (EPIPE) after this returns. Without the callback that error was emitted on the
        // worker, an uncaught exception that ended the primary and with it every worker. (With
        // one, send never throws for a closed channel: the callback gets it.)
        worker.send({type: WORKER_METRICS_REQ, requestId: id}, undefined, {}, (error) => {
          if (error) gone()
        })
      }
    })
  }

  return (worker, msg) => {
    const message = msg as (ScrapeRequest & {type?: undefined}) | {type: string; requestId: number; metrics?: unknown[]; error?: string} | null
    if (message?.type === WORKER_METRICS_RES) {
      const gathering = gatherings.get(message.requestId)
      // Late (after the timeout) or not ours: nothing waits for it.
      if (!gathering || !gathering.waiting.delete(worker)) return true
      if (message.error !== undefined) gathering.settle(new Error(message.error))
      else {
        gathering.parts.push(...(message.metrics ?? []))
        if (gathering.waiting.size === 0) gathering.settle(null)
      }
      return true
    }
    const request = message as ScrapeRequest | null
    if (request?.kind !== 'kinto-metrics-request') return false
    const reply = (answer: ScrapeResponse) =>
      worker.send(answer, undefined, {}, () => {
        // An error: the worker is gone, nobody waits for the answer.
      })
    gather().then(
      (text) => reply({kind: 'kinto-metrics-response', id: request.id, text}),
      (err: Error) => reply({kind: 'kinto-metrics-response', id: request.id, error: err.message}),
    )
    return true
  }
}

/**
 * The metrics service (upstream's IMetricsService) and its StatsD implementation over hot-shots.
 *
 * Wire form, as upstream's StatsD plugin writes it:
 * - `timer(key, ms, labels)` → `<prefix>.<key>.<label>.<value>…:<ms>|ms`
 * - `count(key, n)` → `<prefix>.<key>:<n>|c`
 * - `unique(key, labels)` → a StatsD set: `<prefix>.<key>:<label>.<value>.<label>.<value>…|s`
 * - `observe(key, value, labels)` → a gauge, labels dropped: `<prefix>.<key>:<value>|g`
 * Label values lose their `:` (Telegraf does not accept it), and the characters that would break
 * a StatsD line (`|`, line breaks) become `_`.
 *
 * Nothing here is ever awaited in a request: hot-shots buffers the lines and sends UDP datagrams
 * on its own, and the host name is resolved once (IPv4 first, as upstream), in the background.
 * While it does not resolve, metrics are dropped (one warning), and resolution is retried every
 * 30 seconds.
 */
import {lookup} from 'node:dns'
import {isIP} from 'node:net'

import type {StatsD} from 'hot-shots'

import {lazyRequire} from '../lazy.js'
import type {Logger} from '../logger.js'

// Loaded when metrics are on: most servers never send any.
const hotShots = lazyRequire<typeof import('hot-shots')>('hot-shots')

export type Label = readonly [name: string, value: string]

export interface Metrics {
  /** A duration in milliseconds. */
  timer(key: string, ms: number, labels?: readonly Label[]): void
  /** A plain counter. */
  count(key: string, n?: number): void
  /** A labelled count: a StatsD set whose member is the labels. */
  unique(key: string, labels: readonly Label[]): void
  /** A value (a StatsD gauge, without its labels; a Prometheus summary, with them). */
  observe(key: string, value: number, labels?: readonly Label[]): void
  /** Sends what is buffered and closes the socket. */
  close(): Promise<void>
}

/** Label values as upstream sanitizes them, plus what would break a StatsD line. */
export function sanitizeLabel(value: string): string {
  return value.replace(/:/g, '').replace(/[|\r\n]/g, '_')
}

/** `[['method','get'],['endpoint','hello']]` → `method.get.endpoint.hello`. */
export function formatLabels(labels: readonly Label[]): string {
  let out = ''
  for (let i = 0; i < labels.length; i++) {
    if (i > 0) out += '.'
    out += `${labels[i][0]}.${sanitizeLabel(labels[i][1])}`
  }
  return out
}

export interface StatsdTarget {
  host: string
  port: number
  /** Without the trailing dot (`kinto`). */
  prefix: string
}

export interface StatsdOptions {
  /** Where the one warning about an unresolvable host (or a socket error) goes. */
  logger?: Logger
  /** For tests: the resolver (default: the system's, as getaddrinfo sees it, IPv4 first). */
  resolve?: (host: string, cb: (err: Error | null, address?: string) => void) => void
  /** For tests: the system lookup the default resolver asks (node:dns lookup). */
  lookup?: SystemLookup
  /** Retry delay while the host does not resolve (default 30 s). */
  retryMs?: number
  /** Largest datagram (default 1432 bytes: one Ethernet frame); 0 sends each line at once. */
  maxBufferSize?: number
  /** How long a partly filled datagram may wait (default 100 ms). */
  flushIntervalMs?: number
}

export type SystemLookup = (host: string, options: {family?: 4}, cb: (err: Error | null, address?: string) => void) => void

const systemLookup: SystemLookup = (host, options, cb) => lookup(host, options, (err, address) => cb(err, address))

/**
 * The host's IPv4 address when it has one, as upstream's StatsD client resolves it (IPv4 only):
 * StatsD daemons commonly listen on IPv4 alone, and `localhost` or a dual-stack name often
 * resolves to IPv6 first, where the datagrams would be lost. Otherwise any address.
 */
function resolveWith(lookupHost: SystemLookup): (host: string, cb: (err: Error | null, address?: string) => void) => void {
  return (host, cb) =>
    lookupHost(host, {family: 4}, (err, address) => {
      if (!err && address) cb(null, address)
      else lookupHost(host, {}, cb)
    })
}

/** Metrics sent to a StatsD daemon over UDP. */
export class StatsdMetrics implements Metrics {
  private client: StatsD | null = null
  private closed = false
  private retryTimer: NodeJS.Timeout | undefined
  private warned = new Set<string>()
  private readonly prefix: string
  private readonly logger: Logger | undefined

  constructor(
    readonly target: StatsdTarget,
    private readonly options: StatsdOptions = {},
  ) {
    this.prefix = target.prefix ? `${target.prefix}.` : ''
    this.logger = options.logger
    if (isIP(target.host)) this.connect(target.host)
    else this.resolveHost()
  }

  /** Whether lines are being sent (false while the host does not resolve). */
  get connected(): boolean {
    return this.client !== null
  }

  private resolveHost(): void {
    const resolve = this.options.resolve ?? resolveWith(this.options.lookup ?? systemLookup)
    resolve(this.target.host, (err, address) => {
      if (this.closed) return
      if (err || !address) {
        const reason = (err as NodeJS.ErrnoException | null)?.code ?? err?.message ?? 'no address'
        this.warnOnce(
          'dns',
          {host: this.target.host, port: this.target.port, reason},
          `StatsD host ${this.target.host} does not resolve (${reason}): metrics are dropped until it does (retrying every ${Math.round((this.options.retryMs ?? 30_000) / 1000)} s).`,
        )
        this.retryTimer = setTimeout(() => this.resolveHost(), this.options.retryMs ?? 30_000)
        this.retryTimer.unref()
        return
      }
      if (this.warned.has('dns')) this.logger?.info({host: this.target.host}, `StatsD host ${this.target.host} resolves now; metrics are sent.`)
      this.connect(address)
    })
  }

  private connect(address: string): void {
    this.client = new (hotShots().StatsD)({
      host: address,
      port: this.target.port,
      protocol: 'udp',
      prefix: this.prefix,
      maxBufferSize: this.options.maxBufferSize ?? 1432,
      bufferFlushInterval: this.options.flushIntervalMs ?? 100,
      // Plain StatsD lines: no Datadog tags from DD_* variables, no telemetry.
      datadog: false,
      includeDataDogTags: false,
      includeDatadogTelemetry: false,
      errorHandler: (error) => {
        const code = (error as NodeJS.ErrnoException).code ?? error.message
        this.warnOnce(`socket:${code}`, {host: this.target.host, port: this.target.port, reason: code}, `Sending metrics to StatsD failed (${code}); metrics may be lost.`)
      },
    })
  }

  private warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.warned.has(key)) return
    this.warned.add(key)
    this.logger?.warn(fields, message)
  }

  timer(key: string, ms: number, labels?: readonly Label[]): void {
    if (!this.client) return
    const name = labels && labels.length > 0 ? `${key}.${formatLabels(labels)}` : key
    this.client.timing(name, Math.round(ms * 1000) / 1000)
  }

  count(key: string, n = 1): void {
    this.client?.increment(key, n)
  }

  unique(key: string, labels: readonly Label[]): void {
    this.client?.set(key, formatLabels(labels))
  }

  observe(key: string, value: number): void {
    this.client?.gauge(key, value)
  }

  close(): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    const client = this.client
    this.client = null
    if (!client) return Promise.resolve()
    return new Promise((resolve) => client.close(() => resolve()))
  }
}

/** Several exporters fed the same calls (StatsD and Prometheus). */
export class FanoutMetrics implements Metrics {
  constructor(readonly exporters: readonly Metrics[]) {}
  timer(key: string, ms: number, labels?: readonly Label[]): void {
    for (const m of this.exporters) m.timer(key, ms, labels)
  }
  count(key: string, n = 1): void {
    for (const m of this.exporters) m.count(key, n)
  }
  unique(key: string, labels: readonly Label[]): void {
    for (const m of this.exporters) m.unique(key, labels)
  }
  observe(key: string, value: number, labels?: readonly Label[]): void {
    for (const m of this.exporters) m.observe(key, value, labels)
  }
  async close(): Promise<void> {
    await Promise.all(this.exporters.map((m) => m.close()))
  }
}

/** Metrics recorded in memory (tests, and a way to see what would be sent). */
export class RecordingMetrics implements Metrics {
  readonly lines: string[] = []
  timer(key: string, ms: number, labels?: readonly Label[]): void {
    this.lines.push(`${labels && labels.length ? `${key}.${formatLabels(labels)}` : key}:${ms}|ms`)
  }
  count(key: string, n = 1): void {
    this.lines.push(`${key}:${n}|c`)
  }
  unique(key: string, labels: readonly Label[]): void {
    this.lines.push(`${key}:${formatLabels(labels)}|s`)
  }
  observe(key: string, value: number): void {
    this.lines.push(`${key}:${value}|g`)
  }
  async close(): Promise<void> {}
}

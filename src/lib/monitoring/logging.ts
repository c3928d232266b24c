/**
 * The runtime's loggers (pino), configured by the ini's logging sections (logging-config.ts).
 *
 * Every logger writes mozlog lines, the shape of upstream's
 * kinto.core.JsonLogFormatter:
 *   {"Severity":6,"Timestamp":<ns>,"Type":"request.summary","Logger":"kinto","Hostname":…,
 *    "EnvVersion":"2.0","Pid":…,"Fields":{"agent":…,"path":…,"rid":…,…}}
 * Handlers with a JSON formatter write them as they are; the others render them as readable lines
 * (coloured on a terminal unless NO_COLOR is set) or with the handler's Python `format`.
 *
 * Loggers by name, as upstream names them: `request.summary` (one line per request),
 * `subrequest.summary` (one per batch sub-request), `kinto` (everything else the runtime says).
 * Fields pass through redact.ts: only known fields, secrets masked.
 */
import cluster from 'node:cluster'
import os from 'node:os'

import {Chalk, type ChalkInstance} from 'chalk'
import pino, {type DestinationStream, type Logger as PinoLogger, type StreamEntry} from 'pino'

import type {IniDocument} from '../config/ini.js'
import {asString, type Settings} from '../config/settings.js'
import {type FormatterSpec, type HandlerSpec, type LoggingPlan, type PyLevel, type TargetSpec, levelName, loggingPlan, resolveLogger} from './logging-config.js'
import {PeriodText, pad} from '../time-text.js'
import {LogFile} from './log-file.js'
import {logFields} from './redact.js'

export const RUNTIME_LOGGER = 'kinto'
export const SUMMARY_LOGGER = 'request.summary'
export const SUBREQUEST_LOGGER = 'subrequest.summary'

/** Something lines can be written to (a stream, or a test's collector). */
export interface LineSink {
  write(line: string): unknown
  /** Whether it is a terminal (colours). */
  isTTY?: boolean
}

export interface LoggingOptions {
  /** `Logger` of JSON lines (upstream: project_name). */
  projectName?: string
  /** Where `sys.stdout` / `sys.stderr` handlers write (default: the process's, written synchronously). */
  stdout?: LineSink
  stderr?: LineSink
  /** NO_COLOR / FORCE_COLOR / TERM (default: process.env). */
  env?: NodeJS.ProcessEnv
}

/**
 * A target's request summaries (the lines of request.summary and subrequest.summary), written to
 * it together: once PIPE_BUF bytes wait, or SUMMARY_LINGER_MS after the first of them, whichever
 * comes first. Under load that is one write(2) for some fifteen requests instead of one per
 * request (a tenth of a GET's CPU) or one per event-loop turn (a few requests). Any other line
 * written to the target first writes what is pending, so lines keep their order and warnings and
 * errors are written at once. What is pending is written on process exit too (an uncaught
 * exception, process.exit, the end of a graceful stop); only a process killed outright (SIGKILL,
 * the OOM killer) loses the summaries of its last SUMMARY_LINGER_MS.
 *
 * One write holds whole lines and at most PIPE_BUF bytes (unless a line alone is longer): a pipe
 * takes such a write in one piece, so the workers of `kinto start --workers` sharing a stderr
 * pipe never cut into each other's lines, as when each line was a write of its own.
 */
class SummaryBatch implements LineSink {
  readonly isTTY?: boolean
  private pending = ''
  private pendingBytes = 0

  constructor(private readonly sink: LineSink) {
    this.isTTY = sink.isTTY
  }

  write(line: string): unknown {
    if (this.pending !== '') this.flush()
    return this.sink.write(line)
  }

  /** Queues a line: written with the others, SUMMARY_LINGER_MS from the first at the latest. */
  defer(line: string): void {
    const bytes = Buffer.byteLength(line)
    if (this.pending !== '' && this.pendingBytes + bytes > PIPE_BUF) this.flush()
    if (this.pending === '') scheduleFlush(this)
    this.pending += line
    this.pendingBytes += bytes
  }

  flush(): void {
    const lines = this.pending
    if (lines === '') return
    this.pending = ''
    this.pendingBytes = 0
    this.sink.write(lines)
  }
}

/** Linux's PIPE_BUF: the largest write a pipe never interleaves with another writer's. */
const PIPE_BUF = 4096
/** How long a summary line may wait for others before it is written, in ms. */
export const SUMMARY_LINGER_MS = 10
const unflushed = new Set<SummaryBatch>()
let flushTimer: NodeJS.Timeout | undefined
let exitHooked = false

function scheduleFlush(batch: SummaryBatch): void {
  // Unref'd: waiting lines never keep a process alive (the exit hook writes them).
  flushTimer ??= setTimeout(flushLogLines, SUMMARY_LINGER_MS).unref()
  unflushed.add(batch)
  if (!exitHooked) {
    process.on('exit', flushLogLines)
    exitHooked = true
  }
}

/** The loggers whose lines wait to be written together (SummaryBatch): the per-request summaries. */
function summaryLogger(name: string): boolean {
  return name === SUMMARY_LOGGER || name === SUBREQUEST_LOGGER
}

/** How a logger's lines reach a target: a summary logger's wait to be written together. */
function linesTo(target: SummaryBatch, name: string): (line: string) => unknown {
  return summaryLogger(name) ? (line) => target.defer(line) : (line) => target.write(line)
}

/** Writes every summary line still waiting (tests; the timer and exit do it themselves). */
export function flushLogLines(): void {
  clearTimeout(flushTimer)
  flushTimer = undefined
  for (const batch of unflushed) batch.flush()
  unflushed.clear()
}

/** Mozlog severities (syslog) from pino levels. */
const SEVERITY: Record<number, number> = {60: 2, 50: 3, 40: 4, 30: 6, 20: 7, 10: 7}
const SEVERITY_NAME: Record<number, string> = {2: 'CRITICAL', 3: 'ERROR', 4: 'WARNING', 6: 'INFO', 7: 'DEBUG'}
const SEVERITY_TO_PY: Record<number, number> = {2: 50, 3: 40, 4: 30, 6: 20, 7: 10}

export function pinoLevel(level: PyLevel): pino.Level {
  if (level <= 0) return 'trace'
  if (level <= 10) return 'debug'
  if (level <= 20) return 'info'
  if (level <= 30) return 'warn'
  if (level <= 40) return 'error'
  return 'fatal'
}

/** Nanoseconds since the epoch, as an integer literal (beyond 2^53, so built as text). */
function nanoTimestamp(): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000)
  return `${micros}000`
}

const LOGGING = Symbol.for('kinto-ops.logging')

/** The KintoLogging a logger was made by, if any (createApp uses it to route summaries). */
export function loggingOf(logger: unknown): KintoLogging | undefined {
  return (logger as {[LOGGING]?: KintoLogging} | null | undefined)?.[LOGGING]
}

/** A mozlog record as written (for rendering readable lines). */
interface MozlogRecord {
  Timestamp: number
  Severity: number
  Type: string
  Pid: number
  Fields?: Record<string, unknown>
}

/** Whether a logger or handler at `threshold` lets records of `level` through. */
function passes(threshold: pino.Level, level: pino.Level): boolean {
  return pino.levels.values[threshold] <= pino.levels.values[level]
}

/** A log record as a listener gets it: the pino level, its logger's name, its fields (redacted). */
export type RecordListener = (level: number, logger: string, fields: Record<string, unknown>) => void

export class KintoLogging {
  readonly warnings: string[]
  private readonly recordListeners: RecordListener[] = []
  private readonly loggers = new Map<string, PinoLogger>()
  private readonly targets = new Map<string, SummaryBatch | null>()
  private readonly files: LogFile[] = []
  private readonly projectName: string
  private readonly env: NodeJS.ProcessEnv
  private readonly hostname = os.hostname()

  constructor(
    readonly plan: LoggingPlan,
    private readonly options: LoggingOptions = {},
  ) {
    this.projectName = options.projectName ?? 'kinto'
    this.env = options.env ?? process.env
    this.warnings = []
    for (const warning of plan.warnings) this.warn(warning)
    const kinto = this.logger(RUNTIME_LOGGER)
    for (const warning of this.warnings) kinto.warn(warning)
  }

  /** Records (and logs, once the runtime logger exists) a configuration problem. */
  private warn(message: string): void {
    this.warnings.push(message)
    this.loggers.get(RUNTIME_LOGGER)?.warn(message)
  }

  /** The runtime's main logger (`kinto`), the one to give createApp and startServer. */
  get root(): PinoLogger {
    return this.logger(RUNTIME_LOGGER)
  }

  /**
   * Calls listener with every record of every logger at or above `minLevel` (pino), whatever the
   * handlers keep (error reporting: Sentry's breadcrumbs and events).
   */
  onRecord(listener: RecordListener): void {
    this.recordListeners.push(listener)
  }

  /**
   * Reopens every log file at once (SIGHUP: logrotate's `postrotate kill -HUP`); without it a
   * moved file is reopened at the first line written after a check (log-file.ts).
   */
  reopenFiles(): void {
    for (const file of this.files) file.reopen()
  }

  /** The logger of a dotted name, levels and handlers as the configuration says. */
  logger(name: string): PinoLogger {
    let logger = this.loggers.get(name)
    if (!logger) {
      logger = this.build(name)
      Object.defineProperty(logger, LOGGING, {value: this, enumerable: false})
      this.loggers.set(name, logger)
    }
    return logger
  }

  private build(name: string): PinoLogger {
    const {level, handlers} = resolveLogger(this.plan, name)
    const streams: StreamEntry[] = []
    for (const handler of handlers) {
      const sink = this.sinkFor(handler, name)
      if (sink) streams.push({level: pinoLevel(handler.level), stream: sink as DestinationStream})
    }
    const base = {Type: name, Logger: this.projectName, Hostname: this.hostname, EnvVersion: '2.0', Pid: process.pid}
    const listeners = this.recordListeners
    return pino(
      {
        level: streams.length === 0 ? 'silent' : pinoLevel(level),
        base,
        // Keys nobody uses: pino must not add a message or error key of its own at the top.
        messageKey: '__kinto_msg',
        errorKey: '__kinto_err',
        timestamp: () => `,"Timestamp":${nanoTimestamp()}`,
        formatters: {
          level: (_label, number) => ({Severity: SEVERITY[number] ?? 7}),
          // Bindings of child loggers (Fastify's reqId) are not mozlog fields.
          bindings: (bindings) => ('EnvVersion' in bindings ? bindings : {}),
          log: (obj) => ({Fields: logFields(obj)}),
        },
        hooks: {
          logMethod(args, method, level) {
            const [first, second] = args as unknown[]
            let fields: Record<string, unknown>
            let msg: unknown = second
            if (typeof first === 'string') {
              fields = {}
              msg = first
            } else if (first instanceof Error) {
              fields = {err: first}
              if (typeof msg !== 'string') msg = first.message
            } else {
              fields = first && typeof first === 'object' ? {...(first as Record<string, unknown>)} : {}
            }
            if (typeof msg === 'string' && msg !== '') fields.msg = msg
            if (listeners.length > 0) {
              const kept = logFields(fields)
              for (const listener of listeners) listener(level, name, kept)
            }
            return method.call(this, fields as never)
          },
        },
      },
      // One handler (the usual case): its stream directly, at the handler's level folded into the
      // logger's (multistream would re-check the level and copy per line).
      streams.length === 0 ? {write() {}} : streams.length === 1 && passes(streams[0].level ?? 'info', pinoLevel(level)) ? streams[0].stream : pino.multistream(streams),
    )
  }

  private target(spec: TargetSpec): SummaryBatch | null {
    const key = spec.kind === 'file' ? `file:${spec.path}` : spec.kind
    if (this.targets.has(key)) return this.targets.get(key)!
    let sink: LineSink | null
    switch (spec.kind) {
      case 'stdout':
        sink = this.options.stdout ?? Object.assign(pino.destination({fd: 1, sync: true}), {isTTY: process.stdout.isTTY === true})
        break
      case 'stderr':
        sink = this.options.stderr ?? Object.assign(pino.destination({fd: 2, sync: true}), {isTTY: process.stderr.isTTY === true})
        break
      case 'file':
        try {
          const file = new LogFile(spec.path, {
            maxBytes: spec.rotate?.maxBytes,
            backupCount: spec.rotate?.backupCount,
            timed: spec.timed,
            // With --workers each worker opens the file: one truncating it would cut the others' lines.
            truncate: spec.truncate === true && !cluster.isWorker,
            shared: cluster.isWorker,
            onError: (message) => this.target({kind: 'stderr'})?.write(`${message}\n`),
          })
          this.files.push(file)
          sink = file
        } catch (err) {
          this.warn(`Cannot open the log file ${spec.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); writing to stderr instead.`)
          const stderr = this.target({kind: 'stderr'})
          this.targets.set(key, stderr)
          return stderr
        }
        break
      default:
        sink = null
    }
    const buffered = sink ? new SummaryBatch(sink) : null
    this.targets.set(key, buffered)
    return buffered
  }

  /** How a handler that does not write JSON renders a record (null: a JSON handler). */
  private rendererFor(handler: HandlerSpec, target: LineSink): ((record: MozlogRecord) => string) | null {
    const formatter = handler.formatter
    if (formatter.kind === 'json') return null
    if (formatter.kind === 'format') return (r) => renderPythonFormat(r, formatter)
    const color = formatter.kind === 'text' && formatter.color && target.isTTY === true && !this.env.NO_COLOR && this.env.TERM !== 'dumb'
    return (r) => renderReadable(r, color)
  }

  /**
   * A writer of INFO records for one logger that builds the record itself instead of going through
   * pino, when every handler of that logger renders readable lines (the default, and `kinto init`'s
   * template): pino would serialise the record to JSON only for the handler to parse it back. The
   * same record, the same lines (a test compares both paths). A summary logger's lines wait for
   * their batch, as on the pino path (linesTo). Null when a handler writes JSON or the logger is
   * not enabled at INFO: use the pino logger then.
   */
  infoWriter(name: string): ((fields: Record<string, unknown>) => void) | null {
    const {level, handlers} = resolveLogger(this.plan, name)
    if (handlers.length === 0 || !passes(pinoLevel(level), 'info')) return null
    const outputs: Array<{out: (line: string) => unknown; render: (record: MozlogRecord) => string}> = []
    for (const handler of handlers) {
      const target = this.target(handler.target)
      if (!target) continue
      const render = this.rendererFor(handler, target)
      if (!render) return null
      if (passes(pinoLevel(handler.level), 'info')) outputs.push({out: linesTo(target, name), render})
    }
    const pid = process.pid
    return (fields) => {
      const record: MozlogRecord = {Timestamp: Number(nanoTimestamp()), Severity: 6, Type: name, Pid: pid, Fields: logFields(fields)}
      for (const {out, render} of outputs) out(render(record) + '\n')
    }
  }

  /** Where a handler's pino lines of logger `name` go (linesTo: summaries wait for their batch). */
  private sinkFor(handler: HandlerSpec, name: string): LineSink | null {
    const target = this.target(handler.target)
    if (!target) return null
    const out = linesTo(target, name)
    const render = this.rendererFor(handler, target)
    if (!render) return summaryLogger(name) ? {write: out} : target
    return {
      write(line: string) {
        let record: MozlogRecord
        try {
          record = JSON.parse(line) as MozlogRecord
        } catch {
          return out(line)
        }
        return out(render(record) + '\n')
      },
    }
  }
}

/** Builds the runtime's logging from a loaded ini (its logging sections) and settings. */
export function createLogging(config: {ini: IniDocument; settings: Settings}, options: LoggingOptions = {}): KintoLogging {
  return new KintoLogging(loggingPlan(config.ini), {projectName: asString(config.settings, 'project_name') ?? 'kinto', ...options})
}

// -------------------------------------------------------------------------------------------------
// Readable lines

// Lines come many per second: the date and time up to the second are formatted once per second.
const localSecond = new PeriodText(1000, (start) => {
  const d = new Date(start)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
})

function localTime(d: Date): string {
  const ms = d.getTime()
  const second = localSecond.at(ms)
  return `${second}.${pad(ms - localSecond.start, 3)}`
}

function recordDate(record: MozlogRecord): Date {
  return new Date(Math.floor(Number(record.Timestamp) / 1e6))
}

function showValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
  return JSON.stringify(value)
}

const SUMMARY_SHOWN = new Set(['method', 'path', 'code', 't', 'querystring', 'msg', 'time'])

function keyValues(fields: Record<string, unknown>, skip: Set<string>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(fields)) {
    if (skip.has(k) || v === undefined || v === null || k === 'traceback') continue
    if (k === 'errno' && v === 0) continue
    parts.push(`${k}=${showValue(v)}`)
  }
  return parts.join(' ')
}

/**
 * The styles a readable line uses, made once: a Chalk instance per line (and chalk's style getters)
 * cost more than the rest of the line, and a line is written per request.
 */
type Painter = Record<'red' | 'yellow' | 'green' | 'gray' | 'bold' | 'cyan', (text: string) => string>
function painter(c: ChalkInstance): Painter {
  const {red, yellow, green, gray, bold, cyan} = c
  return {red, yellow, green, gray, bold, cyan}
}
const PAINTERS = {plain: painter(new Chalk({level: 0})), color: painter(new Chalk({level: 1}))}

/** `2025-01-31 12:00:00.123 INFO  [request.summary] GET /v1/buckets 200 3ms rid=… uid=…` */
export function renderReadable(record: MozlogRecord, color = false): string {
  const c = color ? PAINTERS.color : PAINTERS.plain
  const fields = record.Fields ?? {}
  const level = SEVERITY_NAME[record.Severity] ?? 'DEBUG'
  const paint = record.Severity <= 3 ? c.red : record.Severity === 4 ? c.yellow : record.Severity === 6 ? c.green : c.gray
  let text: string
  if (record.Type === SUMMARY_LOGGER || record.Type === SUBREQUEST_LOGGER) {
    const qs = fields.querystring && typeof fields.querystring === 'object' ? new URLSearchParams(fields.querystring as Record<string, string>).toString() : ''
    const head = `${fields.method ?? ''} ${fields.path ?? ''}${qs ? `?${qs}` : ''}`
    const tail = fields.code !== undefined ? ` ${fields.code} ${fields.t ?? '?'}ms` : ''
    text = [c.bold(head) + tail, keyValues(fields, SUMMARY_SHOWN)].filter(Boolean).join(' ')
  } else {
    text = [typeof fields.msg === 'string' ? fields.msg : '', keyValues(fields, new Set(['msg']))].filter(Boolean).join(' ')
  }
  let line = `${c.gray(localTime(recordDate(record)))} ${paint(level.padEnd(7))} ${c.cyan(`[${record.Type}]`)} ${text}`
  if (typeof fields.traceback === 'string') line += `\n${fields.traceback}`
  return line
}

// -------------------------------------------------------------------------------------------------
// Python `format =` lines

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']

/** The strftime directives log formats use. */
function strftime(d: Date, fmt: string): string {
  return fmt.replace(/%([YmdHMSyjbBaApIzZ%])/g, (_, k: string) => {
    switch (k) {
      case 'Y': return String(d.getFullYear())
      case 'y': return pad(d.getFullYear() % 100)
      case 'm': return pad(d.getMonth() + 1)
      case 'd': return pad(d.getDate())
      case 'H': return pad(d.getHours())
      case 'I': return pad(((d.getHours() + 11) % 12) + 1)
      case 'M': return pad(d.getMinutes())
      case 'S': return pad(d.getSeconds())
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM'
      case 'b': return MONTHS[d.getMonth()]
      case 'B': return d.toLocaleString('en', {month: 'long'})
      case 'a': return DAYS[d.getDay()]
      case 'A': return d.toLocaleString('en', {weekday: 'long'})
      case 'j': {
        const start = new Date(d.getFullYear(), 0, 1)
        return pad(Math.floor((d.getTime() - start.getTime()) / 86_400_000) + 1, 3)
      }
      case 'z': {
        const off = -d.getTimezoneOffset()
        return `${off >= 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`
      }
      case 'Z': return Intl.DateTimeFormat().resolvedOptions().timeZone
      default: return '%'
    }
  })
}

/** A line as Python's logging.Formatter(format, datefmt) writes it; extra fields follow the message. */
export function renderPythonFormat(record: MozlogRecord, formatter: Extract<FormatterSpec, {kind: 'format'}>): string {
  const fields = record.Fields ?? {}
  const date = recordDate(record)
  const levelno = SEVERITY_TO_PY[record.Severity] ?? 10
  const message = [typeof fields.msg === 'string' ? fields.msg : '', keyValues(fields, new Set(['msg', 'rid']))].filter(Boolean).join(' ')
  const attrs: Record<string, unknown> = {
    ...fields,
    name: record.Type,
    levelname: levelName(levelno),
    levelno,
    message,
    msg: message,
    process: record.Pid,
    created: date.getTime() / 1000,
    msecs: date.getMilliseconds(),
    asctime: formatter.datefmt ? strftime(date, formatter.datefmt) : `${strftime(date, '%Y-%m-%d %H:%M:%S')},${pad(date.getMilliseconds(), 3)}`,
  }
  return formatter.format.replace(/%(?:\((\w+)\)([-#0 +]*)(\d+)?(?:\.(\d+))?([sdifr])|%)/g, (all, key?: string, flags = '', width?: string, precision?: string, type?: string) => {
    if (all === '%%') return '%'
    const raw = key !== undefined && key in attrs ? attrs[key] : '-'
    let text: string
    if (type === 'd' || type === 'i') text = String(Math.trunc(Number(raw)))
    else if (type === 'f') text = Number(raw).toFixed(precision ? Number(precision) : 6)
    else {
      text = typeof raw === 'string' ? raw : JSON.stringify(raw)
      if (precision !== undefined) text = text.slice(0, Number(precision))
    }
    if (width !== undefined) {
      const w = Number(width)
      if (flags.includes('-')) text = text.padEnd(w)
      else text = text.padStart(w, flags.includes('0') && type !== 's' ? '0' : ' ')
    }
    return text
  })
}

/**
 * The logging configuration of a Kinto ini: the `[loggers]`, `[handlers]` and `[formatters]`
 * sections Python's logging.config.fileConfig reads, mapped to what we can do:
 *
 * - loggers: `[logger_root]` and `[logger_<key>]` (`qualname`, `level`, `handlers`, `propagate`);
 *   a record goes to its logger's handlers, then up to its ancestors' while `propagate` is not 0.
 * - handlers: StreamHandler (and kinto.core.StreamHandlerWithRequestID) on `sys.stdout` or
 *   `sys.stderr` (the default); FileHandler, WatchedFileHandler, RotatingFileHandler and
 *   TimedRotatingFileHandler with their parameters from `args` and `kwargs` (Python literals; the
 *   files themselves: log-file.ts); NullHandler; others (Sentry, syslog…) are skipped with a
 *   warning. Each has its `level`.
 * - formatters: upstream's JSON formatter classes (`kinto.core.JsonLogFormatter`, the older
 *   `kinto.core.logs.JsonLogFormatter`, mozilla-cloud-services-logger's and dockerflow's) give
 *   mozlog JSON lines; colour formatters and unknown classes give our readable lines (coloured on
 *   a terminal); a `format =` without a class is rendered as Python would (`%(levelname)s`…).
 *
 * Without a `[loggers]` section: INFO and above, readable lines on stderr (as upstream's
 * generated ini does).
 */
import path from 'node:path'

import type {IniDocument} from '../config/ini.js'
import {PYTHON_LEVELS} from '../config/settings.js'
import {type TimedRollover, validWhen} from './log-file.js'

/** Python's level numbers: DEBUG 10, INFO 20, WARNING 30, ERROR 40, CRITICAL 50; 0 = NOTSET. */
export type PyLevel = number

export type FormatterSpec =
  | {kind: 'json'}
  | {kind: 'text'; color: boolean}
  | {kind: 'format'; format: string; datefmt?: string}

/**
 * A file handler's file. Every file class is watched (reopened when logrotate moves it, and on
 * SIGHUP); `rotate` only for a RotatingFileHandler that rolls over (maxBytes and backupCount > 0);
 * `timed` for a TimedRotatingFileHandler; `truncate` for mode 'w'.
 */
export interface FileTarget {
  kind: 'file'
  path: string
  rotate?: {maxBytes: number; backupCount: number}
  /** TimedRotatingFileHandler (log-file.ts timedSchedule). */
  timed?: TimedRollover
  truncate?: boolean
}

export type TargetSpec = {kind: 'stdout'} | {kind: 'stderr'} | FileTarget | {kind: 'null'}

export interface HandlerSpec {
  name: string
  target: TargetSpec
  level: PyLevel
  formatter: FormatterSpec
}

export interface LoggerSpec {
  /** Dotted logger name; '' for the root logger. */
  qualname: string
  level: PyLevel
  handlers: HandlerSpec[]
  propagate: boolean
}

export interface LoggingPlan {
  /** By qualname; always has the root logger (''). */
  loggers: Map<string, LoggerSpec>
  /** Things in the configuration we could not follow (one sentence each). */
  warnings: string[]
}

export const LEVELS: Readonly<Record<string, PyLevel>> = PYTHON_LEVELS

/** Formatter classes whose output is a mozlog JSON line. */
export const JSON_FORMATTER_CLASSES = [
  'kinto.core.JsonLogFormatter',
  'kinto.core.logs.JsonLogFormatter',
  'kinto.logs.JsonLogFormatter',
  'mozilla_cloud_services_logger.formatters.JsonLogFormatter',
  'dockerflow.logging.JsonLogFormatter',
  'dockerflow.logging.MozlogFormatter',
]

const COLOR_FORMATTER_CLASSES = ['logging_color_formatter.ColorFormatter', 'kinto.core.logs.ColorFormatter']
const PLAIN_FORMATTER_CLASSES = ['logging.Formatter', 'Formatter', '']

const STREAM_HANDLERS = ['StreamHandler', 'logging.StreamHandler', 'kinto.core.StreamHandlerWithRequestID', 'kinto.core.logs.StreamHandlerWithRequestID']
/** File handler classes (without their `logging.` / `handlers.` prefix) and their parameters, in Python's order. */
const FILE_HANDLER_PARAMS: Readonly<Record<string, readonly string[]>> = {
  FileHandler: ['filename', 'mode', 'encoding', 'delay', 'errors'],
  WatchedFileHandler: ['filename', 'mode', 'encoding', 'delay', 'errors'],
  RotatingFileHandler: ['filename', 'mode', 'maxBytes', 'backupCount', 'encoding', 'delay', 'errors'],
  TimedRotatingFileHandler: ['filename', 'when', 'interval', 'backupCount', 'encoding', 'delay', 'utc', 'atTime', 'errors'],
}
const FILE_HANDLERS = Object.keys(FILE_HANDLER_PARAMS).flatMap((c) => (c === 'FileHandler' ? [c, `logging.${c}`] : [`handlers.${c}`, `logging.handlers.${c}`]))
const NULL_HANDLERS = ['NullHandler', 'logging.NullHandler']

/** What applies without any logging configuration. */
export function defaultPlan(warnings: string[] = []): LoggingPlan {
  const console: HandlerSpec = {name: 'console', target: {kind: 'stderr'}, level: 0, formatter: {kind: 'text', color: true}}
  return {loggers: new Map([['', {qualname: '', level: LEVELS.INFO, handlers: [console], propagate: false}]]), warnings}
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

export function parseLevel(value: string | undefined, where: string, warnings: string[], fallback: PyLevel): PyLevel {
  if (value === undefined || value.trim() === '') return fallback
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  const level = LEVELS[text.toUpperCase()]
  if (level !== undefined) return level
  warnings.push(`${where}: level ${JSON.stringify(text)} is not a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL); using ${levelName(fallback)}.`)
  return fallback
}

export function levelName(level: PyLevel): string {
  if (level <= 0) return 'NOTSET'
  if (level <= 10) return 'DEBUG'
  if (level <= 20) return 'INFO'
  if (level <= 30) return 'WARNING'
  if (level <= 40) return 'ERROR'
  return 'CRITICAL'
}

/** The first argument of `args = (…)` when it is a string literal or sys.stdout/sys.stderr. */
function firstArg(args: string): string | null {
  const m = /^\(\s*(?:(sys\.std(?:out|err))|'([^']*)'|"([^"]*)")\s*[,)]/.exec(args.trim())
  if (!m) return null
  return m[1] ?? m[2] ?? m[3] ?? null
}

/** A Python literal as handler `args` / `kwargs` hold them: None is null, `sys.stdout` a name. */
export type PyValue = string | number | boolean | null | {name: string}

/**
 * The values of a Python tuple literal (`args = ('kinto.log', 'a', 10*1024*1024, 3)`) or the
 * entries of a dict literal (`kwargs = {'maxBytes': 1024}`): strings, numbers (and products of
 * them, as configs write sizes), None, True, False and dotted names. Python evaluates them; we
 * read these forms and say which text we could not (null).
 */
export function parsePyLiteral(text: string): {values: PyValue[]; keys: string[] | null} | null {
  const src = text.trim()
  let i = 0
  const space = () => {
    while (i < src.length && /\s/.test(src[i])) i++
  }
  const value = (): PyValue | undefined => {
    space()
    let raw = false
    if ((src[i] === 'r' || src[i] === 'R') && (src[i + 1] === "'" || src[i + 1] === '"')) {
      raw = true
      i++
    }
    const quote = src[i]
    if (quote === "'" || quote === '"') {
      let out = ''
      for (i++; i < src.length && src[i] !== quote; i++) {
        if (src[i] === '\\' && !raw) {
          const e = src[++i]
          out += e === 'n' ? '\n' : e === 't' ? '\t' : e
        } else out += src[i]
      }
      if (src[i] !== quote) return undefined
      i++
      return out
    }
    const m = /^[A-Za-z_][\w.]*|^[-+]?\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?(?:\s*\*\s*[-+]?\d[\d_]*(?:\.\d*)?)*/.exec(src.slice(i))
    if (!m) return undefined
    i += m[0].length
    if (m[0] === 'None') return null
    if (m[0] === 'True') return true
    if (m[0] === 'False') return false
    if (/^[A-Za-z_]/.test(m[0])) return {name: m[0]}
    return m[0].split('*').reduce((product, n) => product * Number(n.trim().replaceAll('_', '')), 1)
  }
  const open = src[0]
  const close = open === '(' ? ')' : open === '{' ? '}' : ''
  if (!close) return null
  i = 1
  const values: PyValue[] = []
  const keys: string[] = []
  for (;;) {
    space()
    if (src[i] === close) {
      i++
      break
    }
    if (close === '}') {
      const key = value()
      space()
      if (typeof key !== 'string' || src[i] !== ':') return null
      i++
      keys.push(key)
    }
    const v = value()
    if (v === undefined) return null
    values.push(v)
    space()
    if (src[i] === ',') i++
    else if (src[i] !== close) return null
  }
  space()
  if (i !== src.length) return null
  return {values, keys: close === '}' ? keys : null}
}

/** A file handler's parameters by name, from `args` (positional) and `kwargs`, as Python calls the class. */
export function fileHandlerParams(cls: string, args: string, kwargs: string | undefined): Record<string, PyValue> | string {
  const names = FILE_HANDLER_PARAMS[cls.replace(/^(?:logging\.)?(?:handlers\.)?/, '')]
  const positional = parsePyLiteral(args.trim() === '' ? '()' : args)
  if (!names || !positional || positional.keys) return `args = ${args.trim()} is not a tuple of literals kinto-ops can read`
  if (positional.values.length > names.length) return `args = ${args.trim()} has more values than ${cls} takes`
  const params: Record<string, PyValue> = {}
  positional.values.forEach((v, n) => (params[names[n]] = v))
  if (kwargs !== undefined && kwargs.trim() !== '') {
    const named = parsePyLiteral(kwargs)
    if (!named?.keys) return `kwargs = ${kwargs.trim()} is not a dict of literals kinto-ops can read`
    for (const [n, key] of named.keys.entries()) {
      if (!names.includes(key)) return `kwargs: ${cls} has no parameter ${key}`
      params[key] = named.values[n]
    }
  }
  return params
}

/** The file a file handler writes and how (see FileTarget); null (with a warning) when it cannot be read. */
function fileTarget(cls: string, args: string, kwargs: string | undefined, where: string, here: string, warnings: string[]): FileTarget | null {
  const params = fileHandlerParams(cls, args, kwargs)
  if (typeof params === 'string') {
    warnings.push(`${where} ${params}; the handler is skipped.`)
    return null
  }
  const file = params.filename
  if (typeof file !== 'string' || file === '') {
    warnings.push(`${where} args = ${args.trim()}: expected the file name as first argument; the handler is skipped.`)
    return null
  }
  const target: FileTarget = {kind: 'file', path: path.resolve(here, file)}
  const short = cls.replace(/^(?:logging\.)?(?:handlers\.)?/, '')
  const mode = params.mode ?? 'a'
  const maxBytes = Number(params.maxBytes ?? 0)
  const backupCount = Number(params.backupCount ?? 0)
  if (short === 'RotatingFileHandler' && maxBytes > 0) {
    // Python: maxBytes > 0 forces mode 'a'; backupCount 0 never rolls over.
    if (backupCount > 0) target.rotate = {maxBytes, backupCount}
    else warnings.push(`${where} maxBytes = ${maxBytes} with backupCount = 0: as in Python, the file is never rolled over (set backupCount).`)
  } else if (mode === 'w') {
    target.truncate = true
  } else if (typeof mode !== 'string' || !mode.startsWith('a')) {
    warnings.push(`${where} mode ${JSON.stringify(mode)}: only 'a' and 'w' are understood; appending.`)
  }
  if (short === 'TimedRotatingFileHandler') {
    const when = typeof params.when === 'string' ? params.when : 'h'
    const interval = Number(params.interval ?? 1)
    if (!validWhen(when) || !Number.isInteger(interval) || interval < 1) {
      warnings.push(`${where} TimedRotatingFileHandler when = ${JSON.stringify(params.when)}, interval = ${JSON.stringify(params.interval)}: expected when S, M, H, D, midnight or W0-W6 and a whole interval >= 1; the file is appended to without rolling over.`)
    } else {
      target.timed = {when, interval, backupCount: Math.max(0, Number(params.backupCount ?? 0)), utc: params.utc === true}
      if (params.atTime !== undefined && params.atTime !== null) warnings.push(`${where} atTime is not supported (a datetime.time in Python); rolling over at midnight.`)
    }
  }
  return target
}

function formatterSpec(ini: IniDocument, name: string | undefined, declared: Set<string>, warnings: string[]): FormatterSpec {
  if (!name) return {kind: 'text', color: false}
  const section = `formatter_${name}`
  if (!declared.has(name) || !ini.hasSection(section)) {
    warnings.push(`[${section}] is used by a handler but not declared in [formatters] keys or missing; readable lines are written instead.`)
    return {kind: 'text', color: false}
  }
  const cls = (ini.get(section, 'class', {raw: true}) ?? '').trim()
  if (JSON_FORMATTER_CLASSES.includes(cls) || /(?:JsonLogFormatter|MozlogFormatter)$/.test(cls)) return {kind: 'json'}
  if (COLOR_FORMATTER_CLASSES.includes(cls)) return {kind: 'text', color: true}
  if (PLAIN_FORMATTER_CLASSES.includes(cls)) {
    const format = ini.get(section, 'format', {raw: true})
    if (format === undefined || format.trim() === '') return {kind: 'text', color: false}
    const datefmt = ini.get(section, 'datefmt', {raw: true})
    return {kind: 'format', format: format.trim(), datefmt: datefmt?.trim() || undefined}
  }
  warnings.push(`[${section}] class = ${cls} is not a formatter kinto-ops knows; readable lines are written instead.`)
  return {kind: 'text', color: false}
}

function handlerSpec(ini: IniDocument, name: string, formatters: Set<string>, warnings: string[]): HandlerSpec | null {
  const section = `handler_${name}`
  if (!ini.hasSection(section)) {
    warnings.push(`Handler '${name}' is listed in [handlers] but has no [${section}] section; it is skipped.`)
    return null
  }
  const cls = (ini.get(section, 'class', {raw: true}) ?? '').trim()
  const args = ini.get(section, 'args') ?? '()'
  const level = parseLevel(ini.get(section, 'level', {raw: true}), `[${section}]`, warnings, 0)
  const formatter = formatterSpec(ini, ini.get(section, 'formatter', {raw: true})?.trim() || undefined, formatters, warnings)
  let target: TargetSpec
  if (STREAM_HANDLERS.includes(cls)) {
    const first = args.trim() === '()' ? 'sys.stderr' : firstArg(args)
    if (first === 'sys.stdout') target = {kind: 'stdout'}
    else if (first === 'sys.stderr') target = {kind: 'stderr'}
    else {
      warnings.push(`[${section}] args = ${args.trim()}: only sys.stdout and sys.stderr are understood; writing to stderr.`)
      target = {kind: 'stderr'}
    }
  } else if (FILE_HANDLERS.includes(cls)) {
    const file = fileTarget(cls, args, ini.get(section, 'kwargs'), `[${section}]`, ini.here, warnings)
    if (!file) return null
    target = file
  } else if (NULL_HANDLERS.includes(cls)) {
    target = {kind: 'null'}
  } else {
    warnings.push(`[${section}] class = ${cls || '(none)'} is not a handler kinto-ops supports (StreamHandler, FileHandler, NullHandler); it is skipped.`)
    return null
  }
  return {name, target, level, formatter}
}

/** Reads the logging sections of an ini (see the top of this file). */
export function loggingPlan(ini: IniDocument): LoggingPlan {
  if (!ini.hasSection('loggers')) return defaultPlan()
  const warnings: string[] = []
  const loggerKeys = list(ini.get('loggers', 'keys', {raw: true}))
  const handlerKeys = new Set(list(ini.hasSection('handlers') ? ini.get('handlers', 'keys', {raw: true}) : ''))
  const formatterKeys = new Set(list(ini.hasSection('formatters') ? ini.get('formatters', 'keys', {raw: true}) : ''))

  const handlers = new Map<string, HandlerSpec | null>()
  const handlerFor = (name: string): HandlerSpec | null => {
    if (!handlers.has(name)) {
      if (!handlerKeys.has(name)) {
        warnings.push(`Handler '${name}' is used by a logger but not listed in [handlers] keys; it is skipped.`)
        handlers.set(name, null)
      } else handlers.set(name, handlerSpec(ini, name, formatterKeys, warnings))
    }
    return handlers.get(name) ?? null
  }

  const loggers = new Map<string, LoggerSpec>()
  for (const key of loggerKeys) {
    const section = `logger_${key}`
    if (!ini.hasSection(section)) {
      warnings.push(`Logger '${key}' is listed in [loggers] but has no [${section}] section; it is skipped.`)
      continue
    }
    const isRoot = key === 'root'
    const qualname = isRoot ? '' : (ini.get(section, 'qualname', {raw: true})?.trim() ?? key)
    const level = parseLevel(ini.get(section, 'level', {raw: true}), `[${section}]`, warnings, isRoot ? LEVELS.WARNING : 0)
    const specs = list(ini.get(section, 'handlers', {raw: true}))
      .map(handlerFor)
      .filter((h): h is HandlerSpec => h !== null)
    const propagate = !isRoot && (ini.get(section, 'propagate', {raw: true})?.trim() ?? '1') !== '0'
    loggers.set(qualname, {qualname, level, handlers: specs, propagate})
  }
  if (!loggers.has('')) {
    warnings.push('[loggers] has no root logger ([logger_root]); INFO and above go to stderr as readable lines.')
    return {loggers: new Map([...defaultPlan().loggers, ...loggers]), warnings}
  }
  return {loggers, warnings}
}

/** The loggers a record of `name` goes through: itself (or its nearest configured ancestor) up to the root. */
function chain(plan: LoggingPlan, name: string): LoggerSpec[] {
  const out: LoggerSpec[] = []
  let current = name
  for (;;) {
    const spec = plan.loggers.get(current)
    if (spec) out.push(spec)
    if (current === '') break
    const dot = current.lastIndexOf('.')
    current = dot < 0 ? '' : current.slice(0, dot)
  }
  return out
}

/** The effective level of a logger and the handlers its records reach (Python's rules). */
export function resolveLogger(plan: LoggingPlan, name: string): {level: PyLevel; handlers: HandlerSpec[]} {
  const loggers = chain(plan, name)
  const level = loggers.find((l) => l.level > 0)?.level ?? 0
  const handlers: HandlerSpec[] = []
  for (const logger of loggers) {
    handlers.push(...logger.handlers)
    if (!logger.propagate) break
  }
  return {level, handlers}
}

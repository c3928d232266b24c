/**
 * The ini's logging sections mapped to our loggers: levels, handlers (stdout/stderr/file), JSON
 * formatter class names (current and older upstream ones), Python `format =` lines, readable
 * lines, and the field allowlist / secret scrubbing every line goes through.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, describe, expect, test} from 'vitest'

import {parseIni} from '../../src/lib/config/ini.js'
import {
  fileHandlerParams,
  flushLogLines,
  KintoLogging,
  RUNTIME_LOGGER,
  SUBREQUEST_LOGGER,
  SUMMARY_LINGER_MS,
  SUMMARY_LOGGER,
  logFields,
  loggingPlan,
  parsePyLiteral,
  renderReadable,
  resolveLogger,
  scrubSecrets,
} from '../../src/lib/monitoring/index.js'
import {tplLogging} from '../helpers/logging-ini.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

/** Upstream's generated ini (kinto.tpl) logging part, with the console formatter chosen (and a `generic` one declared). */
function tplIni(formatter: string, stream: 'sys.stdout' | 'sys.stderr' = 'sys.stderr', extra = ''): string {
  return `[app:main]\nuse = egg:kinto\n\n${tplLogging({formatter, stream, formatters: ['color', 'json', 'generic']})}${extra}`
}

function collector(isTTY = false) {
  const lines: string[] = []
  return {lines, sink: {isTTY, write: (s: string) => void lines.push(...s.split('\n').filter(Boolean))}}
}

describe('loggingPlan', () => {
  test('without [loggers]: INFO and above, readable lines on stderr', () => {
    const plan = loggingPlan(parseIni('[app:main]\nuse = egg:kinto\n'))
    const {level, handlers} = resolveLogger(plan, SUMMARY_LOGGER)
    expect(level).toBe(20)
    expect(handlers).toHaveLength(1)
    expect(handlers[0].target).toEqual({kind: 'stderr'})
    expect(handlers[0].formatter.kind).toBe('text')
    expect(plan.warnings).toEqual([])
  })

  test("upstream's template: root INFO, kinto DEBUG without propagation, handler on stderr", () => {
    const plan = loggingPlan(parseIni(tplIni('color')))
    expect(resolveLogger(plan, SUMMARY_LOGGER).level).toBe(20)
    const kinto = resolveLogger(plan, RUNTIME_LOGGER)
    expect(kinto.level).toBe(10)
    // propagate = 0: the console handler once, not once more through the root logger.
    expect(kinto.handlers.map((h) => h.name)).toEqual(['console'])
    expect(kinto.handlers[0].formatter).toEqual({kind: 'text', color: true})
    expect(resolveLogger(plan, 'kinto.core.storage').level).toBe(10)
    expect(plan.warnings).toEqual([])
  })

  test.each([
    'kinto.core.JsonLogFormatter',
    'kinto.core.logs.JsonLogFormatter',
    'mozilla_cloud_services_logger.formatters.JsonLogFormatter',
    'dockerflow.logging.JsonLogFormatter',
  ])('%s is a JSON formatter', (cls) => {
    const ini = tplIni('json', 'sys.stdout').replace('class = kinto.core.JsonLogFormatter', `class = ${cls}`)
    const {handlers} = resolveLogger(loggingPlan(parseIni(ini)), SUMMARY_LOGGER)
    expect(handlers[0]).toMatchObject({target: {kind: 'stdout'}, formatter: {kind: 'json'}})
  })

  test('a format without class is a Python format; levels by name or number; handler levels', () => {
    const ini = tplIni('generic').replace('[logger_root]\nlevel = INFO', '[logger_root]\nlevel = 30').replace('level = NOTSET', 'level = error')
    const plan = loggingPlan(parseIni(ini))
    const root = resolveLogger(plan, SUMMARY_LOGGER)
    expect(root.level).toBe(30)
    expect(root.handlers[0].level).toBe(40)
    expect(root.handlers[0].formatter).toEqual({kind: 'format', format: '%(asctime)s,%(msecs)03d %(levelname)-5.5s [%(name)s] %(message)s', datefmt: '%H:%M:%S'})
  })

  test('file handlers resolve against the ini folder; unknown handlers and levels are warnings, not failures', () => {
    const ini = `[loggers]
keys = root

[handlers]
keys = file, sentry

[formatters]
keys = json

[logger_root]
level = LOUD
handlers = file, sentry

[handler_file]
class = logging.FileHandler
args = ('%(here)s/logs/kinto.log', 'a')
formatter = json

[handler_sentry]
class = raven.handlers.logging.SentryHandler
args = ()

[formatter_json]
class = kinto.core.JsonLogFormatter
`
    const plan = loggingPlan(parseIni(ini, {here: '/srv/kinto'}))
    const root = resolveLogger(plan, SUMMARY_LOGGER)
    expect(root.handlers.map((h) => h.target)).toEqual([{kind: 'file', path: '/srv/kinto/logs/kinto.log'}])
    expect(root.level).toBe(30) // the root's default when the level is not understood
    expect(plan.warnings).toHaveLength(2)
    expect(plan.warnings[0]).toMatch(/\[logger_root\]: level "LOUD" is not a logging level/)
    expect(plan.warnings[1]).toMatch(/SentryHandler is not a handler kinto-ops supports/)
  })
})

describe('file handler args and kwargs (Python literals)', () => {
  const plan = (cls: string, args: string, kwargs?: string) =>
    loggingPlan(
      parseIni(
        `[loggers]\nkeys = root\n[handlers]\nkeys = f\n[logger_root]\nlevel = INFO\nhandlers = f\n[handler_f]\nclass = ${cls}\nargs = ${args}\n${kwargs ? `kwargs = ${kwargs}\n` : ''}`,
        {here: '/srv/kinto'},
      ),
    )
  const target = (p: ReturnType<typeof plan>) => resolveLogger(p, RUNTIME_LOGGER).handlers[0]?.target

  test('literals: strings (both quotes, raw, escapes), numbers and their products, None/True/False, names', () => {
    expect(parsePyLiteral(`('a.log', "b", r'c\\d', 'e\\'f', 10*1024*1024, 1_000, -2, 1.5, None, True, False, sys.stdout,)`)).toEqual({
      values: ['a.log', 'b', 'c\\d', "e'f", 10485760, 1000, -2, 1.5, null, true, false, {name: 'sys.stdout'}],
      keys: null,
    })
    expect(parsePyLiteral(`{'maxBytes': 1024, "backupCount": 3}`)).toEqual({values: [1024, 3], keys: ['maxBytes', 'backupCount']})
    expect(parsePyLiteral('()')).toEqual({values: [], keys: null})
    for (const bad of ["('a.log'", "os.path.join('a', 'b')", "('a' + 'b',)", "{'a' 1}", "('a',) x"]) expect(parsePyLiteral(bad), bad).toBeNull()
  })

  test('parameters by name, positional then kwargs, as Python calls each class', () => {
    expect(fileHandlerParams('logging.handlers.RotatingFileHandler', "('k.log', 'a', 1024, 3)", undefined)).toEqual({filename: 'k.log', mode: 'a', maxBytes: 1024, backupCount: 3})
    expect(fileHandlerParams('handlers.RotatingFileHandler', "('k.log',)", "{'maxBytes': 10*1024, 'backupCount': 2}")).toEqual({filename: 'k.log', maxBytes: 10240, backupCount: 2})
    expect(fileHandlerParams('logging.handlers.TimedRotatingFileHandler', "('k.log', 'midnight', 1, 7)", undefined)).toEqual({filename: 'k.log', when: 'midnight', interval: 1, backupCount: 7})
    expect(fileHandlerParams('FileHandler', "('k.log', 'a', 1, 2, 3, 4)", undefined)).toMatch(/more values than FileHandler takes/)
    expect(fileHandlerParams('FileHandler', "('k.log',)", "{'maxBytes': 1}")).toMatch(/FileHandler has no parameter maxBytes/)
  })

  test('RotatingFileHandler rolls over only with maxBytes and backupCount; mode w truncates; TimedRotatingFileHandler by its when', () => {
    expect(target(plan('logging.handlers.RotatingFileHandler', "('logs/k.log', 'a', 1048576, 5)"))).toEqual({
      kind: 'file',
      path: '/srv/kinto/logs/k.log',
      rotate: {maxBytes: 1048576, backupCount: 5},
    })
    expect(target(plan('logging.handlers.RotatingFileHandler', "('k.log',)", "{'maxBytes': 2048, 'backupCount': 1}"))).toEqual({kind: 'file', path: '/srv/kinto/k.log', rotate: {maxBytes: 2048, backupCount: 1}})
    const noBackups = plan('logging.handlers.RotatingFileHandler', "('k.log', 'a', 1048576)")
    expect(target(noBackups)).toEqual({kind: 'file', path: '/srv/kinto/k.log'})
    expect(noBackups.warnings.join('\n')).toMatch(/backupCount = 0: as in Python, the file is never rolled over/)
    expect(target(plan('logging.handlers.RotatingFileHandler', "('k.log', 'a', 0, 3)"))).toEqual({kind: 'file', path: '/srv/kinto/k.log'})
    expect(target(plan('logging.handlers.WatchedFileHandler', "('k.log',)"))).toEqual({kind: 'file', path: '/srv/kinto/k.log'})
    expect(target(plan('logging.FileHandler', "('k.log', 'w')"))).toEqual({kind: 'file', path: '/srv/kinto/k.log', truncate: true})
    expect(target(plan('logging.handlers.TimedRotatingFileHandler', "('k.log', 'midnight', 1, 7)"))).toEqual({
      kind: 'file',
      path: '/srv/kinto/k.log',
      timed: {when: 'midnight', interval: 1, backupCount: 7, utc: false},
    })
    expect(target(plan('handlers.TimedRotatingFileHandler', "('k.log',)", "{'when': 'W6', 'utc': True, 'backupCount': 4}"))).toMatchObject({timed: {when: 'W6', interval: 1, backupCount: 4, utc: true}})
    expect(target(plan('handlers.TimedRotatingFileHandler', "('k.log',)"))).toMatchObject({timed: {when: 'h', interval: 1, backupCount: 0, utc: false}})
    const badWhen = plan('logging.handlers.TimedRotatingFileHandler', "('k.log', 'W7')")
    expect(target(badWhen)).toEqual({kind: 'file', path: '/srv/kinto/k.log'})
    expect(badWhen.warnings.join('\n')).toMatch(/expected when S, M, H, D, midnight or W0-W6/)
    const unreadable = plan('logging.FileHandler', "(os.path.join('a', 'b'),)")
    expect(target(unreadable)).toBeUndefined()
    expect(unreadable.warnings.join('\n')).toMatch(/not a tuple of literals kinto-ops can read; the handler is skipped/)
  })
})

describe('KintoLogging', () => {
  test('JSON formatter: mozlog lines with the logger name as Type and the project as Logger', () => {
    const out = collector()
    const logging = new KintoLogging(loggingPlan(parseIni(tplIni('json', 'sys.stdout'))), {projectName: 'myproject', stdout: out.sink})
    logging.logger(SUMMARY_LOGGER).info({path: '/v1/', code: 200, t: 3})
    logging.root.error({err: new Error('boom')}, 'It broke.')
    logging.root.debug('details')
    expect(out.lines).toHaveLength(3)
    const [summary, error, debug] = out.lines.map((l) => JSON.parse(l))
    expect(Object.keys(summary).sort()).toEqual(['EnvVersion', 'Fields', 'Hostname', 'Logger', 'Pid', 'Severity', 'Timestamp', 'Type'])
    expect(summary).toMatchObject({Type: 'request.summary', Logger: 'myproject', EnvVersion: '2.0', Severity: 6, Pid: process.pid, Hostname: os.hostname()})
    expect(summary.Fields).toEqual({path: '/v1/', code: 200, t: 3}) // empty message: no msg
    // Nanoseconds since the epoch.
    expect(Math.abs(summary.Timestamp / 1e6 - Date.now())).toBeLessThan(60_000)
    expect(error.Severity).toBe(3)
    expect(error.Type).toBe('kinto')
    expect(error.Fields).toMatchObject({msg: 'It broke.', error: 'Error: boom'})
    expect(error.Fields.traceback).toContain('logging-config.test.ts')
    expect(debug).toMatchObject({Severity: 7, Fields: {msg: 'details'}})
  })

  test('levels: the root at INFO drops debug summaries; handler levels filter', () => {
    const out = collector()
    const ini = tplIni('json', 'sys.stdout').replace('level = NOTSET', 'level = WARNING')
    const logging = new KintoLogging(loggingPlan(parseIni(ini)), {stdout: out.sink})
    logging.logger(SUMMARY_LOGGER).debug({path: '/'})
    logging.logger(SUMMARY_LOGGER).info({path: '/'})
    logging.root.warn('kept')
    expect(out.lines.map((l) => JSON.parse(l).Fields.msg)).toEqual(['kept'])
  })

  test('colour formatter: readable lines, coloured only on a terminal without NO_COLOR', () => {
    const plain = collector(false)
    new KintoLogging(loggingPlan(parseIni(tplIni('color'))), {stderr: plain.sink, env: {}}).logger(SUMMARY_LOGGER).info({method: 'GET', path: '/v1/buckets', code: 200, t: 4, uid: 'abc', errno: 0, rid: 'r1'})
    flushLogLines()
    expect(plain.lines[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO    \[request\.summary\] GET \/v1\/buckets 200 4ms uid=abc rid=r1$/)

    const tty = collector(true)
    new KintoLogging(loggingPlan(parseIni(tplIni('color'))), {stderr: tty.sink, env: {}}).root.warn('careful')
    expect(tty.lines[0]).toContain('\u001b[')
    const noColor = collector(true)
    new KintoLogging(loggingPlan(parseIni(tplIni('color'))), {stderr: noColor.sink, env: {NO_COLOR: '1'}}).root.warn('careful')
    expect(noColor.lines[0]).not.toContain('\u001b[')
    expect(noColor.lines[0]).toMatch(/WARNING \[kinto\] careful$/)
  })

  test('Python format lines, extra fields after the message', () => {
    const out = collector()
    new KintoLogging(loggingPlan(parseIni(tplIni('generic'))), {stderr: out.sink}).logger(SUMMARY_LOGGER).info({path: '/v1/', code: 200})
    flushLogLines()
    expect(out.lines[0]).toMatch(/^\d\d:\d\d:\d\d,\d{3} INFO  \[request\.summary\] path=\/v1\/ code=200$/)
  })

  test('the direct INFO writer (readable handlers) writes the lines the pino path writes', () => {
    const summary = {agent: 'kinto-http', path: '/v1/buckets/b/collections/c/records/r1', method: 'GET', querystring: {_limit: '10', _sort: '-last_modified'}, code: 200, t: 4, uid: 'basicauth:abc', errno: 0, authn_type: 'basicauth', lang: undefined, time: '2026-01-01T00:00:00.000Z', password: 'secret', msg: ''}
    for (const formatter of ['color', 'generic']) {
      for (const tty of [false, true]) {
        const viaPino = collector(tty)
        const direct = collector(tty)
        new KintoLogging(loggingPlan(parseIni(tplIni(formatter))), {stderr: viaPino.sink, env: {}}).logger(SUMMARY_LOGGER).info(summary)
        const write = new KintoLogging(loggingPlan(parseIni(tplIni(formatter))), {stderr: direct.sink, env: {}}).infoWriter(SUMMARY_LOGGER)
        expect(write).not.toBeNull()
        write!(summary)
        flushLogLines()
        // Equal but for the clock (milliseconds of the timestamp).
        const strip = (l: string) => l.replace(/\d\d:\d\d:\d\d[.,]\d{3}/, 'TIME')
        expect(viaPino.lines).toHaveLength(1)
        expect(direct.lines.map(strip)).toEqual(viaPino.lines.map(strip))
        expect(direct.lines[0]).not.toContain('secret')
      }
    }
    // JSON handlers keep pino's serialisation; a logger off at INFO writes nothing.
    expect(new KintoLogging(loggingPlan(parseIni(tplIni('json', 'sys.stdout'))), {stdout: collector().sink}).infoWriter(SUMMARY_LOGGER)).toBeNull()
    const quiet = tplIni('color').replace(/\[logger_root\]\nlevel = INFO/, '[logger_root]\nlevel = WARNING')
    expect(quiet).toContain('level = WARNING')
    expect(new KintoLogging(loggingPlan(parseIni(quiet)), {stderr: collector().sink}).infoWriter(SUMMARY_LOGGER)).toBeNull()
  })

  test('summaries are written together, SUMMARY_LINGER_MS after the first or at 4096 bytes, before any other line', async () => {
    const out: string[] = []
    const logging = new KintoLogging(loggingPlan(parseIni(tplIni('color'))), {stderr: {write: (s: string) => void out.push(s)}, env: {}})
    const write = logging.infoWriter(SUMMARY_LOGGER)!
    const linger = () => new Promise((resolve) => setTimeout(resolve, SUMMARY_LINGER_MS + 20))
    write({method: 'GET', path: '/v1/a', code: 200, t: 1})
    // Lines wait beyond the turn that wrote them, for the others of the next few milliseconds.
    await new Promise((resolve) => setImmediate(resolve))
    write({method: 'GET', path: '/v1/b', code: 200, t: 1})
    expect(out).toEqual([])
    await linger()
    // One write for both lines.
    expect(out).toHaveLength(1)
    expect(out[0].split('\n').filter(Boolean).map((l) => l.replace(/.*\] /, ''))).toEqual(['GET /v1/a 200 1ms', 'GET /v1/b 200 1ms'])

    // A warning is written at once, after the summaries queued before it.
    out.length = 0
    write({method: 'GET', path: '/v1/c', code: 200, t: 1})
    logging.root.warn('careful')
    expect(out.join('').split('\n').filter(Boolean).map((l) => l.replace(/.*\] /, ''))).toEqual(['GET /v1/c 200 1ms', 'careful'])
    await linger()
    expect(out.join('').split('\n').filter(Boolean)).toHaveLength(2)

    // A write holds whole lines and at most 4096 bytes (PIPE_BUF: a pipe shared by workers never
    // interleaves it): a busy moment writes as soon as 4096 bytes wait, and takes several.
    out.length = 0
    for (let i = 0; i < 60; i++) write({method: 'GET', path: `/v1/${'é'.repeat(40)}/${i}`, code: 200, t: 1})
    expect(out.length).toBeGreaterThan(1)
    await linger()
    for (const chunk of out) {
      expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(4096)
      expect(chunk.endsWith('\n')).toBe(true)
    }
    expect(out.join('').split('\n').filter(Boolean).map((l) => l.split('/').at(-1)?.split(' ')[0])).toEqual(Array.from({length: 60}, (_, i) => String(i)))

    // The same for JSON lines (pino's path) and for the sub-request summaries.
    const json: string[] = []
    const mozlog = new KintoLogging(loggingPlan(parseIni(tplIni('json'))), {stderr: {write: (s: string) => void json.push(s)}, env: {}})
    expect(mozlog.infoWriter(SUMMARY_LOGGER)).toBeNull()
    mozlog.logger(SUMMARY_LOGGER).info({method: 'GET', path: '/v1/d', code: 200})
    mozlog.logger(SUBREQUEST_LOGGER).info({method: 'GET', path: '/v1/e', code: 200}, 'subrequest.summary')
    expect(json).toEqual([])
    mozlog.root.error('broken')
    expect(json.join('').split('\n').filter(Boolean).map((l) => [JSON.parse(l).Type, JSON.parse(l).Fields.path ?? JSON.parse(l).Fields.msg])).toEqual([
      ['request.summary', '/v1/d'],
      ['subrequest.summary', '/v1/e'],
      ['kinto', 'broken'],
    ])
  })

  test('a process that exits in the turn of a request still writes its summary', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-log-'))
    dirs.push(dir)
    const file = path.join(dir, 'kinto.log')
    const ini = tplIni('color').replace('args = (sys.stderr,)', `args = ('${file}',)`).replace('class = kinto.core.StreamHandlerWithRequestID', 'class = FileHandler')
    expect(ini).toContain(`args = ('${file}',)`)
    expect(ini).toContain('class = FileHandler')
    const module = pathToFileURL(path.resolve('src/lib/monitoring/index.ts')).href
    const iniModule = pathToFileURL(path.resolve('src/lib/config/ini.ts')).href
    for (const end of ['process.exit(3)', "throw new Error('boom')"]) {
      const script = `
        const {KintoLogging, loggingPlan, SUMMARY_LOGGER} = await import(${JSON.stringify(module)})
        const {parseIni} = await import(${JSON.stringify(iniModule)})
        const write = new KintoLogging(loggingPlan(parseIni(${JSON.stringify(ini)}))).infoWriter(SUMMARY_LOGGER)
        write({method: 'GET', path: ${JSON.stringify(`/v1/${end.slice(0, 5)}`)}, code: 200, t: 1})
        ${end}`
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {encoding: 'utf8'})
      expect(r.stderr).not.toContain('ERR_')
      expect(r.status, r.stderr).toBe(end.startsWith('process') ? 3 : 1)
    }
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.replace(/.*\] /, ''))
    expect(lines).toEqual(['GET /v1/proce 200 1ms', 'GET /v1/throw 200 1ms'])
  })

  test('a file handler appends JSON lines to its file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-log-'))
    dirs.push(dir)
    const ini = `[loggers]\nkeys = root\n[handlers]\nkeys = file\n[formatters]\nkeys = json\n[logger_root]\nlevel = INFO\nhandlers = file\n[handler_file]\nclass = FileHandler\nargs = ('logs/kinto.log',)\nformatter = json\n[formatter_json]\nclass = kinto.core.JsonLogFormatter\n`
    const logging = new KintoLogging(loggingPlan(parseIni(ini, {here: dir})))
    logging.root.info({url: 'http://127.0.0.1:8888/v1/'}, 'Running')
    const line = JSON.parse(readFileSync(path.join(dir, 'logs', 'kinto.log'), 'utf8').trim())
    expect(line.Fields).toEqual({url: 'http://127.0.0.1:8888/v1/', msg: 'Running'})
  })
})

describe('what a log line may carry', () => {
  test('only allowed fields; headers, bodies and settings are dropped', () => {
    const fields = logFields({
      path: '/v1/accounts/bob',
      headers: {authorization: 'Basic Ym9iOnMzY3JldA=='},
      body: {data: {password: 's3cret'}},
      settings: {userid_hmac_secret: 'hmac-secret'},
      password: 's3cret',
      msg: '',
    })
    expect(fields).toEqual({path: '/v1/accounts/bob'})
  })

  test('secrets inside kept strings are masked', () => {
    expect(scrubSecrets('connect to postgresql://kinto:pa55w0rd@db.internal/kinto failed')).toBe('connect to postgresql://kinto:***@db.internal/kinto failed')
    expect(scrubSecrets('Authorization: Basic Ym9iOnMzY3JldA==')).toBe('Authorization: Basic ***')
    expect(scrubSecrets('postgres://h/db?password=hunter2&sslmode=require')).toBe('postgres://h/db?password=***&sslmode=require')
    expect(scrubSecrets('plain text, nothing to hide')).toBe('plain text, nothing to hide')
    const fields = logFields({querystring: {_token: 'abc', password: 'x', _limit: '2'}, err: new Error('bad url postgresql://u:pw@h/db')})
    expect(fields).toMatchObject({querystring: {_token: 'abc', password: '***', _limit: '2'}, error: 'Error: bad url postgresql://u:***@h/db'})
    expect(String(fields.traceback)).not.toContain(':pw@')
  })

  test('readable rendering of a record with an error shows its traceback', () => {
    const text = renderReadable({Timestamp: Date.now() * 1e6, Severity: 3, Type: 'kinto', Pid: 1, Fields: {msg: 'failed', error: 'Error: x', traceback: 'Error: x\n    at here'}})
    expect(text.split('\n')).toHaveLength(3)
    expect(text).toContain('ERROR   [kinto] failed error="Error: x"')
  })
})

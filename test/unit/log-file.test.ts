/**
 * Log files that survive rotation (log-file.ts), on real files in a temporary folder: a file moved
 * away (logrotate) is reopened at its path, at once on SIGHUP (reopenFiles); a RotatingFileHandler
 * rolls over as Python's does; two processes writing one rotating file lose no line, duplicate
 * none, and roll over once per crossing.
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, describe, expect, test} from 'vitest'

import {parseIni} from '../../src/lib/config/ini.js'
import {flushLogLines, KintoLogging, loggingPlan, SUMMARY_LOGGER} from '../../src/lib/monitoring/index.js'
import {LogFile, timedSchedule} from '../../src/lib/monitoring/log-file.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-logrotate-'))
  dirs.push(dir)
  return dir
}

/** An ini whose root logger writes `%(message)s` lines through one file handler. */
function fileLogging(dir: string, cls: string, args: string): KintoLogging {
  const ini = `[loggers]\nkeys = root\n[handlers]\nkeys = f\n[formatters]\nkeys = plain\n[logger_root]\nlevel = INFO\nhandlers = f\n[handler_f]\nclass = ${cls}\nargs = ${args}\nformatter = plain\n[formatter_plain]\nformat = %(message)s\n`
  const logging = new KintoLogging(loggingPlan(parseIni(ini, {here: dir})))
  expect(logging.warnings).toEqual([])
  return logging
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('a log file moved away (logrotate)', () => {
  test('WatchedFileHandler: the next lines land in a new file at the path, none lost', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const logging = fileLogging(dir, 'logging.handlers.WatchedFileHandler', "('kinto.log',)")
    logging.root.info('line 0')
    renameSync(file, `${file}.1`)
    let n = 0
    const deadline = Date.now() + 10_000
    while (lines(file).length === 0 && Date.now() < deadline) {
      logging.root.info(`line ${++n}`)
      await sleep(20)
    }
    const written = Array.from({length: n + 1}, (_, i) => `line ${i}`)
    expect(lines(file).length).toBeGreaterThan(0)
    expect([...lines(`${file}.1`), ...lines(file)]).toEqual(written)
  })

  test('a plain FileHandler removed (logrotate without delaycompress) is recreated too', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'logs', 'kinto.log')
    const logging = fileLogging(dir, 'FileHandler', "('logs/kinto.log', 'a')")
    logging.root.info('before')
    unlinkSync(file)
    const deadline = Date.now() + 10_000
    let n = 0
    while (lines(file).length === 0 && Date.now() < deadline) {
      logging.root.info(`after ${++n}`)
      await sleep(20)
    }
    expect(lines(file).at(-1)).toBe(`after ${n}`)
  })

  test('reopenFiles (SIGHUP, postrotate kill -HUP): the very next line is in the new file', () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const logging = fileLogging(dir, 'logging.FileHandler', "('kinto.log',)")
    const summaries = logging.infoWriter(SUMMARY_LOGGER)!
    logging.root.info('one')
    summaries({method: 'GET', path: '/v1/', code: 200, t: 1})
    flushLogLines()
    renameSync(file, `${file}.1`)
    logging.reopenFiles()
    logging.root.info('two')
    expect(lines(`${file}.1`)).toEqual(['one', expect.stringContaining('path=/v1/')])
    expect(lines(file)).toEqual(['two'])
  })
})

describe('FileHandler mode', () => {
  test("'w' truncates the file when the server starts, 'a' appends", () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    writeFileSync(file, 'from before\n')
    fileLogging(dir, 'FileHandler', "('kinto.log', 'a')").root.info('appended')
    expect(lines(file)).toEqual(['from before', 'appended'])
    fileLogging(dir, 'FileHandler', "('kinto.log', 'w')").root.info('alone')
    expect(lines(file)).toEqual(['alone'])
  })
})

describe('RotatingFileHandler', () => {
  test('three crossings of maxBytes with backupCount 2: file, file.1, file.2, every kept line once and in order', () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const logging = fileLogging(dir, 'logging.handlers.RotatingFileHandler', "('kinto.log', 'a', 200, 2)")
    const written: string[] = []
    // 20-byte lines: 9 fit under 200 bytes (Python: roll over when size + line >= maxBytes).
    for (let i = 0; written.length < 9 * 3 + 4; i++) {
      const line = `line ${String(i).padStart(14, '0')}`
      written.push(line)
      logging.root.info(line)
    }
    expect(readdirSync(dir).sort()).toEqual(['kinto.log', 'kinto.log.1', 'kinto.log.2'])
    for (const f of ['kinto.log.1', 'kinto.log.2']) expect(lines(path.join(dir, f))).toHaveLength(9)
    const kept = [...lines(`${file}.2`), ...lines(`${file}.1`), ...lines(file)]
    expect(kept).toEqual(written.slice(9))
  })

  test('a batch of summaries crossing maxBytes is cut at the last line that fits', () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const log = new LogFile(file, {maxBytes: 100, backupCount: 3})
    // 20-byte lines.
    const batch = (from: number, n: number) => Array.from({length: n}, (_, i) => `batch line ${String(from + i).padStart(8, '0')}\n`).join('')
    log.write(batch(0, 3)) // 60 bytes
    log.write(batch(3, 4)) // line 3 fits (80), line 4 would reach 100: cut there
    log.write(batch(7, 4)) // 60 + 20 fits, then cut again
    expect(lines(`${file}.2`)).toHaveLength(4)
    expect(lines(`${file}.1`)).toHaveLength(4)
    expect(lines(file)).toHaveLength(3)
    expect([...lines(`${file}.2`), ...lines(`${file}.1`), ...lines(file)].map((l) => Number(l.split(' ')[2]))).toEqual(Array.from({length: 11}, (_, i) => i))
    for (const f of [file, `${file}.1`, `${file}.2`]) expect(statSync(f).size).toBeLessThan(100)
  })

  test('a lock file left by a dead process does not stop rollovers; a live holder is waited for, then written past', () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const dead = spawnSync('true').pid!
    writeFileSync(`${file}.lock`, String(dead))
    const log = new LogFile(file, {maxBytes: 50, backupCount: 1})
    for (let i = 0; i < 4; i++) log.write(`line ${String(i).padStart(14, '0')}\n`) // 20 bytes each
    expect(lines(`${file}.1`)).toHaveLength(2)
    expect(existsSync(`${file}.lock`)).toBe(false)

    writeFileSync(`${file}.lock`, String(process.pid))
    for (let i = 4; i < 8; i++) log.write(`line ${String(i).padStart(14, '0')}\n`)
    expect([...lines(`${file}.1`), ...lines(file)].map((l) => Number(l.split(' ')[1]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    unlinkSync(`${file}.lock`)
  })

  test('two workers (node:cluster, as --workers) writing one file: no line lost or duplicated, one rollover per crossing', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const maxBytes = 2000
    const count = 1500
    const ini = `[loggers]\nkeys = root\n[handlers]\nkeys = f\n[formatters]\nkeys = plain\n[logger_root]\nlevel = INFO\nhandlers = f\n[handler_f]\nclass = logging.handlers.RotatingFileHandler\nargs = ('kinto.log',)\nkwargs = {'maxBytes': ${maxBytes}, 'backupCount': 1000}\nformatter = plain\n[formatter_plain]\nformat = %(message)s\n`
    const script = path.join(dir, 'workers.mts')
    writeFileSync(
      script,
      `import cluster from 'node:cluster'
      if (cluster.isPrimary) {
        const start = Date.now() + 2500
        const exits = ['A', 'B'].map((tag) => new Promise((resolve) => cluster.fork({TAG: tag, START: String(start)}).on('exit', resolve)))
        process.exitCode = (await Promise.all(exits)).some((code) => code !== 0) ? 1 : 0
      } else {
        const {KintoLogging, loggingPlan} = await import(${JSON.stringify(pathToFileURL(path.resolve('src/lib/monitoring/index.ts')).href)})
        const {parseIni} = await import(${JSON.stringify(pathToFileURL(path.resolve('src/lib/config/ini.ts')).href)})
        const log = new KintoLogging(loggingPlan(parseIni(${JSON.stringify(ini)}, {here: ${JSON.stringify(dir)}}))).root
        const tag = process.env.TAG
        while (Date.now() < Number(process.env.START)) await new Promise((r) => setTimeout(r, 5))
        for (let i = 0; i < ${count}; i++) {
          log.info(tag + ' ' + String(i).padStart(6, '0') + ' ' + 'x'.repeat(i % 17))
          if (i % 20 === 0) await new Promise((r) => setImmediate(r))
        }
        process.disconnect()
      }`,
    )
    const failure = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {stdio: ['ignore', 'ignore', 'pipe']})
      let stderr = ''
      child.stderr.on('data', (d) => (stderr += d))
      child.on('exit', (code) => resolve(code === 0 ? '' : `exited ${code}: ${stderr}`))
    })
    expect(failure).toBe('')

    const backups = readdirSync(dir)
      .filter((f) => /^kinto\.log\.\d+$/.test(f))
      .map((f) => Number(f.split('.').pop()))
      .sort((a, b) => b - a)
    expect(backups.length).toBeGreaterThan(10)
    expect(backups).toEqual(Array.from({length: backups.length}, (_, i) => backups.length - i))
    expect(existsSync(`${file}.lock`)).toBe(false)
    const ordered = [...backups.map((n) => `${file}.${n}`), file].flatMap(lines)
    for (const tag of ['A', 'B']) {
      const mine = ordered.filter((l) => l.startsWith(`${tag} `)).map((l) => Number(l.split(' ')[1]))
      expect(mine).toEqual(Array.from({length: count}, (_, i) => i))
    }
    // A second rollover for one crossing would leave a backup far short of maxBytes; a process
    // writing on into a file the other rotated, one far past it (a line each may race).
    const longest = 1 + 1 + 6 + 1 + 16 + 1
    for (const n of backups) {
      const size = statSync(`${file}.${n}`).size
      expect(size, `kinto.log.${n}`).toBeGreaterThanOrEqual(maxBytes - longest)
      expect(size, `kinto.log.${n}`).toBeLessThanOrEqual(maxBytes + 2 * longest)
    }
  })
})

describe('TimedRotatingFileHandler', () => {
  test("the schedule and the rolled-over names are Python's (values from CPython 3.11, utc)", () => {
    const t = 1765100000_000 // 2025-12-07 09:33:20 UTC, a Sunday
    const cases: Array<[string, number, string, string]> = [
      ['S', 1, '2025-12-07T09:33:21', '2025-12-07_09-33-20'],
      ['M', 5, '2025-12-07T09:38:20', '2025-12-07_09-33'],
      ['h', 2, '2025-12-07T11:33:20', '2025-12-07_09'],
      ['D', 1, '2025-12-08T09:33:20', '2025-12-07'],
      ['midnight', 1, '2025-12-08T00:00:00', '2025-12-07'],
      ['W0', 1, '2025-12-09T00:00:00', '2025-12-02'],
      ['W6', 1, '2025-12-08T00:00:00', '2025-12-01'],
      ['w3', 1, '2025-12-12T00:00:00', '2025-12-05'],
    ]
    for (const [when, interval, at, suffix] of cases) {
      const schedule = timedSchedule({when, interval, backupCount: 0, utc: true})
      const next = schedule.next(t)
      expect([when, new Date(next).toISOString().slice(0, 19), schedule.suffix(next)]).toEqual([when, at, suffix])
    }
    // interval counts days and weeks for midnight and W (Python 3.11 ignored it there).
    expect(new Date(timedSchedule({when: 'midnight', interval: 3, backupCount: 0, utc: true}).next(t)).toISOString()).toBe('2025-12-10T00:00:00.000Z')
    expect(timedSchedule({when: 'D', interval: 1, backupCount: 0, utc: true}).ext.test('2025-12-07.gz')).toBe(true)
    expect(timedSchedule({when: 'H', interval: 1, backupCount: 0, utc: true}).ext.test('2025-12-07')).toBe(false)
  })

  test('a file last written before the period ends rolls over at the first line, named for its day', () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    writeFileSync(file, 'old line\n')
    const old = new Date(Date.UTC(2025, 11, 5, 12, 0, 0))
    utimesSync(file, old, old)
    const logging = fileLogging(dir, 'logging.handlers.TimedRotatingFileHandler', "('kinto.log', 'midnight', 1, 3, None, False, True)")
    logging.root.info('new line')
    expect(readdirSync(dir).sort()).toEqual(['kinto.log', 'kinto.log.2025-12-05'])
    expect(lines(`${file}.2025-12-05`)).toEqual(['old line'])
    expect(lines(file)).toEqual(['new line'])
  })

  test("when = 'S', backupCount 2: dated files of the second their lines began, the oldest removed, every kept line once and in order", async () => {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.log')
    const logging = fileLogging(dir, 'logging.handlers.TimedRotatingFileHandler', "('kinto.log',)\nkwargs = {'when': 'S', 'backupCount': 2, 'utc': True}")
    const written: string[] = []
    const dated = () => readdirSync(dir).filter((f) => f !== 'kinto.log')
    const deadline = Date.now() + 15_000
    for (let i = 0; (dated().length < 2 || written.length < 150) && Date.now() < deadline; i++) {
      const line = `${i} ${new Date().toISOString()}`
      written.push(line)
      logging.root.info(line)
      await sleep(10)
    }
    // One more second at least: a third rollover, which removes the oldest.
    const until = Date.now() + 1500
    for (let i = written.length; Date.now() < until; i++) {
      const line = `${i} ${new Date().toISOString()}`
      written.push(line)
      logging.root.info(line)
      await sleep(10)
    }
    const names = dated().sort()
    expect(names).toHaveLength(2)
    for (const name of names) {
      expect(name).toMatch(/^kinto\.log\.\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$/)
      // A period begins at a rollover, after the second its name says.
      const second = name.slice('kinto.log.'.length).replace(/_(\d\d)-(\d\d)-(\d\d)$/, 'T$1:$2:$3')
      for (const line of lines(path.join(dir, name))) expect(line.split(' ')[1].slice(0, 19) >= second, `${line} in ${name}`).toBe(true)
    }
    const kept = [...names.map((n) => path.join(dir, n)), file].flatMap(lines)
    expect(kept.length).toBeLessThan(written.length)
    expect(kept).toEqual(written.slice(written.length - kept.length))
  })
})

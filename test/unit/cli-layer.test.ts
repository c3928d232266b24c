/**
 * The declarative CLI layer: exit codes as data (help, docs and behaviour agree), `kinto help`,
 * errors that are always printed (as JSON under --json), typo suggestions. The commands run
 * in-process; Ctrl-C under a terminal needs a process of its own (integration/cli-terminal).
 */
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {cliSurface, errorsDocFile, renderErrorsDoc} from '../../scripts/cli-surface.mjs'
import {EXIT_CODE_MEANING} from '../../src/lib/errors.js'
import {richProgress} from '../../src/lib/interactive.js'
import {hoistGlobalFlags} from '../../src/global-flags.js'
import {commandSuggestion, nearest} from '../../src/lib/text/nearest.js'
import {runCliInProcess as runCli} from '../helpers/cli-in-process.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('cli-layer')

describe('exit codes as data', () => {
  it('every command declares 0, 1 and 2, only codes of the one table, and no prose copy in its description', async () => {
    const surface = await cliSurface()
    expect(surface.length).toBeGreaterThan(15)
    for (const c of surface) {
      expect(Object.keys(c.exitCodes), c.id).toEqual(expect.arrayContaining(['0', '1', '2']))
      for (const code of Object.keys(c.exitCodes)) expect(Object.keys(EXIT_CODE_MEANING), `${c.id} exit ${code}`).toContain(code)
    }
    const {Config} = await import('@oclif/core')
    const config = await Config.load({root: path.resolve(import.meta.dirname, '..', '..'), devPlugins: false})
    for (const c of config.commands) expect(c.description ?? '', c.id).not.toMatch(/Exit codes:/)
  })

  it('docs/errors.md shows the same tables (npm run surface regenerates them)', async () => {
    const doc = readFileSync(errorsDocFile, 'utf8')
    expect(renderErrorsDoc(doc, await cliSurface())).toBe(doc)
  })

  it('each command\'s help lists its table under EXIT CODES', async () => {
    const surface = await cliSurface()
    for (const id of ['migrate', 'start', 'deploy nginx']) {
      const r = await runCli([...id.split(' '), '--help'])
      expect(r.code).toBe(0)
      const section = r.stdout.slice(r.stdout.indexOf('EXIT CODES'))
      expect(section, id).toMatch(/^EXIT CODES\n/)
      const table = surface.find((c) => c.id === id)!.exitCodes
      for (const [code, meaning] of Object.entries(table)) {
        expect(section.replace(/\s+/g, ' '), `${id} ${code}`).toContain(`${code} ${meaning.split(' ').slice(0, 4).join(' ')}`)
      }
    }
    // start's help says 4 for a held folder, as the code does (ops-cli.integration.test.ts runs it)
    expect(surface.find((c) => c.id === 'start')!.exitCodes['4']).toMatch(/held/)
  })
})

describe('kinto help', () => {
  it('`kinto help` and `kinto help <command>` show the help', async () => {
    const root = await runCli(['help'])
    expect(root.code, root.stderr).toBe(0)
    expect(root.stdout).toContain('COMMANDS')
    expect(root.stdout).toContain('migrate')
    const one = await runCli(['help', 'deploy', 'nginx'])
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toContain('$ kinto deploy nginx')
    expect(one.stdout).toContain('EXIT CODES')
  })

  it('`-h` is --help, for the root and each command (upstream\'s argparse CLI takes both)', async () => {
    for (const args of [['-h'], ['migrate', '-h'], ['db', 'status', '-h']]) {
      const short = await runCli(args)
      const long = await runCli([...args.slice(0, -1), '--help'])
      expect(short.code, args.join(' ')).toBe(0)
      expect(short.stdout, args.join(' ')).toBe(long.stdout)
      expect(short.stdout, args.join(' ')).toContain('USAGE')
    }
  })

  it('`kinto help <unknown>` is a usage error with the nearest command', async () => {
    const r = await runCli(['help', 'migrat'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Did you mean `kinto migrate`?')
  })
})

describe('typo suggestions', () => {
  it('`kinto deploy ngnix` suggests nginx alone, not the three deploy commands', async () => {
    const r = await runCli(['deploy', 'ngnix'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Did you mean `kinto deploy nginx`?')
    expect(r.stderr).not.toContain('deploy uwsgi')
    expect(commandSuggestion('db', ['db status', 'db create', 'migrate'])).toContain('`kinto db status` or `kinto db create`')
    expect(nearest('kinto.batch_max_request', ['kinto.batch_max_requests', 'kinto.bucket_create_principals'])).toEqual(['kinto.batch_max_requests'])
  })

  it('`kinto migrat --json` answers a JSON error object', async () => {
    const r = await runCli(['migrat', '--json'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toEqual({error: {code: 'KINTO_USAGE', message: 'Unknown command "migrat".', hint: expect.stringContaining('kinto migrate')}})
  })
})

describe('errors that are always printed', () => {
  it('an unexpected failure under --json prints the error object (not zero bytes), exit 1', async () => {
    const dir = tmp()
    writeFileSync(path.join(dir, 'a-file'), '')
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = pglite:a-file/data\n')
    const r = await runCli(['migrate', '--json', '--ini', ini])
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout) as {error: {code: string; message: string}}
    expect(out.error.code).toMatch(/^KINTO_/)
    expect(out.error.message).toContain('a-file')
  })

  it('a usage error under --json is a JSON object too (exit 2)', async () => {
    const r = await runCli(['migrate', '--json', '--bogus'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).error).toMatchObject({code: 'KINTO_USAGE', message: expect.stringContaining('--bogus')})
    expect(r.stderr).not.toContain('did not parse')
  })

  it('a usage error echoes what was typed with the passwords of URLs masked (a typo must not print a secret)', async () => {
    const cases: Array<[string[], string]> = [
      [['migrate', '--storage-url=postgresql://kinto:s3cr3t@db/kinto'], 'Nonexistent flag: --storage-url=postgresql://kinto:***@db/kinto'],
      [['migrate', 'postgresql://kinto:s3cr3t@db/kinto'], 'Unknown command "migrate postgresql //kinto ***@db/kinto".'],
      [['db', 'status', 'postgresql://kinto:s3cr3t@db/kinto'], 'Unknown command "db status postgresql //kinto ***@db/kinto".'],
      [['readonly', 'redis://:s3cr3t@cache:6379/0'], '"redis://:***@cache:6379/0" is neither `on` nor `off`.'],
      // a value refused as malformed is echoed: the printing of every error masks what it holds
      [['check', '--url', 'https://kinto:s3cr3t@kinto example.com'], '--url "https://kinto:***@kinto example.com" is not a URL.'],
    ]
    for (const [args, message] of cases) {
      for (const json of [true, false]) {
        const r = await runCli([...args, ...(json ? ['--json'] : [])])
        expect(r.code, args.join(' ')).toBe(2)
        expect(r.stdout + r.stderr, args.join(' ')).not.toContain('s3cr3t')
        if (json) expect(JSON.parse(r.stdout).error.message).toBe(message)
        else expect(r.stderr.toLowerCase()).toContain(`error: ${message}`.toLowerCase())
      }
    }
  })
})

describe('progress on a terminal', () => {
  it('a terminal 0 columns wide gets plain lines, not one character per line', () => {
    expect(richProgress({}, [{isTTY: true, columns: 0}])).toBe(false)
    expect(richProgress({}, [{isTTY: true, columns: 80}])).toBe(true)
  })
})

describe('flags every command reads the same way', () => {
  const iniWithMaintenance = () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.userid_hmac_secret = cli-layer\n')
    return ini
  }

  it('one duration type: `status --timeout 2m` as `wait-ready --timeout 2m`; a bad one is a usage error naming the flag', async () => {
    const ini = iniWithMaintenance()
    const ok = await runCli(['status', '--ini', ini, '--timeout', '2m', '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    const bad = await runCli(['status', '--ini', ini, '--timeout', 'soon'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe('Error: --timeout: "soon" is not a duration; expected a duration such as 90s, 30m, 2h, 1d or 1h30m (or a number of seconds).\nHint: See `kinto status --help`.\n')
    const lock = await runCli(['migrate', '--ini', ini, '--lock-timeout', '1m', '--check'])
    expect(lock.code, lock.stderr).toBe(0)
  })

  it('a number out of range or not a number names its flag (oclif\'s own message did not)', async () => {
    const cases: Array<[string[], string]> = [
      [['wait-ready', '--interval', '0'], '--interval: Expected an integer greater than or equal to 10 but received: 0'],
      [['backoff', '10', '--percentage', '200'], '--percentage: Expected an integer less than or equal to 100 but received: 200'],
      [['deploy', 'uwsgi', '--processes', 'x'], '--processes: Expected an integer but received: x'],
      [['init', '--backend', 'foo'], 'Expected --backend=foo to be one of: embedded, postgresql, memory'],
    ]
    for (const [args, message] of cases) {
      const r = await runCli([...args, '--json'])
      expect(r.code, args.join(' ')).toBe(2)
      expect(JSON.parse(r.stdout).error.message, args.join(' ')).toBe(message)
    }
  })

  it('an empty file or URL given on the command line is a usage error, not the current folder nor "not given"', async () => {
    // `check --url "$UNSET"` checked the ini; `backup -o ""` wrote into the current folder's name
    const ini = iniWithMaintenance()
    const cases: Array<[string[], string]> = [
      [['check', '--url', ''], '--url is empty.'],
      [['status', '--url', ' '], '--url is empty.'],
      [['wait-ready', '--url', ''], '--url is empty.'],
      [['backup', '-o', ''], '--output is empty.'],
      [['restore', ''], 'FILE is empty.'],
      [['db', 'copy', '--to', ''], '--to is empty.'],
      [['deploy', 'nginx', '--output', ''], '--output is empty.'],
      [['deploy', 'nginx', '--check', ''], '--check is empty.'],
    ]
    for (const [args, message] of cases) {
      const r = await runCli([...args, '--ini', ini, '--json'])
      expect(r.code, args.join(' ')).toBe(2)
      expect(JSON.parse(r.stdout).error.message, args.join(' ')).toBe(message)
    }
    // an empty environment variable is unset, as before
    const env = await runCli(['status', '--ini', ini, '--json'], {env: {KINTO_URL: ''}})
    expect(env.code, env.stderr).toBe(0)
  })

  it("'-' is refused where a file is read by name (a file called '-' was looked for while the pipe was ignored); deploy -o - prints (backup -o - and restore -: backup-stream.integration.test.ts)", async () => {
    const ini = iniWithMaintenance()
    const dir = tmp()
    const cases: Array<[string[], string]> = [
      [['deploy', 'nginx', '--ini', ini, '--check', '-'], "--check is '-': it names a file here, not standard input or output."],
      [['status', '--ini', '-'], "--ini (or KINTO_INI) is '-': the ini is read from a file, not standard input."],
    ]
    for (const [args, message] of cases) {
      const r = await runCli([...args, '--json'], {cwd: dir})
      expect(r.code, args.join(' ')).toBe(2)
      const error = JSON.parse(r.stdout).error
      expect(error.message, args.join(' ')).toBe(message)
      expect(error.hint, args.join(' ')).toContain("./- names a file called '-'")
    }
    const printed = await runCli(['deploy', 'nginx', '--ini', ini, '-o', '-', '--server-name', 'kinto.example.com'], {cwd: dir})
    expect(printed.code, printed.stderr).toBe(0)
    expect(printed.stdout).toContain('server_name kinto.example.com;')
    expect(printed.stdout).toContain('proxy_pass http://kinto_backend;')
    expect(readdirSync(dir)).toEqual([])
  })

  it('a file path ending with / is refused: init, backup and deploy wrote a file named as the folder', async () => {
    const ini = iniWithMaintenance()
    const dir = tmp()
    const cases: Array<[string[], string]> = [
      [['init', '--ini', `${dir}/conf/`, '--backend', 'memory'], `${dir}/conf/kinto.ini`],
      [['backup', '--ini', ini, '-o', `${dir}/backups/`], `${dir}/backups/kinto-backup-`],
      [['deploy', 'nginx', '--ini', ini, '--output', `${dir}/nginx/`], `${dir}/nginx/kinto.conf`],
    ]
    for (const [args, example] of cases) {
      const r = await runCli([...args, '--json'])
      expect(r.code, args.join(' ')).toBe(2)
      const error = JSON.parse(r.stdout).error
      expect(error.message, args.join(' ')).toMatch(/ ends with '\/': it names a folder, and a file is written here\.$/)
      expect(error.hint, args.join(' ')).toContain(example)
    }
    expect(readdirSync(dir)).toEqual([])
  })

  it('status --ini of a folder or a device: the config error and no servers (a folder was an unexpected failure, a device was read forever)', async () => {
    for (const [ini, problem] of [
      [tmp(), 'this is a folder'],
      ['/dev/zero', 'this is a device, not a file'],
    ]) {
      const r = await runCli(['status', '--ini', ini, '--json'])
      expect(r.code, ini).toBe(1)
      const out = JSON.parse(r.stdout)
      expect(out.configError.message, ini).toContain(`${ini}: ${problem}`)
      expect(out.servers, ini).toEqual([])
    }
  })

  it('a unix: URL with no socket there is said in words (was node\'s "connect ENOENT …")', async () => {
    const sock = path.join(tmp(), 'kinto.sock')
    const r = await runCli(['wait-ready', '--url', `unix:${sock}`, '--timeout', '1', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error.message).toMatch(/; last: no such socket \(is the server running\?\)\)\.$/)
  })

  it('`maintenance ON` is `maintenance on`', async () => {
    const ini = iniWithMaintenance()
    const r = await runCli(['maintenance', 'ON', '--no-reload', '--ini', ini])
    expect(r.code, r.stderr).toBe(0)
    expect(readFileSync(ini, 'utf8')).toContain('kinto.maintenance = true')
    expect((await runCli(['maintenance', 'Off', '--no-reload', '--ini', ini])).code).toBe(0)
    expect(readFileSync(ini, 'utf8')).not.toContain('kinto.maintenance = true')
  })

  it('global flags before the command, as upstream: `kinto --ini X migrate`, `kinto -q …`', async () => {
    const ini = iniWithMaintenance()
    const r = await runCli(['--ini', ini, 'migrate', '--check'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('storage: skipped')
    const quiet = await runCli(['-q', `--ini=${ini}`, 'maintenance', 'on', '--no-reload', '--json'])
    expect(quiet.code, quiet.stderr).toBe(0)
    expect(JSON.parse(quiet.stdout)).toMatchObject({toggle: 'maintenance', state: 'on'})
    expect(hoistGlobalFlags(['--ini', 'x.ini', '-v', 'deploy', 'nginx', '--cache'])).toEqual({words: ['deploy', 'nginx'], rest: ['--cache', '--ini', 'x.ini', '-v']})
    expect(hoistGlobalFlags(['--bogus', 'migrate'])).toBeNull()
    const unknown = await runCli(['--bogus', 'migrate'])
    expect(unknown.code).toBe(2)
  })

  it('-q/--quiet keeps progress off stderr (errors still shown); -v/--verbose is --debug', async () => {
    const ini = iniWithMaintenance()
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = pglite:data\n')
    const loud = await runCli(['migrate', '--check', '--ini', ini])
    expect(loud.stderr).toContain('storage on embedded database')
    const quiet = await runCli(['migrate', '--check', '--ini', ini, '-q'])
    expect(quiet.code).toBe(3)
    expect(quiet.stderr).toBe('')
    const failing = await runCli(['migrate', '--ini', path.join(path.dirname(ini), 'missing.ini'), '-q'])
    expect(failing.code).toBe(1)
    expect(failing.stderr).toMatch(/^Error: /)
    const verbose = await runCli(['migrate', '--ini', path.join(path.dirname(ini), 'missing.ini'), '--verbose'])
    expect(verbose.stderr).toMatch(/\n\s+at /)
  })
})

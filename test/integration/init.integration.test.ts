import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {openDatabase} from '../../src/lib/db/index.js'
import {cliBin, runCli} from '../helpers/cli.js'
import {realServerUrl} from '../helpers/db.js'

const root = mkdtempSync(path.join(os.tmpdir(), 'kinto-init-it-'))
let n = 0
const newPath = (name = 'kinto.ini') => path.join(root, `case-${++n}`, 'config', name)
const secretsOf = (text: string) => [...text.matchAll(/^kinto\.(userid|default_bucket)_hmac_secret = (.*)$/gm)].map((m) => m[2])
// No CI, no --yes: the only thing keeping these runs from prompting is the missing TTY.
const noCi = {CI: '', KINTO_YES: ''}

describe('kinto init (subprocess, stdin closed, no TTY)', () => {
  it('finishes without asking, writes the embedded default with mode 0600, says what it chose', async () => {
    const file = newPath()
    const r = await runCli(['init', '--ini', file], {env: noCi, timeoutMs: 30_000})
    expect(r.signal).toBeNull()
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${file}\n`)
    expect(r.stderr).toBe(
      [
        `storage and permissions: embedded — embedded PostgreSQL (PGlite), embedded database in ${path.dirname(file)}/kinto-data`,
        'cache: embedded (same database)',
        'host: 127.0.0.1 (port from kinto start --port, 8888 by default)',
        'public URL: not set; kinto check reports kinto.http_scheme until it is (rerun with --public-url https://kinto.example.com, or set kinto.http_scheme and kinto.http_host)',
        'secrets: new kinto.userid_hmac_secret and kinto.default_bucket_hmac_secret written (file mode 0600)',
        'next steps:',
        `  kinto migrate --ini ${file}`,
        `  kinto check --ini ${file}`,
        `  kinto start --ini ${file}`,
        '',
      ].join('\n'),
    )
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const text = readFileSync(file, 'utf8')
    const secrets = secretsOf(text)
    expect(secrets).toHaveLength(2)
    for (const s of secrets) expect(s).toMatch(/^[0-9a-f]{64}$/)
    expect(secrets[0]).not.toBe(secrets[1])
    for (const s of secrets) {
      expect(r.stdout + r.stderr).not.toContain(s)
    }
    const c = loadConfig(file, {env: {}})
    expect(c.settings.storage_backend).toBe('kinto.core.storage.postgresql')
    expect(c.settings.permission_backend).toBe('kinto.core.permission.postgresql')
    expect(c.settings.cache_backend).toBe('kinto.core.cache.postgresql')
    expect(c.settings.storage_url).toBe(`pglite:${path.dirname(file)}/kinto-data`)
    expect(c.settings.cache_url).toBe(c.settings.storage_url)
    expect(c.settings['multiauth.policies']).toBe('account')
    expect(c.settings.bucket_create_principals).toBe('account:admin')
    expect(c.server).toEqual({host: '127.0.0.1', port: 8888})
    expect(text).toContain('kinto.storage_url = pglite:%(here)s/kinto-data')
  })

  it('puts the embedded data beside the ini whatever the current folder', async () => {
    const file = newPath()
    const elsewhere = path.join(root, 'elsewhere')
    mkdirSync(elsewhere, {recursive: true})
    const rel = path.relative(elsewhere, file)
    const r = await runCli(['init', '--ini', rel], {cwd: elsewhere, env: noCi})
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${file}\n`)
    expect(loadConfig(file, {env: {}}).settings.storage_url).toBe(`pglite:${path.dirname(file)}/kinto-data`)
  })

  it('gives different secrets on each run', async () => {
    const [a, b] = [newPath(), newPath()]
    const runs = await Promise.all([runCli(['init', '--ini', a, '--yes']), runCli(['init', '--ini', b, '--yes'])])
    for (const r of runs) expect(r.code).toBe(0)
    const sa = secretsOf(readFileSync(a, 'utf8'))
    const sb = secretsOf(readFileSync(b, 'utf8'))
    expect(sa).toHaveLength(2)
    expect(sb).toHaveLength(2)
    expect(sa.filter((s) => sb.includes(s))).toEqual([])
  })

  it('refuses to overwrite (exit 1, one line and a hint), and replaces with --force', async () => {
    const file = newPath()
    expect((await runCli(['init', '--ini', file])).code).toBe(0)
    const before = readFileSync(file, 'utf8')
    const again = await runCli(['init', '--ini', file, '--backend', 'memory'])
    expect(again.code).toBe(1)
    expect(again.stdout).toBe('')
    expect(again.stderr).toBe(
      `Error: ${file} already exists.\nHint: Add --force to replace it (new secrets: user ids of existing accounts change), or choose another --ini.\n`,
    )
    expect(readFileSync(file, 'utf8')).toBe(before)

    const json = await runCli(['init', '--ini', file, '--json'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toEqual({
      error: {
        code: 'KINTO_CONFIG_EXISTS',
        message: `${file} already exists.`,
        hint: 'Add --force to replace it (new secrets: user ids of existing accounts change), or choose another --ini.',
      },
    })

    const forced = await runCli(['init', '--ini', file, '--backend', 'memory', '--force'])
    expect(forced.code).toBe(0)
    const after = readFileSync(file, 'utf8')
    expect(secretsOf(after).filter((s) => secretsOf(before).includes(s))).toEqual([])
    expect(loadConfig(file, {env: {}}).settings.storage_backend).toBe('kinto.core.storage.memory')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    // the replaced file (its secrets make the user ids of existing accounts) is kept beside, 0600
    const kept = readdirSync(path.dirname(file)).filter((f) => /^kinto\.ini\.\d{8}T\d{6}Z\.bak$/.test(f))
    expect(kept).toHaveLength(1)
    expect(readFileSync(path.join(path.dirname(file), kept[0]), 'utf8')).toBe(before)
    expect(statSync(path.join(path.dirname(file), kept[0])).mode & 0o777).toBe(0o600)
    expect(forced.stderr).toContain(`replaced: the previous file is kept as ${path.join(path.dirname(file), kept[0])}`)
    // again, within the same second: a second copy, never over the first
    const twice = await runCli(['init', '--ini', file, '--backend', 'memory', '--force', '--json'])
    expect(twice.code).toBe(0)
    expect(readFileSync(JSON.parse(twice.stdout).previous, 'utf8')).toBe(after)
    expect(readFileSync(path.join(path.dirname(file), kept[0]), 'utf8')).toBe(before)
  })

  const combos: Array<{args: string[]; json: Record<string, string>; settings: Record<string, unknown>}> = [
    {
      args: ['--backend', 'memory'],
      json: {backend: 'memory', cacheBackend: 'memory', host: '127.0.0.1'},
      settings: {storage_backend: 'kinto.core.storage.memory', storage_url: '', permission_backend: 'kinto.core.permission.memory', cache_backend: 'kinto.core.cache.memory', cache_url: ''},
    },
    {
      args: ['--backend', 'postgresql', '--host', '0.0.0.0'],
      json: {backend: 'postgresql', cacheBackend: 'postgresql', host: '0.0.0.0'},
      settings: {
        storage_backend: 'kinto.core.storage.postgresql',
        storage_url: 'postgresql://postgres:postgres@localhost/postgres',
        permission_url: 'postgresql://postgres:postgres@localhost/postgres',
        cache_backend: 'kinto.core.cache.postgresql',
        cache_url: 'postgresql://postgres:postgres@localhost/postgres',
      },
    },
    {
      args: ['--backend', 'postgresql', '--storage-url', 'postgresql://kinto:p%40ss%25word@db.example:5433/kinto', '--cache-backend', 'redis'],
      json: {backend: 'postgresql', cacheBackend: 'redis', host: '127.0.0.1'},
      settings: {
        storage_url: 'postgresql://kinto:p%40ss%25word@db.example:5433/kinto',
        permission_url: 'postgresql://kinto:p%40ss%25word@db.example:5433/kinto',
        cache_backend: 'kinto.core.cache.redis',
        cache_url: 'redis://127.0.0.1:6379/0',
      },
    },
    {
      args: ['--backend', 'memory', '--cache-backend', 'memcached'],
      json: {backend: 'memory', cacheBackend: 'memcached', host: '127.0.0.1'},
      settings: {cache_backend: 'kinto.core.cache.memcached', cache_hosts: '127.0.0.1:11211'},
    },
    {
      args: ['--backend', 'embedded', '--cache-backend', 'memory'],
      json: {backend: 'embedded', cacheBackend: 'memory', host: '127.0.0.1'},
      settings: {storage_backend: 'kinto.core.storage.postgresql', cache_backend: 'kinto.core.cache.memory'},
    },
    {
      args: ['--backend', 'memory', '--cache-backend', 'postgresql'],
      json: {backend: 'memory', cacheBackend: 'postgresql', host: '127.0.0.1'},
      settings: {cache_backend: 'kinto.core.cache.postgresql', cache_url: 'postgresql://postgres:postgres@localhost/postgres'},
    },
    {
      args: ['--backend', 'embedded', '--storage-url', 'pglite:data/kinto', '--cache-backend', 'embedded'],
      json: {backend: 'embedded', cacheBackend: 'embedded', host: '127.0.0.1'},
      settings: {storage_url: 'pglite:data/kinto', cache_url: 'pglite:data/kinto'},
    },
  ]
  type Combo = (typeof combos)[number]
  /** The commands that follow init: a server's database, the schema wherever one is kept, check, start. */
  const stepsFor = (backend: string, cache: string, file: string) => [
    ...(backend === 'postgresql' ? [`kinto db create --ini ${file}`] : []),
    ...(backend !== 'memory' || cache === 'postgresql' ? [`kinto migrate --ini ${file}`] : []),
    `kinto check --ini ${file}`,
    `kinto start --ini ${file}`,
  ]
  async function checkCombos(list: Combo[]): Promise<void> {
    const files = list.map(() => newPath())
    const runs = await Promise.all(list.map((c, i) => runCli(['init', '--ini', files[i], '--json', ...c.args])))
    for (const [i, c] of list.entries()) {
      const r = runs[i]
      expect(r.code, `${c.args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(r.stderr).toBe('')
      const {nextSteps, ...rest} = JSON.parse(r.stdout)
      expect(rest).toEqual({path: files[i], ...c.json})
      expect(nextSteps).toEqual(stepsFor(c.json.backend, c.json.cacheBackend, files[i]))
      expect(r.stdout).not.toContain('p%40ss')
      const config = loadConfig(files[i], {env: {}})
      expect(config.settings).toMatchObject(c.settings)
      expect(config.server.host).toBe(c.json.host)
    }
  }
  it('writes each backend combination; --json gives {path, backend, cacheBackend, host}; the file loads', () => checkCombos(combos))

  it('--cache-url and --cache-hosts are written as upstream\'s kinto.cache_url / kinto.cache_hosts', () =>
    checkCombos([
      {
        args: ['--backend', 'memory', '--cache-backend', 'redis', '--cache-url', 'redis://:p%40ss%25word@cache.example:6380/2'],
        json: {backend: 'memory', cacheBackend: 'redis', host: '127.0.0.1'},
        settings: {cache_backend: 'kinto.core.cache.redis', cache_url: 'redis://:p%40ss%25word@cache.example:6380/2'},
      },
      {
        args: ['--backend', 'memory', '--cache-backend', 'memcached', '--cache-hosts', '10.0.0.5:11211, [::1]:11212'],
        json: {backend: 'memory', cacheBackend: 'memcached', host: '127.0.0.1'},
        settings: {cache_backend: 'kinto.core.cache.memcached', cache_hosts: '10.0.0.5:11211 [::1]:11212'},
      },
    ]))

  it('--cache-url and --cache-hosts: checked, only with their backend, the password never echoed (exit 2)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--cache-backend', 'memcached', '--cache-url', 'redis://127.0.0.1/0'], /--cache-url applies to --cache-backend redis, not memcached/],
      [['--cache-backend', 'redis', '--cache-hosts', '127.0.0.1:11211'], /--cache-hosts applies to --cache-backend memcached, not redis/],
      [['--cache-backend', 'redis', '--cache-url', 'http://:hunter2@127.0.0.1/0'], /--cache-url "http:\/\/:\*\*\*@127.0.0.1\/0" is not a Redis URL/],
      [['--cache-backend', 'memcached', '--cache-hosts', '127.0.0.1'], /--cache-hosts "127.0.0.1" is not a list of memcached servers/],
      // What the settings check would refuse on the next command is not written
      [['--cache-backend', 'redis', '--cache-url', 'redis://:hunter2@127.0.0.1:99999/0'], /--cache-url "redis:\/\/:\*\*\*@127.0.0.1:99999\/0" is not a Redis URL/],
      [['--cache-backend', 'memcached', '--cache-hosts', '127.0.0.1:99999'], /--cache-hosts "127.0.0.1:99999" is not a list of memcached servers/],
    ]
    const runs = await Promise.all(cases.map(([args]) => runCli(['init', '--ini', newPath(), '--backend', 'memory', ...args])))
    for (const [i, [args, message]] of cases.entries()) {
      expect(runs[i]!.code, args.join(' ')).toBe(2)
      expect(runs[i]!.stderr).toMatch(message)
      expect(runs[i]!.stderr).not.toContain('hunter2')
      expect(runs[i]!.stderr).not.toMatch(/\n\s+at /)
    }
  })

  const python = spawnSync('python3', ['-c', 'import configparser'], {encoding: 'utf8'}).status === 0
  it.skipIf(!python)(`Python's configparser, set up as PasteDeploy does, reads the same values (upstream can load it)${python ? '' : ' (SKIPPED: no python3 with configparser)'}`, async () => {
    const files = [newPath(), newPath()]
    const runs = await Promise.all([
      runCli(['init', '--ini', files[0], '--backend', 'postgresql', '--storage-url', 'postgresql://kinto:p%40ss@db/kinto']),
      runCli(['init', '--ini', files[1], '--backend', 'memory', '--cache-backend', 'memcached']),
    ])
    for (const r of runs) expect(r.code).toBe(0)
    const script = [
      'import configparser, json, os, sys',
      'out = []',
      'for f in sys.argv[1:]:',
      "    p = configparser.ConfigParser(defaults={'here': os.path.dirname(f), '__file__': f})",
      '    p.optionxform = str',
      "    p.read_file(open(f, encoding='utf-8'))",
      "    p._defaults.setdefault('http_port', '8888')",
      "    out.append({s: dict(p.items(s)) for s in ('app:main', 'server:main')})",
      'print(json.dumps(out))',
    ].join('\n')
    const py = spawnSync('python3', ['-c', script, ...files], {encoding: 'utf8'})
    expect(py.status, py.stderr).toBe(0)
    const parsed = JSON.parse(py.stdout) as Array<Record<string, Record<string, string>>>
    for (const [i, file] of files.entries()) {
      const config = loadConfig(file, {env: {}})
      const app = parsed[i]['app:main']
      for (const key of ['storage_backend', 'storage_url', 'permission_url', 'cache_backend', 'userid_hmac_secret', 'default_bucket_hmac_secret', 'includes']) {
        expect(config.settings[key], key).toBe(app[`kinto.${key}`] ?? '')
      }
      expect(config.server).toEqual({host: parsed[i]['server:main'].host, port: Number(parsed[i]['server:main'].port)})
    }
    expect(parsed[0]['app:main']['kinto.storage_url']).toBe('postgresql://kinto:p%40ss@db/kinto')
    expect(parsed[1]['app:main']['kinto.cache_hosts']).toBe('127.0.0.1:11211')
  })

  it('hides the password of --storage-url in what it prints', async () => {
    const file = newPath()
    const r = await runCli(['init', '--ini', file, '--backend', 'postgresql', '--storage-url', 'postgresql://kinto:hunter2@db:5432/kinto'])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('PostgreSQL server db:5432/kinto')
    expect(r.stdout + r.stderr).not.toContain('hunter2')
  })

  it('--public-url writes kinto.http_scheme and kinto.http_host, and kinto check accepts the scheme', async () => {
    const file = newPath()
    const r = await runCli(['init', '--ini', file, '--public-url', 'https://Kinto.Example.com:8443'])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('public URL: https://kinto.example.com:8443 (kinto.http_scheme, kinto.http_host)')
    const config = loadConfig(file, {env: {}})
    expect(config.settings).toMatchObject({http_scheme: 'https', http_host: 'kinto.example.com:8443'})
    const check = await runCli(['check', '--ini', file, '--json'])
    const findings = JSON.parse(check.stdout).findings as Array<{id: string; level: string}>
    expect(findings.find((f) => f.id === 'http-scheme')?.level).toBe('ok')
    expect(findings.find((f) => f.id === 'http-host')?.level).toBe('ok')
    // Without it, the ini says nothing of either (commented out) and init says what check will say.
    const plain = newPath()
    await runCli(['init', '--ini', plain])
    const without = await runCli(['check', '--ini', plain, '--json'])
    expect((JSON.parse(without.stdout).findings as Array<{id: string; level: string}>).find((f) => f.id === 'http-scheme')?.level).toBe('error')
  })

  it('says when the PostgreSQL URL is upstream\'s default, and names the next steps (no --ini when it is the default file)', async () => {
    const dir = path.join(root, `case-${++n}`)
    mkdirSync(dir, {recursive: true})
    const r = await runCli(['init', '--backend', 'postgresql'], {cwd: dir, env: {KINTO_INI: ''}})
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${path.join(dir, 'config', 'kinto.ini')}\n`)
    expect(r.stderr).toContain("no --storage-url given: upstream's default postgresql://postgres:***@localhost/postgres was written")
    expect(r.stderr).toContain('next steps:\n  kinto db create\n  kinto migrate\n  kinto check\n  kinto start\n')
  })

  it('rejects bad flags with exit 2 and no stack trace', async () => {
    const cases: Array<[string[], string]> = [
      [['--backend', 'mysql'], 'Expected --backend=mysql to be one of: embedded, postgresql, memory'],
      [['--backend', 'memory', '--storage-url', 'postgresql://x/y'], 'Error: --storage-url does not apply to --backend memory'],
      [['--backend', 'postgresql', '--storage-url', 'mysql://root:pw@db/x'], 'Error: --storage-url "mysql://root:***@db/x" is not a PostgreSQL URL.'],
      [['--backend', 'embedded', '--storage-url', 'postgresql://x/y'], 'is not an embedded database URL'],
      [['--host', 'my host'], 'Error: --host "my host" is not a host name or IP address.'],
      [['--public-url', 'https://kinto.example.com/v1'], 'Error: --public-url "https://kinto.example.com/v1" is not a public URL'],
      [['--public-url', 'kinto.example.com'], 'Error: --public-url "kinto.example.com" is not a public URL'],
      // the refusal echoed the password of the URL
      [['--public-url', 'https://admin:pw@kinto.example.com'], 'Error: --public-url "https://admin:***@kinto.example.com" is not a public URL'],
      // an empty folder was the current folder: its files would have been served as attachments
      [['--attachments', ''], 'Error: --attachments is empty.'],
    ]
    const runs = await Promise.all(cases.map(([args]) => runCli(['init', '--ini', newPath(), ...args])))
    for (const [i, [args, text]] of cases.entries()) {
      const r = runs[i]
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(text)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(r.stderr).not.toContain(':pw@')
    }
  })

  it('a parent that is a file: exit 1, one line', async () => {
    const blocker = path.join(root, 'blocker')
    writeFileSync(blocker, 'x')
    const r = await runCli(['init', '--ini', path.join(blocker, 'kinto.ini')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: Cannot write .*blocker\/kinto\.ini: a parent is not a folder\.\nHint: /)
  })

  // A file that exists and that even root may not replace: sysfs refuses new files beside it.
  const sysFile = '/sys/kernel/notes'
  it.skipIf(!existsSync(sysFile))(`--force over a file it cannot replace: exit 1, says the file was left as it was${existsSync(sysFile) ? '' : ' SKIPPED: no /sys/kernel/notes here'}`, async () => {
    const r = await runCli(['init', '--ini', sysFile, '--force'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: Cannot write \/sys\/kernel\/notes: permission denied; it was left as it was\.\nHint: /)
  })

  // mkdir answers ENOENT under /proc, where Node's recursive mkdir makes the parent again forever.
  it.skipIf(!existsSync('/proc/self'))(`a folder that cannot be made (under /proc): exit 1 at once, one line, JSON under --json${existsSync('/proc/self') ? '' : ' SKIPPED: no /proc here'}`, async () => {
    const file = path.join('/proc', `kinto-ops-${process.pid}`, 'kinto.ini')
    const text = await runCli(['init', '--ini', file], {timeoutMs: 20_000})
    expect(text.signal).toBeNull()
    expect(text.code).toBe(1)
    expect(text.stderr).toMatch(/^Error: Cannot write \/proc\/kinto-ops-\d+\/kinto\.ini: a folder on its path cannot be made\.\nHint: /)
    const json = await runCli(['init', '--ini', file, '--json'], {timeoutMs: 20_000})
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout).error).toMatchObject({code: 'KINTO_CONFIG_WRITE_FAILED'})
  })

  it('the storage URL it writes opens (real PostgreSQL in CI, PGlite otherwise)', async () => {
    const file = newPath()
    const args = realServerUrl ? ['--backend', 'postgresql', '--storage-url', realServerUrl] : ['--backend', 'embedded']
    const r = await runCli(['init', '--ini', file, '--yes', ...args])
    expect(r.code).toBe(0)
    const config = loadConfig(file, {env: {}})
    const db = openDatabase(String(config.settings.storage_url), {baseDir: config.dir})
    try {
      const res = await db.query<{one: number}>('select 1 as one')
      expect(res.rows).toEqual([{one: 1}])
      expect(db.kind).toBe(realServerUrl ? 'pg' : 'pglite')
    } finally {
      await db.close()
    }
    if (!realServerUrl) expect(existsSync(path.join(path.dirname(file), 'kinto-data'))).toBe(true)
  })
})

// `script` gives the CLI a real terminal, to show that CI=true alone stops prompting, and that on a
// terminal without CI the prompts appear and accept the defaults.
const hasScript = spawnSync('script', ['--version'], {encoding: 'utf8'}).status === 0

function runOnTerminal(args: string[], env: NodeJS.ProcessEnv, answers: Array<[RegExp, string]>) {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
  const command = [process.execPath, cliBin, ...args].map(quote).join(' ')
  return new Promise<{code: number | null; output: string}>((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: {...process.env, NO_COLOR: '1', TERM: 'xterm', ...env},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let output = ''
    const pending = [...answers]
    const onData = (d: Buffer) => {
      output += d.toString()
      while (pending.length > 0 && pending[0][0].test(output)) child.stdin.write(pending.shift()![1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      child.stdin.destroy()
      resolve({code, output})
    })
  })
}

describe.skipIf(!hasScript)(`kinto init on a terminal${hasScript ? '' : ' (SKIPPED: no script (util-linux) to give the command a terminal)'}`, () => {
  it('with CI=true it never prompts', async () => {
    const file = newPath()
    const r = await runOnTerminal(['init', '--ini', file], {CI: 'true'}, [])
    expect(r.code).toBe(0)
    expect(r.output).not.toContain('Storage and permission backend')
    expect(r.output).toContain('storage and permissions: embedded')
    expect(existsSync(file)).toBe(true)
  })

  it('without CI it asks for the backends, and Enter takes the defaults', async () => {
    const file = newPath()
    const r = await runOnTerminal(['init', '--ini', file], {CI: '', KINTO_YES: ''}, [
      [/Storage and permission backend/, '\r'],
      [/Cache backend/, '\r'],
      [/Public URL/, '\r'],
    ])
    expect(r.output).toContain('Storage and permission backend')
    expect(r.output).toContain('Cache backend')
    expect(r.output).toContain('Public URL')
    expect(r.code).toBe(0)
    const c = loadConfig(file, {env: {}})
    expect(c.settings.storage_url).toBe(`pglite:${path.dirname(file)}/kinto-data`)
  })

  it('asks for the PostgreSQL password apart from the URL and never shows it', async () => {
    const file = newPath()
    const r = await runOnTerminal(['init', '--ini', file, '--backend', 'postgresql', '--cache-backend', 'memory'], {CI: '', KINTO_YES: ''}, [
      [/PostgreSQL URL/, 'postgresql://kinto@db.internal:5433/kinto\r'],
      [/Password of kinto/, 'pa:ss-w0rd!\r'],
      [/Public URL/, 'https://kinto.example.com\r'],
    ])
    expect(r.code).toBe(0)
    expect(r.output).toContain('Password of kinto')
    expect(r.output).not.toContain('pa:ss-w0rd!')
    const c = loadConfig(file, {env: {}})
    expect(c.settings.storage_url).toBe('postgresql://kinto:pa%3Ass-w0rd!@db.internal:5433/kinto')
    expect(c.settings.http_scheme).toBe('https')
  })
})

afterAll(() => {
  spawnSync('rm', ['-rf', root])
})

/**
 * `kinto check` as a subprocess on a real database (PGlite, or PostgreSQL when
 * KINTO_TEST_DATABASE_URL is set): a good production ini exits 0; errors exit 1 with the right
 * finding; --json; an unreachable or silent database is a finding within the timeout, never a
 * hang or a stack trace; secrets never printed. PostgreSQL only: time zone, encoding and the
 * read-only role's privileges.
 */
import {randomBytes} from 'node:crypto'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {CheckReport} from '../../src/lib/check/index.js'
import {openDatabase} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {runCli} from '../helpers/cli.js'
import {createTestDatabase, dbKind, realServerUrl, type TestDatabase} from '../helpers/db.js'

const SECRET = randomBytes(32).toString('hex')
const dirs: string[] = []
const databases: TestDatabase[] = []

afterAll(async () => {
  for (const db of databases) await db.drop().catch(() => {})
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function goodSettings(url: string): Record<string, string> {
  return {
    'kinto.storage_backend': 'kinto.core.storage.postgresql',
    'kinto.storage_url': url,
    'kinto.permission_backend': 'kinto.core.permission.postgresql',
    'kinto.permission_url': url,
    'kinto.cache_backend': 'kinto.core.cache.postgresql',
    'kinto.cache_url': url,
    'kinto.storage_pool_size': '20',
    'kinto.cache_pool_size': '20',
    'kinto.http_scheme': 'https',
    'kinto.http_host': 'kinto.example.com',
    'kinto.paginate_by': '100',
    'kinto.batch_max_requests': '25',
    'kinto.userid_hmac_secret': SECRET,
    'kinto.includes': 'kinto.plugins.statsd',
    // localhost resolves everywhere (/etc/hosts): the statsd check needs no network.
    'kinto.statsd_url': 'udp://localhost:8125',
    'multiauth.policies': 'basicauth',
  }
}

function writeIni(settings: Record<string, string | undefined>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-check-cli-'))
  dirs.push(dir)
  const file = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'use = egg:kinto']
  for (const [k, v] of Object.entries(settings)) if (v !== undefined) lines.push(`${k} = ${v}`)
  writeFileSync(file, lines.join('\n') + '\n')
  chmodSync(file, 0o600)
  return file
}

async function installedDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase()
  databases.push(db)
  const client = openDatabase(db.url)
  try {
    await ensureSchema(client, ['cache', 'storage', 'permission'])
  } finally {
    await client.close()
  }
  return db
}

/** Runs kinto check; the environment is cleared of KINTO_* so only the ini speaks. */
async function check(args: string[], timeoutMs = 60_000) {
  const env: NodeJS.ProcessEnv = {}
  for (const k of Object.keys(process.env)) if (k.startsWith('KINTO_')) env[k] = undefined
  return runCli(['check', ...args], {env: {...env, KINTO_TEST_DATABASE_URL: undefined}, timeoutMs})
}

function parse(stdout: string): CheckReport {
  return JSON.parse(stdout) as CheckReport
}

describe(`kinto check on ${dbKind}`, () => {
  let good = ''
  let db: TestDatabase

  beforeAll(async () => {
    db = await installedDatabase()
    good = writeIni(goodSettings(db.url))
  })

  it('a good production ini: exit 0, every item reported', async () => {
    const r = await check(['--ini', good])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^0 errors, \d+ warnings?, \d+ ok: (all good|review the warnings)\.$/m)
    for (const id of ['db-connect', 'db-encoding', 'db-timezone', 'migrations', 'readonly-privileges', 'statsd', 'http-scheme']) {
      expect(r.stdout).toMatch(new RegExp(`^ok +${id}: `, 'm'))
    }
    if (dbKind === 'postgresql') {
      // On a PostgreSQL server, the guide's settings leave nothing to warn about.
      expect(r.stdout, r.stdout).toMatch(/^0 errors, 0 warnings, \d+ ok: all good\.$/m)
    } else {
      // The embedded engine is fine but not what the guide recommends: warnings only.
      const warned = [...r.stdout.matchAll(/^WARN +([a-z-]+):/gm)].map((m) => m[1])
      expect(new Set(warned)).toEqual(new Set(['storage-backend', 'permission-backend', 'cache-backend']))
    }
    expect(r.stdout).not.toContain(SECRET)
  })

  it('--json: the report with its findings and summary', async () => {
    const r = await check(['--ini', good, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const report = parse(r.stdout)
    expect(report.target).toEqual({kind: 'ini', path: good})
    expect(report.summary.errors).toBe(0)
    expect(report.summary.ok).toBe(report.findings.filter((f) => f.level === 'ok').length)
    for (const f of report.findings) {
      expect(Object.keys(f).sort()).toEqual(['fix', 'id', 'level', 'message'])
      expect(f.id).toMatch(/^[a-z][a-z-]*$/)
      expect(['error', 'warning', 'ok']).toContain(f.level)
      if (f.level !== 'ok') expect(f.fix).toBeTruthy()
    }
    const migrations = report.findings.filter((f) => f.id === 'migrations')
    expect(migrations.map((f) => f.level)).toEqual(['ok', 'ok', 'ok'])
    expect(r.stdout).not.toContain(SECRET)
  })

  it('an error (the flush endpoint) exits 1 and says what to change', async () => {
    const ini = writeIni({...goodSettings(db.url), 'kinto.includes': 'kinto.plugins.statsd kinto.plugins.flush'})
    const r = await check(['--ini', ini, '--no-db'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^ERROR flush-endpoint: kinto\.includes lists kinto\.plugins\.flush/m)
    expect(r.stdout).toMatch(/^ +fix: Remove kinto\.plugins\.flush from kinto\.includes/m)
    expect(r.stdout).toMatch(/^1 error, \d+ warnings?, \d+ ok: not ready for production\.$/m)
  })

  it('a plugin kinto start does not know is an error (start would refuse the ini)', async () => {
    const ini = writeIni({...goodSettings(db.url), 'kinto.includes': 'kinto.plugins.statsd kinto.plugins.nosuch'})
    const r = await check(['--ini', ini, '--no-db', '--json'])
    expect(r.code, r.stderr).toBe(1)
    const f = parse(r.stdout).findings.find((x) => x.id === 'includes')!
    expect(f).toMatchObject({level: 'error'})
    expect(f.message).toMatch(/^Unknown plugin 'kinto\.plugins\.nosuch' in kinto\.includes \(.*key 'kinto\.includes'\): kinto start refuses to start\.$/)
    const good = await check(['--ini', writeIni(goodSettings(db.url)), '--no-db', '--json'])
    expect(parse(good.stdout).findings.filter((x) => x.id === 'includes')).toEqual([])
  })

  it('warnings alone exit 0 (bucket_read_principals widened)', async () => {
    const ini = writeIni({...goodSettings(db.url), 'kinto.bucket_read_principals': 'system.Authenticated'})
    const r = await check(['--ini', ini, '--no-db', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const f = parse(r.stdout).findings.find((x) => x.id === 'bucket-read-principals')!
    expect(f.level).toBe('warning')
    expect(f.message).toContain('every authenticated user can read every bucket and list them all')
  })

  it('kinto.readonly = true: only Kinto enforces it when the role may write', async () => {
    const r = await check(['--ini', writeIni({...goodSettings(db.url), 'kinto.readonly': 'true'}), '--json'])
    expect(r.code, r.stderr).toBe(0)
    const [f] = parse(r.stdout).findings.filter((x) => x.id === 'readonly-privileges')
    if (dbKind === 'pglite') {
      expect(f.level).toBe('ok')
      expect(f.message).toContain('the embedded database has a single role, so only Kinto enforces it')
    } else {
      expect(f.level).toBe('warning')
      expect(f.message).toContain('kinto.readonly is true but role postgres may still write there')
    }
  })

  it('a database without the schema: migrations errors, exit 1', async () => {
    const empty = await createTestDatabase()
    databases.push(empty)
    if (empty.kind === 'pglite') {
      // an existing but empty embedded folder
      const c = openDatabase(empty.url)
      await c.query('SELECT 1')
      await c.close()
    }
    const r = await check(['--ini', writeIni(goodSettings(empty.url)), '--json'])
    expect(r.code).toBe(1)
    const migrations = parse(r.stdout).findings.filter((f) => f.id === 'migrations')
    expect(migrations.map((f) => [f.level, f.message.replace(/ on .*?: /, ': ')])).toEqual([
      ['error', 'cache: the schema is not installed.'],
      ['error', 'storage: the schema is not installed.'],
      ['error', 'permission: the schema is not installed.'],
    ])
    expect(migrations[0].fix).toBe('Run kinto migrate with this ini.')
  })

  it('a missing embedded folder is reported, not created', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-check-nofolder-'))
    dirs.push(dir)
    const folder = path.join(dir, 'data')
    const r = await check(['--ini', writeIni(goodSettings(`pglite:${folder}`)), '--json'])
    expect(r.code).toBe(1)
    const f = parse(r.stdout).findings.find((x) => x.id === 'db-connect')!
    expect(f).toMatchObject({level: 'error'})
    expect(f.message).toContain('the folder does not exist')
    const {existsSync} = await import('node:fs')
    expect(existsSync(folder)).toBe(false)
  })

  it('a missing ini: one config error, exit 1', async () => {
    const r = await check(['--ini', path.join(os.tmpdir(), 'kinto-check-missing', 'kinto.ini'), '--json'])
    expect(r.code).toBe(1)
    const report = parse(r.stdout)
    expect(report.findings.map((f) => [f.id, f.level])).toEqual([['config', 'error']])
  })
})

describe('databases that cannot be used', () => {
  const PASSWORD = 'pw-' + randomBytes(6).toString('hex')
  let silent: Server
  let silentPort = 0
  const sockets = new Set<Socket>()

  beforeAll(async () => {
    // Accepts TCP connections and never says a word (a firewall half-open, a hung server).
    silent = createServer((socket) => sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    silentPort = (silent.address() as {port: number}).port
  })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
  })

  it('unreachable: an error finding naming host, port and database, password masked, no stack', async () => {
    const url = `postgresql://kinto:${PASSWORD}@127.0.0.1:1/kinto`
    const r = await check(['--ini', writeIni(goodSettings(url))])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^ERROR db-connect: .*Cannot connect to PostgreSQL at 127\.0\.0\.1:1, database kinto as kinto: connection refused/m)
    expect(r.stdout + r.stderr).not.toContain(PASSWORD)
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /)
    expect(r.stderr).toBe('')
  })

  it('silent: the connection timeout makes it a finding, the command ends', async () => {
    const url = `postgresql://kinto:${PASSWORD}@127.0.0.1:${silentPort}/kinto`
    // The command ends: one still running after 20 s is killed (code null).
    const r = await check(['--ini', writeIni(goodSettings(url)), '--timeout', '1', '--json'], 20_000)
    expect(r.code).toBe(1)
    const f = parse(r.stdout).findings.find((x) => x.id === 'db-connect')!
    expect(f.level).toBe('error')
    expect(f.message).toMatch(/timed out|did not answer/)
    expect(r.stdout).not.toContain(PASSWORD)
  })
})

const pgOnly = realServerUrl ? '' : ' (SKIPPED: PostgreSQL only; set KINTO_TEST_DATABASE_URL — PGlite has one role, UTF8 and UTC)'

describe.skipIf(!realServerUrl)(`on a PostgreSQL server${pgOnly}`, () => {
  const admin = () => new pg.Client({connectionString: realServerUrl})
  const roles: string[] = []

  afterAll(async () => {
    for (const db of databases.splice(0)) await db.drop().catch(() => {})
    const c = admin()
    await c.connect()
    try {
      for (const role of roles) await c.query(`DROP ROLE IF EXISTS "${role}"`)
    } finally {
      await c.end()
    }
  })

  async function sql(database: string, ...statements: string[]) {
    const url = new URL(realServerUrl!)
    url.pathname = `/${database}`
    const c = new pg.Client({connectionString: url.toString()})
    await c.connect()
    try {
      for (const s of statements) await c.query(s)
    } finally {
      await c.end()
    }
  }

  const dbName = (db: TestDatabase) => new URL(db.url).pathname.slice(1)

  it('a database not in UTC: db-timezone error', async () => {
    const db = await installedDatabase()
    await sql(dbName(db), `ALTER DATABASE "${dbName(db)}" SET TIMEZONE TO 'Europe/Paris'`)
    const r = await check(['--ini', writeIni(goodSettings(db.url)), '--json'])
    expect(r.code).toBe(1)
    const f = parse(r.stdout).findings.find((x) => x.id === 'db-timezone')!
    expect(f.level).toBe('error')
    expect(f.message).toContain('Europe/Paris')
    expect(f.fix).toContain(`ALTER DATABASE "${dbName(db)}" SET TIMEZONE TO 'UTC'`)
  })

  it('a database not in UTF8: db-encoding error', async () => {
    const name = `kinto_test_${randomBytes(6).toString('hex')}`
    await sql('postgres', `CREATE DATABASE ${name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`, `ALTER DATABASE ${name} SET TIMEZONE TO 'UTC'`)
    const url = new URL(realServerUrl!)
    url.pathname = `/${name}`
    databases.push({
      url: url.toString(),
      kind: 'postgresql',
      drop: () => sql('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    })
    const r = await check(['--ini', writeIni(goodSettings(url.toString())), '--json'])
    expect(r.code).toBe(1)
    const f = parse(r.stdout).findings.find((x) => x.id === 'db-encoding')!
    expect(f.level).toBe('error')
    expect(f.message).toContain('SQL_ASCII')
  })

  describe('kinto.readonly against the role', () => {
    let db: TestDatabase
    let role = ''
    const password = 'ro-' + randomBytes(8).toString('hex')
    let roUrl = ''

    beforeAll(async () => {
      db = await installedDatabase()
      role = `kinto_check_ro_${randomBytes(4).toString('hex')}`
      roles.push(role)
      await sql(dbName(db), `CREATE ROLE "${role}" LOGIN PASSWORD '${password}'`, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO "${role}"`)
      const u = new URL(db.url)
      u.username = role
      u.password = password
      roUrl = u.toString()
    })

    it('readonly = false with a SELECT-only role: error, writes would fail', async () => {
      const r = await check(['--ini', writeIni(goodSettings(roUrl)), '--json'])
      expect(r.code).toBe(1)
      const found = parse(r.stdout).findings.filter((x) => x.id === 'readonly-privileges')
      expect(found.map((f) => f.level)).toEqual(['error', 'error'])
      expect(found[0].message).toMatch(/^cache on .*the cache is written even when kinto.readonly is true/)
      expect(found[1].message).toMatch(/^storage and permission on .*kinto.readonly is false but role kinto_check_ro_\w+ may not INSERT, UPDATE and DELETE there: every write request would fail/)
      expect(r.stdout).not.toContain(password)
    })

    it('readonly = true with a SELECT-only role and a writable cache: ok', async () => {
      await sql(dbName(db), `GRANT INSERT, UPDATE, DELETE ON cache TO "${role}"`)
      const r = await check(['--ini', writeIni({...goodSettings(roUrl), 'kinto.readonly': 'true'}), '--json'])
      const report = parse(r.stdout)
      expect(report.findings.filter((x) => x.id === 'readonly-privileges').map((f) => [f.level, f.message.replace(/ on .*?: /, ': ')])).toEqual([
        ['ok', `storage and permission: kinto.readonly is true and role ${role} may only read.`],
      ])
      expect(r.code, JSON.stringify(report.findings.filter((f) => f.level === 'error'))).toBe(0)
    })

    it('readonly = true with a role that may write: warning, only Kinto enforces it', async () => {
      const r = await check(['--ini', writeIni({...goodSettings(db.url), 'kinto.readonly': 'true'}), '--json'])
      expect(r.code).toBe(0)
      const f = parse(r.stdout).findings.find((x) => x.id === 'readonly-privileges')!
      expect(f.level).toBe('warning')
      expect(f.fix).toContain('kinto db grant-readonly')
    })
  })

  it('pools larger than max_connections: db-connections warning', async () => {
    const db = await installedDatabase()
    const r = await check(['--ini', writeIni({...goodSettings(db.url), 'kinto.storage_pool_size': '500'}), '--json'])
    const f = parse(r.stdout).findings.find((x) => x.id === 'db-connections')!
    expect(f.level).toBe('warning')
    expect(f.message).toMatch(/one Kinto process may open 540 connections/)
  })
})


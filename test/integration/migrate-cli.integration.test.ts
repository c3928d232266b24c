/**
 * `kinto migrate` as operators and CI scripts run it: a subprocess without a TTY.
 */
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'

import {afterEach, describe, expect, it} from 'vitest'

import {openDatabase, type SqlClient} from '../../src/lib/db/index.js'
import {MIGRATION_LOCK_KEY, pgliteLockPath} from '../../src/lib/schema/lock.js'
import {cliBin, repoRoot, runCli} from '../helpers/cli.js'
import {createTestDatabase, dbKind, type TestDatabase} from '../helpers/db.js'
import {acceptanceCatalog, expectedAcceptanceLines, hasAcceptance} from '../helpers/schema-catalog.js'
import {writeTestIni} from '../helpers/schema-env.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function setup(extra?: string) {
  const db = await createTestDatabase()
  const ini = writeTestIni(db.url, {extra})
  cleanups.push(() => db.drop(), () => ini.cleanup())
  return {db, ini: ini.ini, dir: ini.dir}
}

/** Opens the test database in this process; closed before the next CLI run (PGlite: one process per folder). */
async function withDb<T>(db: TestDatabase, fn: (c: SqlClient) => Promise<T>): Promise<T> {
  const c = openDatabase(db.url)
  try {
    return await fn(c)
  } finally {
    await c.close()
  }
}

const tablesOf = (db: TestDatabase) =>
  withDb(db, async (c) => {
    const res = await c.query<{t: string}>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
    return res.rows.map((r) => r.t)
  })

describe(`kinto migrate on ${dbKind}`, () => {
  it('installs on an empty database, then is a no-op; --check agrees; --json reports', async () => {
    const {db, ini} = await setup()
    const first = await runCli(['migrate', '--ini', ini])
    expect(first.stderr).not.toMatch(/error/i)
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/storage: installed version 26 on /)
    expect(first.stdout).toMatch(/permission: installed version 2 on /)

    const second = await runCli(['migrate', '--ini', ini, '--json'])
    expect(second.code).toBe(0)
    const json = JSON.parse(second.stdout)
    expect(json).toMatchObject({mode: 'apply', pending: false, drift: []})
    expect(json.backends.map((b: {backend: string; state: string}) => [b.backend, b.state])).toEqual([
      ['cache', 'current'],
      ['storage', 'current'],
      ['permission', 'current'],
    ])

    const check = await runCli(['migrate', '--ini', ini, '--check'])
    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/Schema is current/)
    if (hasAcceptance) expect(await withDb(db, acceptanceCatalog)).toEqual(expectedAcceptanceLines())
  })

  it('--check exits 3 and --dry-run prints the SQL, both changing nothing', async () => {
    const {db, ini} = await setup()
    const check = await runCli(['migrate', '--ini', ini, '--check', '--json'])
    expect(check.code).toBe(3)
    expect(JSON.parse(check.stdout)).toMatchObject({mode: 'check', pending: true})

    const dry = await runCli(['migrate', '--ini', ini, '--dry-run'])
    expect(dry.code).toBe(0)
    expect(dry.stdout).toMatch(/storage: would install version 26 on /)
    expect(dry.stdout).toContain('CREATE TABLE IF NOT EXISTS objects')
    expect(dry.stdout).toContain('sql/permission/schema.sql')
    expect(dry.stdout).toMatch(/Dry run: nothing was changed/)
    expect(await tablesOf(db)).toEqual([])

    const both = await runCli(['migrate', '--ini', ini, '--check', '--dry-run'])
    expect(both.code).toBe(2)
  })

  it('five runs started at once on one empty database all succeed and install once', async () => {
    const {db, ini} = await setup()
    const runs = await Promise.all(Array.from({length: 5}, () => runCli(['migrate', '--ini', ini], {timeoutMs: 120_000})))
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr + r.stdout).not.toMatch(/error|fail/i)
    }
    expect(runs.filter((r) => /storage: installed version 26 on /.test(r.stdout))).toHaveLength(1)
    const counts = await withDb(db, async (c) =>
      (await c.query<{name: string; n: number}>("SELECT name, count(*)::int AS n FROM metadata GROUP BY name ORDER BY name")).rows,
    )
    expect(counts).toEqual([
      {name: 'created_at', n: 1},
      {name: 'kinto_ops.permission.schema_002', n: 1},
      {name: 'kinto_ops.storage.schema_026', n: 1},
      {name: 'permission_schema_version', n: 1},
      {name: 'storage_schema_version', n: 1},
    ])
  }, 180_000)

  it('refuses to write with kinto.readonly = true', async () => {
    const {db, ini} = await setup('kinto.readonly = true\n')
    const r = await runCli(['migrate', '--ini', ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/readonly is true.*writes nothing/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(await tablesOf(db)).toEqual([])
    // a check is still allowed: it reads only
    expect((await runCli(['migrate', '--ini', ini, '--check'])).code).toBe(3)
  })

  it('refuses a schema newer than it knows, touching nothing', async () => {
    const {db, ini} = await setup()
    expect((await runCli(['migrate', '--ini', ini])).code).toBe(0)
    await withDb(db, (c) => c.query("INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '27')"))
    const before = await withDb(db, (c) => c.query('SELECT name, value FROM metadata ORDER BY 1, 2'))
    const r = await runCli(['migrate', '--ini', ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/storage schema .* is at version 27, newer than the version 26/)
    expect(await withDb(db, (c) => c.query('SELECT name, value FROM metadata ORDER BY 1, 2'))).toEqual(before)
    expect((await runCli(['migrate', '--ini', ini, '--check'])).code).toBe(1)
  })

  it('reports drift (edited or unknown step) with exit 5 and changes nothing', async () => {
    const {db, ini} = await setup()
    expect((await runCli(['migrate', '--ini', ini])).code).toBe(0)
    await withDb(db, (c) =>
      c.exec(`UPDATE metadata SET value = 'sha256:${'0'.repeat(64)}' WHERE name = 'kinto_ops.storage.schema_026';
              INSERT INTO metadata (name, value) VALUES ('kinto_ops.permission.migration_002_003', 'sha256:${'1'.repeat(64)}');`),
    )
    const r = await runCli(['migrate', '--ini', ini])
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/storage step schema_026 was applied with different SQL/)
    expect(r.stderr).toMatch(/permission step migration_002_003 was applied but is not shipped/)
    const check = await runCli(['migrate', '--ini', ini, '--check', '--json'])
    expect(check.code).toBe(5)
    expect(JSON.parse(check.stdout).drift).toHaveLength(2)
  })

  it('waits for the lock, naming its holder, then times out with exit 4 (or fails at once with --no-wait)', async () => {
    const {db, ini} = await setup()
    const release = await holdMigrationLock(db)
    try {
      const timed = await runCli(['migrate', '--ini', ini, '--lock-timeout', '1'])
      expect(timed.code).toBe(4)
      expect(timed.stderr).toMatch(/Waiting for the migration lock on .*, held by (PostgreSQL backend pid|process) \d+/)
      expect(timed.stderr).toMatch(/Timed out after 1 s waiting for the migration lock/)
      // At once: a command still running after 15 s is killed (code null).
      const noWait = await runCli(['migrate', '--ini', ini, '--no-wait'], {timeoutMs: 15_000})
      expect(noWait.code).toBe(4)
      expect(noWait.stderr).toMatch(/Another migration holds the migration lock/)
    } finally {
      await release()
    }
    expect((await runCli(['migrate', '--ini', ini])).code).toBe(0)
  })

  it('a run killed mid-way (SIGKILL) leaves the old version; the next run completes', async () => {
    const {db, ini} = await setup()
    await withDb(db, async (c) => {
      await c.exec(readFixture('storage_v020.sql'))
      // make step 23 -> 24 hang while the flag table exists
      await c.exec(`
        CREATE TABLE slow_down (x int);
        CREATE FUNCTION slow_down() RETURNS trigger AS $$
        BEGIN
          IF NEW.value = '24' AND to_regclass('slow_down') IS NOT NULL THEN PERFORM pg_sleep(5); END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER slow_down BEFORE INSERT ON metadata FOR EACH ROW EXECUTE PROCEDURE slow_down();`)
    })
    const child = spawn(process.execPath, [cliBin, 'migrate', '--ini', ini], {cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    await waitFor(() => /applying sql\/storage\/migrations\/migration_023_024\.sql/.test(stderr), 60_000)
    await new Promise((r) => setTimeout(r, 300))
    child.kill('SIGKILL')
    await new Promise((r) => child.on('close', r))

    await withDb(db, async (c) => {
      const v = await c.query<{value: string}>("SELECT max(lpad(value, 3, '0')) AS value FROM metadata WHERE name = 'storage_schema_version'")
      expect(v.rows[0].value).toBe('020')
      const t = await c.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'records'")
      expect(t.rows).toHaveLength(1)
      await c.exec('DROP TRIGGER slow_down ON metadata; DROP FUNCTION slow_down(); DROP TABLE slow_down;')
    })
    const again = await runCli(['migrate', '--ini', ini])
    expect(again.stderr).not.toMatch(/error/i)
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/storage: upgraded 20 -> 26 \(6 step\(s\)\)/)
    if (hasAcceptance) expect(await withDb(db, acceptanceCatalog)).toEqual(expectedAcceptanceLines())
  }, 120_000)

  it('an unreachable server is one line naming host, port and database, password masked', async () => {
    const ini = writeTestIni('postgresql://kinto:hunter2secret@127.0.0.1:1/kintodb')
    cleanups.push(() => ini.cleanup())
    const r = await runCli(['migrate', '--ini', ini.ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: Cannot connect to PostgreSQL at 127\.0\.0\.1:1, database kintodb as kinto: connection refused/m)
    expect(r.stdout + r.stderr).not.toContain('hunter2secret')
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('Error:'))).toHaveLength(1)
  })

  it('skips memory backends with a line saying so', async () => {
    const ini = writeTestIni('unused', {storage: false, permission: false, cache: false})
    cleanups.push(() => ini.cleanup())
    const r = await runCli(['migrate', '--ini', ini.ini])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/storage: skipped \(kinto\.core\.storage\.memory: nothing to migrate\)/)
    expect(r.stdout).toMatch(/cache: skipped/)
  })
})

function readFixture(name: string): string {
  return readFileSync(`${repoRoot}/test/fixtures/sql/${name}`, 'utf8')
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Holds the migration lock as another run would: the advisory lock, or the embedded lock file. */
async function holdMigrationLock(db: TestDatabase): Promise<() => Promise<void>> {
  if (db.kind === 'pglite') {
    const dir = db.url.slice('pglite:'.length)
    const lock = pgliteLockPath(dir)
    writeFileSync(lock, String(process.pid))
    return async () => {
      if (existsSync(lock)) unlinkSync(lock)
    }
  }
  const pg = (await import('pg')).default
  const client = new pg.Client({connectionString: db.url})
  await client.connect()
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
  return async () => {
    await client.end()
  }
}

/**
 * kinto db create | grant-readonly | status, run in this process (runCliInProcess: the same exit code
 * and output as a subprocess, without its start-up).
 * Roles and databases need a real PostgreSQL server: those tests run when KINTO_TEST_DATABASE_URL
 * is set and are skipped otherwise (PGlite is one user and one database).
 */
import {randomBytes} from 'node:crypto'

import pg from 'pg'
import {afterEach, describe, expect, it} from 'vitest'

import {scramVerifier} from '../../src/lib/db/scram.js'
import {runCliInProcess} from '../helpers/cli-in-process.js'
import {createPgliteDatabase, createServerDatabase, realServerUrl, serverSkip} from '../helpers/db.js'
import {writeTestIni} from '../helpers/schema-env.js'

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const suffix = () => randomBytes(4).toString('hex')

async function admin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(realServerUrl!)
  if (database) url.pathname = `/${database}`
  const c = new pg.Client({connectionString: url.toString()})
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

function urlAs(user: string, database: string, password?: string): string {
  const url = new URL(realServerUrl!)
  url.username = encodeURIComponent(user)
  url.password = password ? encodeURIComponent(password) : ''
  url.pathname = `/${database}`
  return url.toString()
}

/** A test database owned by a dedicated migrating role, migrated by it, as in production. */
async function migratedDatabase(opts: {cache?: boolean} = {}) {
  const migrator = `kinto_mig_${suffix()}`
  await admin((c) => c.query(`CREATE ROLE ${migrator} LOGIN`))
  cleanups.push(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${migrator}`)))
  const db = await createServerDatabase(realServerUrl!)
  cleanups.push(() => db.drop())
  const name = new URL(db.url).pathname.slice(1)
  await admin((c) => c.query(`ALTER DATABASE ${name} OWNER TO ${migrator}`))
  const ini = writeTestIni(urlAs(migrator, name), {cache: opts.cache ?? true})
  cleanups.push(() => ini.cleanup())
  const m = await runCliInProcess(['migrate', '--ini', ini.ini])
  expect(m.code, m.stderr).toBe(0)
  return {migrator, name, ini: ini.ini}
}

async function asRole<T>(role: string, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({connectionString: urlAs(role, database, 'unused-under-trust')})
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

async function sqlState(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (error) {
    return (error as {code?: string}).code ?? String(error)
  }
}

const adminUrl = () => realServerUrl!

describe('kinto db grant-readonly refuses the role Kinto writes with', () => {
  it('the user of a backend URL, before connecting anywhere (exit 2, nothing changed)', async () => {
    // Nothing listens on port 1: the refusal must come before any connection.
    const ini = writeTestIni('postgresql://kinto_writer@127.0.0.1:1/kinto', {cache: true})
    cleanups.push(() => ini.cleanup())
    for (const mode of [[], ['--dry-run']]) {
      const r = await runCliInProcess(['db', 'grant-readonly', '--ini', ini.ini, '--role', 'kinto_writer', ...mode, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(JSON.parse(r.stdout).error.message).toBe('--role kinto_writer is the role Kinto writes with (kinto.storage_url): read-only, it would make every write fail.')
    }
  })
})

describe.skipIf(!realServerUrl)(`kinto db grant-readonly (real PostgreSQL only: PGlite has one user, so roles cannot be tested there)${serverSkip}`, () => {
  it('grants what a read-only instance needs, verified by connecting as the role', async () => {
    const {migrator, name, ini} = await migratedDatabase()
    const role = `kinto_ro_${suffix()}`
    cleanups.unshift(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)))

    const before = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--check', '--admin-url', adminUrl()])
    expect(before.code).toBe(6)
    expect(before.stdout).toMatch(/MISSING role .* exists and can log in/)

    const password = `pw-${suffix()}-secret`
    const r = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--password-stdin', '--admin-url', adminUrl()], {
      input: `${password}\n`,
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`Role ${role}: created`))
    expect(r.stdout + r.stderr).not.toContain(password)
    expect(r.stdout).not.toMatch(/Generated password/)

    await asRole(role, name, async (c) => {
      for (const t of ['objects', 'timestamps', 'metadata', 'user_principals', 'access_control_entries', 'cache']) {
        await c.query(`SELECT * FROM ${t} LIMIT 1`)
      }
      expect(await sqlState(c.query("INSERT INTO objects (id, parent_id, resource_name, data, deleted) VALUES ('x', '', 'bucket', '{}', false)"))).toBe('42501')
      expect(await sqlState(c.query("UPDATE objects SET deleted = true"))).toBe('42501')
      expect(await sqlState(c.query('DELETE FROM objects'))).toBe('42501')
      expect(await sqlState(c.query("INSERT INTO timestamps VALUES ('p', 'record', now())"))).toBe('42501')
      expect(await sqlState(c.query("INSERT INTO metadata VALUES ('x', 'y')"))).toBe('42501')
      expect(await sqlState(c.query("INSERT INTO user_principals VALUES ('u', 'p')"))).toBe('42501')
      expect(await sqlState(c.query('UPDATE user_principals SET principal = principal'))).toBe('42501')
      expect(await sqlState(c.query('DELETE FROM access_control_entries'))).toBe('42501')
      expect(await sqlState(c.query('CREATE TABLE sneaky (x int)'))).toBe('42501')
      // the cache is written by read-only instances too
      await c.query("INSERT INTO cache (key, value, ttl) VALUES ('k', '1', sec2ttl(60))")
      await c.query("UPDATE cache SET value = '2' WHERE key = 'k'")
      await c.query("DELETE FROM cache WHERE key = 'k'")
    })

    // a table a later migration creates (as the migrating role) is readable without granting again
    await asRole(migrator, name, (c) => c.query("CREATE TABLE later_plugin (x int); INSERT INTO later_plugin VALUES (1)"))
    const rows = await asRole(role, name, (c) => c.query('SELECT x FROM later_plugin'))
    expect(rows.rows).toEqual([{x: 1}])

    // the stored password is a SCRAM verifier of the one given on stdin
    const stored = await admin((c) => c.query<{p: string}>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]))
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored.rows[0].p)!
    expect(stored.rows[0].p).toBe(scramVerifier(password, Buffer.from(m[2], 'base64'), Number(m[1])))

    const again = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--admin-url', adminUrl(), '--json'])
    expect(again.code).toBe(0)
    const json = JSON.parse(again.stdout)
    expect(json).toMatchObject({roleCreated: false, missing: []})
    expect(json.generatedPassword).toBeUndefined()
    const check = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--check', '--admin-url', adminUrl()])
    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/All read-only grants hold/)
  }, 60_000)

  it('gives no cache writes when the cache is not PostgreSQL; generates and prints the password once', async () => {
    const {name, ini} = await migratedDatabase({cache: true})
    const memoryCacheIni = ini.replace(/kinto\.ini$/, 'kinto-memcache.ini')
    const {readFileSync, writeFileSync} = await import('node:fs')
    writeFileSync(
      memoryCacheIni,
      readFileSync(ini, 'utf8').replace(/kinto\.cache_backend = .*\nkinto\.cache_url = .*\n/, 'kinto.cache_backend = kinto.core.cache.memory\n'),
    )
    const role = `kinto_ro_${suffix()}`
    cleanups.unshift(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)))
    const r = await runCliInProcess(['db', 'grant-readonly', '--ini', memoryCacheIni, '--role', role, '--admin-url', adminUrl(), '--json'])
    expect(r.code, r.stderr).toBe(0)
    const json = JSON.parse(r.stdout)
    expect(json.generatedPassword).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(json.statements.join('\n')).not.toContain(json.generatedPassword)
    await asRole(role, name, async (c) => {
      await c.query('SELECT * FROM cache')
      expect(await sqlState(c.query("INSERT INTO cache (key, value) VALUES ('k', '1')"))).toBe('42501')
    })
  }, 60_000)

  it('creates a hostile role name literally, never executing it', async () => {
    const {name, ini} = await migratedDatabase()
    const role = `ro"; DROP TABLE objects; -- ${suffix()}`
    cleanups.unshift(() => admin((c) => c.query(`DROP ROLE IF EXISTS "${role.replaceAll('"', '""')}"`)))
    const dry = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--dry-run', '--admin-url', adminUrl()])
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain(`CREATE ROLE "${role.replaceAll('"', '""')}" LOGIN PASSWORD '***'`)
    const r = await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--admin-url', adminUrl()])
    expect(r.code, r.stderr).toBe(0)
    const exists = await admin((c) => c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]))
    expect(exists.rows).toHaveLength(1)
    const objects = await admin((c) => c.query("SELECT to_regclass('public.objects') IS NOT NULL AS ok"), name)
    expect(objects.rows[0].ok).toBe(true)
  }, 60_000)

  it('refuses names PostgreSQL would truncate or reserves', async () => {
    const ini = writeTestIni(urlAs('postgres', 'postgres'))
    cleanups.push(() => ini.cleanup())
    const long = await runCliInProcess(['db', 'grant-readonly', '--ini', ini.ini, '--role', 'r'.repeat(64), '--dry-run'])
    expect(long.code).toBe(2)
    expect(long.stderr).toMatch(/longer than 63 bytes/)
    const reserved = await runCliInProcess(['db', 'grant-readonly', '--ini', ini.ini, '--role', 'pg_mine', '--dry-run'])
    expect(reserved.code).toBe(2)
  })
})

describe.skipIf(!realServerUrl)(`kinto db create (real PostgreSQL only: PGlite has one database)${serverSkip}`, () => {
  it('creates a UTF8 database with timezone UTC, idempotently', async () => {
    const name = `kinto_create_${suffix()}`
    cleanups.push(() => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
    const ini = writeTestIni(urlAs('postgres', name))
    cleanups.push(() => ini.cleanup())
    const first = await runCliInProcess(['db', 'create', '--ini', ini.ini])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(new RegExp(`${name} on .*: created, encoding UTF8, timezone UTC`))
    const second = await runCliInProcess(['db', 'create', '--ini', ini.ini, '--json'])
    expect(second.code).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({database: name, created: false, encoding: 'UTF8', timezone: 'UTC'})
    const info = await admin((c) =>
      c.query<{enc: string; cfg: string[]}>(
        `SELECT pg_encoding_to_char(d.encoding) AS enc, s.setconfig AS cfg
           FROM pg_database d LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0
          WHERE d.datname = $1`,
        [name],
      ),
    )
    expect(info.rows[0]).toEqual({enc: 'UTF8', cfg: ['TimeZone=UTC']})
    // and migrate then works on it
    expect((await runCliInProcess(['migrate', '--ini', ini.ini])).code).toBe(0)
  })

  it('refuses an existing database that is not UTF8', async () => {
    const name = `kinto_latin_${suffix()}`
    await admin((c) => c.query(`CREATE DATABASE ${name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`))
    cleanups.push(() => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
    const ini = writeTestIni(urlAs('postgres', name))
    cleanups.push(() => ini.cleanup())
    const r = await runCliInProcess(['db', 'create', '--ini', ini.ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/uses encoding SQL_ASCII; Kinto's storage needs UTF8/)
  })
})

describe('kinto db commands on the embedded engine', () => {
  it('db create has nothing to do; grant-readonly refuses with the reason; db status reports', async () => {
    const db = createPgliteDatabase()
    cleanups.push(() => db.drop())
    const ini = writeTestIni(db.url)
    cleanups.push(() => ini.cleanup())
    const create = await runCliInProcess(['db', 'create', '--ini', ini.ini])
    expect(create.code).toBe(0)
    expect(create.stderr).toMatch(/embedded engine.*created on first use/)
    const grant = await runCliInProcess(['db', 'grant-readonly', '--ini', ini.ini, '--role', 'ro'])
    expect(grant.code).toBe(1)
    expect(grant.stderr).toMatch(/needs a PostgreSQL server; the storage is the embedded engine/)

    const before = await runCliInProcess(['db', 'status', '--ini', ini.ini, '--json'])
    expect(before.code, before.stderr).toBe(0)
    const s1 = JSON.parse(before.stdout)
    expect(s1.backends.map((b: {backend: string; state: string; pending: string[]}) => [b.backend, b.state, b.pending])).toEqual([
      ['cache', 'missing', ['schema_001']],
      ['storage', 'missing', ['schema_026']],
      ['permission', 'missing', ['schema_002']],
    ])
    expect(s1.backends[1].database).toMatchObject({engine: 'pglite', encoding: 'UTF8'})
    expect((await runCliInProcess(['migrate', '--ini', ini.ini])).code).toBe(0)
    const after = await runCliInProcess(['db', 'status', '--ini', ini.ini])
    expect(after.code).toBe(0)
    expect(after.stdout).toMatch(/storage: schema 26 \(current 26\), up to date/)
    expect(after.stdout).toMatch(/can write/)
  }, 60_000)
})

describe.skipIf(!realServerUrl)(`kinto db status with a read-only role (real PostgreSQL only: PGlite has one user)${serverSkip}`, () => {
  it('shows versions, pending steps and whether the configured user can write', async () => {
    const {name, ini} = await migratedDatabase()
    const role = `kinto_ro_${suffix()}`
    cleanups.unshift(() => admin((c) => c.query(`DROP ROLE IF EXISTS ${role}`)))
    expect((await runCliInProcess(['db', 'grant-readonly', '--ini', ini, '--role', role, '--admin-url', adminUrl()])).code).toBe(0)
    const roIni = writeTestIni(urlAs(role, name))
    cleanups.push(() => roIni.cleanup())
    const r = await runCliInProcess(['db', 'status', '--ini', roIni.ini, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    const byName = Object.fromEntries(s.backends.map((b: {backend: string}) => [b.backend, b]))
    expect(byName.storage).toMatchObject({installed: 26, current: 26, state: 'current', pending: [], canWrite: false})
    expect(byName.storage.database).toMatchObject({encoding: 'UTF8', timezone: 'UTC', user: role, canCreateTables: false})
    expect(byName.cache.canWrite).toBe(true)
  }, 60_000)
})

/**
 * Errors that tell the truth: known conditions get known messages (schema missing, permission
 * denied, an owner role that does not exist), and commands that only read create nothing.
 */
import {randomBytes} from 'node:crypto'
import {readdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import pg from 'pg'
import {describe, expect, it, type TestContext} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {realServerUrl} from '../helpers/db.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('ops-errors')

function embeddedIni(dir: string, extra = ''): string {
  const ini = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'kinto.includes = kinto.plugins.accounts']
  for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:data`)
  writeFileSync(ini, `${lines.join('\n')}\n${extra}`)
  return ini
}

describe('commands that only read create nothing', () => {
  it('migrate --check, migrate --dry-run, db status and check on a folder that does not exist leave it absent', async () => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const check = await runCli(['migrate', '--check', '--ini', ini])
    expect(check.code, check.stderr).toBe(3)
    expect(check.stdout).toContain('Migrations are pending.')
    const dry = await runCli(['migrate', '--dry-run', '--ini', ini])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain('would install')
    const status = await runCli(['db', 'status', '--ini', ini, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).backends[1]).toMatchObject({backend: 'storage', state: 'missing'})
    await runCli(['check', '--ini', ini])
    expect(readdirSync(dir)).toEqual(['kinto.ini'])
  }, 120_000)
})

describe('a missing schema is named as such, with the fix', () => {
  it('flush-cache, purge-deleted and create-user say KINTO_SCHEMA_MISSING and `kinto migrate`, not "report it as a bug"', async () => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const runs = [
      ['flush-cache', '--ini', ini, '--json'],
      ['purge-deleted', 'record', '10', '--ini', ini, '--json'],
      ['create-user', '-u', 'bob', '--password-stdin', '--ini', ini, '--json'],
    ]
    for (const args of runs) {
      const r = await runCli(args, {input: 'a-password\n'})
      expect(r.code, `${args[0]}: ${r.stdout}${r.stderr}`).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code, args[0]).toBe('KINTO_SCHEMA_MISSING')
      expect(error.hint).toContain(`kinto migrate --ini ${ini}`)
      expect(error.message).not.toMatch(/unexpected/)
    }
    // and in text, the same line as kinto start's
    const text = await runCli(['flush-cache', '--ini', ini])
    expect(text.stderr).toMatch(/^Error: The cache schema is not installed in embedded database in .*\.\nHint: Run `kinto migrate --ini /m)
  }, 120_000)
})

interface RoleRig {
  /** A role and a database of names of their own on the real server; neither exists yet. */
  role: string
  database: string
  /** A connection to the real server as its administrator. */
  admin: pg.Client
  /** An ini whose storage_url connects as the role (no password) to the database. */
  ini: string
}

/**
 * Runs `fn` with a role and a database name of its own on the real server (skipped without one);
 * whatever `fn` created of them is dropped after, pass or fail.
 */
async function withRoleRig(ctx: TestContext, prefix: string, fn: (rig: RoleRig) => Promise<void>): Promise<void> {
  if (!realServerUrl) {
    console.log('SKIPPED: KINTO_TEST_DATABASE_URL is not set (needs a real PostgreSQL server)')
    return ctx.skip()
  }
  const suffix = randomBytes(4).toString('hex')
  const role = `kinto_${prefix}_role_${suffix}`
  const database = `kinto_${prefix}_db_${suffix}`
  const admin = new pg.Client({connectionString: realServerUrl})
  await admin.connect()
  try {
    const url = new URL(realServerUrl)
    url.username = role
    url.password = ''
    url.pathname = `/${database}`
    const ini = path.join(tmp(), 'kinto.ini')
    writeFileSync(ini, `[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = ${url}\n`)
    await fn({role, database, admin, ini})
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  }
}

describe('PostgreSQL roles', () => {
  it('migrate with a role that may not create in schema public names the role and the fix', (ctx) =>
    withRoleRig(ctx, 'low', async ({role, database, admin, ini}) => {
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const r = await runCli(['migrate', '--ini', ini, '--json'])
      expect(r.code).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code).toBe('KINTO_DB_PERMISSION')
      expect(error.message).toContain(`Role ${role} may not install the storage schema`)
      expect(error.hint).toContain(`GRANT CREATE ON SCHEMA public TO ${role}`)
    }), 60_000)

  it('db create refuses an owner role that does not exist, and fixes the owner of an existing database', (ctx) =>
    withRoleRig(ctx, 'owner', async ({role, database, admin, ini}) => {
      const ownerOf = async () => (await admin.query<{o: string}>('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [database])).rows[0]?.o
      const adminUrl = new URL(realServerUrl!)
      adminUrl.pathname = '/postgres'
      const missing = await runCli(['db', 'create', '--ini', ini, '--admin-url', adminUrl.toString()])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(`The role ${role} of kinto.storage_url does not exist`)
      expect(await ownerOf()).toBeUndefined()
      // created by hand (owned by the admin), then the role: a rerun gives the database to the role
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      const fixed = await runCli(['db', 'create', '--ini', ini, '--admin-url', adminUrl.toString(), '--json'])
      expect(fixed.code, fixed.stderr).toBe(0)
      expect(JSON.parse(fixed.stdout)).toMatchObject({created: false, owner: role, ownerChanged: true})
      expect(await ownerOf()).toBe(role)
    }), 60_000)
})

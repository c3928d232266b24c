import {randomBytes} from 'node:crypto'
import {cpSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'

/**
 * Test databases: a fresh database on the real server when KINTO_TEST_DATABASE_URL is set (CI),
 * else a fresh PGlite folder (embedded). Each call gives an empty database and a cleanup function.
 * With `{schema: true}` the caller is about to install the schema anyway: a PGlite folder is then a
 * copy of one that has it (made once per run, see schema-setup.ts), instead of a new cluster whose
 * schema is installed again in each test (seconds each); the caller's install finds it current.
 */
export const realServerUrl = process.env.KINTO_TEST_DATABASE_URL || undefined
export const dbKind: 'postgresql' | 'pglite' = realServerUrl ? 'postgresql' : 'pglite'
/**
 * '' with a PostgreSQL server, else the SKIPPED reason a server-only test or group appends to its
 * name (`describe.skipIf(!realServerUrl)(`name${serverSkip}`)`), so that the skip says why.
 */
export const serverSkip = realServerUrl ? '' : ' (SKIPPED: needs a PostgreSQL server; KINTO_TEST_DATABASE_URL is not set)'

/**
 * The ini settings that put storage, permission and cache (or the backends named) on the postgresql
 * backends of one database URL.
 */
export function postgresqlSettings(
  url: string,
  backends: ReadonlyArray<'storage' | 'permission' | 'cache'> = ['storage', 'permission', 'cache'],
): Record<string, string> {
  const settings: Record<string, string> = {}
  for (const b of backends) {
    settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
    settings[`kinto.${b}_url`] = url
  }
  return settings
}

export interface TestDatabase {
  url: string
  kind: 'postgresql' | 'pglite'
  drop(): Promise<void>
}

/** A fresh database of the kind this run tests (PostgreSQL in CI, PGlite otherwise). */
export async function createTestDatabase(options: {schema?: boolean} = {}): Promise<TestDatabase> {
  return realServerUrl ? createServerDatabase(realServerUrl) : createPgliteDatabase(options)
}

export function createPgliteDatabase(options: {schema?: boolean} = {}): TestDatabase {
  // An empty folder: the driver unpacks the template into it when it is first opened (see global-setup.ts).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pglite-'))
  const withSchema = process.env.KINTO_TEST_PGLITE_SCHEMA
  if (options.schema && withSchema) cpSync(withSchema, dir, {recursive: true})
  return {
    url: `pglite:${dir}`,
    kind: 'pglite',
    async drop() {
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

export async function createServerDatabase(adminUrl: string): Promise<TestDatabase> {
  const name = `kinto_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({connectionString: adminUrl})
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`)
    await admin.query(`ALTER DATABASE ${name} SET TIMEZONE TO 'UTC'`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    kind: 'postgresql',
    async drop() {
      const c = new pg.Client({connectionString: adminUrl})
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}

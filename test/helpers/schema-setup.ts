import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'

/**
 * The fast lane's tests open dozens of embedded databases and install the schema in each: one
 * folder with the schema installed is made here, once per run, and named in
 * KINTO_TEST_PGLITE_SCHEMA; `createTestDatabase({schema: true})` copies it (db.ts). Nothing to do
 * on a real server (a database is created empty there, and the schema installed by the test).
 */
export default async function setup(): Promise<() => void> {
  // Both fast projects name this file: the first one makes the folder.
  if (process.env.KINTO_TEST_DATABASE_URL || process.env.KINTO_TEST_PGLITE_SCHEMA) return () => {}
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pglite-schema-'))
  const data = path.join(dir, 'data')
  const registry = new DatabaseRegistry()
  try {
    await ensureSchema(registry.get(`pglite:${data}`), ['storage', 'permission', 'cache'])
  } finally {
    await registry.closeAll()
  }
  process.env.KINTO_TEST_PGLITE_SCHEMA = data
  return () => rmSync(dir, {recursive: true, force: true})
}

import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/**
 * Creating a PGlite folder runs initdb (seconds); copying a prepared empty one takes a fraction of
 * that. Made once per test run; test/helpers/db.ts copies it for each fresh embedded database.
 */
export default async function setup(): Promise<() => void> {
  if (process.env.KINTO_TEST_DATABASE_URL || process.env.KINTO_PGLITE_TEMPLATE) return () => {}
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pglite-template-'))
  const {PGlite} = await import('@electric-sql/pglite')
  const db = await PGlite.create(dir)
  await db.exec('SELECT 1')
  await db.close()
  process.env.KINTO_PGLITE_TEMPLATE = dir
  return () => rmSync(dir, {recursive: true, force: true})
}

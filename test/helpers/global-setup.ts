import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {buildTemplate, loadTemplate} from '../../src/lib/db/pglite-template.js'

/**
 * New embedded databases are unpacked from the template that `npm run build` makes
 * (dist/pglite-template.tar.gz) instead of running initdb (seconds each). When that one is missing
 * or made by another PGlite release, one is made for this run (the same code) and named in
 * KINTO_PGLITE_TEMPLATE, which the driver and the CLI subprocesses read.
 */
export default async function setup(): Promise<() => void> {
  if (process.env.KINTO_TEST_DATABASE_URL) return () => {}
  if (loadTemplate().template) return () => {}
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pglite-template-'))
  await buildTemplate(path.join(dir, 'pglite-template.tar.gz'))
  process.env.KINTO_PGLITE_TEMPLATE = path.join(dir, 'pglite-template.tar.gz')
  return () => rmSync(dir, {recursive: true, force: true})
}

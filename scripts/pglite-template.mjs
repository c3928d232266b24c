#!/usr/bin/env node
// Part of `npm run build`: makes dist/pglite-template.tar.gz, the empty embedded cluster that new
// pglite: folders are unpacked from instead of running initdb (2.5–3 s → ~0.1 s; see
// src/lib/db/pglite-template.ts). Kept when its stamp already names the installed PGlite release.
import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const {buildTemplate, loadTemplate, pgliteVersion} = await import(path.join(root, 'dist', 'lib', 'db', 'pglite-template.js'))
const file = path.join(root, 'dist', 'pglite-template.tar.gz')

const {template} = loadTemplate(file)
if (template && existsSync(file)) {
  console.log(`dist/pglite-template.tar.gz: current (PGlite ${pgliteVersion()})`)
} else {
  const started = Date.now()
  const stamp = await buildTemplate(file)
  console.log(`dist/pglite-template.tar.gz: made for PGlite ${stamp.pglite}, PostgreSQL ${stamp.pg} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
}

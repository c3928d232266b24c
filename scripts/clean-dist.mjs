#!/usr/bin/env node
// First step of `npm run build`: removes what tsc wrote to dist/ before, so that a compiled file
// whose source is gone (a command renamed or removed) is neither packed nor listed as a command in
// oclif.manifest.json. Keeps the two outputs the build reuses when their stamps are current:
// dist/admin/ (scripts/kinto-admin/build.mjs) and dist/pglite-template.tar.gz (scripts/pglite-template.mjs).
import {existsSync, readdirSync, rmSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist')
const KEEP = new Set(['admin', 'pglite-template.tar.gz', 'pglite-template.tar.gz.json'])
if (existsSync(dist)) {
  for (const entry of readdirSync(dist)) if (!KEEP.has(entry)) rmSync(path.join(dist, entry), {recursive: true, force: true})
}

#!/usr/bin/env node
// Writes oclif.manifest.json (the command list with their flags, from dist/) as the last step of
// `npm run build`, so that `kinto` (bin/run.js, the work tree and packed releases alike) starts
// without importing every command module (`kinto --version` ~0.24 s → ~0.15 s). bin/dev.js and
// scripts/cli-surface.mts ignore it: they read the commands from src/ as they are now.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Plugin, settings} from '@oclif/core'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
// The manifest names the files bin/run.js imports: dist/'s, also when the build runs with
// NODE_ENV=development or test (oclif would otherwise name the src/*.ts files, which the package
// does not ship: every command of an `npm pack` made from such a shell failed to load).
settings.enableAutoTranspile = false
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
const outside = Object.values(plugin.manifest.commands).filter((c) => c.relativePath?.[0] !== 'dist')
if (outside.length > 0) {
  console.error(`oclif.manifest.json: commands not in dist/: ${outside.map((c) => `${c.id} (${c.relativePath?.join('/')})`).join(', ')}`)
  process.exit(1)
}
writeFileSync(path.join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest))
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)

#!/usr/bin/env node
// Writes oclif.manifest.json (the command list with their flags, from dist/) as the last step of
// `npm run build`, so that `kinto` (bin/run.js, the work tree and packed releases alike) starts
// without importing every command module (`kinto --version` ~0.24 s → ~0.15 s). bin/dev.js and
// scripts/cli-surface.mts ignore it: they read the commands from src/ as they are now.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Plugin} from '@oclif/core'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
writeFileSync(path.join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest))
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)

#!/usr/bin/env -S node --no-warnings=ExperimentalWarning
// Runs the TypeScript sources directly (tsx), for development and for tests that spawn the CLI.
// The build writes oclif.manifest.json for bin/run.js (dist/); here it is ignored, so commands are
// always found and loaded from src/ as they are now, never from a manifest of an older build.
import {fileURLToPath} from 'node:url'

import {execute, Plugin} from '@oclif/core'

process.env.NODE_ENV = 'development'
const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({root, isRoot: true, ignoreManifest: true})
await plugin.load()
await execute({development: true, loadOptions: {root, plugins: new Map([[plugin.name, plugin]])}})

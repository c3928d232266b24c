#!/usr/bin/env node
// `npm start`: the main job on the embedded default. Creates config/kinto.ini when there is none
// (embedded PostgreSQL beside it), installs or upgrades the schema, then serves the API.
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = path.join(root, 'bin', 'run.js')
const ini = process.env.KINTO_INI || 'config/kinto.ini'

function kinto(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {stdio: 'inherit'})
    const forward = (signal) => child.kill(signal)
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, forward)
    child.on('exit', (code, signal) => {
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(s, forward)
      resolve(code ?? (signal ? 1 : 0))
    })
  })
}

if (!existsSync(path.join(root, 'dist', 'commands'))) {
  console.error('kinto-ops is not built: run `npm install` (or `npm run build`) first.')
  process.exit(1)
}
if (!existsSync(path.resolve(ini))) {
  const code = await kinto(['init', '--ini', ini, '--yes'])
  if (code !== 0) process.exit(code)
}
const migrated = await kinto(['migrate', '--ini', ini])
if (migrated !== 0) process.exit(migrated)
process.exit(await kinto(['start', '--ini', ini, ...process.argv.slice(2)]))

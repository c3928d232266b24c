#!/usr/bin/env node
// Benchmark (not a test): wall time of `kinto migrate` as a deploy script sees it, CLI start
// included — the full install on an empty database and the no-op run on a current one — on the
// embedded engine (PGlite) and, when a server URL is given, on PostgreSQL. `kinto version` is
// timed too, so start-up cost and migration cost can be told apart. Targets: no-op < 0.5 s,
// full install < 2 s.
//
//   node bench/migrate.js [--runs N] [--bin bin/run.js|bin/dev.js]
//   KINTO_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres node bench/migrate.js
//   (KINTO_TEST_DATABASE_URL is used when KINTO_BENCH_DATABASE_URL is not set)
//
// bin/run.js (the built CLI, `npm run build`) is used when dist/ exists, else bin/dev.js (tsx,
// slower to start: the report says which).
import {spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const runs = Number(opt('--runs', '5'))
const bin = path.join(root, opt('--bin', existsSync(path.join(root, 'dist', 'commands')) ? 'bin/run.js' : 'bin/dev.js'))
const serverUrl = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL

function kinto(cliArgs) {
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, [bin, ...cliArgs], {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`kinto ${cliArgs.join(' ')} exited ${r.status}: ${r.stderr}`)
  return ms
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms) => `${(ms / 1000).toFixed(3)} s`

function writeIni(dir, url) {
  const ini = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'use = egg:kinto']
  for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = ${url}`)
  writeFileSync(ini, lines.join('\n') + '\n')
  return ini
}

async function serverDatabase(adminUrl) {
  const pg = (await import('pg')).default
  const name = `kinto_bench_${randomBytes(4).toString('hex')}`
  const run = async (sql) => {
    const c = new pg.Client({connectionString: adminUrl})
    await c.connect()
    try {
      await c.query(sql)
    } finally {
      await c.end()
    }
  }
  await run(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`)
  await run(`ALTER DATABASE ${name} SET TIMEZONE TO 'UTC'`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)}
}

async function measure(label, makeDatabase) {
  const install = []
  const noop = []
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-'))
    const db = await makeDatabase(dir)
    try {
      const ini = writeIni(dir, db.url)
      install.push(kinto(['migrate', '--ini', ini]))
      noop.push(kinto(['migrate', '--ini', ini]))
    } finally {
      await db.drop()
      rmSync(dir, {recursive: true, force: true})
    }
  }
  return {label, install: median(install), noop: median(noop)}
}

const start = []
for (let i = 0; i < runs; i++) start.push(kinto(['version']))
const startMs = median(start)

const results = [await measure('embedded (PGlite)', async (dir) => ({url: `pglite:${path.join(dir, 'data')}`, drop: async () => {}}))]
if (serverUrl) results.push(await measure('PostgreSQL', () => serverDatabase(serverUrl)))

console.log(`kinto migrate wall time, CLI start included; median of ${runs} runs; ${path.relative(root, bin)}; Node ${process.version}`)
console.log(`CLI start (kinto version): ${fmt(startMs)}`)
for (const r of results) {
  console.log(
    `${r.label.padEnd(18)} full install ${fmt(r.install)} (target < 2 s${r.install < 2000 ? ', met' : ', MISSED'})` +
      `   no-op ${fmt(r.noop)} (target < 0.5 s${r.noop < 500 ? ', met' : ', MISSED'})` +
      `   no-op / CLI start ${(r.noop / startMs).toFixed(2)}x`,
  )
}
if (!serverUrl) console.log('PostgreSQL: skipped (set KINTO_BENCH_DATABASE_URL or KINTO_TEST_DATABASE_URL to an admin URL).')

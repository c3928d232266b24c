#!/usr/bin/env node
// Benchmark (not a test): wall time of `kinto migrate` as a deploy script sees it, CLI start
// included — the full install on an empty database and the no-op run on a current one — on the
// embedded engine (PGlite) and, when a server URL is given, on PostgreSQL. `kinto --version` is
// timed too, so start-up cost and migration cost can be told apart. Targets: no-op < 0.5 s,
// full install < 2 s. (`npm run bench` measures the same within its CLI figures.)
//
//   node bench/migrate.js [--runs N] [--bin bin/run.js|bin/dev.js]
//   KINTO_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres node bench/migrate.js
//   (KINTO_TEST_DATABASE_URL is used when KINTO_BENCH_DATABASE_URL is not set)
import {existsSync} from 'node:fs'
import path from 'node:path'

import {migrateFigures} from './lib/cli-figures.js'
import {median, root, run} from './lib/util.js'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const runs = Number(opt('--runs', '5'))
const bin = path.join(root, opt('--bin', existsSync(path.join(root, 'dist', 'commands')) ? 'bin/run.js' : 'bin/dev.js'))
const serverUrl = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL
const fmt = (ms) => `${(ms / 1000).toFixed(3)} s`

const start = []
for (let i = 0; i < runs; i++) start.push((await run(process.execPath, [bin, '--version'])).ms)
const startMs = median(start)

const results = [{label: "embedded (PGlite)", ...(await migrateFigures(bin, "pglite", serverUrl, runs))}]
if (serverUrl) results.push({label: 'PostgreSQL', ...(await migrateFigures(bin, 'postgresql', serverUrl, runs))})

console.log(`kinto migrate wall time, CLI start included; median of ${runs} runs; ${path.relative(root, bin)}; Node ${process.version}`)
console.log(`CLI start (kinto --version): ${fmt(startMs)}`)
for (const r of results) {
  console.log(
    `${r.label.padEnd(18)} full install ${fmt(r.install)} (target < 2 s${r.install < 2000 ? ', met' : ', MISSED'})` +
      `   no-op ${fmt(r.noop)} (target < 0.5 s${r.noop < 500 ? ', met' : ', MISSED'})` +
      `   no-op / CLI start ${(r.noop / startMs).toFixed(2)}x`,
  )
}
if (!serverUrl) console.log('PostgreSQL: skipped (set KINTO_BENCH_DATABASE_URL or KINTO_TEST_DATABASE_URL to an admin URL).')

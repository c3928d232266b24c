#!/usr/bin/env node
// Benchmark (not a test): `kinto backup` and `kinto restore` of the bench dataset (bench/lib/dataset.js:
// 100 collections, 10k + --big records, one ACE each), per engine: wall time, rows per second and
// the peak RSS of the kinto process (sampled from /proc every 100 ms), the file size; on PostgreSQL
// also pg_dump of the same four tables (custom format, data only) as the floor, reported as a
// ratio. Uses the built dist/ and bin/run.js (npm run build).
//
//   node bench/backup.js [--big 1000000] [--engines postgresql,pglite]
//
// PostgreSQL: KINTO_BENCH_DATABASE_URL, else KINTO_TEST_DATABASE_URL, else
// postgresql://postgres@127.0.0.1:5432/postgres (an admin URL: databases are created and dropped).
import {spawn} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import path from 'node:path'

import {createBenchDatabase, loadDataset, migrate, writeBenchIni} from './lib/dataset.js'
import {kintoBin, machine, note, root, rssSampler} from './lib/util.js'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const big = Number(opt('--big', '1000000'))
const engines = opt('--engines', 'postgresql,pglite').split(',')
const adminUrl = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres'
const PG_BIN = '/usr/lib/postgresql/15/bin'
const pgTool = (name) => [path.join(PG_BIN, name), name].find((p) => p === name || existsSync(p))

/** Runs a command, sampling its RSS; resolves {code, seconds, peakMb, stdout, stderr}. */
function measured(cmd, argv) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(cmd, argv, {cwd: root, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    const sampler = rssSampler(child.pid, 100)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      const peakMb = sampler.stop()
      resolve({code, seconds: Number(process.hrtime.bigint() - started) / 1e9, peakMb, stdout, stderr})
    })
  })
}

function must(r, what) {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`)
  return r
}

const rows = []
const secret = 'bench-backup-secret'
for (const engine of engines) {
  const source = await createBenchDatabase(engine, adminUrl)
  const target = await createBenchDatabase(engine, adminUrl)
  try {
    const ini = writeBenchIni(source, secret)
    const targetIni = writeBenchIni(target, secret)
    await migrate(ini)
    await migrate(targetIni)
    await loadDataset(source, {secret, mainRecords: 10_000, bigRecords: big})
    const file = path.join(source.dir, 'bench.ndjson.gz')
    note(`${engine}: kinto backup…`)
    const b = must(await measured(process.execPath, [kintoBin(), 'backup', '--ini', ini, '-o', file, '--json']), 'kinto backup')
    const counts = JSON.parse(b.stdout).counts
    const total = Object.values(counts).reduce((a, n) => a + n, 0)
    note(`${engine}: kinto restore…`)
    const r = must(await measured(process.execPath, [kintoBin(), 'restore', file, '--ini', targetIni, '--json']), 'kinto restore')
    const row = {engine, objects: counts.objects, rows: total, mb: statSync(file).size / 1048576, backup: b, restore: r}
    if (engine === 'postgresql' && pgTool('pg_dump')) {
      const dump = path.join(source.dir, 'floor.dump')
      const tables = ['objects', 'timestamps', 'access_control_entries', 'user_principals'].flatMap((t) => ['--table', t])
      note('postgresql: pg_dump floor…')
      row.dump = must(await measured(pgTool('pg_dump'), ['--format=custom', '--data-only', ...tables, '-f', dump, source.url]), 'pg_dump')
    }
    rows.push(row)
  } finally {
    await source.drop()
    await target.drop()
  }
}

const m = machine()
console.log(`kinto backup / restore of the bench dataset (10k + ${big.toLocaleString('en')} records, one ACE each); ${m.cores} cores, ${m.cpu}, Node ${m.node}`)
console.log('')
console.log('| engine | rows (objects) | file | backup | peak RSS | restore | peak RSS |')
console.log('|---|---|---|---|---|---|---|')
for (const r of rows) {
  const rate = (x) => `${x.seconds.toFixed(1)} s (${Math.round(r.rows / x.seconds).toLocaleString('en')} rows/s)`
  console.log(`| ${r.engine} | ${r.rows.toLocaleString('en')} (${r.objects.toLocaleString('en')}) | ${r.mb.toFixed(0)} MB | ${rate(r.backup)} | ${r.backup.peakMb.toFixed(0)} MB | ${rate(r.restore)} | ${r.restore.peakMb.toFixed(0)} MB |`)
}
for (const r of rows.filter((x) => x.dump)) {
  console.log('')
  console.log(`PostgreSQL floor: pg_dump -Fc --data-only of the four tables ${r.dump.seconds.toFixed(1)} s: kinto backup takes ${(r.backup.seconds / r.dump.seconds).toFixed(2)}× as long.`)
}

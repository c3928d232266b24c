#!/usr/bin/env node
// Benchmark (not a test): the embedded engine's memory and read speed at several shared_buffers,
// on one dataset larger than any of them (bench's own loader: 10k records in one collection, --big
// in another). Each size runs in a fresh process, sizes alternating over --rounds: open time, RSS
// after open and after the reads, random single-record get by id (10k collection) and keyset pages
// of 100 (the big collection, walked from the newest, and from random positions), through our own
// PostgresStorage. Uses the built dist/ (npm run build).
//
//   node bench/pglite-memory.js [--big 200000] [--rounds 2] [--sizes 128MB,32MB,16MB,8MB]
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadDataset, migrate, writeBenchIni} from './lib/dataset.js'
import {median, note, run, targetDist} from './lib/util.js'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}

if (args[0] === '--child') {
  // one measurement: --child DIR SIZE BIG
  const [, dir, size, big] = args
  const {openDatabase} = await import(path.join(targetDist(), 'lib', 'db', 'index.js'))
  const {PostgresStorage} = await import(path.join(targetDist(), 'lib', 'storage', 'postgresql.js'))
  const rss = () => process.memoryUsage().rss / 1048576
  const started = performance.now()
  const client = openDatabase(`pglite:${dir}/data?shared_buffers=${size}`)
  const shown = (await client.query('SHOW shared_buffers')).rows[0].shared_buffers
  const openMs = performance.now() - started
  const rssOpen = rss()
  const st = new PostgresStorage(client)
  let seed = 42
  const rnd = (n) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
  const timed = async (n, fn) => {
    for (let i = 0; i < n / 10; i++) await fn()
    const t = performance.now()
    for (let i = 0; i < n; i++) await fn()
    return (performance.now() - t) / n
  }
  const main = '/buckets/bench/collections/c000'
  const bigList = '/buckets/bench/collections/c001'
  const get = await timed(3000, () => st.get('record', main, `rec-${String(1 + rnd(10000)).padStart(7, '0')}`))
  const page = (before) =>
    st.list('record', bigList, {
      sorting: [{field: 'last_modified', direction: -1}],
      limit: 101,
      paginationRules: before === undefined ? undefined : [[{field: 'last_modified', value: before, operator: 'lt'}]],
    })
  let last
  const walk = await timed(300, async () => (last = (await page(last))[99].last_modified))
  const newest = (await page(undefined))[0].last_modified
  const jump = await timed(300, () => page(newest - rnd(Number(big) - 200)))
  console.log(JSON.stringify({size, shown, openMs, rssOpen, rssEnd: rss(), get, walk, jump}))
  await client.close()
  process.exit(0)
}

const big = Number(opt('--big', '200000'))
const rounds = Number(opt('--rounds', '2'))
const sizes = opt('--sizes', '128MB,32MB,16MB,8MB').split(',')
const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-pglite-memory-'))
try {
  const db = {engine: 'pglite', dir, url: `pglite:${path.join(dir, 'data')}`}
  await migrate(writeBenchIni(db, 'bench-secret'))
  await loadDataset(db, {secret: 'bench-secret', mainRecords: 10_000, bigRecords: big})
  const results = Object.fromEntries(sizes.map((s) => [s, []]))
  for (let r = 0; r < rounds; r++) {
    for (const size of sizes) {
      const out = await run(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, size, String(big)], {timeoutMs: 300_000})
      if (out.code !== 0) throw new Error(`shared_buffers=${size}: ${out.stderr.trim()}`)
      results[size].push(JSON.parse(out.stdout.trim().split('\n').pop()))
      note(`round ${r + 1}: shared_buffers=${size} done`)
    }
  }
  const m = (xs, k) => median(xs.map((x) => x[k]))
  console.log(`embedded engine by shared_buffers; 10k + ${big} records; median of ${rounds} processes each; Node ${process.version}`)
  console.log('| shared_buffers | open | RSS open | RSS after reads | get by id | page (walk) | page (random) |')
  console.log('|---|---|---|---|---|---|---|')
  for (const size of sizes) {
    const xs = results[size]
    console.log(
      `| ${xs[0].shown} | ${m(xs, 'openMs').toFixed(0)} ms | ${m(xs, 'rssOpen').toFixed(0)} MB | ${m(xs, 'rssEnd').toFixed(0)} MB | ` +
        `${m(xs, 'get').toFixed(3)} ms | ${m(xs, 'walk').toFixed(2)} ms | ${m(xs, 'jump').toFixed(2)} ms |`,
    )
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}

#!/usr/bin/env node
// Benchmark (not a test): the embedded engine's memory and read speed at several shared_buffers,
// on one dataset larger than any of them (bench's own loader: 10k records in one collection, --big
// in another). Each size runs in a fresh process, sizes alternating over --rounds: open time, RSS
// after open and after the reads, random single-record get by id (10k collection) and keyset pages
// of 100 (the big collection, walked from the newest, and from random positions), through our own
// PostgresStorage (bench/lib/pglite-bare.js, which bench/run.js also runs for the idle RSS of
// bare PGlite). Uses the built dist/ (npm run build).
//
//   node bench/pglite-memory.js [--big 200000] [--rounds 2] [--sizes 128MB,32MB,16MB,8MB]
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {loadDataset, migrate, writeBenchIni} from './lib/dataset.js'
import {barePglite} from './lib/pglite-bare.js'
import {median, note} from './lib/util.js'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
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
      results[size].push(await barePglite('reads', path.join(dir, 'data'), size, big))
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

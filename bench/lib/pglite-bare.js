#!/usr/bin/env node
// Bare PGlite: the embedded engine in a process of its own with nothing of the runtime's server
// (no Fastify, no backends but our SqlClient and PostgresStorage from dist/), on a bench dataset's
// folder at a given shared_buffers. What the embedded engine alone costs, to set `kinto start`'s
// figures against. Two measures, each in a fresh process:
//   idle: open, the reads the bench sends a server before its idle RSS (20 lists of one record),
//         1 s of rest, then the RSS (bench/run.js: `kinto start` on PGlite ≤ this + 50 MB);
//   reads: open time, RSS after open, then random gets by id (10k collection) and keyset pages of
//         100 (the big collection, walked from the newest, and from random positions), and the
//         RSS after them (bench/pglite-memory.js, by shared_buffers).
//
//   node bench/lib/pglite-bare.js idle|reads <folder> <shared_buffers> [<big records>]
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {MAIN, BIG, BUCKET} from './dataset.js'
import {root, run, sleep, targetDist} from './util.js'

/** Runs one measure in a fresh process; resolves its figures (open time, RSS in MB, reads in ms). */
export async function barePglite(mode, folder, sharedBuffers, big = 0) {
  const out = await run(process.execPath, [fileURLToPath(import.meta.url), mode, folder, sharedBuffers, String(big)], {cwd: root, timeoutMs: 300_000})
  if (out.code !== 0) throw new Error(`bare PGlite (${mode}, shared_buffers=${sharedBuffers}): ${out.stderr.trim()}`)
  return JSON.parse(out.stdout.trim().split('\n').pop())
}

async function measure(mode, folder, size, big) {
  const {openDatabase} = await import(path.join(targetDist(), 'lib', 'db', 'index.js'))
  const {PostgresStorage} = await import(path.join(targetDist(), 'lib', 'storage', 'postgresql.js'))
  const rss = () => process.memoryUsage().rss / 1048576
  const started = performance.now()
  const client = openDatabase(`pglite:${folder}?shared_buffers=${size}`)
  const shown = (await client.query('SHOW shared_buffers')).rows[0].shared_buffers
  const openMs = performance.now() - started
  const rssOpen = rss()
  const st = new PostgresStorage(client)
  const main = `/buckets/${BUCKET}/collections/${MAIN}`
  if (mode === 'idle') {
    for (let i = 0; i < 20; i++) await st.list('record', main, {sorting: [{field: 'last_modified', direction: -1}], limit: 2})
    await sleep(1000)
    const result = {size, shown, openMs, rssOpen, rssIdle: rss()}
    // Closed cleanly: the folder is then copied for the floor and opened by the runtime.
    await client.close()
    return result
  }
  let seed = 42
  const rnd = (n) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
  const timed = async (n, fn) => {
    for (let i = 0; i < n / 10; i++) await fn()
    const t = performance.now()
    for (let i = 0; i < n; i++) await fn()
    return (performance.now() - t) / n
  }
  const bigList = `/buckets/${BUCKET}/collections/${BIG}`
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
  const result = {size, shown, openMs, rssOpen, rssEnd: rss(), get, walk, jump}
  await client.close()
  return result
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [mode, folder, size, big] = process.argv.slice(2)
  if (!['idle', 'reads'].includes(mode) || !folder || !size) {
    console.error('Usage: node bench/lib/pglite-bare.js idle|reads <folder> <shared_buffers> [<big records>]')
    process.exit(2)
  }
  console.log(JSON.stringify(await measure(mode, folder, size, Number(big ?? 0))))
  process.exit(0)
}

#!/usr/bin/env node
// Benchmark (not a test): GET /__counters__ on a large PostgreSQL dataset. The plugin's storage
// call (countAll: one statement per resource type) against what a naive implementation does (a
// count per collection, as `count(resource, parent)` per parent would), on N records spread over
// C collections. Reported as times and as a ratio; nothing is asserted.
//
//   KINTO_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres node bench/counters.js [--records N] [--collections C] [--runs R]
//   (KINTO_TEST_DATABASE_URL is used when KINTO_BENCH_DATABASE_URL is not set; needs `npm run build`)
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import pg from 'pg'

import {median, targetDist} from './lib/util.js'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const records = opt('--records', 1_000_000)
const collections = opt('--collections', 1000)
const runs = opt('--runs', 5)
const serverUrl = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL
if (!serverUrl) {
  console.log('SKIPPED: set KINTO_BENCH_DATABASE_URL (or KINTO_TEST_DATABASE_URL) to a PostgreSQL server.')
  process.exit(0)
}
const dist = (p) => import(pathToFileURL(path.join(targetDist(), p)).href)
const {createBackends} = await dist('lib/backends.js')
const {buildSettings} = await dist('lib/config/settings.js')
const {DatabaseRegistry} = await dist('lib/db/index.js')
const {ensureSchema} = await dist('lib/schema/index.js')

const name = `kinto_bench_counters_${process.pid}`
const admin = new pg.Client({connectionString: serverUrl})
await admin.connect()
await admin.query(`CREATE DATABASE ${name}`)
const url = new URL(serverUrl)
url.pathname = `/${name}`
const registry = new DatabaseRegistry()
try {
  await ensureSchema(registry.get(url.toString()), ['storage', 'permission', 'cache'])
  const db = new pg.Client({connectionString: url.toString()})
  await db.connect()
  const t0 = performance.now()
  await db.query(`INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
                  SELECT 'c' || c, '/buckets/b1', 'collection', TIMESTAMP '2026-01-01' + c * INTERVAL '1 millisecond', '{}', false
                    FROM generate_series(1, $1) AS c`, [collections])
  await db.query(`INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
                  SELECT 'r' || i, '/buckets/b1/collections/c' || (i % $2 + 1), 'record',
                         TIMESTAMP '2026-01-01' + i * INTERVAL '1 millisecond', '{"title": "x"}', i % 50 = 0
                    FROM generate_series(1, $1) AS i`, [records, collections])
  await db.query('ANALYZE objects')
  await db.end()
  const loadMs = performance.now() - t0

  const settings = buildSettings({
    'kinto.storage_backend': 'kinto.core.storage.postgresql',
    'kinto.storage_url': url.toString(),
    'kinto.permission_backend': 'kinto.core.permission.postgresql',
    'kinto.permission_url': url.toString(),
    'kinto.cache_backend': 'kinto.core.cache.postgresql',
    'kinto.cache_url': url.toString(),
  }, {})
  const backends = createBackends(settings, {registry})
  const types = ['account', 'bucket', 'group', 'collection', 'record', 'history', 'attachments']
  const time = async (fn) => {
    const out = []
    for (let i = 0; i < runs; i++) {
      const s = performance.now()
      await fn()
      out.push(performance.now() - s)
    }
    return median(out)
  }
  let total = 0
  const plugin = await time(async () => {
    const counts = await Promise.all(types.map((t) => backends.storage.countAll(t)))
    total = counts[4].objects + counts[4].tombstones
  })
  const parents = Array.from({length: collections}, (_, i) => `/buckets/b1/collections/c${i + 1}`)
  const naive = await time(async () => {
    for (const parent of parents) await backends.storage.count('record', parent)
  })
  await backends.close()
  console.log(`/__counters__ on PostgreSQL: ${records} records (${total} counted) in ${collections} collections, loaded in ${(loadMs / 1000).toFixed(1)} s; median of ${runs}`)
  console.log(`  countAll, one statement per type (7): ${plugin.toFixed(1)} ms`)
  console.log(`  a count per collection (${collections} statements, live records only): ${naive.toFixed(1)} ms`)
  console.log(`  ratio naive / plugin: ${(naive / plugin).toFixed(2)}x`)
} finally {
  await registry.closeAll()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
}

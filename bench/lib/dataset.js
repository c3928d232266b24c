// Bench databases and datasets. A dataset is written with bulk SQL (INSERT … SELECT over
// generate_series) straight into upstream's tables through our own SqlClient, with the
// bump_timestamp trigger off for the loading session (session_replication_role = replica) and
// explicit, distinct, past timestamps per list — the same rows the API would have written, in
// seconds instead of a million HTTP requests. The schema itself is installed by `kinto migrate`.
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {basicUserId, kintoBin, note, run, targetDist} from './util.js'

export const BUCKET = 'bench'
export const MAIN = 'c000' // the 10k collection (reads)
export const BIG = 'c001' // the 1M collection (pagination)
export const WRITES = 'c002' // POST / PUT / batch target
export const COLLECTIONS = 100
export const OTHER_RECORDS = 100 // records in each of the other 97 collections
export const PUT_POOL = 64 // records rewritten by the PUT If-Match scenario
export const USER = ['bench', 'bench-password']

export const recordId = (i) => `rec-${String(i).padStart(7, '0')}`
export const collectionId = (i) => `c${String(i).padStart(3, '0')}`
export const putId = (i) => `put-${String(i).padStart(3, '0')}`

async function pgAdmin(adminUrl, sql) {
  const pg = (await import('pg')).default
  const c = new pg.Client({connectionString: adminUrl})
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

/** A fresh empty database: {url, dir, drop()} (dir holds the ini, and the PGlite folder). */
export async function createBenchDatabase(engine, adminUrl) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kinto-bench-${engine}-`))
  if (engine === 'pglite') {
    return {engine, dir, url: `pglite:${path.join(dir, 'data')}`, drop: async () => rmSync(dir, {recursive: true, force: true})}
  }
  const name = `kinto_bench_${randomBytes(4).toString('hex')}`
  await pgAdmin(adminUrl, `CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`)
  await pgAdmin(adminUrl, `ALTER DATABASE ${name} SET TIMEZONE TO 'UTC'`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    engine,
    dir,
    url: url.toString(),
    async drop() {
      await pgAdmin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/** The bench ini: every backend on the database, basicauth only, no plugins. */
export function writeBenchIni(db, secret) {
  const ini = path.join(db.dir, 'kinto.ini')
  const lines = ['[app:main]', 'use = egg:kinto', 'multiauth.policies = basicauth', `kinto.userid_hmac_secret = ${secret}`, 'kinto.bucket_create_principals = system.Authenticated']
  for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = ${db.url}`)
  lines.push('', '[server:main]', 'use = egg:waitress#main', 'host = 127.0.0.1', 'port = 8888', '')
  writeFileSync(ini, lines.join('\n'), {mode: 0o600})
  return ini
}

export async function migrate(ini) {
  const r = await run(process.execPath, [kintoBin(), 'migrate', '--ini', ini], {timeoutMs: 300_000})
  if (r.code !== 0) throw new Error(`kinto migrate failed (${r.code}): ${r.stderr.trim()}`)
  return r.ms
}

async function openClient(url) {
  const {openDatabase} = await import(path.join(targetDist(), 'lib', 'db', 'index.js'))
  return openDatabase(url, {poolSize: 1, maxOverflow: 0})
}

/**
 * Loads the dataset; returns what the scenarios need to know (sizes, the owner's user id) and
 * how long each part took.
 */
export async function loadDataset(db, {secret, mainRecords, bigRecords}) {
  const owner = basicUserId(secret, ...USER)
  const client = await openClient(db.url)
  const timings = {}
  const t = () => {
    const s = Date.now()
    return () => (Date.now() - s) / 1000
  }
  const total = t()
  try {
    await client.withConnection(async (c) => {
      await c.exec('SET session_replication_role = replica')
      // Every list gets past, distinct, increasing timestamps: base + i ms (base well before now,
      // so that writes made through the API later are newer).
      const span = Math.max(mainRecords, bigRecords, OTHER_RECORDS) + 60_000
      // Whole milliseconds, as the trigger writes them (as_epoch rounds, `_since` compares raw).
      const base = `date_trunc('milliseconds', (now() AT TIME ZONE 'UTC')::timestamp) - ($1::bigint * interval '1 millisecond')`
      const bucketUri = `/buckets/${BUCKET}`
      let step = t()
      await c.query(
        `INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
         VALUES ($2, '', 'bucket', ${base}, '{}'::jsonb, FALSE)`,
        [span + 2, BUCKET],
      )
      await c.query(
        `INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
         SELECT 'c' || lpad(i::text, 3, '0'), $2, 'collection', ${base} + i * interval '1 millisecond', '{}'::jsonb, FALSE
           FROM generate_series(0, $3::int - 1) AS i`,
        [span + 1, bucketUri, COLLECTIONS],
      )
      await c.query(
        `INSERT INTO access_control_entries (object_id, permission, principal)
         VALUES ($1, 'write', $2), ($1, 'read', 'system.Authenticated')`,
        [bucketUri, owner],
      )
      await c.query(
        `INSERT INTO access_control_entries (object_id, permission, principal)
         SELECT $1 || '/collections/c' || lpad(i::text, 3, '0'), 'write', $2 FROM generate_series(0, $3::int - 1) AS i`,
        [bucketUri, owner, COLLECTIONS],
      )
      timings.containers = step()

      // Records: a realistic small document and, as the API would have, a write ACE per record.
      const insertRecords = async (collection, count, idSql) => {
        const parent = `${bucketUri}/collections/${collection}`
        await c.query(
          `INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
           SELECT ${idSql}, $2, 'record', ${base} + i * interval '1 millisecond',
                  jsonb_build_object('title', 'Record ' || i, 'n', i, 'done', i % 2 = 0,
                                     'tags', jsonb_build_array('bench', 'tag' || (i % 10)),
                                     'note', repeat('lorem ipsum ', 6)),
                  FALSE
             FROM generate_series(1, $3::int) AS i`,
          [span, parent, count],
        )
        await c.query(
          `INSERT INTO access_control_entries (object_id, permission, principal)
           SELECT $1 || '/records/' || ${idSql}, 'write', $2 FROM generate_series(1, $3::int) AS i`,
          [parent, owner, count],
        )
      }
      const recId = `'rec-' || lpad(i::text, 7, '0')`
      step = t()
      await insertRecords(MAIN, mainRecords, recId)
      timings.main = step()
      step = t()
      await insertRecords(BIG, bigRecords, recId)
      timings.big = step()
      step = t()
      await insertRecords(WRITES, PUT_POOL, `'put-' || lpad((i - 1)::text, 3, '0')`)
      for (let k = 3; k < COLLECTIONS; k++) await insertRecords(collectionId(k), OTHER_RECORDS, recId)
      timings.others = step()
      await c.exec('SET session_replication_role = DEFAULT')
      step = t()
      await c.exec('ANALYZE')
      timings.analyze = step()
    })
  } finally {
    await client.close()
  }
  timings.total = total()
  const rows = mainRecords + bigRecords + PUT_POOL + (COLLECTIONS - 3) * OTHER_RECORDS + COLLECTIONS + 1
  note(`dataset on ${db.engine}: ${rows} objects in ${timings.total.toFixed(1)} s (1M-collection part ${timings.big.toFixed(1)} s)`)
  return {owner, rows, timings, mainRecords, bigRecords}
}

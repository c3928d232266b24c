/**
 * The embedded engine's planner statistics (src/lib/db/auto-analyze.ts): PGlite has no autovacuum,
 * so `kinto start` analyzes Kinto's tables at start and then those changed past autovacuum's
 * threshold. Without it, a plural DELETE of a 10,000-record page on PGlite took 17.5 s (1.5 s
 * analyzed): the join of the page back to the table went through the list's index once per row.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {analyzeDue, startAutoAnalyze, type Baselines} from '../../src/lib/db/auto-analyze.js'
import {openDatabase, type SqlClient} from '../../src/lib/db/index.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {startServer} from '../../src/lib/server/start.js'
import {PostgresStorage} from '../../src/lib/storage/postgresql.js'
import {createPgliteDatabase, type TestDatabase} from '../helpers/db.js'

async function lastAnalyzed(client: SqlClient): Promise<Record<string, boolean>> {
  const res = await client.query<{relname: string; analyzed: boolean}>(
    `SELECT relname, last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname IN ('objects', 'access_control_entries', 'user_principals', 'timestamps', 'cache')`,
  )
  return Object.fromEntries(res.rows.map((r) => [r.relname, r.analyzed]))
}

const insert = (storage: PostgresStorage, parent: string, n: number) => storage.createMany('record', parent, Array.from({length: n}, (_, i) => ({obj: {n: i}})))

describe('analyzeDue', () => {
  let db: TestDatabase
  let client: SqlClient
  let storage: PostgresStorage
  // What a server's checks keep between them.
  const baselines: Baselines = new Map()
  beforeAll(async () => {
    db = createPgliteDatabase()
    client = openDatabase(db.url)
    await ensureSchema(client, ['storage', 'permission', 'cache'])
    storage = new PostgresStorage(client)
  })
  afterAll(async () => {
    await client?.close()
    await db?.drop()
  })

  test('the first check analyzes the tables never analyzed (not the cache, whose plans are by key)', async () => {
    expect(Object.values(await lastAnalyzed(client)).some(Boolean)).toBe(false)
    expect(await analyzeDue(client, baselines)).toEqual(['access_control_entries', 'objects', 'timestamps', 'user_principals'])
    expect(await lastAnalyzed(client)).toEqual({objects: true, timestamps: true, access_control_entries: true, user_principals: true, cache: false})
    // Nothing changed since: nothing to do.
    expect(await analyzeDue(client, baselines)).toEqual([])
  })

  test('objects: the key columns only, not the JSON documents', async () => {
    const res = await client.query<{attname: string}>(
      `SELECT a.attname FROM pg_statistic s JOIN pg_class r ON r.oid = s.starelid JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = s.staattnum WHERE r.relname = 'objects' ORDER BY 1`,
    )
    expect(res.rows.map((r) => r.attname)).not.toContain('data')
  })

  test('then only a table changed past 50 rows + 10 % of its rows', async () => {
    // The engine publishes its counts of changes now and then: asked to, before each check.
    const due = async () => {
      await client.query('SELECT pg_stat_force_next_flush()')
      await client.query('SELECT 1')
      return analyzeDue(client, baselines)
    }
    await insert(storage, '/buckets/b/collections/small', 40)
    expect(await due()).toEqual([])
    await insert(storage, '/buckets/b/collections/small', 20)
    expect(await due()).toEqual(['objects'])
    // 60 rows analyzed: the next one is due past 56 more changes.
    await insert(storage, '/buckets/b/collections/small', 50)
    expect(await due()).toEqual([])
    await insert(storage, '/buckets/b/collections/small', 10)
    expect(await due()).toEqual(['objects'])
  })
})

describe('a plural DELETE of a page on a table never analyzed', () => {
  test('joins its page back through the list index once per row; analyzed, it does not', async () => {
    const db = createPgliteDatabase()
    const client = openDatabase(db.url)
    try {
      await ensureSchema(client, ['storage'])
      await insert(new PostgresStorage(client), '/buckets/b/collections/big', 2000)
      const plan = async () => {
        const res = await client.query<{'QUERY PLAN': string}>(
          `EXPLAIN WITH matching AS (SELECT id, parent_id, resource_name FROM objects WHERE parent_id = '/buckets/b/collections/big' AND resource_name = 'record' AND NOT deleted LIMIT 10000 FOR UPDATE)
           UPDATE objects SET deleted = TRUE FROM matching m WHERE objects.id = m.id AND objects.parent_id = m.parent_id AND objects.resource_name = m.resource_name`,
        )
        return res.rows.map((r) => r['QUERY PLAN']).join('\n')
      }
      const perRow = /Nested Loop[\s\S]*CTE Scan on matching[\s\S]*Index Scan using idx_objects_resource_name_parent_id_deleted/
      expect(await plan()).toMatch(perRow)
      await analyzeDue(client)
      expect(await plan()).not.toMatch(perRow)
    } finally {
      await client.close()
      await db.drop()
    }
  })
})

describe('startAutoAnalyze', () => {
  test('checks at once, then every interval; stop() ends it', async () => {
    const db = createPgliteDatabase()
    const client = openDatabase(db.url)
    try {
      await ensureSchema(client, ['storage'])
      const analyzed: string[][] = []
      const auto = startAutoAnalyze(client, {intervalMs: 20, onAnalyzed: (tables) => analyzed.push(tables)})
      await expect.poll(() => analyzed.length, {timeout: 10_000}).toBe(1)
      expect(analyzed[0]).toEqual(['objects', 'timestamps'])
      await insert(new PostgresStorage(client), '/buckets/b/collections/c', 100)
      await expect.poll(() => analyzed.length, {timeout: 10_000}).toBe(2)
      expect(analyzed[1]).toContain('objects')
      // Nothing changed since: ten more checks analyze nothing.
      await new Promise((r) => setTimeout(r, 200))
      expect(analyzed.length).toBe(2)
      await auto.stop()
      const after = analyzed.length
      await insert(new PostgresStorage(client), '/buckets/b/collections/c', 200)
      await new Promise((r) => setTimeout(r, 100))
      expect(analyzed.length).toBe(after)
    } finally {
      await client.close()
      await db.drop()
    }
  })

  test('kinto start on an embedded database analyzes it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-auto-analyze-'))
    const ini = path.join(dir, 'kinto.ini')
    const lines = ['[app:main]', 'use = egg:kinto', 'kinto.userid_hmac_secret = auto-analyze-tests']
    for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:${path.join(dir, 'data')}`)
    writeFileSync(ini, lines.join('\n') + '\n')
    const server = await startServer(loadConfig(ini, {env: {}}), {port: 0, logger: pino({level: 'silent'}), env: {}, migrate: true})
    try {
      const client = server.registry.get(`pglite:${path.join(dir, 'data')}`)
      await expect.poll(async () => (await lastAnalyzed(client)).objects, {timeout: 10_000}).toBe(true)
    } finally {
      await server.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

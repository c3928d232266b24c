/**
 * Helpers of the backup tests: an ini and an in-process app over one database, a dataset written
 * through the HTTP API (buckets, collections, groups, records, tombstones, permissions, accounts,
 * history), and the API's answers to every read of it, to compare two databases request by request.
 */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import type {FastifyInstance} from 'fastify'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry, openDatabase} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {postgresqlSettings} from '../helpers/db.js'
import {basic, client} from '../server/helpers.js'

export const SETTINGS: Record<string, string> = {
  'kinto.userid_hmac_secret': 'backup-tests-secret',
  'kinto.includes': 'kinto.plugins.history kinto.plugins.accounts',
  'kinto.experimental_permissions_endpoint': 'true',
  'multiauth.policies': 'account basicauth',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  'kinto.account_create_principals': 'system.Everyone',
  'kinto.bucket_create_principals': 'system.Authenticated',
}

/** Writes DIR/kinto.ini for a database URL; returns its path. */
export function writeIni(dir: string, url: string): string {
  const lines = ['[app:main]', 'use = egg:kinto', ...Object.entries({...SETTINGS, ...postgresqlSettings(url)}).map(([k, v]) => `${k} = ${v}`)]
  lines.push('', '[server:main]', 'use = egg:waitress#main', 'host = 127.0.0.1', 'port = %(http_port)s', '')
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, lines.join('\n'))
  return ini
}

export interface TestApp {
  app: FastifyInstance
  request: ReturnType<typeof client>
  close(): Promise<void>
}

/** The app over a database whose schema is installed (the caller migrated it). */
export function openApp(url: string): TestApp {
  const registry = new DatabaseRegistry()
  const settings = buildSettings({...SETTINGS, ...postgresqlSettings(url)}, {})
  const backends = createBackends(settings, {registry})
  const app = createApp({settings, backends})
  return {
    app,
    request: client(app, ALICE),
    async close() {
      await app.close()
      await backends.close()
      await registry.closeAll()
    },
  }
}

export const ALICE = basic('alice', 'alice-pw')
export const BOB = basic('bob', 'bob-pw')
/** An account (accounts plugin) and its credentials. */
export const CAROL = basic('carol', 'carol-password')

async function ok(p: Promise<{status: number; raw: string}>, what: string) {
  const r = await p
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.raw}`)
  return r
}

/** A varied dataset: two buckets, collections, groups, records (some deleted), permissions, an account, history. */
export async function populate(t: TestApp): Promise<void> {
  const r = t.request
  await ok(r('PUT', '/v1/accounts/carol', {body: {data: {password: 'carol-password'}}, auth: null}), 'account')
  for (const b of ['main', 'other']) {
    await ok(r('PUT', `/v1/buckets/${b}`, {body: {data: {title: `Bucket ${b}`}, permissions: {read: ['system.Authenticated']}}}), 'bucket')
  }
  await ok(r('PUT', '/v1/buckets/main/groups/editors', {body: {data: {members: ['account:carol', 'basicauth:nobody']}}}), 'group')
  for (const c of ['articles', 'empty', 'tags']) {
    await ok(r('PUT', `/v1/buckets/main/collections/${c}`, {body: {data: {c}, permissions: {write: ['/buckets/main/groups/editors']}}}), 'collection')
  }
  await ok(r('PUT', '/v1/buckets/other/collections/misc', {body: {data: {}}}), 'collection')
  for (let i = 0; i < 40; i++) {
    const body = {data: {title: `Article ${i} — ünïcødé ✓`, n: i, ratio: i / 7, nested: {list: [i, `x${i}`, null, true]}}, ...(i % 5 === 0 ? {permissions: {read: ['account:carol']}} : {})}
    await ok(r('PUT', `/v1/buckets/main/collections/articles/records/a${String(i).padStart(3, '0')}`, {body}), 'record')
  }
  for (let i = 0; i < 40; i += 4) await ok(r('DELETE', `/v1/buckets/main/collections/articles/records/a${String(i).padStart(3, '0')}`), 'delete')
  for (let i = 1; i < 40; i += 6) await ok(r('PATCH', `/v1/buckets/main/collections/articles/records/a${String(i).padStart(3, '0')}`, {body: {data: {patched: true}}}), 'patch')
  // carol (an account in the editors group) writes too; bob creates his own bucket
  await ok(r('POST', '/v1/buckets/main/collections/tags/records', {body: {data: {tag: 'by-carol'}}, auth: CAROL}), 'carol')
  await ok(r('PUT', '/v1/buckets/bobs', {body: {data: {}}, auth: BOB}), 'bob bucket')
  await ok(r('PUT', '/v1/buckets/bobs/collections/private', {body: {data: {}}, auth: BOB}), 'bob collection')
  await ok(r('PUT', '/v1/buckets/bobs/collections/private/records/r1', {body: {data: {secret: 1}}, auth: BOB}), 'bob record')
  // an empty list read while empty gets a stable timestamp (the timestamps table)
  await ok(r('GET', '/v1/buckets/main/collections/empty/records'), 'empty list')
  // a whole collection deleted: tombstones of the collection and its records
  await ok(r('PUT', '/v1/buckets/other/collections/gone', {body: {data: {}}}), 'collection')
  await ok(r('PUT', '/v1/buckets/other/collections/gone/records/z1', {body: {data: {}}}), 'record')
  await ok(r('DELETE', '/v1/buckets/other/collections/gone'), 'delete collection')
}

export interface Answer {
  status: number
  etag?: string
  lastModified?: string
  body: unknown
}

/** Every read of the dataset, by URL and user: status, ETag, Last-Modified and body. */
export async function apiAnswers(t: TestApp, perCollection = 100): Promise<Record<string, Answer>> {
  const out: Record<string, Answer> = {}
  const users = {alice: ALICE, bob: BOB, carol: CAROL}
  for (const [name, auth] of Object.entries(users)) {
    const get = async (url: string) => {
      const res = await t.request('GET', url, {auth})
      const a: Answer = {status: res.status, body: res.body}
      if (res.headers.etag) a.etag = String(res.headers.etag)
      if (res.headers['last-modified']) a.lastModified = String(res.headers['last-modified'])
      out[`${name} ${url}`] = a
      return res
    }
    await get('/v1/permissions?_sort=uri')
    await get(`/v1/accounts`)
    await get('/v1/accounts/carol')
    const buckets = await get('/v1/buckets?_sort=id')
    for (const b of (buckets.body?.data ?? []) as Array<{id: string}>) {
      const base = `/v1/buckets/${b.id}`
      await get(base)
      await get(`${base}/history?_sort=last_modified,uri`)
      const groups = await get(`${base}/groups?_sort=id`)
      for (const g of (groups.body?.data ?? []) as Array<{id: string}>) await get(`${base}/groups/${g.id}`)
      const collections = await get(`${base}/collections?_sort=id`)
      for (const c of (collections.body?.data ?? []) as Array<{id: string}>) {
        const cbase = `${base}/collections/${c.id}`
        await get(cbase)
        const records = await get(`${cbase}/records?_sort=id`)
        await get(`${cbase}/records?_since=0&_sort=last_modified`)
        const list = (records.body?.data ?? []) as Array<{id: string; last_modified: number}>
        if (list.length > 2) {
          const mid = [...list].sort((x, y) => x.last_modified - y.last_modified)[Math.floor(list.length / 2)].last_modified
          await get(`${cbase}/records?_since=${mid}&_sort=last_modified`)
          await get(`${cbase}/records?_before=${mid}&_sort=-last_modified&_limit=3`)
        }
        for (const rec of list.slice(0, perCollection)) await get(`${cbase}/records/${rec.id}`)
      }
    }
  }
  return out
}

/** The tables a backup carries, in the order of rowCounts. */
export const BACKUP_TABLES = ['objects', 'timestamps', 'access_control_entries', 'user_principals']

/** Installs the cache, storage and permission schemas in the database of `url`. */
export async function migrated(url: string): Promise<void> {
  const c = openDatabase(url)
  try {
    await ensureSchema(c, ['cache', 'storage', 'permission'])
  } finally {
    await c.close()
  }
}

/** An ini over a new embedded folder made by `folder` (schema installed unless bare). */
export async function embedded(folder: () => string, bare = false): Promise<{ini: string; url: string; dir: string}> {
  const dir = folder()
  const url = `pglite:${path.join(dir, 'data')}`
  if (!bare) await migrated(url)
  return {ini: writeIni(dir, url), url, dir}
}

/** Rows per table of BACKUP_TABLES; zero for a table that does not exist (no schema yet). */
export async function rowCounts(url: string): Promise<number[]> {
  const c = openDatabase(url)
  try {
    const out: number[] = []
    for (const t of BACKUP_TABLES) {
      const exists = (await c.query<{r: string | null}>('SELECT to_regclass($1) AS r', [t])).rows[0].r
      out.push(exists ? Number((await c.query<{n: number}>(`SELECT count(*) AS n FROM ${t}`)).rows[0].n) : 0)
    }
    return out
  } finally {
    await c.close()
  }
}

/** `n` records of ~200 bytes in /buckets/bulk/collections/rows, in one statement (timestamps by the trigger, as for any write). */
export async function insertBulkRows(url: string, n: number): Promise<void> {
  const c = openDatabase(url)
  try {
    await c.query(
      `INSERT INTO objects (id, parent_id, resource_name, data, deleted)
       SELECT 'bulk' || i, '/buckets/bulk/collections/rows', 'record', jsonb_build_object('i', i, 'pad', repeat('x', 200)), FALSE
         FROM generate_series(1, $1::int) AS i`,
      [n],
    )
  } finally {
    await c.close()
  }
}

/** An embedded folder (embedded()) filled with populate()'s dataset. */
export async function populatedEmbedded(folder: () => string): Promise<{ini: string; url: string; dir: string}> {
  const source = await embedded(folder)
  const t = openApp(source.url)
  try {
    await populate(t)
  } finally {
    await t.close()
  }
  return source
}

/**
 * Lists longer than kinto.storage_max_fetch_size (lowered to 3 here, so that a handful of objects
 * stands for the 100k-record collections of a real deployment): deleting their collection or
 * bucket removes every object below it, and a page of a plural DELETE leaves the permissions of
 * the objects it did not reach. On memory and on PostgreSQL (PGlite here, the real server when
 * KINTO_TEST_DATABASE_URL is set).
 */
import type {FastifyInstance} from 'fastify'
import {createHmac} from 'node:crypto'

import {afterEach, describe, expect, test, vi} from 'vitest'

import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {postgresPrefetch, type PrefetchQuery} from '../../src/lib/prefetch.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {PostgresStorage} from '../../src/lib/storage/postgresql.js'
import {createTestDatabase} from '../helpers/db.js'
import {BOB, client, memoryApp, postgresApp} from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const BOB_ID = 'basicauth:' + createHmac('sha256', '').update('bob:secret').digest('hex')

const SETTINGS = {'kinto.includes': 'kinto.plugins.history', 'kinto.storage_max_fetch_size': '3', 'kinto.bucket_create_principals': 'system.Authenticated'}

const kinds: Array<[string, () => Promise<{app: FastifyInstance; close(): Promise<void>}>]> = [
  ['memory', async () => {
    const app = memoryApp(SETTINGS)
    return {app, close: () => app.close()}
  }],
  ['postgresql', () => postgresApp(SETTINGS)],
]

async function open(make: () => Promise<{app: FastifyInstance; close(): Promise<void>}>) {
  const {app, close} = await make()
  cleanups.push(close)
  return client(app)
}

/** Seven records in /buckets/b/collections/<cid> (more than two fetches of three). */
async function fill(req: ReturnType<typeof client>, cid: string): Promise<void> {
  expect((await req('PUT', `/v1/buckets/b/collections/${cid}`, {body: {}})).status).toBe(201)
  for (let i = 0; i < 7; i++) {
    expect((await req('PUT', `/v1/buckets/b/collections/${cid}/records/r${i}`, {body: {data: {i}}})).status).toBe(201)
  }
}

describe.each(kinds)('more objects than storage_max_fetch_size (%s)', (_kind, make) => {
  test('deleting a collection deletes all its records, not one fetch of them', async () => {
    const req = await open(make)
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    await fill(req, 'c')
    expect((await req('DELETE', '/v1/buckets/b/collections/c')).status).toBe(200)
    expect((await req('PUT', '/v1/buckets/b/collections/c', {body: {}})).status).toBe(201)
    const left = await req('HEAD', '/v1/buckets/b/collections/c/records')
    expect(left.headers['total-objects']).toBe('0')
    expect((await req('GET', '/v1/buckets/b/collections/c/records?_since=0')).body.data).toEqual([])
    expect((await req('GET', '/v1/buckets/b/collections/c/records/r6')).status).toBe(404)
  })

  test('deleting a bucket deletes all its collections, records and history', async () => {
    const req = await open(make)
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    await fill(req, 'c1')
    await fill(req, 'c2')
    for (let i = 0; i < 4; i++) expect((await req('PUT', `/v1/buckets/b/groups/g${i}`, {body: {data: {members: [BOB_ID]}}})).status).toBe(201)
    expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals.filter((p: string) => p.startsWith('/buckets/b/'))).toHaveLength(4)
    expect((await req('DELETE', '/v1/buckets/b')).status).toBe(200)
    // Bob loses all four groups, not the first fetch of them.
    expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals.filter((p: string) => p.startsWith('/buckets/b/'))).toEqual([])
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    expect((await req('HEAD', '/v1/buckets/b/collections')).headers['total-objects']).toBe('0')
    expect((await req('HEAD', '/v1/buckets/b/groups')).headers['total-objects']).toBe('0')
    expect((await req('PUT', '/v1/buckets/b/collections/c1', {body: {}})).status).toBe(201)
    expect((await req('HEAD', '/v1/buckets/b/collections/c1/records')).headers['total-objects']).toBe('0')
    // The new bucket's history: its creation and the collection's, nothing of the old bucket.
    const history = await req('GET', '/v1/buckets/b/history')
    expect(history.body.data.map((h: {action: string; resource_name: string}) => `${h.action} ${h.resource_name}`)).toEqual(['create collection', 'create bucket'])
  })
})

describe.each(kinds)('a plural DELETE of one page (%s)', (_kind, make) => {
  test('leaves the permissions of the records beyond the page', async () => {
    const req = await open(make)
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/b/collections/c', {body: {}})).status).toBe(201)
    const R = '/v1/buckets/b/collections/c/records'
    for (let i = 0; i < 5; i++) {
      expect((await req('PUT', `${R}/r${i}`, {body: {data: {i}, permissions: {read: ['system.Authenticated']}}})).status).toBe(201)
    }
    const page = await req('DELETE', `${R}?_sort=i`)
    expect(page.body.data.map((d: {id: string}) => d.id)).toEqual(['r0', 'r1', 'r2'])
    expect(page.headers['next-page']).toBeDefined()
    const kept = await req('GET', `${R}/r4`)
    expect(kept.status).toBe(200)
    expect(kept.body.permissions.read).toEqual(['system.Authenticated'])
    // The last page takes the rest, and their permissions with them.
    const rest = await req('DELETE', R)
    expect(rest.body.data.map((d: {id: string}) => d.id).sort()).toEqual(['r3', 'r4'])
    expect(rest.headers['next-page']).toBeUndefined()
    expect((await req('PUT', `${R}/r4`, {body: {data: {}}})).body.permissions.read).toBeUndefined()
  })
})

test('the read prefetch leaves a page bigger than its byte bound to storage.list (a 600 MB page as one column crashed the server)', async () => {
  const db = await createTestDatabase({schema: true})
  const registry = new DatabaseRegistry()
  cleanups.push(async () => {
    await registry.closeAll()
    await db.drop()
  })
  const sql = registry.get(db.url)
  await ensureSchema(sql, ['storage', 'permission', 'cache'])
  const storage = new PostgresStorage(sql)
  await sql.query(`INSERT INTO access_control_entries (object_id, permission, principal) VALUES ('/buckets/b', 'read', 'system.Everyone')`)
  for (let i = 0; i < 3; i++) await storage.create('record', '/buckets/b/collections/c', {blob: 'x'.repeat(1000)})
  const query: PrefetchQuery = {
    userId: null,
    principals: ['system.Everyone'],
    bound: [['/buckets/b', 'read']],
    objects: [],
    acls: [],
    page: {resourceName: 'record', parentId: '/buckets/b/collections/c', options: {limit: 11}},
  }
  const small = await postgresPrefetch(sql, query, storage, {pageMaxBytes: 1_000_000})
  expect(small.allowed).toBe(true)
  expect(small.page?.map((o) => (o.blob as string).length)).toEqual([1000, 1000, 1000])
  const big = await postgresPrefetch(sql, query, storage, {pageMaxBytes: 2000})
  expect(big.allowed).toBe(true)
  expect(big.page).toBeNull()
})

describe.each(kinds)('the history of a page of a plural DELETE (%s)', (kind, make) => {
  test('one entry per record, readable by who could read the record, written in one INSERT on PostgreSQL', async () => {
    const req = await open(make)
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    // bob reads the collection, not the bucket: he sees the entries through their own ACEs.
    expect((await req('PUT', '/v1/buckets/b/collections/c', {body: {permissions: {read: [BOB_ID]}}})).status).toBe(201)
    const R = '/v1/buckets/b/collections/c/records'
    for (let i = 0; i < 3; i++) expect((await req('PUT', `${R}/r${i}`, {body: {data: {i}}})).status).toBe(201)
    const creates = vi.spyOn(PostgresStorage.prototype, 'create')
    const createMany = vi.spyOn(PostgresStorage.prototype, 'createMany')
    try {
      const deleted = await req('DELETE', R)
      expect(deleted.body.data).toHaveLength(3)
      if (kind === 'postgresql') {
        // (The memory storage has no createMany: its entries go one by one.)
        expect(creates.mock.calls.filter(([resource]) => resource === 'history')).toHaveLength(0)
        expect(createMany.mock.calls.filter(([resource]) => resource === 'history').map(([, , items]) => items.length)).toEqual([3])
      }
    } finally {
      creates.mockRestore()
      createMany.mockRestore()
    }
    const history = await req('GET', '/v1/buckets/b/history?resource_name=record&action=delete', {auth: BOB})
    expect(history.status).toBe(200)
    const entries = history.body.data as Array<{record_id: string; uri: string; target: {data: {deleted?: boolean}}; last_modified: number}>
    expect(entries.map((e) => e.record_id).sort()).toEqual(['r0', 'r1', 'r2'])
    expect(entries.every((e) => e.uri === `/buckets/b/collections/c/records/${e.record_id}` && e.target.data.deleted === true)).toBe(true)
    expect(new Set(entries.map((e) => e.last_modified)).size).toBe(3)
  })
})

/**
 * kinto.plugins.counters: /__counters__ as upstream's (objects and tombstones per resource type,
 * zeros left out), on memory and on PostgreSQL (PGlite here, the real server when
 * KINTO_TEST_DATABASE_URL is set), and the one query per resource type on PostgreSQL.
 */
import type {FastifyInstance} from 'fastify'
import {afterEach, describe, expect, test} from 'vitest'

import {ALICE, basic, client, memoryApp, postgresApp} from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const INCLUDES = {'kinto.includes': 'kinto.plugins.counters kinto.plugins.history'}

async function fill(app: FastifyInstance): Promise<void> {
  const req = client(app)
  expect((await req('PUT', '/v1/buckets/b1', {body: {}})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b2', {body: {}, auth: basic('bob')})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b1/collections/c1', {body: {}})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b1/collections/c2', {body: {}})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b1/groups/g1', {body: {data: {members: []}}})).status).toBe(201)
  for (const c of ['c1', 'c2']) {
    for (let i = 0; i < 3; i++) expect((await req('PUT', `/v1/buckets/b1/collections/${c}/records/r${i}`, {body: {data: {i}}})).status).toBe(201)
  }
  expect((await req('DELETE', '/v1/buckets/b1/collections/c1/records/r0')).status).toBe(200)
  expect((await req('DELETE', '/v1/buckets/b1/collections/c2/records/r1')).status).toBe(200)
}

const kinds: Array<[string, () => Promise<{app: FastifyInstance; close(): Promise<void>}>]> = [
  ['memory', async () => {
    const app = memoryApp(INCLUDES)
    return {app, close: () => app.close()}
  }],
  ['postgresql', () => postgresApp(INCLUDES)],
]

describe.each(kinds)('/__counters__ (%s)', (_kind, make) => {
  test('objects and tombstones per resource type, anonymous, zeros left out', async () => {
    const {app, close} = await make()
    cleanups.push(close)
    const req = client(app, null)
    expect((await req('GET', '/v1/__counters__')).body).toEqual({objects: {}, tombstones: {}})
    await fill(app)
    const res = await req('GET', '/v1/__counters__')
    expect(res.status).toBe(200)
    expect(res.body.tombstones).toEqual({record: 2})
    expect(res.body.objects).toMatchObject({bucket: 2, collection: 2, group: 1, record: 4})
    expect(res.body.objects.history).toBeGreaterThan(0)
    expect(Object.keys(res.body.objects).every((k) => ['account', 'bucket', 'group', 'collection', 'record', 'history', 'attachments'].includes(k))).toBe(true)
    const hello = await client(app, ALICE)('GET', '/v1/')
    expect(hello.body.capabilities.counters_endpoint.url).toBe('https://kinto.readthedocs.io/en/latest/api/1.x/counters.html')
  })
})

test('PostgreSQL: one statement per resource type, however many collections', async () => {
  const {app, close} = await postgresApp(INCLUDES)
  cleanups.push(close)
  await fill(app)
  const calls: string[] = []
  const storage = app.kinto.backends.storage as unknown as {q: {query: (sql: string, values?: unknown[]) => Promise<unknown>}}
  const query = storage.q.query.bind(storage.q)
  storage.q.query = (sql, values) => {
    calls.push(sql)
    return query(sql, values)
  }
  expect((await client(app, null)('GET', '/v1/__counters__')).status).toBe(200)
  expect(calls.filter((sql) => /FROM objects/.test(sql))).toHaveLength(7)
})

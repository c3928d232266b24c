/**
 * A batch's consecutive record creates are written together on the postgresql backends
 * (src/lib/server/batch-turns.ts): one INSERT and one ACE statement for the run. The same batch
 * must answer as when each sub-request runs alone after the one before it (the storage without
 * `createMany`): the same statuses, headers and bodies (ids and timestamps aside, which differ
 * by nature), timestamps increasing in the batch's order, the same events in the same order for
 * listeners and history, the same `subrequest` hooks in the same order (and the same `view` hooks).
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test, vi} from 'vitest'

import * as querystring from '../../src/lib/server/querystring.js'
import {PostgresStorage} from '../../src/lib/storage/postgresql.js'
import {client, postgresApp} from './helpers.js'

const basic = (user: string) => 'Basic ' + Buffer.from(`${user}:x`).toString('base64')
const BOB = basic('bob')
const MALLORY = basic('mallory')

let env: {app: FastifyInstance; close(): Promise<void>}
let req: ReturnType<typeof client>
let bobId: string

beforeAll(async () => {
  env = await postgresApp({'kinto.includes': 'kinto.plugins.history', 'kinto.experimental_collection_schema_validation': 'true'})
  req = client(env.app)
  bobId = (await req('GET', '/v1/', {auth: BOB})).body.user.id
  expect((await req('PUT', '/v1/buckets/tw', {body: {}})).status).toBe(201)
}, 120_000)
afterAll(async () => env?.close())

const schema = {type: 'object', properties: {n: {type: 'number'}}}

/** A sub-request of a batch, as the tests write them. */
interface SubRequest {
  method: string
  path: string
  headers?: Record<string, string>
  body: {data: Record<string, unknown>; permissions?: Record<string, string[]>}
}

/** The batch: creates with 4xx, 200s, other users, permissions and a PUT among them. */
function requests(cid: string): SubRequest[] {
  const records = `/buckets/tw/collections/${cid}/records`
  return [
    {method: 'POST', path: records, body: {data: {n: 1}}},
    {method: 'POST', path: records, body: {data: {n: 2}, permissions: {read: ['system.Everyone']}}},
    {method: 'POST', path: records, body: {data: {id: 'given-1', n: 3}}},
    {method: 'POST', path: records, body: {data: {n: 'not a number'}}},
    {method: 'POST', path: records, headers: {Authorization: BOB}, body: {data: {n: 5}}},
    {method: 'POST', path: records, headers: {Authorization: MALLORY}, body: {data: {n: 6}}},
    {method: 'POST', path: records, body: {data: {id: 'existing', n: 7}}},
    {method: 'POST', path: records, body: {data: {id: 'not valid!', n: 8}}},
    {method: 'POST', path: records, body: {data: {n: 9}, permissions: {unknown: ['x']}}},
    {method: 'POST', path: records, body: {data: {n: 10}}},
    {method: 'PUT', path: `${records}/given-1`, body: {data: {n: 11}}},
    {method: 'POST', path: records, body: {data: {n: 12}}},
    {method: 'POST', path: `/buckets/tw/collections/missing/records`, body: {data: {n: 13}}},
    {method: 'POST', path: records, body: {data: {n: 14}}},
    {method: 'POST', path: records, body: {data: {n: 15}}},
  ]
}

interface Seen {
  responses: Array<{status: number; path: string; headers: Record<string, string>; body: unknown}>
  hooks: string[]
  events: string[]
  history: unknown[]
}

/** Creates before the batch: a live record `existing`. */
async function existing(records: string): Promise<void> {
  expect((await req('PUT', `${records}/existing`, {body: {data: {n: 0}}})).status).toBe(201)
}

async function runBatch(cid: string, together: boolean, batch: (cid: string) => SubRequest[] = requests, prepare = existing): Promise<Seen> {
  expect((await req('PUT', `/v1/buckets/tw/collections/${cid}`, {body: {data: {schema}, permissions: {'record:create': [bobId]}}})).status).toBe(201)
  await prepare(`/v1/buckets/tw/collections/${cid}/records`)
  const hooks: string[] = []
  const events: string[] = []
  const kinto = env.app.kinto
  let listening = true
  kinto.hooks.on('subrequest', ({req: sub, response}) => void (listening && hooks.push(`sub ${sub.method} ${sub.path} ${response.status}`)))
  kinto.hooks.on('view', ({service, method}) => void (listening && hooks.push(`view ${service.name} ${method}`)))
  kinto.events.onChanged({resources: ['record']}, (event) => {
    if (listening) events.push(`${event.action} ${event.parentId} ${event.impacted.map((c) => (c.new as {n: number}).n).join(',')}`)
  })
  const saved = PostgresStorage.prototype.createMany
  if (!together) (PostgresStorage.prototype as {createMany?: unknown}).createMany = undefined
  let r
  try {
    r = await req('POST', '/v1/batch', {body: {requests: batch(cid)}})
  } finally {
    PostgresStorage.prototype.createMany = saved
    listening = false
  }
  expect(r.status).toBe(200)
  const history = (await req('GET', `/v1/buckets/tw/history?collection_id=${cid}&_sort=last_modified`)).body.data
  return {responses: r.body.responses, hooks, events, history}
}

/** Ids and timestamps replaced by their rank, the collection id by C. */
function normalised(seen: Seen, cid: string): unknown {
  const ranks = new Map<string, string>()
  const rank = (prefix: string, value: string) => {
    if (!ranks.has(value)) ranks.set(value, `${prefix}${ranks.size}`)
    return ranks.get(value)!
  }
  const walk = (v: unknown): unknown => {
    if (typeof v === 'number') return v > 1e12 ? rank('ts', String(v)) : v
    if (typeof v === 'string') {
      return v
        .replaceAll(cid, 'C')
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => rank('id', id))
        .replace(/1\d{12}/g, (t) => rank('ts', t))
        .replace(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/, 'DATE')
        .replace(/^\d{4}-\d\d-\d\dT[\d:.]+\+00:00$/, 'DATE')
    }
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [walk(k) as string, walk(x)]))
    return v
  }
  // A history entry's own timestamp is the history list's: ranked apart from the records', which
  // it may equal by chance (two lists, one millisecond) on one side and not on the other.
  const entryStamps = new Map<unknown, string>()
  const entryStamp = (t: unknown) => entryStamps.get(t) ?? entryStamps.set(t, `hts${entryStamps.size}`).get(t)!
  const rest = walk({...seen, history: []}) as Record<string, unknown>
  const history = (seen.history as Array<Record<string, unknown>>).map(({last_modified, ...entry}) => ({...(walk(entry) as object), last_modified: entryStamp(last_modified)}))
  return {...rest, history}
}

describe('a batch of creates written together answers as one after the other', () => {
  test('responses, hooks, events and history', async () => {
    const alone = await runBatch('c-alone', false)
    const together = await runBatch('c-together', true)
    expect(together.responses.map((x) => x.status)).toEqual([201, 201, 201, 400, 201, 403, 200, 400, 400, 201, 200, 201, 404, 201, 201])
    // The `view` hooks of a run's sub-requests come as each view ends: a 4xx before the run's
    // writes reports before the creates ahead of it. The same hooks, and `subrequest` in order.
    const views = (seen: Seen) => seen.hooks.filter((h) => h.startsWith('view ')).sort()
    expect(views(together)).toEqual(views(alone))
    const inOrder = (seen: Seen) => ({...seen, hooks: seen.hooks.filter((h) => !h.startsWith('view '))})
    expect(normalised(inOrder(together), 'c-together')).toEqual(normalised(inOrder(alone), 'c-alone'))
    // Timestamps increase in the batch's order.
    const stamps = together.responses.filter((x) => x.status === 201).map((x) => (x.body as {data: {last_modified: number}}).data.last_modified)
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b))
    expect(new Set(stamps).size).toBe(stamps.length)
    expect(together.events.length).toBeGreaterThan(0)
  })

  test('a run written together: one INSERT for its creates', async () => {
    const seen: string[] = []
    const saved = PostgresStorage.prototype.createMany
    PostgresStorage.prototype.createMany = async function (this: PostgresStorage, ...args: Parameters<typeof saved>) {
      // The records' runs (the history of the batch is one more createMany, of 'history').
      if (args[0] === 'record') seen.push(`${args[2].length}`)
      return saved.apply(this, args)
    }
    try {
      await runBatch('c-count', true)
    } finally {
      PostgresStorage.prototype.createMany = saved
    }
    // 0-9 (their creates: 0, 1, 2, 4, and 9 for n: 10), then 11-14 (12 and the missing
    // collection end the runs: 11 alone, 13-14 together).
    expect(seen).toEqual(['5', '2'])
  })
})

/** Live ids and tombstones before the batch. */
async function liveAndDeleted(records: string): Promise<void> {
  for (const [id, n] of [['live-a', 100], ['live-b', 101], ['tomb-a', 102], ['tomb-b', 103]] as const) {
    expect((await req('PUT', `${records}/${id}`, {body: {data: {n}}})).status).toBe(201)
  }
  for (const id of ['tomb-a', 'tomb-b']) expect((await req('DELETE', `${records}/${id}`)).status).toBe(200)
}

/** Creates with ids: new ones, live ones (200), tombstones (201), one without an id, an id given twice. */
function withIds(cid: string): SubRequest[] {
  const records = `/buckets/tw/collections/${cid}/records`
  const post = (data: Record<string, unknown>, extra: Omit<SubRequest['body'], 'data'> = {}): SubRequest => ({method: 'POST', path: records, body: {data, ...extra}})
  return [
    post({id: 'new-1', n: 1}),
    post({id: 'live-a', n: 2}),
    post({id: 'tomb-a', n: 3}),
    post({n: 4}),
    post({id: 'live-b', n: 5}),
    post({id: 'tomb-b', n: 6}, {permissions: {read: ['system.Everyone']}}),
    post({id: 'new-2', n: 7}),
    post({id: 'new-3', n: 8}),
    // The same id again: a new run, which reads it live (created by the run before).
    post({id: 'new-3', n: 9}),
    post({id: 'new-4', n: 10}),
    post({id: 5, n: 11}),
  ]
}

describe('a batch of creates with ids reads the run\'s ids in one statement', () => {
  test('live ids answer 200 with the record, tombstones and new ids 201: as one after the other', async () => {
    const reads: string[][] = []
    const saved = PostgresStorage.prototype.getMany
    PostgresStorage.prototype.getMany = async function (this: PostgresStorage, ...args: Parameters<typeof saved>) {
      reads.push([...args[2]])
      return saved.apply(this, args)
    }
    let alone: Seen
    let together: Seen
    try {
      alone = await runBatch('i-alone', false, withIds, liveAndDeleted)
      // One after the other (no createMany: no run), each id is read alone.
      expect(reads).toEqual([])
      together = await runBatch('i-together', true, withIds, liveAndDeleted)
    } finally {
      PostgresStorage.prototype.getMany = saved
    }
    // Two runs: new-3 given twice ends the first; the second reads new-3 once the first wrote it.
    expect(reads).toEqual([['new-1', 'live-a', 'tomb-a', 'live-b', 'tomb-b', 'new-2', 'new-3'], ['new-3', 'new-4']])
    expect(together.responses.map((x) => x.status)).toEqual([201, 200, 201, 201, 200, 201, 201, 201, 200, 201, 400])
    const body = (k: number) => (together.responses[k].body as {data: Record<string, unknown>}).data
    expect(body(1)).toMatchObject({id: 'live-a', n: 100})
    expect(body(4)).toMatchObject({id: 'live-b', n: 101})
    expect(body(2)).toMatchObject({id: 'tomb-a', n: 3})
    expect(body(8)).toMatchObject({id: 'new-3', n: 8})
    // The same `subrequest` hooks in order, events, history and bodies; the same `view` hooks.
    const inOrder = (seen: Seen) => ({...seen, hooks: seen.hooks.filter((h) => !h.startsWith('view '))})
    expect(inOrder(together).hooks).toHaveLength(withIds('x').length)
    expect(normalised(inOrder(together), 'i-together')).toEqual(normalised(inOrder(alone!), 'i-alone'))
    const views = (seen: Seen) => seen.hooks.filter((h) => h.startsWith('view ')).sort()
    expect(views(together)).toEqual(views(alone!))
    expect(together.events.length).toBeGreaterThan(0)
  })
})

describe('run detection builds each sub-request once', () => {
  test('the sub-requests it looks at and does not run together are built once, not again by the loop', async () => {
    // buildSubrequest parses each sub-request's query string once (parseQuery): each path here
    // has its own (`b=k`), so the calls per query string count the builds of that sub-request.
    const cid = 'b-once'
    expect((await req('PUT', `/v1/buckets/tw/collections/${cid}`, {body: {data: {}}})).status).toBe(201)
    const records = `/buckets/tw/collections/${cid}/records`
    const batch = [
      {method: 'POST', path: `${records}?b=0`, body: {data: {n: 0}}},
      {method: 'POST', path: `${records}?b=1`, body: {data: {n: 1}}},
      // Not a record create: ends the run above, starts none.
      {method: 'POST', path: '/buckets/tw/collections?b=2', body: {data: {id: 'b-once-other'}}},
      // A conditional create: starts no run.
      {method: 'POST', path: `${records}?b=3`, headers: {'If-None-Match': '*'}, body: {data: {n: 3}}},
      // A run of one (the PUT after it ends it): no run.
      {method: 'POST', path: `${records}?b=4`, body: {data: {n: 4}}},
      {method: 'PUT', path: `${records}/b-once-put?b=5`, body: {data: {n: 5}}},
      {method: 'POST', path: `${records}?b=6`, body: {data: {n: 6}}},
      {method: 'POST', path: `${records}?b=7`, body: {data: {n: 7}}},
      // A path that is not UTF-8 ends the run above; its build's error is its 400.
      {method: 'POST', path: '/buckets/%C3%28/collections/c/records', body: {data: {n: 8}}},
    ]
    const parsed = new Map<string, number>()
    const original = querystring.parseQuery
    const spy = vi.spyOn(querystring, 'parseQuery').mockImplementation((raw) => {
      if (raw.startsWith('b=')) parsed.set(raw, (parsed.get(raw) ?? 0) + 1)
      return original(raw)
    })
    const runs: number[] = []
    const saved = PostgresStorage.prototype.createMany
    PostgresStorage.prototype.createMany = async function (this: PostgresStorage, ...args: Parameters<typeof saved>) {
      if (args[0] === 'record') runs.push(args[2].length)
      return saved.apply(this, args)
    }
    let r
    try {
      r = await req('POST', '/v1/batch', {body: {requests: batch}})
    } finally {
      spy.mockRestore()
      PostgresStorage.prototype.createMany = saved
    }
    expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 201, 201, 201, 201, 201, 201, 201, 400])
    expect(r.body.responses[8]).toMatchObject({path: batch[8].path, body: {errno: 107}})
    // Run detection did run: 0-1 and 6-7 were written together.
    expect(runs).toEqual([2, 2])
    expect(Object.fromEntries(parsed)).toEqual(Object.fromEntries(batch.slice(0, 8).map((_, k) => [`b=${k}`, 1])))
  })
})

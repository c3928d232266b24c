/**
 * Issue 10, items 1 and 2, through real HTTP against a running `kinto start` server on memory,
 * embedded (PGlite) and PostgreSQL (when KINTO_TEST_DATABASE_URL is set):
 * - N concurrent conditional writes carrying the same If-Match (PUT, PATCH, DELETE) or
 *   If-None-Match: * (PUT, POST with an id): exactly one wins, every other one gets 412;
 * - N concurrent creations in one collection or one bucket never answer 409, and the
 *   timestamps of the list stay strictly increasing (distinct);
 * - no request answers 5xx.
 * The requests leave at once on their own sockets (undici, one connection each), so the server
 * really interleaves them.
 */
import {Agent, request as undiciRequest} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {BACKEND_KINDS, basicAuth, startTestServer, type TestServer} from '../client/helpers.js'

const N = 40
const ALICE = basicAuth('alice', 'secret')

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: any
}

function statuses(replies: Reply[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const r of replies) counts[r.status] = (counts[r.status] ?? 0) + 1
  return counts
}

describe.each(BACKEND_KINDS)('concurrent writes (%s)', (kind) => {
  let server: TestServer
  let origin: string
  let agent: Agent

  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await undiciRequest(`${origin}${path}`, {
      method: method as 'GET',
      dispatcher: agent,
      headers: {authorization: ALICE, ...(body === undefined ? {} : {'content-type': 'application/json'}), ...headers},
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.body.text()
    return {status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : undefined}
  }

  /** Sends n requests at once (each built from its index) and waits for all of them. */
  function all(n: number, make: (i: number) => Promise<Reply>): Promise<Reply[]> {
    return Promise.all(Array.from({length: n}, (_, i) => make(i)))
  }

  function expectNo5xx(replies: Reply[]): void {
    const bad = replies.filter((r) => r.status >= 500)
    expect(bad.map((r) => `${r.status} ${JSON.stringify(r.body)}`)).toEqual([])
  }

  async function record(path: string): Promise<Reply> {
    const r = await call('PUT', path, {data: {v: 'initial'}})
    expect(r.status).toBe(201)
    return r
  }

  const C = '/v1/buckets/b/collections/c'

  beforeAll(async () => {
    server = await startTestServer(kind)
    origin = new URL(server.remote).origin
    // One connection per request in flight: nothing queues on the client side.
    agent = new Agent({connections: N * 2, pipelining: 0})
    expect((await call('PUT', '/v1/buckets/b', {})).status).toBe(201)
    expect((await call('PUT', C, {})).status).toBe(201)
  }, 120_000)

  afterAll(async () => {
    await agent?.close()
    await server?.close()
  })

  test('PUT with the same If-Match: exactly one wins, the others get 412', async () => {
    const created = await record(`${C}/records/put-if-match`)
    const etag = created.headers.etag as string
    const replies = await all(N, (i) => call('PUT', `${C}/records/put-if-match`, {data: {v: i}}, {'if-match': etag}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({200: 1, 412: N - 1})
    const winner = replies.find((r) => r.status === 200)!
    for (const r of replies.filter((x) => x.status === 412)) expect(r.body.errno).toBe(114)
    const now = await call('GET', `${C}/records/put-if-match`)
    expect(now.body.data.v).toBe(winner.body.data.v)
    expect(now.body.data.last_modified).toBe(winner.body.data.last_modified)
  })

  test('PATCH with the same If-Match: exactly one wins', async () => {
    const created = await record(`${C}/records/patch-if-match`)
    const etag = created.headers.etag as string
    const replies = await all(N, (i) => call('PATCH', `${C}/records/patch-if-match`, {data: {[`f${i}`]: i}}, {'if-match': etag}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({200: 1, 412: N - 1})
    const now = await call('GET', `${C}/records/patch-if-match`)
    // Only the winner's field was written: no lost update merged into another's.
    expect(Object.keys(now.body.data).filter((k) => k.startsWith('f'))).toHaveLength(1)
  })

  test('DELETE with the same If-Match: exactly one wins', async () => {
    const created = await record(`${C}/records/delete-if-match`)
    const etag = created.headers.etag as string
    const replies = await all(N, () => call('DELETE', `${C}/records/delete-if-match`, undefined, {'if-match': etag}))
    expectNo5xx(replies)
    const counts = statuses(replies)
    expect(counts[200]).toBe(1)
    // The losers see the object modified (412) or already gone (404), never a success.
    expect((counts[412] ?? 0) + (counts[404] ?? 0)).toBe(N - 1)
    expect((await call('GET', `${C}/records/delete-if-match`)).status).toBe(404)
  })

  test('PUT with If-None-Match: * on a new id: exactly one creates, the others get 412', async () => {
    const replies = await all(N, (i) => call('PUT', `${C}/records/put-if-none-match`, {data: {v: i}}, {'if-none-match': '*'}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({201: 1, 412: N - 1})
    const winner = replies.find((r) => r.status === 201)!
    expect((await call('GET', `${C}/records/put-if-none-match`)).body.data.v).toBe(winner.body.data.v)
  })

  test('POST of one id with If-None-Match: *: exactly one creates, the others get 412', async () => {
    const replies = await all(N, (i) => call('POST', `${C}/records`, {data: {id: 'post-if-none-match', v: i}}, {'if-none-match': '*'}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({201: 1, 412: N - 1})
  })

  test('POST of one id without precondition: one 201, the others get the object (200), no 409', async () => {
    const replies = await all(N, (i) => call('POST', `${C}/records`, {data: {id: 'post-same-id', v: i}}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({201: 1, 200: N - 1})
    const winner = replies.find((r) => r.status === 201)!
    for (const r of replies) expect(r.body.data).toEqual(winner.body.data)
  })

  test('PUT of one new id without precondition: every write lands (201 then 200), no 409', async () => {
    const replies = await all(N, (i) => call('PUT', `${C}/records/put-same-id`, {data: {v: i}}))
    expectNo5xx(replies)
    const counts = statuses(replies)
    expect(counts[201]).toBe(1)
    expect(counts[200]).toBe(N - 1)
    const final = (await call('GET', `${C}/records/put-same-id`)).body.data
    const newest = replies.reduce((a, b) => (b.body.data.last_modified > a.body.data.last_modified ? b : a))
    expect(final).toEqual(newest.body.data)
  })

  test('parallel POSTs into one collection: all 201, no 409, distinct increasing timestamps', async () => {
    const path = `${C}/records`
    await call('PUT', '/v1/buckets/b/collections/posts', {})
    const replies = await all(N, (i) => call('POST', '/v1/buckets/b/collections/posts/records', {data: {n: i}}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({201: N})
    const stamps = replies.map((r) => r.body.data.last_modified as number)
    expect(new Set(stamps).size).toBe(N)
    const list = await call('GET', '/v1/buckets/b/collections/posts/records?_sort=last_modified')
    expect(list.body.data).toHaveLength(N)
    const listed = list.body.data.map((r: {last_modified: number}) => r.last_modified)
    for (let i = 1; i < listed.length; i++) expect(listed[i]).toBeGreaterThan(listed[i - 1])
    // The collection's timestamp is the newest record's.
    expect(Number(String(list.headers.etag).replace(/"/g, ''))).toBe(listed[listed.length - 1])
    void path
  })

  test('parallel PATCHes of one record without precondition: all succeed, no 409', async () => {
    await record(`${C}/records/patch-many`)
    const replies = await all(N, (i) => call('PATCH', `${C}/records/patch-many`, {data: {[`f${i}`]: i}}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({200: N})
    const now = await call('GET', `${C}/records/patch-many`)
    // Each PATCH merged into the latest version: no update was lost.
    expect(Object.keys(now.body.data).filter((k) => k.startsWith('f'))).toHaveLength(N)
  })

  test('parallel collection creations in one bucket: all 201, no 409', async () => {
    const replies = await all(N, (i) => call('PUT', `/v1/buckets/b/collections/col${i}`, {data: {i}}))
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({201: N})
    const stamps = new Set(replies.map((r) => r.body.data.last_modified))
    expect(stamps.size).toBe(N)
  })

  test('parallel batches writing into one collection: every sub-request 201, no 409', async () => {
    await call('PUT', '/v1/buckets/b/collections/batched', {})
    const replies = await all(N / 4, () =>
      call('POST', '/v1/batch', {
        defaults: {method: 'POST', path: '/buckets/b/collections/batched/records'},
        requests: Array.from({length: 5}, (_, j) => ({body: {data: {j}}})),
      }),
    )
    expectNo5xx(replies)
    expect(statuses(replies)).toEqual({200: N / 4})
    const inner = replies.flatMap((r) => r.body.responses.map((s: {status: number}) => s.status))
    expect(inner.every((s: number) => s === 201)).toBe(true)
    const list = await call('GET', '/v1/buckets/b/collections/batched/records')
    expect(list.body.data).toHaveLength((N / 4) * 5)
    expect(new Set(list.body.data.map((r: {last_modified: number}) => r.last_modified)).size).toBe((N / 4) * 5)
  })
})

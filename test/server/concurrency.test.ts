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

/**
 * Two transactions that lock lists in opposite orders deadlock; PostgreSQL aborts one and the
 * runtime runs it again. The retry must start from scratch: nothing read, collected or queued by
 * the aborted attempt may leak into the one that commits (events would run twice: the history
 * plugin would record each write twice).
 */
describe.each(BACKEND_KINDS.filter((k) => k === 'postgresql'))('deadlock retries (%s)', (kind) => {
  let server: TestServer
  let origin: string
  let agent: Agent

  async function call(method: string, path: string, body?: unknown): Promise<Reply> {
    const res = await undiciRequest(`${origin}${path}`, {
      method: method as 'GET',
      dispatcher: agent,
      headers: {authorization: ALICE, ...(body === undefined ? {} : {'content-type': 'application/json'})},
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.body.text()
    return {status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : undefined}
  }

  beforeAll(async () => {
    server = await startTestServer(kind, {'kinto.includes': 'kinto.plugins.history'})
    origin = new URL(server.remote).origin
    agent = new Agent({connections: 64, pipelining: 0})
    expect((await call('PUT', '/v1/buckets/d', {})).status).toBe(201)
    for (const c of ['c1', 'c2']) expect((await call('PUT', `/v1/buckets/d/collections/${c}`, {})).status).toBe(201)
  }, 120_000)

  afterAll(async () => {
    await agent?.close()
    await server?.close()
  })

  test('batches writing two collections in opposite orders all succeed, each write recorded once', async () => {
    const historyBefore = (await call('GET', '/v1/buckets/d/history?_limit=10000')).body.data.length
    const pairs = 12
    const replies = await Promise.all(
      Array.from({length: pairs * 2}, (_, i) => {
        const order = i % 2 === 0 ? ['c1', 'c2', 'c1', 'c2'] : ['c2', 'c1', 'c2', 'c1']
        return call('POST', '/v1/batch', {
          requests: order.map((c, j) => ({method: 'PUT', path: `/buckets/d/collections/${c}/records/b${i}-${j}`, body: {data: {i, j}}})),
        })
      }),
    )
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200))
    for (const r of replies) expect(r.body.responses.map((s: {status: number}) => s.status)).toEqual([201, 201, 201, 201])
    const records = (await call('GET', '/v1/buckets/d/collections/c1/records')).body.data.length + (await call('GET', '/v1/buckets/d/collections/c2/records')).body.data.length
    expect(records).toBe(pairs * 2 * 4)
    const history = (await call('GET', '/v1/buckets/d/history?_limit=10000')).body.data
    const writes = history.slice(0, history.length - historyBefore).filter((h: {resource_name: string}) => h.resource_name === 'record')
    expect(writes).toHaveLength(pairs * 2 * 4)
    expect(new Set(writes.map((h: {uri: string}) => h.uri)).size).toBe(pairs * 2 * 4)
  }, 120_000)
})

describe('a transaction retried after a deadlock starts again from scratch', () => {
  /** Memory backends whose next `failures` transactions deadlock at commit (after running fn). */
  async function flakyApp(raw: Record<string, string>) {
    const {createBackends} = await import('../../src/lib/backends.js')
    const {buildSettings} = await import('../../src/lib/config/settings.js')
    const {createApp} = await import('../../src/lib/server/app.js')
    const {BackendError} = await import('../../src/lib/storage/types.js')
    const settings = buildSettings({'kinto.userid_hmac_secret': 'retry', ...raw}, {})
    const backends = createBackends(settings)
    const state: {failures: number; attempts: number; meanwhile?: () => Promise<void>} = {failures: 0, attempts: 0}
    const transaction = backends.transaction.bind(backends)
    backends.transaction = async (fn) => {
      try {
        return await transaction(async (tx) => {
          state.attempts++
          const result = await fn(tx)
          if (state.failures > 0) {
            state.failures--
            throw new BackendError('deadlock detected (simulated)', {retryable: true})
          }
          return result
        })
      } catch (err) {
        // What the transaction that won the deadlock committed meanwhile.
        const meanwhile = state.meanwhile
        state.meanwhile = undefined
        await meanwhile?.()
        throw err
      }
    }
    const app = createApp({settings, backends})
    app.addHook('onClose', async () => backends.close())
    return {app, state, backends}
  }

  test('one write, one history entry, one response; a batch too', async () => {
    const {app, state} = await flakyApp({'kinto.includes': 'kinto.plugins.history'})
    const send = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
      app.inject({method: method as 'GET', url, headers: {authorization: ALICE, 'content-type': 'application/json', ...headers}, payload: body === undefined ? undefined : JSON.stringify(body)})
    try {
      expect((await send('PUT', '/v1/buckets/r', {})).statusCode).toBe(201)
      expect((await send('PUT', '/v1/buckets/r/collections/c', {})).statusCode).toBe(201)
      const created = await send('PUT', '/v1/buckets/r/collections/c/records/x', {data: {v: 1}})
      const etag = String(created.headers.etag)

      state.failures = 2
      state.attempts = 0
      const res = await send('PATCH', '/v1/buckets/r/collections/c/records/x', {data: {v: 2}}, {'if-match': etag})
      expect(state.attempts).toBe(3)
      expect(res.statusCode).toBe(200)
      expect(JSON.parse(res.body).data.v).toBe(2)

      state.failures = 1
      state.attempts = 0
      const batch = await send('POST', '/v1/batch', {
        requests: [
          {method: 'PUT', path: '/buckets/r/collections/c/records/y', body: {data: {v: 1}}},
          {method: 'PATCH', path: '/buckets/r/collections/c/records/x', body: {data: {v: 3}}},
        ],
      })
      expect(state.attempts).toBe(2)
      expect(batch.statusCode).toBe(200)
      expect(JSON.parse(batch.body).responses.map((r: {status: number}) => r.status)).toEqual([201, 200])

      const history = JSON.parse((await send('GET', '/v1/buckets/r/history?resource_name=record')).body).data
      // create x, patch x (once, despite two aborted attempts), create y, patch x (once).
      expect(history.map((h: {action: string; record_id: string}) => `${h.action} ${h.record_id}`).sort()).toEqual(['create x', 'create y', 'update x', 'update x'])
    } finally {
      await app.close()
    }
  })

  test('the retry reads again what the winner committed meanwhile (no lost update)', async () => {
    const {app, state, backends} = await flakyApp({})
    const send = (method: string, url: string, body?: unknown) =>
      app.inject({method: method as 'GET', url, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: body === undefined ? undefined : JSON.stringify(body)})
    try {
      expect((await send('PUT', '/v1/buckets/r', {})).statusCode).toBe(201)
      expect((await send('PUT', '/v1/buckets/r/collections/c', {})).statusCode).toBe(201)
      expect((await send('PUT', '/v1/buckets/r/collections/c/records/x', {data: {a: 1}})).statusCode).toBe(201)
      state.failures = 1
      state.meanwhile = async () => {
        await backends.storage.update('record', '/buckets/r/collections/c', 'x', {id: 'x', a: 1, b: 'meanwhile'})
      }
      const res = await send('PATCH', '/v1/buckets/r/collections/c/records/x', {data: {c: 3}})
      expect(res.statusCode).toBe(200)
      expect(JSON.parse(res.body).data).toMatchObject({a: 1, b: 'meanwhile', c: 3})
      expect(JSON.parse((await send('GET', '/v1/buckets/r/collections/c/records/x')).body).data).toMatchObject({a: 1, b: 'meanwhile', c: 3})
    } finally {
      await app.close()
    }
  })

  test('the retry checks If-Match against the list as the winner left it', async () => {
    const {app, state, backends} = await flakyApp({})
    const send = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
      app.inject({method: method as 'GET', url, headers: {authorization: ALICE, 'content-type': 'application/json', ...headers}, payload: body === undefined ? undefined : JSON.stringify(body)})
    try {
      expect((await send('PUT', '/v1/buckets/r', {})).statusCode).toBe(201)
      expect((await send('PUT', '/v1/buckets/r/collections/c', {})).statusCode).toBe(201)
      expect((await send('PUT', '/v1/buckets/r/collections/c/records/x', {data: {a: 1}})).statusCode).toBe(201)
      const etag = String((await send('GET', '/v1/buckets/r/collections/c/records')).headers.etag)
      state.failures = 1
      state.meanwhile = async () => {
        await backends.storage.create('record', '/buckets/r/collections/c', {id: 'late', a: 2})
      }
      // Deleting "the list as I saw it": the list changed meanwhile, so 412 — not a deletion of
      // a record the client never saw.
      const res = await send('DELETE', '/v1/buckets/r/collections/c/records', undefined, {'if-match': etag})
      expect(res.statusCode).toBe(412)
      expect((await send('GET', '/v1/buckets/r/collections/c/records/late')).statusCode).toBe(200)
    } finally {
      await app.close()
    }
  })

  test('a deadlock that persists gives up after four attempts with a 503', async () => {
    const {app, state} = await flakyApp({})
    try {
      state.failures = 10
      const res = await app.inject({method: 'PUT', url: '/v1/buckets/never', headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: '{}'})
      expect(state.attempts).toBe(4)
      expect(res.statusCode).toBe(503)
      expect(JSON.parse(res.body).errno).toBe(201)
      state.failures = 0
      expect((await app.inject({method: 'GET', url: '/v1/buckets/never', headers: {authorization: ALICE}})).statusCode).toBe(403)
    } finally {
      await app.close()
    }
  })
})

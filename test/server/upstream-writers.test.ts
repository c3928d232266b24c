/**
 * One PostgreSQL database served by upstream Kinto and by `kinto start` at the same time (a fleet
 * switched over machine by machine). Upstream's writers take none of our per-list locks: its
 * `bump_timestamp` trigger gives a row the timestamp that follows the list's last committed one,
 * and the unique index on (parent_id, resource_name, last_modified) refuses the second of two
 * uncommitted writers that got the same one. Here an upstream writer is played by a connection
 * writing rows as upstream's storage writes them (no advisory lock, timestamp left to the trigger).
 */
import pg from 'pg'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {basicAuth, startTestServer, type TestServer} from '../client/helpers.js'
import {realServerUrl, serverSkip} from '../helpers/db.js'

const ALICE = basicAuth('alice', 'secret')
const LIST = '/buckets/b/collections/c'

describe.skipIf(!realServerUrl)(`writes beside an upstream writer on one database${serverSkip}`, () => {
  let server: TestServer
  let upstream: pg.Client

  async function call(method: string, path: string, body?: unknown): Promise<{status: number; body: any}> {
    const res = await fetch(`${new URL(server.remote).origin}${path}`, {
      method,
      headers: {authorization: ALICE, ...(body === undefined ? {} : {'content-type': 'application/json'})},
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return {status: res.status, body: text ? JSON.parse(text) : undefined}
  }

  /** Upstream's create of a record: data without id/last_modified, NULL timestamp (the trigger's). */
  function upstreamInsert(id: string, lastModified: number | null = null): Promise<pg.QueryResult> {
    return upstream.query(
      `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
       VALUES ($1, $2, 'record', '{"by": "upstream"}'::jsonb, from_epoch($3::bigint), FALSE)`,
      [id, LIST, lastModified],
    )
  }

  beforeAll(async () => {
    server = await startTestServer('postgresql', {'kinto.includes': 'kinto.plugins.history'})
    upstream = new pg.Client({connectionString: server.databaseUrl})
    await upstream.connect()
    expect((await call('PUT', '/v1/buckets/b', {})).status).toBe(201)
    expect((await call('PUT', `/v1${LIST}`, {})).status).toBe(201)
  }, 120_000)

  afterAll(async () => {
    await upstream?.end()
    await server?.close()
  })

  test('a write that meets an uncommitted upstream write of the same timestamp is retried, not a 409', async () => {
    // A committed row ahead of the clock, so that both writers below get its timestamp + 1 whatever
    // the millisecond they run in (the trigger bumps past the list's latest timestamp).
    const ahead = Date.now() + 3_600_000
    await upstreamInsert('ahead', ahead)
    await upstream.query('BEGIN')
    await upstreamInsert('theirs')
    const [{ts}] = (await upstream.query(`SELECT as_epoch(last_modified) AS ts FROM objects WHERE id = 'theirs' AND parent_id = $1`, [LIST])).rows
    expect(Number(ts)).toBe(ahead + 1)
    // Ours gets the same timestamp and waits on the unique index until upstream's transaction ends.
    const pending = call('PUT', `/v1${LIST}/records/ours`, {data: {by: 'kinto-ops'}})
    await new Promise((resolve) => setTimeout(resolve, 300))
    await upstream.query('COMMIT')
    const reply = await pending
    expect(reply.status).toBe(201)
    expect(reply.body.data.last_modified).toBe(ahead + 2)
    // Written once: one record, one history entry.
    const history = await call('GET', '/v1/buckets/b/history?uri=' + encodeURIComponent(`${LIST}/records/ours`))
    expect(history.body.data).toHaveLength(1)
    const list = await call('GET', `/v1${LIST}/records?_sort=last_modified`)
    expect(list.body.data.map((r: {id: string; last_modified: number}) => [r.id, r.last_modified])).toEqual([
      ['ahead', ahead],
      ['theirs', ahead + 1],
      ['ours', ahead + 2],
    ])
  }, 60_000)

  test('a batch whose sub-request meets it runs again as a whole: every sub-request answered 201', async () => {
    const list = `${LIST}-batch`
    expect((await call('PUT', `/v1${list}`, {})).status).toBe(201)
    const ahead = Date.now() + 7_200_000
    const insert = (id: string, ts: number | null) =>
      upstream.query(
        `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
         VALUES ($1, $2, 'record', '{}'::jsonb, from_epoch($3::bigint), FALSE)`,
        [id, list, ts],
      )
    await insert('ahead', ahead)
    await upstream.query('BEGIN')
    await insert('theirs', null)
    const pending = call('POST', '/v1/batch', {
      requests: [
        {method: 'PUT', path: `/buckets/b/collections/c/records/before`, body: {data: {}}},
        {method: 'PUT', path: `${list}/records/one`, body: {data: {}}},
        {method: 'PUT', path: `${list}/records/two`, body: {data: {}}},
      ],
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    await upstream.query('COMMIT')
    const reply = await pending
    expect(reply.status).toBe(200)
    expect(reply.body.responses.map((r: {status: number}) => r.status)).toEqual([201, 201, 201])
    expect(reply.body.responses.slice(1).map((r: {body: {data: {last_modified: number}}}) => r.body.data.last_modified)).toEqual([ahead + 2, ahead + 3])
    const history = await call('GET', '/v1/buckets/b/history?uri=' + encodeURIComponent('/buckets/b/collections/c/records/before'))
    expect(history.body.data).toHaveLength(1)
  }, 60_000)

  test('a client-given last_modified that another record has is still a 409 (errno 122)', async () => {
    const taken = (await call('PUT', `/v1${LIST}/records/first`, {data: {}})).body.data.last_modified
    expect((await call('PUT', `/v1${LIST}/records/later`, {data: {}})).status).toBe(201)
    const reply = await call('PUT', `/v1${LIST}/records/second`, {data: {last_modified: taken}})
    expect(reply.status).toBe(409)
    expect(reply.body.errno).toBe(122)
  }, 60_000)
})

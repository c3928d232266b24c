/**
 * The read prefetch (src/lib/prefetch.ts, src/lib/server/prefetch.ts) changes round trips, not
 * answers: two apps on the same database, one with the prefetch and one without, must answer
 * every read identically — status, body and the headers that carry state — for every kind of
 * caller (owner, group member, member through system.Authenticated, reader of one record,
 * stranger, anonymous) and every kind of target (present, missing, deleted, in a missing parent,
 * lists never read before, conditional requests). PGlite here, the real server in CI.
 */
import type {FastifyInstance} from 'fastify'
import pino from 'pino'
import {afterAll, beforeAll, describe, expect, test, vi} from 'vitest'

import {createBackends, type Backends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {BackendError} from '../../src/lib/db/backend.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {PostgresStorage} from '../../src/lib/storage/postgresql.js'
import {createTestDatabase, dbKind, postgresqlSettings, type TestDatabase} from '../helpers/db.js'
import {basic} from './helpers.js'

const ALICE = basic('alice')
const BOB = basic('bob')
const CAROL = basic('carol')
const DAVE = basic('dave')
const CALLERS: Array<[string, string | null]> = [
  ['alice (owner)', ALICE],
  ['bob (group member)', BOB],
  ['carol (authenticated)', CAROL],
  ['dave (reader of r3)', DAVE],
  ['anonymous', null],
]

let db: TestDatabase
let registry: DatabaseRegistry
const opened: Array<{app: FastifyInstance; backends: Backends}> = []
let withPrefetch: FastifyInstance
let without: FastifyInstance
let prefetchCalls = 0

const logLines: Array<Record<string, unknown>> = []

function open(prefetch: boolean): FastifyInstance {
  const settings = buildSettings(
    {
      ...postgresqlSettings(db.url, ['storage', 'permission']),
      'kinto.cache_backend': 'kinto.core.cache.memory',
      'kinto.userid_hmac_secret': 'prefetch-tests',
      'kinto.record_cache_expires_seconds': '15',
    },
    {},
  )
  const backends = createBackends(settings, {registry})
  if (!prefetch) delete backends.prefetch
  else {
    const inner = backends.prefetch!
    backends.prefetch = (query) => {
      prefetchCalls++
      return inner(query)
    }
  }
  const logger = pino({level: 'info'}, {write: (line: string) => void logLines.push(JSON.parse(line))})
  const app = createApp({settings, backends, ...(prefetch ? {logger} : {})})
  opened.push({app, backends})
  return app
}

async function call(app: FastifyInstance, method: string, url: string, auth: string | null, body?: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: {...(auth ? {authorization: auth} : {}), ...(body === undefined ? {} : {'content-type': 'application/json'}), ...headers},
    payload: body === undefined ? undefined : JSON.stringify(body),
  })
  return res
}

async function userId(auth: string): Promise<string> {
  return JSON.parse((await call(without, 'GET', '/v1/', auth)).body).user.id
}

const STATE_HEADERS = ['etag', 'last-modified', 'cache-control', 'expires', 'pragma', 'total-objects', 'total-records', 'alert', 'www-authenticate']

/** What must not differ: status, body, state headers; Next-Page without its (random) token. */
function observable(res: Awaited<ReturnType<typeof call>>) {
  const headers: Record<string, unknown> = {}
  for (const h of STATE_HEADERS) if (res.headers[h] !== undefined) headers[h] = res.headers[h]
  if (res.headers['next-page']) {
    const next = new URL(String(res.headers['next-page']))
    next.searchParams.delete('_token')
    headers['next-page'] = next.toString()
  }
  return {status: res.statusCode, headers, body: res.body ? JSON.parse(res.body) : undefined}
}

/** Waits for the next second when less than 300 ms of this one are left. */
async function sameSecond(): Promise<void> {
  const left = 1000 - (Date.now() % 1000)
  if (left < 300) await new Promise((resolve) => setTimeout(resolve, left + 5))
}

const C = '/v1/buckets/b/collections/c'
let recordEtag = ''
let listEtag = ''

beforeAll(async () => {
  db = await createTestDatabase()
  registry = new DatabaseRegistry()
  await ensureSchema(registry.get(db.url), ['storage', 'permission'])
  withPrefetch = open(true)
  without = open(false)
  const bob = await userId(BOB)
  const dave = await userId(DAVE)
  const w = (method: string, url: string, body?: unknown) => call(without, method, url, ALICE, body)
  expect((await w('PUT', '/v1/buckets/b', {})).statusCode).toBe(201)
  expect((await w('PUT', '/v1/buckets/b/groups/friends', {data: {members: [bob]}})).statusCode).toBe(201)
  expect((await w('PUT', '/v1/buckets/b/groups/everybody', {data: {members: ['system.Authenticated']}})).statusCode).toBe(201)
  expect((await w('PUT', C, {data: {cache_expires: 30}, permissions: {read: ['/buckets/b/groups/friends']}})).statusCode).toBe(201)
  expect((await w('PUT', '/v1/buckets/b/collections/open', {permissions: {read: ['/buckets/b/groups/everybody']}})).statusCode).toBe(201)
  expect((await w('PUT', '/v1/buckets/b/collections/public', {permissions: {read: ['system.Everyone']}})).statusCode).toBe(201)
  expect((await w('PUT', '/v1/buckets/b/collections/never-read', {})).statusCode).toBe(201)
  for (const [id, perms] of [
    ['r1', {}],
    ['r2', {read: ['system.Everyone']}],
    ['r3', {read: [dave]}],
    ['r4', {}],
  ] as const) {
    const res = await w('PUT', `${C}/records/${id}`, {data: {title: id, n: id.length}, permissions: perms})
    expect(res.statusCode).toBe(201)
    if (id === 'r1') recordEtag = String(res.headers.etag)
  }
  expect((await w('DELETE', `${C}/records/r4`)).statusCode).toBe(200)
  for (const c of ['open', 'public']) expect((await w('PUT', `/v1/buckets/b/collections/${c}/records/x`, {data: {in: c}})).statusCode).toBe(201)
  listEtag = String((await w('GET', `${C}/records`)).headers.etag)
}, 120_000)

afterAll(async () => {
  for (const {app, backends} of opened) {
    await app.close()
    await backends.close()
  }
  await registry?.closeAll()
  await db?.drop()
})

const READS: Array<[string, string, Record<string, string>?]> = [
  ['GET', '/v1/buckets'],
  ['GET', '/v1/buckets/b'],
  ['GET', '/v1/buckets/nope'],
  ['GET', '/v1/buckets/b/groups'],
  ['GET', '/v1/buckets/b/groups/friends'],
  ['GET', '/v1/buckets/b/collections'],
  ['GET', C],
  ['HEAD', C],
  ['GET', `${C}/records`],
  ['HEAD', `${C}/records`],
  ['GET', `${C}/records?_limit=1&_sort=title`],
  ['GET', `${C}/records?_since=0`],
  ['GET', `${C}/records?_fields=title`],
  // Lists whose page the prefetch reads in its statement (filters, sorts, limits, tombstones).
  ['GET', `${C}/records?_limit=2&_sort=-n,title`],
  ['GET', `${C}/records?has_title=true&_sort=title`],
  ['GET', `${C}/records?in_title=r1,r3&_limit=1`],
  ['GET', `${C}/records?_since=0&_sort=last_modified`],
  ['GET', `${C}/records?_before=1`],
  ['GET', `${C}/records?title=r2`],
  ['GET', '/v1/buckets?_limit=1'],
  ['GET', '/v1/buckets/b/collections?_sort=id&_limit=2'],
  // Invalid querystrings: the 400 keeps its place among the checks (404, 403, 401).
  ['GET', `${C}/records?_limit=abc`],
  ['GET', `${C}/records?_token=abc`],
  ['GET', `${C}/records?_sort=`],
  ['GET', '/v1/buckets/b/collections/nope/records?_limit=abc'],
  ['GET', '/v1/buckets/nope/collections/c/records?_limit=1'],
  ['GET', `${C}/records/r1`],
  ['HEAD', `${C}/records/r1`],
  ['GET', `${C}/records/r1?_fields=n`],
  ['GET', `${C}/records/r2`],
  ['GET', `${C}/records/r3`],
  ['GET', `${C}/records/r4`],
  ['GET', `${C}/records/missing`],
  ['GET', `${C}/records/${'x'.repeat(300)}`],
  ['GET', `${C}/records/a.b`],
  ['GET', '/v1/buckets/b/collections/nope/records'],
  ['GET', '/v1/buckets/b/collections/nope/records/r1'],
  ['GET', '/v1/buckets/nope/collections/c/records/r1'],
  ['GET', '/v1/buckets/b/collections/open/records'],
  ['GET', '/v1/buckets/b/collections/open/records/x'],
  ['GET', '/v1/buckets/b/collections/public/records'],
  ['GET', '/v1/buckets/b/collections/public/records/x'],
  ['GET', `${C}/records/r1`, {'If-None-Match': 'RECORD_ETAG'}],
  ['GET', `${C}/records/r1`, {'If-Match': '"1"'}],
  ['GET', `${C}/records`, {'If-None-Match': 'LIST_ETAG'}],
  ['GET', `${C}/records`, {'If-Match': '"1"'}],
  ['GET', `${C}/records/r1`, {Accept: 'text/html'}],
]

describe(`reads with and without the prefetch answer the same (${dbKind})`, () => {
  test.each(CALLERS)('%s', async (_name, auth) => {
    const before = prefetchCalls
    for (const [method, url, rawHeaders] of READS) {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(rawHeaders ?? {})) headers[k] = v === 'RECORD_ETAG' ? recordEtag : v === 'LIST_ETAG' ? listEtag : v
      // Expires has a one-second resolution: both reads of a pair start in the same second.
      await sameSecond()
      const a = observable(await call(without, method, url, auth, undefined, headers))
      const b = observable(await call(withPrefetch, method, url, auth, undefined, headers))
      expect(b, `${method} ${url} ${JSON.stringify(headers)}`).toEqual(a)
    }
    // The prefetch app did go through the prefetch.
    expect(prefetchCalls - before).toBeGreaterThan(READS.length / 2)
  })

  test.each(CALLERS)('the next page of a list (keyset rules from _token): %s', async (_name, auth) => {
    for (const query of ['_limit=1&_sort=title', '_limit=2', '_limit=1&_sort=-n,title&has_title=true']) {
      const first = await call(without, 'GET', `${C}/records?${query}`, auth)
      const next = first.headers['next-page']
      if (!next) continue
      const url = new URL(String(next))
      await sameSecond()
      const a = observable(await call(without, 'GET', url.pathname + url.search, auth))
      const b = observable(await call(withPrefetch, 'GET', url.pathname + url.search, auth))
      expect(b, `${url.pathname}${url.search}`).toEqual(a)
    }
  })

  test('a list never read before: the prefetch app stores its timestamp as the storage does', async () => {
    const a = observable(await call(withPrefetch, 'GET', '/v1/buckets/b/collections/never-read/records', ALICE))
    const b = observable(await call(without, 'GET', '/v1/buckets/b/collections/never-read/records', ALICE))
    expect(a.status).toBe(200)
    expect(b).toEqual(a)
  })

  test('a stored list timestamp older than its newest object (rows loaded with triggers off): both apps give the newer', async () => {
    const list = '/v1/buckets/b/collections/bulk/records'
    expect((await call(without, 'PUT', '/v1/buckets/b/collections/bulk', ALICE, {data: {}})).statusCode).toBe(201)
    expect((await call(without, 'GET', list, ALICE)).statusCode).toBe(200) // stores the list's timestamp
    const sql = registry.get(db.url)
    await sql.transaction(async (tx) => {
      await tx.query("SELECT set_config('session_replication_role', 'replica', true)")
      await tx.query(
        `INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
         SELECT 'late', parent_id, resource_name, last_modified + interval '1 second', '{"n": 1}', FALSE
           FROM timestamps WHERE parent_id = '/buckets/b/collections/bulk' AND resource_name = 'record'`,
      )
    })
    const newest = Number((await sql.query<{t: string}>("SELECT as_epoch(last_modified) AS t FROM objects WHERE id = 'late'")).rows[0].t)
    const a = observable(await call(without, 'GET', list, ALICE))
    const b = observable(await call(withPrefetch, 'GET', list, ALICE))
    expect(a.headers.etag).toBe(`"${newest}"`)
    expect(b).toEqual(a)
  })

  test('the log line of a read names its user, even when the read fails before its permission check', async () => {
    logLines.length = 0
    expect((await call(withPrefetch, 'GET', `${C}/records/r1`, BOB, undefined, {Accept: 'text/html'})).statusCode).toBe(406)
    expect((await call(withPrefetch, 'GET', `${C}/records/r1`, BOB)).statusCode).toBe(200)
    const summaries = logLines.filter((l) => l.msg === 'request.summary' || l.code !== undefined)
    expect(summaries.map((l) => l.code)).toEqual([406, 200])
    const bob = (await userId(BOB)).replace(/^basicauth:/, '')
    for (const line of summaries) expect(line.uid).toBe(bob)
  })

  test('a filtered page whose statement fails: the same answer as the storage gives, and a refused caller still gets its 403 or 401', async () => {
    // The prefetch sends a filtered page beside its statement, before the permission answer is
    // known; the page's error must come where storage.list's would, after the checks.
    const list = PostgresStorage.prototype.list
    const failing = vi.spyOn(PostgresStorage.prototype, 'list').mockImplementation(function (this: PostgresStorage, resourceName, parentId, options) {
      if (options?.filters?.some((f) => f.field === 'fails')) return Promise.reject(new BackendError('Storage backend failure: canceling statement due to statement timeout'))
      return list.call(this, resourceName, parentId, options)
    })
    try {
      // A collection only alice reads, with nothing shared in it.
      const closed = '/v1/buckets/b/collections/closed'
      expect((await call(without, 'PUT', closed, ALICE, {})).statusCode).toBe(201)
      expect((await call(without, 'PUT', `${closed}/records/x`, ALICE, {data: {n: 1}})).statusCode).toBe(201)
      const statuses: number[] = []
      for (const list of [C, closed]) {
        expect((await call(without, 'GET', `${list}/records`, ALICE)).statusCode).toBe(200) // its timestamp is stored
        for (const [name, auth] of CALLERS) {
          const a = observable(await call(without, 'GET', `${list}/records?fails=1`, auth))
          const b = observable(await call(withPrefetch, 'GET', `${list}/records?fails=1`, auth))
          expect(b, `${name} ${list}`).toEqual(a)
          statuses.push(a.status)
        }
      }
      // In the closed collection alice gets the storage's 503, the others their 403 or 401.
      expect(statuses.slice(CALLERS.length)).toEqual([503, 403, 403, 403, 401])
      // There the page was read once by the app without the prefetch (alice's), and beside the
      // statement for every caller by the other.
      const pageReads = failing.mock.calls.filter((c) => c[1] === closed.slice('/v1'.length) && c[2]?.filters?.some((f) => f.field === 'fails'))
      expect(pageReads).toHaveLength(1 + CALLERS.length)
    } finally {
      failing.mockRestore()
    }
  })

  test('group membership changes are seen by the next read (no cached principals)', async () => {
    const url = `${C}/records/r1`
    expect((await call(withPrefetch, 'GET', url, CAROL)).statusCode).toBe(403)
    const carol = await userId(CAROL)
    const friends = JSON.parse((await call(without, 'GET', '/v1/buckets/b/groups/friends', ALICE)).body).data.members
    expect((await call(without, 'PATCH', '/v1/buckets/b/groups/friends', ALICE, {data: {members: [...friends, carol]}})).statusCode).toBe(200)
    expect((await call(withPrefetch, 'GET', url, CAROL)).statusCode).toBe(200)
    expect((await call(without, 'PATCH', '/v1/buckets/b/groups/friends', ALICE, {data: {members: friends}})).statusCode).toBe(200)
    expect((await call(withPrefetch, 'GET', url, CAROL)).statusCode).toBe(403)
  })
})

/**
 * SQL statements per request on the postgresql backends (no N+1 on any list).
 *
 * Every statement the storage and permission backends send goes through a counting wrapper around
 * the SqlClient that the DatabaseRegistry hands to createBackends (a transaction counts as BEGIN
 * and COMMIT on top of the statements run inside it). The cache is the memory one here: on a
 * PostgreSQL server the postgresql cache opens its own pool outside the registry, so it could not
 * be counted there; no request below reaches the cache anyway.
 *
 * The counts are exact: a new statement on a hot path must be a deliberate change of this file.
 * The N+1 property itself is asserted as "the same count whatever the page size".
 *
 * Reads: one statement (src/lib/prefetch.ts) brings the caller's groups, the permission decision,
 * the parent collection, and the object with its ACL (object GET) or the list timestamp and the
 * page (list), as a named statement (PostgreSQL keeps its plan: planning it costs more than
 * running it). A list filtered on data fields reads its page in a second statement, planned for
 * its values (src/lib/prefetch.ts planFollowsValues), sent in the same round trip.
 *
 * On a PostgreSQL server the backends reach it through a TCP proxy (test/helpers/tcp-proxy.ts)
 * that also counts the round trips of each request.
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {createBackends, type Backends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry, type PoolOptions, type Queryable, type SqlClient} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {createTestDatabase, dbKind, postgresqlSettings, serverSkip, type TestDatabase} from '../helpers/db.js'
import {startProxy, type TcpProxy} from '../helpers/tcp-proxy.js'

/** The statements seen since the last reset (the SQL, whitespace collapsed), and their names. */
class StatementLog {
  entries: string[] = []
  /** Statement name (QueryOptions.name) by position in entries; undefined: unnamed. */
  names: Array<string | undefined> = []
  reset(): void {
    this.entries = []
    this.names = []
  }
  get count(): number {
    return this.entries.length
  }
  add(sql: string, name?: string): void {
    this.entries.push(sql.replace(/\s+/g, ' ').trim())
    this.names.push(name)
  }
}

function countingQueryable(inner: Queryable, log: StatementLog): Queryable {
  const q: Queryable = {
    query(sql, params, options) {
      log.add(sql, options?.name)
      return inner.query(sql, params, options)
    },
    exec(sql) {
      log.add(sql)
      return inner.exec(sql)
    },
  }
  if (inner.together) q.together = inner.together.bind(inner)
  return q
}

function countingClient(inner: SqlClient, log: StatementLog): SqlClient {
  const q = countingQueryable(inner, log)
  return {
    kind: inner.kind,
    displayUrl: inner.displayUrl,
    query: q.query,
    exec: q.exec,
    async transaction(fn) {
      log.add('BEGIN')
      const result = await inner.transaction((tx) => fn(countingQueryable(tx, log)))
      log.add('COMMIT')
      return result
    },
    withConnection(fn) {
      return inner.withConnection((conn) => fn(countingQueryable(conn, log)))
    },
    close: () => inner.close(),
  }
}

/** A registry whose clients count every statement into one log. */
class CountingRegistry extends DatabaseRegistry {
  private readonly wrapped = new Map<SqlClient, SqlClient>()
  constructor(readonly log: StatementLog) {
    super()
  }
  override get(url: string, options: PoolOptions = {}): SqlClient {
    const inner = super.get(url, options)
    let client = this.wrapped.get(inner)
    if (!client) {
      client = countingClient(inner, this.log)
      this.wrapped.set(inner, client)
    }
    return client
  }
}

const basic = (user: string) => 'Basic ' + Buffer.from(`${user}:secret`).toString('base64')
const ALICE = basic('alice')
const BOB = basic('bob')

let db: TestDatabase
let registry: CountingRegistry
let backends: Backends
let app: FastifyInstance
let proxy: TcpProxy | undefined
const log = new StatementLog()

interface Sent {
  status: number
  body: any
  headers: Record<string, unknown>
  statements: string[]
  names: Array<string | undefined>
  /** Round trips to the PostgreSQL server (undefined on PGlite). */
  trips?: number
}

async function send(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, auth = ALICE): Promise<Sent> {
  log.reset()
  const turns = proxy?.turns
  const res = await app.inject({
    method,
    url,
    headers: {authorization: auth, ...(body === undefined ? {} : {'content-type': 'application/json'})},
    payload: body === undefined ? undefined : JSON.stringify(body),
  })
  const statements = [...log.entries]
  const trips = proxy && turns !== undefined ? proxy.turns - turns : undefined
  return {status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers, statements, names: [...log.names], trips}
}

const RECORDS = 40
/** Statements of a batch of 25 record creates in one collection, without and with ids in the bodies. */
const BATCH_NO_IDS = 7
const BATCH_IDS = 9
const BATCH_INSERTS = 1
const BASE = '/v1/buckets/bench/collections/items/records'

beforeAll(async () => {
  db = await createTestDatabase()
  let url = db.url
  if (db.kind === 'postgresql') {
    const direct = new URL(db.url)
    proxy = await startProxy(Number(direct.port || 5432), direct.hostname)
    direct.host = `127.0.0.1:${proxy.port}`
    url = direct.toString()
  }
  registry = new CountingRegistry(log)
  await ensureSchema(registry.get(url), ['storage', 'permission'])
  const settings = buildSettings(
    {
      ...postgresqlSettings(url, ['storage', 'permission']),
      'kinto.cache_backend': 'kinto.core.cache.memory',
      'kinto.userid_hmac_secret': 'bench-secret',
      'multiauth.policies': 'basicauth',
    },
    {},
  )
  backends = createBackends(settings, {registry})
  app = createApp({settings, backends})
  expect((await send('PUT', '/v1/buckets/bench', {})).status).toBe(201)
  expect((await send('PUT', '/v1/buckets/bench/collections/items', {})).status).toBe(201)
  for (let i = 0; i < RECORDS; i++) {
    const r = await send('PUT', `${BASE}/r${String(i).padStart(3, '0')}`, {data: {n: i, kind: i % 2 ? 'odd' : 'even'}})
    expect(r.status).toBe(201)
  }
  // Bob may read three records only: his list of the collection is a "shared objects" list.
  for (const id of ['r001', 'r002', 'r003']) {
    expect((await send('PATCH', `${BASE}/${id}`, {permissions: {read: [`basicauth:${await userIdOf(BOB)}`]}})).status).toBe(200)
  }
}, 120_000)

async function userIdOf(auth: string): Promise<string> {
  const res = await app.inject({method: 'GET', url: '/v1/', headers: {authorization: auth}})
  return (JSON.parse(res.body).user.id as string).replace(/^basicauth:/, '')
}

afterAll(async () => {
  await app?.close()
  await backends?.close()
  await registry?.closeAll()
  await proxy?.close()
  await db?.drop()
})

/** Asserts the exact number of statements, showing them when it differs. */
function expectStatements(sent: Sent, expected: number): void {
  expect(sent.statements, `${sent.statements.length} statements:\n  ${sent.statements.join('\n  ')}`).toHaveLength(expected)
}

describe(`SQL statements per request (${dbKind})`, () => {
  const PREFETCH = /^WITH g AS \( SELECT principal FROM user_principals/

  test('GET one record: one named statement (groups, permission, collection, record, its ACL)', async () => {
    const r = await send('GET', `${BASE}/r005`)
    expect(r.status).toBe(200)
    expect(r.body.data.n).toBe(5)
    // Alice wrote it: she sees its permissions, which come from the same statement.
    expect(r.body.permissions.write).toEqual([`basicauth:${await userIdOf(ALICE)}`])
    expectStatements(r, 1)
    expect(r.statements[0]).toMatch(PREFETCH)
    expect(r.names[0]).toMatch(/^kinto_prefetch_/)
    // A read runs outside any transaction.
    expect(r.statements).not.toContain('BEGIN')
  })

  test('GET of a missing record or in a missing collection: still one statement', async () => {
    const missing = await send('GET', `${BASE}/nope`)
    expect(missing.status).toBe(404)
    expect(missing.body.errno).toBe(110)
    expectStatements(missing, 1)
    const noCollection = await send('GET', '/v1/buckets/bench/collections/nope/records/r005')
    expect(noCollection.status).toBe(404)
    expect(noCollection.body.errno).toBe(111)
    expectStatements(noCollection, 1)
  })

  test('GET one record as a reader without write: one statement, no permissions shown', async () => {
    const r = await send('GET', `${BASE}/r002`, undefined, BOB)
    expect(r.status).toBe(200)
    expect(r.body.permissions).toEqual({})
    expectStatements(r, 1)
    const forbidden = await send('GET', `${BASE}/r010`, undefined, BOB)
    expect(forbidden.status).toBe(403)
    expectStatements(forbidden, 1)
  })

  test('the first read of a list stores its timestamp, then reads its page (3), later reads are one statement (1)', async () => {
    const first = await send('GET', `${BASE}?_limit=10`)
    expect(first.status).toBe(200)
    expectStatements(first, 3)
    expect(first.statements[1]).toMatch(/INSERT INTO timestamps/)
    // The page is read after the timestamp, not taken from the prefetch (older than the timestamp).
    expect(first.statements[2]).toMatch(/^SELECT id, as_epoch\(last_modified\) AS last_modified, data FROM objects/)
    const again = await send('GET', `${BASE}?_limit=10`)
    expectStatements(again, 1)
  })

  test('list _limit=10: one statement (groups, permission, collection, timestamp, page)', async () => {
    const r = await send('GET', `${BASE}?_limit=10`)
    expect(r.status).toBe(200)
    expect(r.body.data).toHaveLength(10)
    expect(r.headers['next-page']).toBeTruthy()
    expectStatements(r, 1)
    expect(r.statements[0]).toMatch(PREFETCH)
    expect(r.statements[0]).toContain('SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects WHERE parent_id')
    expect(r.names[0]).toMatch(/^kinto_prefetch_.*_page\d+$/)
  })

  test('no N+1: a list costs the same whatever its page size', async () => {
    const counts: number[] = []
    for (const limit of [1, 10, RECORDS]) {
      const r = await send('GET', `${BASE}?_limit=${limit}`)
      expect(r.body.data).toHaveLength(limit)
      counts.push(r.statements.length)
    }
    expect(counts).toEqual([1, 1, 1])
  })

  test('a list filtered on data fields: the prefetch, then the page as its own named statement (2)', async () => {
    // PostgreSQL would plan a prefetch carrying such a page again at every execution (its generic
    // plan guesses the filter matches nothing): the page is read apart, planned for its values.
    const r = await send('GET', `${BASE}?_limit=5&kind=odd&min_n=3&_sort=-n`)
    expect(r.status).toBe(200)
    expect(r.body.data.map((o: {n: number}) => o.n)).toEqual([39, 37, 35, 33, 31])
    expectStatements(r, 2)
    expect(r.statements[0]).toMatch(PREFETCH)
    expect(r.statements[0]).not.toContain('AS page')
    expect(r.statements[1]).toMatch(/^SELECT id, as_epoch\(last_modified\) AS last_modified, data FROM objects/)
    expect(r.names[1]).toMatch(/^kinto_list_\d+$/)
  })

  test.skipIf(dbKind !== 'postgresql')(`round trips to the server: one per read, the filtered list included${serverSkip}`, async () => {
    const trips: Record<string, number | undefined> = {}
    for (const [what, url] of [
      ['record', `${BASE}/r005`],
      ['list', `${BASE}?_limit=5`],
      ['filtered list', `${BASE}?_limit=5&kind=odd&min_n=3&_sort=-n`],
      ['another filter', `${BASE}?_limit=5&kind=even`],
    ]) {
      await send('GET', url) // the list's timestamp is stored, its statements named on a connection
      const r = await send('GET', url)
      expect(r.status).toBe(200)
      trips[what] = r.trips
    }
    expect(trips).toEqual({record: 1, list: 1, 'filtered list': 1, 'another filter': 1})
  })

  test('a list sorted on a data field, no filter: one statement (1)', async () => {
    const r = await send('GET', `${BASE}?_limit=5&_sort=-n`)
    expect(r.status).toBe(200)
    expect(r.body.data.map((o: {n: number}) => o.n)).toEqual([39, 38, 37, 36, 35])
    expectStatements(r, 1)
  })

  test('the next page (keyset rules from _token) costs as much as the first (1)', async () => {
    const first = await send('GET', `${BASE}?_limit=10&_sort=n`)
    const next = new URL(String(first.headers['next-page']))
    const r = await send('GET', next.pathname + next.search)
    expect(r.status).toBe(200)
    expect(r.body.data.map((o: {n: number}) => o.n)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    expectStatements(r, 1)
  })

  test('_since sync (tombstones included) (1)', async () => {
    const all = await send('GET', `${BASE}?_limit=${RECORDS}&_sort=last_modified`)
    const since = all.body.data[RECORDS - 11].last_modified
    const r = await send('GET', `${BASE}?_since=${since}`)
    expect(r.status).toBe(200)
    expect(r.body.data).toHaveLength(10)
    expectStatements(r, 1)
  })

  test('a conditional list (If-None-Match) does not read the page in the prefetch: 304 in one statement', async () => {
    const first = await send('GET', `${BASE}?_limit=10`)
    log.reset()
    const res = await app.inject({method: 'GET', url: `${BASE}?_limit=10`, headers: {authorization: ALICE, 'if-none-match': String(first.headers.etag)}})
    expect(res.statusCode).toBe(304)
    const sent: Sent = {status: res.statusCode, body: undefined, headers: res.headers, statements: [...log.entries], names: [...log.names]}
    expectStatements(sent, 1)
    expect(sent.statements[0]).toMatch(PREFETCH)
    expect(sent.statements[0]).not.toContain('json_agg(json_build_array(l.id')
  })

  test('a list of shared objects only (no read on the collection) adds one lookup of the shared ids (3)', async () => {
    for (const limit of [1, 3]) {
      const r = await send('GET', `${BASE}?_limit=${limit}`, undefined, BOB)
      expect(r.status).toBe(200)
      expect(r.body.data).toHaveLength(limit)
      expectStatements(r, 3)
    }
  })

  test('a GET inside a batch runs in the batch transaction, without the prefetch', async () => {
    const r = await send('POST', '/v1/batch', {requests: [{method: 'GET', path: BASE.slice(3) + '/r005'}]})
    expect(r.status).toBe(200)
    expect(r.body.responses[0].status).toBe(200)
    expect(r.statements.some((s) => PREFETCH.test(s))).toBe(false)
    expect(r.statements[1]).toBe('BEGIN')
  })

  test('POST a record: one transaction, the collection and the permission in one statement, its ACE written and the ACL read in one statement, then the lock and one INSERT (7 with BEGIN and COMMIT)', async () => {
    const r = await send('POST', BASE, {data: {n: 1000}})
    expect(r.status).toBe(201)
    expectStatements(r, 7)
    expect(r.statements[1]).toBe('BEGIN')
    // The prefetch, on the transaction: no lookup of the groups again (authentication did it).
    expect(r.statements[2]).toMatch(PREFETCH)
    expect(r.names[2]).toMatch(/^kinto_prefetch_\d+_1_0_0$/)
    expect(r.statements.at(-1)).toBe('COMMIT')
    expect(r.statements.filter((s) => s.startsWith('INSERT INTO objects'))).toHaveLength(1)
    // The writer's ACE and the ACL come before the list lock: inside it (until COMMIT, where
    // every other writer of the list waits) only the INSERT.
    const lock = r.statements.findIndex((s) => s.includes('pg_advisory_xact_lock'))
    expect(r.statements[lock - 1]).toMatch(/^WITH added AS \( INSERT INTO access_control_entries/)
    expect(r.statements.slice(lock + 1).map((s) => s.split(' (')[0])).toEqual(['INSERT INTO objects', 'COMMIT'])
  })

  const creates = (withIds: boolean, tag: string) =>
    Array.from({length: 25}, (_, i) => ({method: 'POST', path: BASE.slice(3), body: {data: withIds ? {id: `${tag}${i}`, n: i} : {n: i}}}))
  const COUNT = /^SELECT EXISTS \( SELECT 1 FROM access_control_entries/

  test('a batch of 25 record creates without ids: the collection and the permission read once (BATCH_NO_IDS)', async () => {
    const r = await send('POST', '/v1/batch', {requests: creates(false, '')})
    expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual(Array(25).fill(201))
    // The groups (authentication, before the transaction), BEGIN, the first create's prefetch
    // only (its answers serve the 24 others), the 25 ACEs in one statement, then the list lock
    // (one list: taken by the INSERT) and one INSERT of the 25 rows.
    expect(r.statements[1]).toBe('BEGIN')
    expect(r.statements[2]).toMatch(PREFETCH)
    expect(r.statements.slice(3).map((s) => s.split(/ ?\(/)[0])).toEqual([
      'WITH added AS',
      'SELECT pg_advisory_xact_lock',
      'INSERT INTO objects',
      'COMMIT',
    ])
    expect(r.statements.filter((s) => PREFETCH.test(s))).toHaveLength(1)
    expect(r.statements.filter((s) => COUNT.test(s))).toHaveLength(0)
    expect(r.statements.filter((s) => s.startsWith('INSERT INTO objects'))).toHaveLength(BATCH_INSERTS)
    expectStatements(r, BATCH_NO_IDS)
  })

  test('a batch of 25 record creates with ids: the 25 ids read in one statement, the collection and the permission once (BATCH_IDS)', async () => {
    const r = await send('POST', '/v1/batch', {requests: creates(true, 'bid')})
    expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual(Array(25).fill(201))
    expect(r.statements.filter((s) => COUNT.test(s))).toHaveLength(1)
    // The groups, BEGIN, the collection (a create with an id does not prefetch), the list lock
    // (its id is read under it), the 25 ids in one read, the create check, the 25 ACEs, one
    // INSERT of the 25 rows, COMMIT.
    const reads = r.statements.filter((s) => s.startsWith('SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects'))
    expect(reads.map((s) => s.includes('WHERE id = ANY($1::text[])'))).toEqual([false, true])
    expect(r.statements.slice(1).map((s) => s.split(/ ?\(/)[0])).toEqual([
      'BEGIN',
      'SELECT id, as_epoch',
      'SELECT pg_advisory_xact_lock',
      'SELECT id, as_epoch',
      'SELECT EXISTS',
      'WITH added AS',
      'INSERT INTO objects',
      'COMMIT',
    ])
    expectStatements(r, BATCH_IDS)
  })

  test('PUT with If-Match (record loaded once, one conditional UPDATE)', async () => {
    const current = await send('GET', `${BASE}/r010`)
    log.reset()
    const res = await app.inject({
      method: 'PUT',
      url: `${BASE}/r010`,
      headers: {authorization: ALICE, 'content-type': 'application/json', 'if-match': `"${current.body.data.last_modified}"`},
      payload: JSON.stringify({data: {n: 10, kind: 'even', touched: true}}),
    })
    const sent: Sent = {status: res.statusCode, body: JSON.parse(res.body), headers: res.headers, statements: [...log.entries], names: [...log.names]}
    expect(sent.status).toBe(200)
    expect(sent.statements.filter((s) => s.startsWith('UPDATE objects'))).toHaveLength(1)
    expectStatements(sent, 10)
  })
})

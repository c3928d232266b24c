/**
 * The one SQL client interface: the same tests for both drivers (PGlite always; pg against the
 * real server when KINTO_TEST_DATABASE_URL is set).
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {BackendError} from '../../src/lib/db/backend.js'
import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry, openDatabase, type SqlClient} from '../../src/lib/db/index.js'
import type {PoolOptions} from '../../src/lib/db/types.js'
import {createPgliteDatabase, createServerDatabase, realServerUrl, type TestDatabase} from '../helpers/db.js'
import {startProxy, type TcpProxy} from '../helpers/tcp-proxy.js'

const kinds: Array<['pglite' | 'pg', () => Promise<TestDatabase>]> = [['pglite', async () => createPgliteDatabase()]]
const serverUrl = realServerUrl // a local const stays narrowed inside the closure
if (serverUrl) kinds.push(['pg', () => createServerDatabase(serverUrl)])

describe.each(kinds)('SqlClient on %s', (kind, create) => {
  let db: TestDatabase
  let c: SqlClient

  beforeAll(async () => {
    db = await create()
    c = openDatabase(db.url)
    await c.exec('CREATE TABLE t (id int PRIMARY KEY, ts timestamp, big bigint, doc jsonb); CREATE TABLE u (x int)')
  })
  afterAll(async () => {
    await c.close()
    await db.drop()
  })

  it('reports its kind and a printable URL', () => {
    expect(c.kind).toBe(kind)
    expect(c.displayUrl).not.toMatch(/:[^:@/]+@/) // no password
  })

  it('binds parameters and maps types the same way (timestamp as string, bigint as number, jsonb as object)', async () => {
    await c.query('INSERT INTO t VALUES ($1, $2, $3, $4)', [1, '2020-01-02 03:04:05.678', 1577934245678, {a: [1, 'x']}])
    const res = await c.query<{id: number; ts: string; big: number; doc: unknown}>('SELECT * FROM t WHERE id = $1', [1])
    expect(res.rows).toEqual([{id: 1, ts: '2020-01-02 03:04:05.678', big: 1577934245678, doc: {a: [1, 'x']}}])
    const upd = await c.query('UPDATE t SET big = big + 1 WHERE id = $1', [1])
    expect(upd.rowCount).toBe(1)
  })

  it('never interpolates parameters into SQL', async () => {
    const evil = "x'); DROP TABLE t; --"
    const res = await c.query<{v: string}>('SELECT $1::text AS v', [evil])
    expect(res.rows[0].v).toBe(evil)
    expect((await c.query("SELECT to_regclass('t') IS NOT NULL AS ok")).rows[0]).toEqual({ok: true})
  })

  it('runs several statements with exec', async () => {
    await c.exec('INSERT INTO u VALUES (1); INSERT INTO u VALUES (2);')
    expect((await c.query<{n: number}>('SELECT count(*)::int AS n FROM u')).rows[0].n).toBe(2)
  })

  it('commits a transaction, and rolls it back when fn throws (rethrowing)', async () => {
    await c.transaction(async (tx) => {
      await tx.query('INSERT INTO u VALUES ($1)', [10])
    })
    await expect(
      c.transaction(async (tx) => {
        await tx.query('INSERT INTO u VALUES ($1)', [11])
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    const res = await c.query<{x: number}>('SELECT x FROM u WHERE x >= 10 ORDER BY x')
    expect(res.rows).toEqual([{x: 10}])
  })

  it('rolls back a failed statement inside a transaction', async () => {
    await expect(
      c.transaction(async (tx) => {
        await tx.query('INSERT INTO u VALUES (20)')
        await tx.query('INSERT INTO t VALUES (1)') // duplicate key
      }),
    ).rejects.toMatchObject({code: '23505'})
    expect((await c.query('SELECT 1 FROM u WHERE x = 20')).rows).toHaveLength(0)
  })

  it('keeps session state on one connection in withConnection (advisory locks)', async () => {
    await c.withConnection(async (conn) => {
      const got = await conn.query<{ok: boolean}>('SELECT pg_try_advisory_lock(42) AS ok')
      expect(got.rows[0].ok).toBe(true)
      const held = await conn.query<{n: number}>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND pid = pg_backend_pid()")
      expect(held.rows[0].n).toBe(1)
      await conn.query('SELECT pg_advisory_unlock(42)')
    })
  })

  it("keeps withConnection's session to itself: the client's other statements wait, none runs inside its transaction", async () => {
    await c.exec('DELETE FROM u')
    const order: string[] = []
    let writes: Array<Promise<unknown>> = []
    const count = async (q: {query: SqlClient['query']}) => (await q.query<{n: number}>('SELECT count(*)::int AS n FROM u')).rows[0].n
    await c.withConnection(async (conn) => {
      await conn.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        // The transaction's first statement takes its snapshot.
        expect(await count(conn)).toBe(0)
        // Started by other callers while the snapshot is open (a server's requests during a backup).
        writes = [1, 2, 3].map((x) => c.query('INSERT INTO u (x) VALUES ($1)', [x]).then(() => order.push(`insert ${x}`)))
        writes.push(c.transaction(async (tx) => tx.query('INSERT INTO u (x) VALUES (4)')).then(() => order.push('transaction')))
        for (let i = 0; i < 3; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10))
          expect(await count(conn)).toBe(0)
        }
        order.push('snapshot read')
      } finally {
        await conn.exec('ROLLBACK')
      }
    })
    await Promise.all(writes)
    // On the server driver the inserts run on other connections meanwhile (the snapshot does not
    // see them); on PGlite, one connection, they wait for the snapshot to end.
    if (kind === 'pglite') expect(order[0]).toBe('snapshot read')
    expect(await count(c)).toBe(4)
  })

  it('answers statements started together on one connection each with its own result; a failure stays its own', async () => {
    await c.withConnection(async (conn) => {
      const start = () =>
        [
          conn.query<{v: number}>('SELECT $1::int AS v', [1], {name: 'together_first'}),
          conn.query('SELECT 1 / $1::int AS v', [0]),
          conn.query<{v: number}>('SELECT $1::int AS v', [3]),
        ] as const
      const [first, failed, third] = await Promise.allSettled(conn.together ? conn.together(start) : start())
      expect(first).toMatchObject({status: 'fulfilled', value: {rows: [{v: 1}]}})
      expect(failed).toMatchObject({status: 'rejected', reason: {code: '22012'}})
      expect(third).toMatchObject({status: 'fulfilled', value: {rows: [{v: 3}]}})
      // The connection is still usable, named statement included.
      expect((await conn.query<{v: number}>('SELECT $1::int AS v', [4], {name: 'together_first'})).rows).toEqual([{v: 4}])
    })
  })
})

const proxySkip = serverUrl ? '' : 'SKIPPED: needs KINTO_TEST_DATABASE_URL (a PostgreSQL server to reach over TCP)'

describe.skipIf(proxySkip !== '')(`pg round trips, counted on the wire ${proxySkip}`, () => {
  let db: TestDatabase
  let proxy: TcpProxy
  let c: SqlClient

  beforeAll(async () => {
    db = await createServerDatabase(serverUrl!)
    const url = new URL(db.url)
    proxy = await startProxy(Number(url.port || 5432), url.hostname)
    url.host = `127.0.0.1:${proxy.port}`
    c = openDatabase(url.toString())
  })
  afterAll(async () => {
    await c?.close()
    await proxy?.close()
    await db?.drop()
  })

  it('sends statements started together in one round trip, and awaited ones in one each', async () => {
    await c.withConnection(async (conn) => {
      await conn.query('SELECT 1') // connected and logged in
      expect(conn.together).toBeTypeOf('function')
      const before = proxy.turns
      const [a, b] = await Promise.all(conn.together!(() => [conn.query('SELECT 1 AS v'), conn.query('SELECT $1::int AS v', [2], {name: 'trip_b'})] as const))
      expect(proxy.turns - before).toBe(1)
      expect([a.rows, b.rows]).toEqual([[{v: 1}], [{v: 2}]])
      const between = proxy.turns
      await conn.query('SELECT 1 AS v')
      await conn.query('SELECT $1::int AS v', [2], {name: 'trip_b'})
      expect(proxy.turns - between).toBe(2)
    })
  })
})

describe.skipIf(proxySkip !== '')(`pg pool bounds from Kinto's settings ${proxySkip}`, () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createServerDatabase(serverUrl!)
  })
  afterAll(async () => db?.drop())

  /** Holds the pool's only connection until release() is called. */
  function hold(c: SqlClient): {release: () => void; done: Promise<void>} {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let held!: () => void
    const holding = new Promise<void>((resolve) => (held = resolve))
    const done = c.withConnection(async () => {
      held()
      await gate
    })
    return {release, done: holding.then(() => done)}
  }

  it('max_backlog: callers beyond it are refused at once (BackendError), those within it wait and are served', async () => {
    const c = openDatabase(db.url, {poolSize: 1, maxOverflow: 0, maxBacklog: 1, poolTimeoutSeconds: 20})
    try {
      await c.query('SELECT 1')
      const holder = hold(c)
      await new Promise((resolve) => setTimeout(resolve, 50))
      const waiting = c.query<{v: number}>('SELECT 2 AS v')
      const started = Date.now()
      const refused = await c.query('SELECT 3').then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(Date.now() - started).toBeLessThan(1000)
      expect(refused).toBeInstanceOf(BackendError)
      expect((refused as Error).message).toMatch(/max_backlog = 1/)
      await expect(c.withConnection(async () => 1)).rejects.toBeInstanceOf(BackendError)
      holder.release()
      await holder.done
      expect((await waiting).rows).toEqual([{v: 2}])
      expect((await c.query<{v: number}>('SELECT 4 AS v')).rows).toEqual([{v: 4}])
    } finally {
      await c.close()
    }
  })

  it('hold(reason): every statement fails at once with it (an unreachable BackendError) until lifted', async () => {
    const c = openDatabase(db.url, {poolSize: 1})
    try {
      await c.query('SELECT 1')
      c.hold?.('The database schemas are not migrated yet.')
      for (const call of [() => c.query('SELECT 1'), () => c.exec('SELECT 1'), () => c.withConnection(async () => 1), () => c.transaction(async () => 1)]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(BackendError)
        expect(error).toMatchObject({unreachable: true, message: 'The database schemas are not migrated yet.'})
      }
      c.hold?.(undefined)
      expect((await c.query<{v: number}>('SELECT 5 AS v')).rows).toEqual([{v: 5}])
    } finally {
      await c.close()
    }
  })

  it('max_backlog 0 refuses any wait; unset, callers queue', async () => {
    for (const maxBacklog of [0, undefined]) {
      const c = openDatabase(db.url, {poolSize: 1, maxOverflow: 0, maxBacklog, poolTimeoutSeconds: 20})
      try {
        await c.query('SELECT 1')
        const holder = hold(c)
        await new Promise((resolve) => setTimeout(resolve, 50))
        const second = c.query<{v: number}>('SELECT 2 AS v').then(
          (r) => r.rows,
          (error: unknown) => error,
        )
        if (maxBacklog === 0) expect(await second).toBeInstanceOf(BackendError)
        holder.release()
        await holder.done
        if (maxBacklog === undefined) expect(await second).toEqual([{v: 2}])
      } finally {
        await c.close()
      }
    }
  })

  it('poolclass NullPool (read from the settings as createBackends reads them): each statement on a new connection', async () => {
    const settings = buildSettings({'kinto.storage_backend': 'kinto.core.storage.postgresql', 'kinto.storage_url': db.url, 'kinto.storage_poolclass': 'sqlalchemy.pool.NullPool'}, {})
    const registry = new (class extends DatabaseRegistry {
      seen: PoolOptions[] = []
      get(url: string, options: PoolOptions = {}): SqlClient {
        this.seen.push(options)
        return super.get(url, options)
      }
    })()
    const backends = createBackends(settings, {registry})
    try {
      expect(registry.seen[0]).toMatchObject({noPooling: true})
      const c = registry.get(db.url)
      const pids = []
      for (let i = 0; i < 3; i++) pids.push((await c.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid)
      expect(new Set(pids).size).toBe(3)
    } finally {
      await backends.close()
      await registry.closeAll()
    }
  })

  it('pool_recycle: a connection older than it is replaced; without it the same one is reused', async () => {
    const pids: Record<string, number[]> = {}
    for (const [name, recycleSeconds] of [['recycled', 1], ['kept', undefined]] as const) {
      const c = openDatabase(db.url, {poolSize: 1, maxOverflow: 0, recycleSeconds})
      try {
        const first = (await c.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid
        await new Promise((resolve) => setTimeout(resolve, 1500))
        const second = (await c.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid
        pids[name] = [first, second]
      } finally {
        await c.close()
      }
    }
    expect(pids.recycled[0]).not.toBe(pids.recycled[1])
    expect(pids.kept[0]).toBe(pids.kept[1])
  })
})

import type pg from 'pg'

import {parseJson} from '../json.js'
import {lazy, lazyRequire} from '../lazy.js'
import {connectionError, type DbTarget} from './errors.js'
import type {PoolOptions, Queryable, QueryOptions, QueryResult, SqlClient} from './types.js'
import {maskUrl, parseDbUrl} from './url.js'

/**
 * `pg`, loaded when the first server client is made: the commands on the embedded engine never
 * need it (~30 ms of every start).
 */
const requirePg = lazyRequire<typeof pg>('pg')
const loadPg = lazy(() => {
  const pgModule = requirePg()
  // Timestamps without time zone come back as strings: Kinto converts them in SQL (as_epoch).
  pgModule.types.setTypeParser(1114, (v: string) => v)
  // BIGINT (as_epoch results) as JS numbers: epoch milliseconds fit in 2^53.
  pgModule.types.setTypeParser(20, (v: string) => Number(v))
  // json and jsonb: integers beyond 2^53 keep every digit (see lib/json.ts).
  pgModule.types.setTypeParser(114, parseJson)
  pgModule.types.setTypeParser(3802, parseJson)
  return pgModule
})

/** Whether named prepared statements work on this database (not behind a pooler that drops them). */
interface NamedStatements {
  usable: boolean
}

function wrap(client: pg.Pool | pg.PoolClient, named: NamedStatements, target?: DbTarget): Queryable {
  // On the pool, a query also connects: report connection failures as one clear line.
  const rethrow = (error: unknown): never => {
    throw (target && connectionError(error, target)) || error
  }
  return {
    async query<T>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
      const values = params as unknown[] | undefined
      let res
      if (options?.name && named.usable) {
        res = await client.query({name: options.name, text: sql, values}).catch(async (error: {code?: string}) => {
          // 26000: the statement is not on the server connection (a transaction-pooling PgBouncer
          // before 1.21 moves clients between connections): run everything unnamed from now on.
          if (error?.code !== '26000') return rethrow(error)
          named.usable = false
          return client.query(sql, values).catch(rethrow)
        })
      } else {
        res = await client.query(sql, values).catch(rethrow)
      }
      return {rows: res.rows as T[], rowCount: res.rowCount ?? 0}
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql).catch(rethrow)
    },
  }
}

export class PgClient implements SqlClient {
  readonly kind = 'pg' as const
  readonly displayUrl: string
  readonly pool: pg.Pool
  private readonly q: Queryable
  private readonly target: DbTarget
  private readonly named: NamedStatements = {usable: true}

  constructor(connectionString: string, options: PoolOptions = {}) {
    this.displayUrl = maskUrl(connectionString)
    const parsed = parseDbUrl(connectionString)
    this.target =
      parsed.driver === 'pg'
        ? {host: parsed.host, port: parsed.port, database: parsed.database, user: parsed.user}
        : {host: '?', port: 0, database: '?'}
    this.pool = new (loadPg().Pool)({
      connectionString,
      max: (options.poolSize ?? 25) + (options.maxOverflow ?? 10),
      connectionTimeoutMillis: options.connectTimeoutMs ?? (options.poolTimeoutSeconds ?? 30) * 1000,
      idleTimeoutMillis: 30_000,
    })
    // An idle client that errors (server restart) must not crash the process.
    this.pool.on('error', () => {})
    this.q = wrap(this.pool, this.named, this.target)
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
    return this.q.query<T>(sql, params, options)
  }

  exec(sql: string): Promise<void> {
    return this.q.exec(sql)
  }

  async withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw connectionError(error, this.target) ?? error
    })
    let broken: Error | undefined
    try {
      return await fn(wrap(client, this.named))
    } catch (error) {
      broken = error instanceof Error && /terminat|connection/i.test(error.message) ? error : undefined
      throw error
    } finally {
      client.release(broken)
    }
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.withConnection(async (conn) => {
      await conn.exec('BEGIN')
      try {
        const result = await fn(conn)
        await conn.exec('COMMIT')
        return result
      } catch (error) {
        await conn.exec('ROLLBACK').catch(() => {})
        throw error
      }
    })
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}

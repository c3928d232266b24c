import type pg from 'pg'

import {parseJson} from '../json.js'
import {lazy, lazyRequire} from '../lazy.js'
import {BackendError} from './backend.js'
import {connectionError, sqlStateOf, type DbTarget} from './errors.js'
import {pgTls, serverOffersTls} from './tls.js'
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

/** Default time to open a connection (TCP, TLS, login). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** TCP keepalive probes start after this much silence on a connection. */
const KEEPALIVE_IDLE_MS = 10_000

/**
 * Whether an error raised by a statement leaves its connection unusable: the server ended the
 * session (class 08 connection exception, 57P01-57P05 shutdown or idle-session timeouts), or the
 * driver gave up on the socket (no SQLSTATE: reset, timeout, "Connection terminated"). A
 * statement cancelled by statement_timeout (57014) or any other SQL error leaves it usable.
 */
export function connectionLost(error: unknown): boolean {
  const e = error as {code?: unknown; severity?: unknown}
  // An error the server sent carries a severity (pg's DatabaseError); socket errors (EPIPE…) do not.
  if (typeof e?.severity === 'string' && typeof e.code === 'string') return e.code.startsWith('08') || e.code.startsWith('57P')
  return true
}

/**
 * Whether the server refused a connection because it was not encrypted (a pg_hba.conf with
 * `hostssl` lines only, as managed databases that force TLS): SQLSTATE 28000, "no encryption"
 * (PostgreSQL 14 and later) or "SSL off" (before).
 */
function refusedInClear(error: unknown): boolean {
  if (sqlStateOf(error) !== '28000') return false
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (/no encryption|SSL off/.test(e.message)) return true
  }
  return false
}

/** The state of one checked-out connection: set once it must not go back to the pool. */
interface Session {
  broken?: Error
}

function wrap(client: pg.Pool | pg.PoolClient, named: NamedStatements, target: DbTarget, session?: Session): Queryable {
  // Connection failures become one clear line (KINTO_DB_UNREACHABLE); a checked-out connection
  // that failed that way is marked, so that it is destroyed instead of being pooled again.
  const rethrow = (error: unknown): never => {
    if (session && connectionLost(error)) session.broken ??= error instanceof Error ? error : new Error(String(error))
    throw connectionError(error, target) || error
  }
  const live = () => {
    if (session?.broken) rethrow(session.broken)
  }
  return {
    async query<T>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
      live()
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
      live()
      await client.query(sql).catch(rethrow)
    },
    together<T>(fn: () => T): T {
      // A checked-out connection only: the pool would spread the statements over connections.
      const stream = session ? (client as pg.Client).connection?.stream : undefined
      stream?.cork()
      try {
        return fn()
      } finally {
        stream?.uncork()
      }
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
  /** Every connection of the pool until it ends (abort() reaches those opening or checked out). */
  private readonly connections = new Set<pg.Client>()
  /** Kinto's max_backlog (negative: no bound) and the pool's size, for refusal(). */
  private readonly maxBacklog: number
  private readonly maxConnections: number
  /**
   * The connections' settings while a URL without sslmode (nor PGSSLMODE) to a server on this
   * machine has not connected yet (elsewhere such a URL is libpq's prefer: tls.ts). libpq, which
   * reads upstream's URLs, tries TLS by default, so such a URL reaches a server that takes
   * encrypted connections only. Here connections are in clear; if the server refuses one for
   * that, they use TLS from then on (clearOrTls). Unset once a connection has opened.
   */
  private tlsOnRefusal: pg.ClientConfig | undefined

  constructor(connectionString: string, options: PoolOptions = {}) {
    this.displayUrl = maskUrl(connectionString)
    const parsed = parseDbUrl(connectionString)
    this.target =
      parsed.driver === 'pg'
        ? {host: parsed.host, port: parsed.port, database: parsed.database, user: parsed.user}
        : {host: '?', port: 0, database: '?'}
    const pgModule = loadPg()
    const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    const statementMs = options.statementTimeoutMs ?? 0
    const clientConfig: pg.ClientConfig = {
      // Opening a connection is bounded on its own, apart from the wait for a free pool slot.
      connectionTimeoutMillis: connectMs,
      // A peer that vanished (host down, cable cut, NAT dropped the flow) is noticed on idle
      // connections, not only when a statement waits on it.
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      // Statements given to one connection without waiting are sent at once, their answers read
      // in order (each its own Sync: one failing leaves the next alone). A caller that awaits
      // each statement sees no difference; the read prefetch sends a filtered page behind its
      // statement this way (src/lib/prefetch.ts), one round trip instead of two.
      pipeline: true,
    }
    if (statementMs > 0) {
      // The server cancels a statement at statement_timeout; an answer that never comes at all
      // (a blackholed connection) is given up on a little later by the driver.
      clientConfig.query_timeout = statementMs + connectMs
    }
    const tlsOptions = parsed.driver === 'pg' ? pgTls(connectionString, parsed.host, this.displayUrl) : {connectionString, plainIfRefused: false}
    if (tlsOptions.ssl !== undefined) clientConfig.ssl = tlsOptions.ssl
    // sslmode=prefer: whether the server offers TLS, asked once (libpq asks at each connection).
    let offersTls: Promise<boolean> | undefined
    const target = this.target
    const connections = this.connections
    const TimedClient = class extends pgModule.Client {
      constructor(config?: pg.ClientConfig) {
        super({...config, ...clientConfig})
        connections.add(this)
        this.once('end', () => connections.delete(this))
      }

      connect(): Promise<pg.Client>
      connect(callback: (error: Error) => void): void
      connect(callback?: (error: Error) => void): Promise<pg.Client> | void {
        if (!tlsOptions.plainIfRefused) return callback ? super.connect(callback) : super.connect()
        // a failed probe is this connection's failure, asked again by the next one
        const probe = (offersTls ??= serverOffersTls(target.host, target.port, connectMs).catch((error: unknown) => {
          offersTls = undefined
          throw error
        }))
        const ready = probe.then(
          (offers) => {
            // read by node-postgres when the socket opens (Client.ssl, its Connection's ssl)
            const self = this as unknown as {ssl: unknown; connection: {ssl: unknown}}
            if (!offers) self.ssl = self.connection.ssl = false
          },
          (error: unknown) => {
            connections.delete(this) // never opened, so never 'end'
            throw error
          },
        )
        if (!callback) return ready.then(() => super.connect())
        ready.then(() => super.connect(callback), callback)
      }
    }
    this.maxBacklog = options.maxBacklog ?? -1
    this.maxConnections = (options.poolSize ?? 25) + (options.maxOverflow ?? 10)
    this.pool = new pgModule.Pool({
      connectionString: tlsOptions.connectionString,
      Client: TimedClient,
      max: this.maxConnections,
      // Kinto's pool_recycle: a connection older than this is closed once it is back in the pool.
      maxLifetimeSeconds: options.recycleSeconds !== undefined && options.recycleSeconds > 0 ? options.recycleSeconds : 0,
      // NullPool: a connection serves one checkout, then is closed.
      ...(options.noPooling ? {maxUses: 1} : {}),
      // The wait for a free connection of the pool: Kinto's pool_timeout when given (the server
      // runtime), else the connect timeout (one-shot commands: one bound for everything).
      connectionTimeoutMillis: options.poolTimeoutSeconds !== undefined ? options.poolTimeoutSeconds * 1000 : (options.connectTimeoutMs ?? 30_000),
      idleTimeoutMillis: 30_000,
    })
    // An idle connection that dies (server restart, pg_terminate_backend) is dropped by the pool
    // and reported here; the next statement opens a new one.
    this.pool.on('error', () => {})
    const lockMs = options.lockTimeoutMs ?? 0
    if (statementMs > 0 || lockMs > 0) {
      // statement_timeout (and lock_timeout) are set once the connection is open, not sent among
      // the startup parameters: PgBouncer refuses a connection whose startup packet carries a
      // parameter it does not track ("unsupported startup parameter: statement_timeout"). Queued
      // before the first statement of the connection (sent with it, in pipeline mode); a failure
      // here is the connection's, and that statement fails with it.
      const ms = (n: number) => `${Math.round(n)}ms`
      this.pool.on('connect', (client) => {
        client
          .query("SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)", [ms(statementMs), ms(lockMs)])
          .catch(() => {})
      })
    }
    if (tlsOptions.ssl === undefined && parsed.driver === 'pg' && !parsed.host.startsWith('/')) {
      this.tlsOnRefusal = clientConfig
      this.pool.once('connect', () => (this.tlsOnRefusal = undefined))
    }
    this.q = wrap(this.pool, this.named, this.target)
  }

  /** Runs fn, and once more over TLS if the server refused it a connection in clear (tlsOnRefusal). */
  private async clearOrTls<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      const config = this.tlsOnRefusal
      if (!config || !refusedInClear(error)) throw error
      // as libpq's default: encrypted, the certificate not checked (sslmode=verify-full checks it)
      config.ssl = {rejectUnauthorized: false}
      this.tlsOnRefusal = undefined
      return fn()
    }
  }

  /**
   * Kinto's max_backlog: a caller that would have to wait for a connection behind that many
   * others is refused at once (503 errno 201 for a request), as upstream's pool refuses it,
   * instead of queueing until pool_timeout while the database is slow.
   */
  private refusal(): BackendError | undefined {
    if (this.held) return this.held
    const bound = this.maxBacklog
    if (bound < 0) return undefined
    const pool = this.pool
    if (pool.idleCount > 0 || pool.totalCount < this.maxConnections || pool.waitingCount < bound) return undefined
    const {host, port, database} = this.target
    return new BackendError(
      `All ${this.maxConnections} connections to PostgreSQL at ${host}:${port}, database ${database} are busy and ${pool.waitingCount} callers already wait for one (max_backlog = ${bound}).`,
    )
  }

  private held: BackendError | undefined

  hold(reason: string | undefined): void {
    this.held = reason === undefined ? undefined : new BackendError(reason, {unreachable: true})
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    return this.tlsOnRefusal ? this.clearOrTls(() => this.q.query<T>(sql, params, options)) : this.q.query<T>(sql, params, options)
  }

  exec(sql: string): Promise<void> {
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    return this.tlsOnRefusal ? this.clearOrTls(() => this.q.exec(sql)) : this.q.exec(sql)
  }

  async withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    const refused = this.refusal()
    if (refused) throw refused
    const connect = () =>
      this.pool.connect().catch((error: unknown) => {
        throw connectionError(error, this.target) ?? error
      })
    const client = await (this.tlsOnRefusal ? this.clearOrTls(connect) : connect())
    // A checked-out connection has no listener of the pool: without one, the connection dying
    // while it is held (the server restarts mid-transaction) would be an unhandled 'error' event.
    const session: Session = {}
    const onError = (error: Error) => {
      session.broken ??= error
    }
    client.on('error', onError)
    try {
      return await fn(wrap(client, this.named, this.target, session))
    } finally {
      client.off('error', onError)
      // A broken connection is destroyed (release with an error), never handed out again.
      client.release(session.broken ?? undefined)
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

  abort(): void {
    for (const client of this.connections) client.connection?.stream?.destroy()
  }
}

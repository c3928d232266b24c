/** One SQL client interface; drivers: pg (PostgreSQL server) and PGlite (embedded). */

export interface QueryResult<T = Record<string, unknown>> {
  rows: T[]
  /** Rows inserted, updated or deleted (0 for SELECT on PGlite; use rows.length there). */
  rowCount: number
}

/** Options of one statement. */
export interface QueryOptions {
  /**
   * Run it as a named prepared statement (pg): PostgreSQL parses it once per connection and may
   * reuse its plan, which matters for a hot statement that is costly to plan. The same name must
   * always carry the same SQL. Ignored by PGlite; wrappers may drop it (the statement then runs
   * unnamed, with the same result).
   */
  name?: string
}

/** Something that runs statements: a pool, a checked-out connection or a transaction. */
export interface Queryable {
  /** One statement with $1.. parameters. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<T>>
  /** Several statements in one string, no parameters (schema files). */
  exec(sql: string): Promise<void>
  /**
   * Runs fn, which starts statements without awaiting them, so that what they send leaves in one
   * write (a checked-out pg connection); elsewhere simply fn().
   */
  together?<T>(fn: () => T): T
}

export type DriverKind = 'pg' | 'pglite'

export interface SqlClient extends Queryable {
  readonly kind: DriverKind
  /** The URL with any password masked: safe to print. */
  readonly displayUrl: string
  /** BEGIN … COMMIT around fn on one connection; ROLLBACK when fn throws (and rethrow). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Runs fn on one dedicated connection (session state such as advisory locks stays on it). */
  withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
  /**
   * Destroys every connection at once, open, opening or checked out: their statements fail now
   * instead of waiting on the network (a shutdown past its deadline). close() still follows.
   */
  abort?(): void
  /**
   * While a reason is given, every statement fails at once with it (a BackendError: 503 errno 201
   * for a request), as if the database could not be reached: a server whose schema is still to be
   * migrated (kinto start --migrate --serve-unreachable). undefined lifts it.
   */
  hold?(reason: string | undefined): void
}

export interface PoolOptions {
  /** Pool size (pg only); Kinto's `<backend>_pool_size`, default 25. */
  poolSize?: number
  /** Extra connections beyond poolSize (Kinto's max_overflow, default 10). */
  maxOverflow?: number
  /** Seconds to wait for a free connection (Kinto's pool_timeout); unset: the connect timeout, else 30 s. */
  poolTimeoutSeconds?: number
  /**
   * How many callers may wait for a free connection when all are busy (Kinto's max_backlog);
   * one more is refused at once (a BackendError: 503 errno 201) instead of queueing. Unset or
   * negative: no bound.
   */
  maxBacklog?: number
  /** Seconds after which a connection is closed and replaced (Kinto's pool_recycle); unset or ≤ 0: never. */
  recycleSeconds?: number
  /**
   * SQLAlchemy's NullPool (Kinto's `<backend>_poolclass`): a connection serves one checkout and
   * is closed when given back, none kept open between requests. Still at most poolSize +
   * maxOverflow at once.
   */
  noPooling?: boolean
  /**
   * Milliseconds to open a connection (TCP + TLS + login) before failing; default 10 s (setting
   * `kinto.<backend>_connect_timeout`, seconds).
   */
  connectTimeoutMs?: number
  /**
   * PostgreSQL's statement_timeout for the connections (ms; 0: none). A statement past it is
   * cancelled by the server; the driver also gives up on an answer that does not come within this
   * plus the connect timeout (a dead or blackholed TCP connection). Setting
   * `kinto.<backend>_statement_timeout` (seconds, default 30 for the server runtime).
   */
  statementTimeoutMs?: number
  /**
   * PostgreSQL's lock_timeout for the connections (ms; 0 or unset: none): a statement that waits
   * longer for a lock fails with 55P03. For maintenance commands, whose statements may run long
   * but must not wait forever behind another session's transaction.
   */
  lockTimeoutMs?: number
  /** Folder that relative `pglite:` paths are resolved against (the ini's folder). */
  baseDir?: string
}

import type {PGlite as PGliteType, Transaction} from '@electric-sql/pglite'

import type {Queryable, QueryResult, SqlClient} from './types.js'

function wrap(db: PGliteType | Transaction): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
      const res = await db.query<T>(sql, params as unknown[] | undefined)
      return {rows: res.rows, rowCount: res.affectedRows ?? 0}
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql)
    },
  }
}

// Same parsing as the pg driver: timestamps as strings, int8 as numbers.
const parsers = {
  1114: (v: string) => v,
  20: (v: string) => Number(v),
}

/**
 * Embedded PostgreSQL. PGlite is one connection: statements and transactions are queued by PGlite
 * itself, so transaction() and withConnection() simply run on the single connection.
 */
export class PgliteClient implements SqlClient {
  readonly kind = 'pglite' as const
  readonly displayUrl: string
  private db: PGliteType | undefined
  private opening: Promise<PGliteType> | undefined
  private readonly dataDir: string | null

  constructor(dataDir: string | null) {
    this.dataDir = dataDir
    this.displayUrl = dataDir ? `pglite:${dataDir}` : 'pglite:memory:'
  }

  private async open(): Promise<PGliteType> {
    if (this.db) return this.db
    this.opening ??= (async () => {
      const {PGlite} = await import('@electric-sql/pglite')
      const db = await PGlite.create(this.dataDir ?? undefined, {parsers})
      this.db = db
      return db
    })()
    return this.opening
  }

  async query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    return wrap(await this.open()).query<T>(sql, params)
  }

  async exec(sql: string): Promise<void> {
    return wrap(await this.open()).exec(sql)
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const db = await this.open()
    return db.transaction((tx) => fn(wrap(tx)))
  }

  async withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    return fn(wrap(await this.open()))
  }

  async close(): Promise<void> {
    const db = this.db ?? (this.opening ? await this.opening.catch(() => undefined) : undefined)
    this.db = undefined
    this.opening = undefined
    if (db && !db.closed) await db.close()
  }
}

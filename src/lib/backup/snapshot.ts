/**
 * Reading a consistent snapshot of the storage and permission tables.
 *
 * Each database is read inside one `REPEATABLE READ, READ ONLY` transaction: every statement of
 * it sees the database as it was when the first one ran, while servers keep writing. Storage and
 * permission on one database share that transaction (one snapshot across all four tables); on two
 * databases each gets its own, opened one after the other. Rows come through server-side cursors
 * fetched in batches, so memory stays flat whatever the size. A read-only role is enough.
 */
import type {Queryable, SqlClient} from '../db/index.js'
import {KintoError} from '../errors.js'
import {detectVersion} from '../schema/detect.js'
import {CURRENT_VERSIONS} from '../schema/sql-files.js'
import {type RowBatch, TABLE_BACKEND, TABLE_NAMES, type TableName, TABLES} from './format.js'

/** Oldest schema versions whose rows have the layout of this format (objects since storage 21). */
export const ROW_FORMAT_SINCE = {storage: 21, permission: 1} as const

/**
 * Rows in an order restore can insert as they come: within one list (parent_id, resource_name),
 * ascending last_modified, so that the bump_timestamp trigger keeps every given value. This order
 * is the unique index (parent_id, resource_name, last_modified DESC) walked backwards: no sort.
 */
const SELECTS: Record<TableName, string> = {
  objects:
    'SELECT id, parent_id, resource_name, last_modified::text AS last_modified, deleted, data::text AS data FROM objects ' +
    // objects.last_modified: the column (a timestamp, as the index), not the text output of the same name
    'ORDER BY objects.parent_id DESC, objects.resource_name DESC, objects.last_modified ASC',
  timestamps: 'SELECT parent_id, resource_name, last_modified::text AS last_modified FROM timestamps ORDER BY timestamps.parent_id, timestamps.resource_name',
  access_control_entries: 'SELECT object_id, permission, principal FROM access_control_entries ORDER BY object_id, permission, principal',
  user_principals: 'SELECT user_id, principal FROM user_principals ORDER BY user_id, principal',
}

export type ProgressEvent = {type: 'progress'; table: TableName; done: number; total: number | null}

export interface SnapshotOptions {
  /** Rows per FETCH (default 5000). */
  batchRows?: number
  /** Count each table first (one more scan) so that progress has a total. */
  countFirst?: boolean
  onProgress?: (event: ProgressEvent) => void
}

/** Opens the snapshot transaction on one connection (the caller ends it). */
export async function beginSnapshot(conn: Queryable): Promise<void> {
  await conn.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  // Timestamps as text in one unambiguous form, read back as is by restore.
  await conn.exec("SET LOCAL DateStyle = 'ISO, YMD'")
}

/**
 * Runs fn with one connection per distinct client, each inside its snapshot transaction
 * (storage first); every transaction is ended (nothing was written) when fn settles.
 */
export async function withSnapshot<T>(clients: {storage: SqlClient; permission: SqlClient}, fn: (conns: {storage: Queryable; permission: Queryable}) => Promise<T>): Promise<T> {
  return clients.storage.withConnection(async (storage) => {
    await beginSnapshot(storage)
    try {
      if (clients.permission === clients.storage) return await fn({storage, permission: storage})
      return await clients.permission.withConnection(async (permission) => {
        await beginSnapshot(permission)
        try {
          return await fn({storage, permission})
        } finally {
          await permission.exec('ROLLBACK').catch(() => {})
        }
      })
    } finally {
      await storage.exec('ROLLBACK').catch(() => {})
    }
  })
}

/** The schema versions of the snapshot's databases, refused when this format cannot carry them. */
export async function snapshotSchema(conns: {storage: Queryable; permission: Queryable}, where: {storage: string; permission: string}): Promise<{storage: number; permission: number}> {
  const out = {storage: 0, permission: 0}
  for (const backend of ['storage', 'permission'] as const) {
    const {version} = await detectVersion(conns[backend], backend)
    if (version === null) {
      throw new KintoError(`The ${backend} schema is not installed in ${where[backend]}: there is nothing to back up.`, {
        code: 'KINTO_SCHEMA_MISSING',
        hint: 'Check the ini names the database that holds the data (kinto db status).',
      })
    }
    if (version > CURRENT_VERSIONS[backend]) {
      throw new KintoError(`The ${backend} schema of ${where[backend]} is version ${version}, newer than this kinto-ops knows (${CURRENT_VERSIONS[backend]}).`, {
        code: 'KINTO_SCHEMA_NEWER',
        hint: 'Use the kinto-ops release that migrated this database.',
      })
    }
    if (version < ROW_FORMAT_SINCE[backend]) {
      throw new KintoError(`The ${backend} schema of ${where[backend]} is version ${version}, older than the backup format reads (${ROW_FORMAT_SINCE[backend]}).`, {
        code: 'KINTO_SCHEMA_BEHIND',
        hint: 'Upgrade it first with kinto migrate, then back it up.',
      })
    }
    out[backend] = version
  }
  return out
}

function toArray(table: TableName, row: Record<string, unknown>): unknown[] {
  return TABLES[table].map((c) => row[c])
}

/** Every row of the four tables, in file order, as batches (inside the snapshot of `conns`). */
export async function* snapshotRows(conns: {storage: Queryable; permission: Queryable}, options: SnapshotOptions = {}): AsyncGenerator<RowBatch> {
  const batchRows = options.batchRows ?? 5000
  for (const table of TABLE_NAMES) {
    const conn = conns[TABLE_BACKEND[table]]
    let total: number | null = null
    if (options.countFirst) {
      total = Number((await conn.query<{n: number}>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
    }
    options.onProgress?.({type: 'progress', table, done: 0, total})
    const cursor = `kinto_backup_${table}`
    await conn.exec(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${SELECTS[table]}`)
    let done = 0
    try {
      for (;;) {
        const res = await conn.query<Record<string, unknown>>(`FETCH ${batchRows} FROM ${cursor}`)
        if (res.rows.length > 0) {
          done += res.rows.length
          yield {table, rows: res.rows.map((r) => toArray(table, r))}
          options.onProgress?.({type: 'progress', table, done, total})
        }
        if (res.rows.length < batchRows) break
      }
    } finally {
      await conn.exec(`CLOSE ${cursor}`).catch(() => {})
    }
    // an empty table still gets its (empty) batch, so that its section is written in order
    if (done === 0) yield {table, rows: []}
  }
}

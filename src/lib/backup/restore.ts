/**
 * Writing a backup's rows into a migrated database, all or nothing.
 *
 * One transaction per database (storage and permission on one database: one transaction); the
 * target's tables are locked against writers, found empty (or, with force, emptied in the same
 * transaction), filled batch by batch, and the counts of the file (checked against its trailer and
 * checksum by the decoder) compared with the tables before COMMIT. Any failure — a damaged file, a
 * count that differs, Ctrl-C — rolls back: the target is left as it was.
 *
 * Exact timestamps: rows of one list arrive in ascending last_modified (snapshot.ts), so the
 * storage trigger (bump_timestamp) keeps each given value: it only replaces a missing value or
 * one equal to the list's newest. Each insert returns what was stored and any row whose
 * timestamp differs fails the restore.
 */
import type {Queryable, SqlClient} from '../db/index.js'
import {ExitCode, KintoError} from '../errors.js'
import {readOnlyDatabaseError} from '../schema/migrate.js'
import {type Counts, emptyCounts, type RowBatch, TABLE_BACKEND, TABLE_NAMES, type TableName} from './format.js'

const INSERTS: Record<TableName, string> = {
  objects: `WITH input AS (
      SELECT t.id COLLATE "C" AS id, t.parent_id COLLATE "C" AS parent_id, t.resource_name COLLATE "C" AS resource_name,
             t.last_modified, t.deleted, t.data, t.ord
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamp[], $5::boolean[], $6::jsonb[])
             WITH ORDINALITY AS t(id, parent_id, resource_name, last_modified, deleted, data, ord)
    ), ins AS (
      INSERT INTO objects (id, parent_id, resource_name, last_modified, deleted, data)
      SELECT id, parent_id, resource_name, last_modified, deleted, data FROM input ORDER BY ord
      RETURNING id, parent_id, resource_name, last_modified
    )
    SELECT count(*)::int AS inserted,
           (count(*) FILTER (WHERE ins.last_modified IS DISTINCT FROM input.last_modified))::int AS moved
      FROM ins JOIN input USING (id, parent_id, resource_name)`,
  timestamps: `INSERT INTO timestamps (parent_id, resource_name, last_modified)
      SELECT * FROM unnest($1::text[], $2::text[], $3::timestamp[])`,
  access_control_entries: `INSERT INTO access_control_entries (object_id, permission, principal)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
  user_principals: `INSERT INTO user_principals (user_id, principal) SELECT * FROM unnest($1::text[], $2::text[])`,
}

const BACKEND_TABLES = {
  storage: TABLE_NAMES.filter((t) => TABLE_BACKEND[t] === 'storage'),
  permission: TABLE_NAMES.filter((t) => TABLE_BACKEND[t] === 'permission'),
}

export interface RestoreSource {
  batches: AsyncIterable<RowBatch>
  /** Filled when batches has finished (and was verified). */
  trailer: {counts?: Counts}
}

export interface RestoreIntoOptions {
  /** Replace what the target holds (in the same transaction). */
  force?: boolean
  /** Checked between batches: when aborted the restore stops and rolls back. */
  signal?: AbortSignal
  /** The target, for messages ("localhost:5432/kinto"). */
  where: {storage: string; permission: string}
  onProgress?: (table: TableName, done: number, total: number | null) => void
  /** Seconds to wait for servers' writes to the target's tables to finish (default 30). */
  lockTimeoutS?: number
  /** `kinto db copy` (the source is a database, not a backup file), for messages. */
  copy?: boolean
}

export interface RestoreIntoResult {
  counts: Counts
  /** Rows the target held before (deleted when force). */
  replaced: Counts
}

const columns = (rows: unknown[][], n: number) => Array.from({length: n}, (_, i) => rows.map((r) => r[i]))

async function lockAndCount(conn: Queryable, tables: TableName[], timeoutS: number, where: string, done: string): Promise<Partial<Counts>> {
  await conn.exec(`SET LOCAL lock_timeout = '${Math.max(1, Math.round(timeoutS))}s'`)
  try {
    // EXCLUSIVE: readers go on, writers wait until COMMIT (nobody writes between the check and the copy)
    await conn.exec(`LOCK TABLE ${tables.join(', ')} IN EXCLUSIVE MODE`)
  } catch (error) {
    if ((error as {code?: string}).code === '55P03') {
      throw new KintoError(`Timed out after ${timeoutS} s waiting for the tables of ${where} (a long transaction holds them); nothing was ${done}.`, {
        code: 'KINTO_RESTORE_LOCKED',
        exit: ExitCode.LOCK_TIMEOUT,
        hint: 'Stop the servers writing to the target (or wait for their transactions), then run this again.',
      })
    }
    throw readOnlyDatabaseError(error, where) ?? error
  }
  const out: Partial<Counts> = {}
  for (const t of tables) out[t] = Number((await conn.query<{n: number}>(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
  return out
}

async function insertBatch(conn: Queryable, batch: RowBatch, done: string): Promise<void> {
  const {table, rows} = batch
  const params = columns(rows, rows[0].length)
  if (table !== 'objects') {
    await conn.query(INSERTS[table], params)
    return
  }
  const res = await conn.query<{inserted: number; moved: number}>(INSERTS.objects, params)
  const {inserted, moved} = res.rows[0]
  if (inserted !== rows.length || moved !== 0) {
    throw new KintoError(`The target changed the last_modified of ${moved} ${done} object(s) (${inserted} of ${rows.length} inserted); nothing was ${done}.`, {
      code: 'KINTO_RESTORE_FAILED',
      hint: 'The target database must have the kinto-ops storage schema (kinto migrate) and no other trigger on objects.',
    })
  }
}

/** Runs fn inside one transaction per distinct client (nested; the inner one commits first). */
async function inTransactions<T>(clients: {storage: SqlClient; permission: SqlClient}, fn: (c: {storage: Queryable; permission: Queryable}) => Promise<T>): Promise<T> {
  return clients.storage.transaction(async (storage) => {
    if (clients.permission === clients.storage) return fn({storage, permission: storage})
    return clients.permission.transaction((permission) => fn({storage, permission}))
  })
}

function interrupted(): KintoError {
  return new KintoError('Interrupted: the writes were rolled back and the target is as it was.', {code: 'KINTO_INTERRUPTED'})
}

/**
 * A database error while inserting the backup's rows, said as such (the transaction rolls back):
 * rows the schema refuses (a file made or edited by other means that kept a valid checksum), or a
 * role that may not write. Anything else is rethrown as it is.
 */
function rowsRefused(table: string, error: unknown, where: string, copy: boolean): unknown {
  const e = error as {code?: unknown; message?: unknown} | null
  if (typeof e?.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return error
  const readOnly = readOnlyDatabaseError(error, where)
  if (readOnly) return readOnly
  if (e.code === '42501') {
    return new KintoError(`The role of ${where} may not write ${table} (${String(e.message)}); nothing was ${copy ? 'copied' : 'restored'}.`, {
      code: 'KINTO_DB_PERMISSION',
      hint: `${copy ? 'Copy' : 'Restore'} as the role that owns the Kinto tables (the one kinto migrate ran as).`,
      cause: error,
    })
  }
  if (copy) {
    return new KintoError(`${where} refused the source's ${table} rows (${String(e.message)}); nothing was copied.`, {
      code: 'KINTO_RESTORE_FAILED',
      hint: 'The source holds rows the target schema does not accept: migrate both to the same schema (kinto migrate), then copy again.',
      cause: error,
    })
  }
  return new KintoError(`${where} refused the backup's ${table} rows (${String(e.message)}); nothing was restored.`, {
    code: 'KINTO_RESTORE_FAILED',
    hint: 'The file holds rows the schema does not accept although its checksum is right: restore another backup, or the file as kinto backup wrote it.',
    cause: error,
  })
}

/**
 * Restores `source` into the target clients (schemas installed and current), in one transaction
 * per database, verifying counts before COMMIT.
 */
export async function restoreInto(clients: {storage: SqlClient; permission: SqlClient}, source: RestoreSource, options: RestoreIntoOptions): Promise<RestoreIntoResult> {
  const counts = emptyCounts()
  const replaced = emptyCounts()
  const timeoutS = options.lockTimeoutS ?? 30
  const done = options.copy ? 'copied' : 'restored'
  await inTransactions(clients, async (conns) => {
    for (const backend of ['storage', 'permission'] as const) {
      // storage and permission in one transaction: lock all four tables at once
      if (backend === 'permission' && conns.permission === conns.storage) continue
      const tables = conns.permission === conns.storage ? TABLE_NAMES : BACKEND_TABLES[backend]
      const held = await lockAndCount(conns[backend], tables, timeoutS, options.where[backend], done)
      Object.assign(replaced, held)
    }
    const nonEmpty = TABLE_NAMES.filter((t) => replaced[t] > 0)
    if (nonEmpty.length > 0) {
      if (!options.force) {
        const where = [...new Set(nonEmpty.map((t) => options.where[TABLE_BACKEND[t]]))].join(' and ')
        const [source, into] = options.copy ? ['the copy', 'copy into an empty database'] : ['the backup', 'restore into an empty, migrated database']
        throw new KintoError(`The target ${where} is not empty (${nonEmpty.map((t) => `${replaced[t]} row(s) in ${t}`).join(', ')}); nothing was ${done}.`, {
          code: 'KINTO_RESTORE_NOT_EMPTY',
          exit: ExitCode.USAGE,
          hint: `Add --force to replace everything it holds with ${source} (in the same transaction), or ${into}.`,
        })
      }
      for (const t of nonEmpty) await conns[TABLE_BACKEND[t]].exec(`TRUNCATE ${t}`)
    }
    const batches = source.batches[Symbol.asyncIterator]()
    try {
      for (let next = await batches.next(); !next.done; next = await batches.next()) {
        const batch = next.value
        if (options.signal?.aborted) throw interrupted()
        if (batch.rows.length === 0) continue
        await insertBatch(conns[TABLE_BACKEND[batch.table]], batch, done).catch(async (error: unknown) => {
          // Rows the database refuses may come from a damaged file: its checksum, at its end, says
          // so first (the rest is read, and a damaged file throws KINTO_BACKUP_INVALID there).
          while (!(await batches.next()).done);
          throw rowsRefused(batch.table, error, options.where[TABLE_BACKEND[batch.table]], options.copy ?? false)
        })
        counts[batch.table] += batch.rows.length
        options.onProgress?.(batch.table, counts[batch.table], source.trailer.counts?.[batch.table] ?? null)
      }
    } finally {
      await batches.return?.()
    }
    if (options.signal?.aborted) throw interrupted()
    // the decoder has verified checksum and trailer counts; now the tables themselves
    const expected = source.trailer.counts
    for (const t of TABLE_NAMES) {
      const n = Number((await conns[TABLE_BACKEND[t]].query<{n: number}>(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
      if (!expected || n !== expected[t] || n !== counts[t]) {
        throw new KintoError(`After the copy ${t} holds ${n} row(s) where ${String(expected?.[t] ?? counts[t])} were expected; nothing was ${done}.`, {
          code: 'KINTO_RESTORE_FAILED',
          hint: 'Run it again; if it fails again, report it with the backup header (zcat FILE | head -1).',
        })
      }
    }
  })
  // New tables have no planner statistics (the embedded engine has no autovacuum): gather them.
  for (const [backend, client] of Object.entries(clients) as Array<['storage' | 'permission', SqlClient]>) {
    if (backend === 'permission' && client === clients.storage) continue
    const tables = client === clients.storage && clients.permission === client ? TABLE_NAMES : BACKEND_TABLES[backend]
    await client.exec(`ANALYZE ${tables.join(', ')}`).catch(() => {})
  }
  return {counts, replaced}
}

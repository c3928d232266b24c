/**
 * PostgreSQL storage (upstream: kinto.core.storage.postgresql) over upstream's schema: `objects`,
 * `timestamps`, and the `bump_timestamp` trigger that assigns timestamps. It reads and writes the
 * rows exactly as upstream does, so one database can be served by either implementation.
 * Runs on both drivers (pg pool, PGlite) through SqlClient.
 *
 * Concurrency: every write that fires the trigger first takes a transaction-scoped advisory lock
 * per list (parent_id, resource_name), so concurrent writers in one list are serialised and the
 * trigger always sees the previous writer's row: timestamps strictly increase and the unique index
 * on (parent_id, resource_name, last_modified) is never hit by concurrency. Conditional writes
 * (If-Match / If-None-Match) are single statements whose WHERE carries the condition.
 */
import type {Queryable, SqlClient} from '../db/index.js'
import {IntegrityError, PostgresBackend, runTransaction} from '../db/backend.js'
import {statementName} from '../db/statement-names.js'
import {parseJson, stringifyJson} from '../json.js'
import {Params, filtersSql, hasLongList, orderSql, parentSql, rulesSql} from './sql.js'
import {
  type Filter,
  type KintoObject,
  type ListOptions,
  ObjectNotFoundError,
  PreconditionFailedError,
  type Storage,
  storageHeartbeat,
  UnicityError,
  type WriteCondition,
} from './types.js'
import {newObjectId, toEpoch} from './values.js'
import {hasWildcard} from './wildcard.js'

export interface PostgresStorageOptions {
  /** Never write a list timestamp (kinto.readonly). */
  readonly?: boolean
  /** storage_max_fetch_size */
  maxFetchSize?: number
}

/** First key of our advisory locks (two-int form: cannot collide with single-bigint locks). 'KiTo'. */
export const LIST_LOCK_NAMESPACE = 0x4b69546f

/** SQLSTATEs of a write refused for lack of room or rights to write: disk_full, read_only_sql_transaction. */
const CANNOT_WRITE = new Set(['53100', '25006'])

const TOMBSTONE_DATA = JSON.stringify({deleted: true})

interface ObjectRow {
  id: string
  last_modified: number
  data: Record<string, unknown>
}

/** The `data` column: the object without id and last_modified. */
function dataJson(obj: Record<string, unknown>): string {
  const {id: _id, last_modified: _lm, ...data} = obj
  return stringifyJson(data)
}

/**
 * The object of a row. Its `data` was parsed for this row alone (the driver's jsonb parser), so it
 * takes id and last_modified in place: a key already in data keeps its position, a new one goes
 * last, exactly as `{...data, id, last_modified}` orders them, without a copy per object (a list
 * builds one per row). A non-object `data` (never written by Kinto) is spread as before.
 */
function toObject(row: ObjectRow): KintoObject {
  return objectOfRow(row.id, row.last_modified, row.data)
}

/**
 * The object a row holds: its data, then id and last_modified (kept in place when the data has
 * such keys). The data was parsed for this row alone: it is completed in place, not copied.
 */
export function objectOfRow(id: string, lastModified: number | string, data: unknown): KintoObject {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return {...(data as object), id, last_modified: Number(lastModified)} as KintoObject
  }
  const obj = data as Record<string, unknown>
  obj.id = id
  obj.last_modified = Number(lastModified)
  return obj as KintoObject
}

/**
 * A write whose timestamp the client gave: a collision on the list's unique timestamps is with an
 * object that holds it, whatever the attempt, so it is not retryable (translateError's guess is for
 * the trigger's timestamps).
 */
function givenTimestamp<T>(given: number | null, write: Promise<T>): Promise<T> {
  if (given === null) return write
  return write.catch((error: unknown) => {
    throw error instanceof IntegrityError && error.retryable ? new IntegrityError(error.message, {cause: error.cause}) : error
  })
}

/** Takes the per-list advisory locks (sorted, so that two writers always lock in the same order). */
async function lockLists(q: Queryable, lists: Array<[string, string]>): Promise<void> {
  const keys = [...new Set(lists.map(([parent, resource]) => JSON.stringify([resource, parent])))].sort()
  if (keys.length === 0) return
  if (keys.length === 1) {
    await q.query(`SELECT pg_advisory_xact_lock(${LIST_LOCK_NAMESPACE}, hashtext($1))`, keys)
    return
  }
  await q.query(`SELECT pg_advisory_xact_lock(${LIST_LOCK_NAMESPACE}, hashtext(k)) FROM unnest($1::text[]) AS k`, [keys])
}

export class PostgresStorage extends PostgresBackend implements Storage {
  readonly kind = 'postgresql' as const
  private readonly readonly: boolean
  private readonly maxFetchSize: number
  /** Lists whose lock this transaction already holds (bound instances only): no second statement. */
  private readonly heldLocks = new Set<string>()

  /**
   * @param client the database (pool or PGlite)
   * @param tx when set, every statement runs on this transaction (see bind())
   */
  constructor(
    client: SqlClient,
    private readonly options: PostgresStorageOptions = {},
    tx?: Queryable,
  ) {
    super(client, tx, 'Storage')
    this.readonly = options.readonly ?? false
    this.maxFetchSize = options.maxFetchSize ?? 10000
  }

  /** The same storage, running every statement on an open transaction. */
  bind(tx: Queryable): PostgresStorage {
    return new PostgresStorage(this.client, this.options, tx)
  }

  /** Runs fn with a storage bound to a new transaction (COMMIT on success, ROLLBACK on throw). */
  transaction<T>(fn: (storage: PostgresStorage) => Promise<T>): Promise<T> {
    return runTransaction(this.client, (q) => fn(this.bind(q)))
  }

  /**
   * Takes the write lock of a list until the end of the bound transaction (a no-op outside one).
   * A request that reads an object before writing it takes it first: the read then sees the last
   * committed version and nobody else writes the list until this transaction ends, so
   * read-modify-write (PATCH, If-Match, creation of a given id) is atomic.
   */
  lockList(resourceName: string, parentId: string): Promise<void> {
    if (!this.tx) return Promise.resolve()
    return this.guard(() => this.lockHeld([[parentId, resourceName]]))
  }

  /** lockLists() for the lists this bound transaction does not hold yet. */
  private async lockHeld(lists: Array<[string, string]>): Promise<void> {
    const missing = lists.filter(([parent, resource]) => !this.heldLocks.has(JSON.stringify([resource, parent])))
    if (missing.length === 0) return
    await lockLists(this.tx!, missing)
    for (const [parent, resource] of missing) this.heldLocks.add(JSON.stringify([resource, parent]))
  }

  /** Runs fn in a transaction (the bound one, or a new one) holding the locks of the given lists. */
  private locked<T>(lists: Array<[string, string]>, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.guard(async () => {
      if (this.tx) {
        await this.lockHeld(lists)
        return fn(this.tx)
      }
      return this.client.transaction(async (q) => {
        await lockLists(q, lists)
        return fn(q)
      })
    })
  }

  private async fetchLive(q: Queryable, resourceName: string, parentId: string, objectId: string): Promise<KintoObject | undefined> {
    const res = await q.query<ObjectRow>(
      `SELECT id, as_epoch(last_modified) AS last_modified, data
         FROM objects
        WHERE id = $1 AND parent_id = $2 AND resource_name = $3 AND NOT deleted`,
      [objectId, parentId, resourceName],
    )
    return res.rows[0] ? toObject(res.rows[0]) : undefined
  }

  heartbeat(readonly: boolean): Promise<boolean> {
    return storageHeartbeat(this, readonly)
  }

  flush(): Promise<void> {
    return this.guard(async () => {
      await this.q.query('DELETE FROM objects')
      await this.q.query('DELETE FROM timestamps')
    })
  }

  resourceTimestamp(resourceName: string, parentId: string, options: {readonly?: boolean} = {}): Promise<number> {
    const existing = `
      SELECT MAX(last_modified) AS last_modified FROM (
        (SELECT last_modified FROM objects
          WHERE parent_id = $1 AND resource_name = $2
          ORDER BY last_modified DESC LIMIT 1)
        UNION ALL
        (SELECT last_modified FROM timestamps WHERE parent_id = $1 AND resource_name = $2)
      ) AS t`
    return this.guard(async () => {
      if (this.readonly || options.readonly) {
        const res = await this.q.query<{ts: number | null}>(`SELECT as_epoch(last_modified) AS ts FROM (${existing}) AS e`, [parentId, resourceName])
        return res.rows[0]?.ts === null || res.rows[0]?.ts === undefined ? 0 : Number(res.rows[0].ts)
      }
      // As upstream: remember the timestamp of the list (its newest row, or now when empty) the
      // first time it is read, so an empty list keeps a stable timestamp.
      if (this.tx) {
        // Inside a request transaction, insert the row only under the list lock: an uncommitted
        // `timestamps` row taken before the lock could deadlock with a writer of the list that
        // reads this list's timestamp. Once the row exists (the usual case) this is one read.
        const found = await this.tx.query<{ts: number | null; stored: boolean}>(
          `SELECT as_epoch(e.last_modified) AS ts,
                  EXISTS (SELECT 1 FROM timestamps WHERE parent_id = $1 AND resource_name = $2) AS stored
             FROM (${existing}) AS e`,
          [parentId, resourceName],
        )
        if (found.rows[0].stored) return Number(found.rows[0].ts)
        await this.lockHeld([[parentId, resourceName]])
      }
      const remember = this.q.query<{ts: number}>(
        `WITH existing AS (${existing}),
         created AS (
           INSERT INTO timestamps (parent_id, resource_name, last_modified)
           SELECT $1, $2, COALESCE(existing.last_modified, clock_timestamp()::timestamp) FROM existing
           ON CONFLICT (parent_id, resource_name) DO NOTHING
           RETURNING last_modified
         )
         SELECT as_epoch(COALESCE((SELECT last_modified FROM created), (SELECT last_modified FROM existing))) AS ts`,
        [parentId, resourceName],
      )
      // A read outside a transaction whose timestamp cannot be stored (the disk is full, the
      // database is read-only) still gets the list's timestamp: reads keep working.
      const res = this.tx ? await remember : await remember.catch(async (error: {code?: string}) => {
        if (!CANNOT_WRITE.has(error?.code ?? '')) throw error
        return this.q.query<{ts: number}>(`SELECT as_epoch(COALESCE(e.last_modified, clock_timestamp()::timestamp)) AS ts FROM (${existing}) AS e`, [parentId, resourceName])
      })
      return Number(res.rows[0].ts)
    })
  }

  allResourcesTimestamps(resourceName: string): Promise<Record<string, number>> {
    return this.guard(async () => {
      const res = await this.q.query<{parent_id: string; ts: number}>(
        `SELECT parent_id, as_epoch(MAX(last_modified)) AS ts FROM (
           SELECT parent_id, MAX(last_modified) AS last_modified FROM objects WHERE resource_name = $1 GROUP BY parent_id
           UNION ALL
           SELECT parent_id, last_modified FROM timestamps WHERE resource_name = $1
         ) AS t
         GROUP BY parent_id ORDER BY ts DESC LIMIT $2`,
        [resourceName, this.maxFetchSize + 1],
      )
      return Object.fromEntries(res.rows.map((r) => [r.parent_id, Number(r.ts)]))
    })
  }

  create(resourceName: string, parentId: string, obj: Record<string, unknown>, options: {idGenerator?: () => string} = {}): Promise<KintoObject> {
    const id = newObjectId(obj, options.idGenerator)
    const data = dataJson(obj)
    const given = toEpoch(obj.last_modified)
    return givenTimestamp(given, this.locked([[parentId, resourceName]], async (q) => {
      // A tombstone with this id is revived; a live object is left alone (no row returned).
      const res = await q.query<{last_modified: number}>(
        `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
         VALUES ($1, $2, $3, $4::jsonb, from_epoch($5::bigint), FALSE)
         ON CONFLICT (id, parent_id, resource_name) DO UPDATE
            SET last_modified = from_epoch($5::bigint), data = $4::jsonb, deleted = FALSE
          WHERE objects.deleted
         RETURNING as_epoch(last_modified) AS last_modified`,
        [id, parentId, resourceName, data, given],
      )
      if (res.rows.length === 0) {
        const existing = await this.fetchLive(q, resourceName, parentId, id)
        throw new UnicityError('id', existing ?? ({id, last_modified: 0} as KintoObject))
      }
      return {...(parseJson(data) as object), id, last_modified: Number(res.rows[0].last_modified)} as KintoObject
    }))
  }

  createMany(resourceName: string, parentId: string, items: Array<{obj: Record<string, unknown>; idGenerator?: () => string}>): Promise<Array<KintoObject | null>> {
    const ids = items.map(({obj, idGenerator}) => newObjectId(obj, idGenerator))
    if (new Set(ids).size !== ids.length) throw new Error('createMany: the ids must differ.')
    if (items.some(({obj}) => obj.last_modified !== undefined)) throw new Error('createMany: an object with a last_modified goes through create().')
    const data = items.map(({obj}) => dataJson(obj))
    return this.locked([[parentId, resourceName]], async (q) => {
      // create()'s statement for many rows, inserted in their order: the trigger gives each row
      // a timestamp above the previous row's (a row-level trigger sees the rows its statement
      // inserted before).
      const res = await q.query<{id: string; last_modified: number}>(
        `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
         SELECT n.id, $2, $3, n.data::jsonb, NULL, FALSE
           FROM unnest($1::text[], $4::text[]) WITH ORDINALITY AS n(id, data, i)
          ORDER BY n.i
         ON CONFLICT (id, parent_id, resource_name) DO UPDATE
            SET last_modified = NULL, data = EXCLUDED.data, deleted = FALSE
          WHERE objects.deleted
         RETURNING id, as_epoch(last_modified) AS last_modified`,
        [ids, parentId, resourceName, data],
      )
      const written = new Map(res.rows.map((r) => [r.id, Number(r.last_modified)]))
      return ids.map((id, i) => {
        const lastModified = written.get(id)
        return lastModified === undefined ? null : ({...(parseJson(data[i]) as object), id, last_modified: lastModified} as KintoObject)
      })
    })
  }

  get(resourceName: string, parentId: string, objectId: string): Promise<KintoObject> {
    return this.guard(async () => {
      const obj = await this.fetchLive(this.q, resourceName, parentId, objectId)
      if (!obj) throw new ObjectNotFoundError(resourceName, objectId)
      return obj
    })
  }

  getMany(resourceName: string, parentId: string, objectIds: string[]): Promise<KintoObject[]> {
    return this.guard(async () => {
      const res = await this.q.query<ObjectRow>(
        `SELECT id, as_epoch(last_modified) AS last_modified, data
           FROM objects
          WHERE id = ANY($1::text[]) AND parent_id = $2 AND resource_name = $3 AND NOT deleted`,
        [objectIds, parentId, resourceName],
      )
      return res.rows.map(toObject)
    })
  }

  update(
    resourceName: string,
    parentId: string,
    objectId: string,
    obj: Record<string, unknown>,
    options: {condition?: WriteCondition} = {},
  ): Promise<KintoObject> {
    const data = dataJson(obj)
    const given = toEpoch(obj.last_modified)
    const condition = options.condition
    return givenTimestamp(given, this.locked([[parentId, resourceName]], async (q) => {
      let rows: Array<{last_modified: number}>
      if (!condition || condition.kind === 'absent') {
        // Upstream's upsert; with If-None-Match: * only a tombstone may be overwritten.
        const res = await q.query<{last_modified: number}>(
          `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
           VALUES ($1, $2, $3, $4::jsonb, from_epoch($5::bigint), FALSE)
           ON CONFLICT (id, parent_id, resource_name) DO UPDATE
              SET data = $4::jsonb, deleted = FALSE,
                  last_modified = GREATEST(from_epoch($5::bigint), EXCLUDED.last_modified)
           ${condition ? 'WHERE objects.deleted' : ''}
           RETURNING as_epoch(last_modified) AS last_modified`,
          [objectId, parentId, resourceName, data, given],
        )
        rows = res.rows
      } else {
        // If-Match: the row must be live (and carry the expected timestamp), checked by the UPDATE itself.
        const params: unknown[] = [objectId, parentId, resourceName, data, given]
        let extra = ''
        if (condition.kind === 'last_modified') {
          params.push(condition.value)
          extra = ' AND as_epoch(last_modified) = $6::bigint'
        }
        const res = await q.query<{last_modified: number}>(
          `UPDATE objects SET data = $4::jsonb, deleted = FALSE, last_modified = from_epoch($5::bigint)
            WHERE id = $1 AND parent_id = $2 AND resource_name = $3 AND NOT deleted${extra}
           RETURNING as_epoch(last_modified) AS last_modified`,
          params,
        )
        rows = res.rows
      }
      if (rows.length === 0) throw new PreconditionFailedError(await this.fetchLive(q, resourceName, parentId, objectId))
      return {...(parseJson(data) as object), id: objectId, last_modified: Number(rows[0].last_modified)} as KintoObject
    }))
  }

  delete(
    resourceName: string,
    parentId: string,
    objectId: string,
    options: {withDeleted?: boolean; lastModified?: number; condition?: WriteCondition} = {},
  ): Promise<KintoObject> {
    const condition = options.condition
    if (condition?.kind === 'absent') {
      // If-None-Match: * on a delete never writes: 412 when the object exists, else not found.
      return this.guard(async () => {
        const existing = await this.fetchLive(this.q, resourceName, parentId, objectId)
        if (existing) throw new PreconditionFailedError(existing)
        throw new ObjectNotFoundError(resourceName, objectId)
      })
    }
    const withDeleted = options.withDeleted ?? true
    const params: unknown[] = [objectId, parentId, resourceName]
    let where = 'id = $1 AND parent_id = $2 AND resource_name = $3 AND NOT deleted'
    if (condition?.kind === 'last_modified') where += ` AND as_epoch(last_modified) = ${addParam(params, condition.value)}::bigint`
    let sql: string
    if (withDeleted) {
      sql = `UPDATE objects SET deleted = TRUE, data = ${addParam(params, TOMBSTONE_DATA)}::jsonb,
                    last_modified = from_epoch(${addParam(params, toEpoch(options.lastModified))}::bigint)
              WHERE ${where}
             RETURNING as_epoch(last_modified) AS last_modified`
    } else {
      sql = `DELETE FROM objects WHERE ${where} RETURNING as_epoch(last_modified) AS last_modified`
    }
    const run = async (q: Queryable) => {
      const res = await q.query<{last_modified: number}>(sql, params)
      if (res.rows.length === 0) {
        if (condition) throw new PreconditionFailedError(await this.fetchLive(q, resourceName, parentId, objectId))
        throw new ObjectNotFoundError(resourceName, objectId)
      }
      return {id: objectId, last_modified: Number(res.rows[0].last_modified), deleted: true} as KintoObject
    }
    // A hard delete fires no trigger: no list lock needed.
    return withDeleted ? givenTimestamp(toEpoch(options.lastModified), this.locked([[parentId, resourceName]], run)) : this.guard(() => run(this.q))
  }

  deleteAll(resourceName: string, parentId: string, options: ListOptions & {withDeleted?: boolean} = {}): Promise<KintoObject[]> {
    const withDeleted = options.withDeleted ?? true
    const params = new Params()
    const parent = parentSql(parentId, params)
    const resource = params.add(resourceName)
    const filters = filtersSql(options.filters, params)
    const rules = rulesSql(options.paginationRules, params)
    const order = orderSql(options.sorting, params)
    const limit = params.add(options.limit ? Math.min(this.maxFetchSize, options.limit) : this.maxFetchSize)
    const matching = `SELECT id, parent_id, resource_name FROM objects
                       WHERE ${parent} AND resource_name = ${resource} AND NOT deleted${filters}${rules}${order}
                       LIMIT ${limit} FOR UPDATE`
    const change = withDeleted
      ? `UPDATE objects SET deleted = TRUE, data = ${params.add(TOMBSTONE_DATA)}::jsonb, last_modified = NULL
           FROM matching m
          WHERE objects.id = m.id AND objects.parent_id = m.parent_id AND objects.resource_name = m.resource_name
         RETURNING objects.id, as_epoch(objects.last_modified) AS last_modified`
      : `DELETE FROM objects USING matching m
          WHERE objects.id = m.id AND objects.parent_id = m.parent_id AND objects.resource_name = m.resource_name
         RETURNING objects.id, as_epoch(objects.last_modified) AS last_modified`
    const sql = `WITH matching AS (${matching}) ${change}`
    const run = async (q: Queryable) => {
      const res = await q.query<{id: string; last_modified: number}>(sql, params.values)
      return res.rows.map((r) => ({id: r.id, last_modified: Number(r.last_modified), deleted: true}) as KintoObject)
    }
    if (!withDeleted) return this.guard(() => run(this.q))
    if (!hasWildcard(parentId)) return this.locked([[parentId, resourceName]], run)
    // A wildcard parent: lock every list that has live objects to turn into tombstones.
    return this.guard(async () => {
      const p = new Params()
      const res = await this.q.query<{parent_id: string}>(
        `SELECT DISTINCT parent_id FROM objects WHERE ${parentSql(parentId, p)} AND resource_name = ${p.add(resourceName)} AND NOT deleted`,
        p.values,
      )
      return this.locked(
        res.rows.map((r) => [r.parent_id, resourceName] as [string, string]),
        run,
      )
    })
  }

  purgeDeleted(resourceName: string | null, parentId: string, options: {before?: number; maxRetained?: number} = {}): Promise<number> {
    const {before, maxRetained} = options
    if (before !== undefined && maxRetained !== undefined) return Promise.reject(new Error('`before` and `maxRetained` are exclusive options.'))
    const params = new Params()
    const parent = parentSql(parentId, params)
    const resource = resourceName === null ? '' : ` AND resource_name = ${params.add(resourceName)}`
    let sql: string
    if (maxRetained !== undefined) {
      // Keep the newest N tombstones of each list. (Upstream deletes by id only, which could also
      // remove same-id rows of other lists; we match the full primary key.)
      sql = `WITH ranked AS (
               SELECT id, parent_id, resource_name,
                      ROW_NUMBER() OVER (PARTITION BY parent_id, resource_name ORDER BY last_modified DESC) AS rn
                 FROM objects
                WHERE deleted AND ${parent}${resource}
             )
             DELETE FROM objects USING ranked r
              WHERE objects.id = r.id AND objects.parent_id = r.parent_id AND objects.resource_name = r.resource_name
                AND r.rn > ${params.add(maxRetained)}`
    } else {
      const cond = before === undefined ? '' : ` AND last_modified < from_epoch(${params.add(before)}::bigint)`
      sql = `DELETE FROM objects WHERE ${parent}${resource} AND deleted${cond}`
    }
    const clearTimestamps = resourceName === null && before === undefined
    const run = async (q: Queryable) => {
      const res = await q.query(sql, params.values)
      if (clearTimestamps) {
        const p = new Params()
        await q.query(`DELETE FROM timestamps WHERE ${parentSql(parentId, p)}`, p.values)
      }
      return res.rowCount
    }
    return this.guard(() => (clearTimestamps && !this.tx ? this.client.transaction(run) : run(this.q)))
  }

  /**
   * list()'s statement, its values added to `params`: also run as a column of the read prefetch
   * (src/lib/prefetch.ts), which then answers exactly what list() would.
   */
  listSql(resourceName: string, parentId: string, options: ListOptions, params: Params): string {
    const parent = parentSql(parentId, params)
    const resource = params.add(resourceName)
    const deleted = options.includeDeleted ? '' : ' AND NOT deleted'
    const filters = filtersSql(options.filters, params)
    const rules = rulesSql(options.paginationRules, params)
    const order = orderSql(options.sorting, params)
    const count = options.limit ? Math.min(this.maxFetchSize + 1, options.limit) : this.maxFetchSize
    // The limit is written in the text: a named statement's generic plan guesses a LIMIT given as
    // a parameter at a tenth of the list (a thousand rows on a 10k list, not 11), costs it a
    // hundred times the plan made for the value, and PostgreSQL then plans the whole prefetch again
    // at every execution (~0.8 ms on the bench's million-record database). A page size is one of
    // a few values per client; each text is named once (db/statement-names.ts).
    const limit = Number.isSafeInteger(count) && count >= 0 ? String(count) : params.add(count)
    return `SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects
                  WHERE ${parent} AND resource_name = ${resource}${deleted}${filters}${rules}${order}
                  LIMIT ${limit}`
  }

  list(resourceName: string, parentId: string, options: ListOptions = {}): Promise<KintoObject[]> {
    const params = new Params()
    const sql = this.listSql(resourceName, parentId, options, params)
    // Named per text: parsed once per connection, and planned for its values when that is
    // cheaper than its generic plan (a filter PostgreSQL cannot estimate without its value).
    // Not with a long list, which needs the plan made for its values (hasLongList).
    const name = hasLongList(options.filters) ? undefined : statementName('kinto_list_', sql)
    return this.guard(async () => {
      const res = await this.q.query<ObjectRow>(sql, params.values, name === undefined ? undefined : {name})
      return res.rows.map(toObject)
    })
  }

  count(resourceName: string, parentId: string, filters?: Filter[]): Promise<number> {
    const params = new Params()
    const parent = parentSql(parentId, params)
    const resource = params.add(resourceName)
    const sql = `SELECT COUNT(*) AS total FROM objects WHERE ${parent} AND resource_name = ${resource} AND NOT deleted${filtersSql(filters, params)}`
    return this.guard(async () => {
      const res = await this.q.query<{total: number}>(sql, params.values)
      return Number(res.rows[0].total)
    })
  }

  countAll(resourceName: string): Promise<{objects: number; tombstones: number}> {
    // One pass over the (resource_name, parent_id, deleted) index, both counts at once.
    const sql = `SELECT COUNT(*) FILTER (WHERE NOT deleted) AS objects, COUNT(*) FILTER (WHERE deleted) AS tombstones
                   FROM objects WHERE resource_name = $1`
    return this.guard(async () => {
      const res = await this.q.query<{objects: number; tombstones: number}>(sql, [resourceName])
      return {objects: Number(res.rows[0].objects), tombstones: Number(res.rows[0].tombstones)}
    })
  }

  trimObjects(resourceName: string, parentId: string, filters: Filter[], maxObjects: number): Promise<string[]> {
    const params = new Params()
    const sql = `WITH doomed AS (
                   SELECT id, parent_id, resource_name FROM objects
                    WHERE parent_id = ${params.add(parentId)} AND resource_name = ${params.add(resourceName)}${filtersSql(filters, params)}
                    ORDER BY last_modified DESC OFFSET ${params.add(Math.max(0, maxObjects))}
                 )
                 DELETE FROM objects USING doomed d
                  WHERE objects.id = d.id AND objects.parent_id = d.parent_id AND objects.resource_name = d.resource_name
              RETURNING objects.id`
    return this.guard(async () => (await this.q.query<{id: string}>(sql, params.values)).rows.map((row) => row.id))
  }

  async close(): Promise<void> {
    // The client belongs to the DatabaseRegistry (shared by storage, permission, cache).
  }
}

function addParam(params: unknown[], value: unknown): string {
  params.push(value)
  return `$${params.length}`
}

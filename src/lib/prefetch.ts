/**
 * Read prefetch: what a read request needs from storage AND permission, in ONE statement, when
 * both backends are PostgreSQL on the same database: a hot path is a single SQL statement. A GET
 * of one record otherwise costs five round trips (the caller's groups, the
 * permission check, the parent collection, the record, its ACL); a list costs five too.
 *
 * The statement only reads, through the primary keys upstream's schema defines (objects by
 * (id, parent_id, resource_name), access_control_entries by (object_id, permission, …),
 * user_principals by (user_id, …), timestamps by (parent_id, resource_name)), plus, for a list
 * GET, the storage's own page statement (PostgresStorage.listSql) as a column (or right behind
 * it, in the same round trip, when filters make its plan depend on their values); its answers are
 * exactly what the separate backend calls would give (test/server/prefetch.test.ts compares the
 * answers with and without it; test/integration/bench-sql-per-request.integration.test.ts counts
 * the statements and the round trips). The server uses them through src/lib/server/prefetch.ts;
 * anything not prefetched still goes to the backends.
 */
import type {Queryable, SqlClient} from './db/index.js'
import type {BoundPermissions} from './permission/types.js'
import {translateError} from './db/backend.js'
import {statementName} from './db/statement-names.js'
import {objectOfRow} from './storage/postgresql.js'
import {Params, hasLongList} from './storage/sql.js'
import type {KintoObject, ListOptions} from './storage/types.js'

export interface ObjectKey {
  resourceName: string
  parentId: string
  id: string
}

export interface PrefetchQuery {
  /** Look up this user's group principals (upstream's get_user_principals); null: none to look up. */
  userId: string | null
  /** The caller's principals known without groups (tested together with the groups found). */
  principals: string[]
  /** Test whether the principals hold one of these (checkPermission); empty: no test. */
  bound: BoundPermissions
  /** Live objects to load (storage.get). */
  objects: ObjectKey[]
  /** Object URIs whose whole ACL to load (getObjectPermissions). */
  acls: string[]
  /** A list whose timestamp to read, when its `timestamps` row exists (resourceTimestamp). */
  timestamp?: {resourceName: string; parentId: string}
  /**
   * A list page to read (storage.list's call), only when `bound` is not empty: the page is
   * answered only when that test passes (else null, as when the storage cannot build its
   * statement).
   */
  page?: {resourceName: string; parentId: string; options: ListOptions}
}

/** storage.list's statement for a call (PostgresStorage.listSql), and storage.list on a connection. */
export interface PageSql {
  listSql(resourceName: string, parentId: string, options: ListOptions, params: Params): string
  bind(q: Queryable): {list(resourceName: string, parentId: string, options: ListOptions): Promise<KintoObject[]>}
}

export interface Prefetched {
  /** Group principals of query.userId (null when not looked up). */
  groups: string[] | null
  /** checkPermission(principals + groups, bound); null when bound was empty. */
  allowed: boolean | null
  /** In query order; null for a missing (or deleted) object. */
  objects: Array<KintoObject | null>
  /** In query order: {permission: principals}. */
  acls: Array<Record<string, Set<string>>>
  /** The list's timestamp when its row is stored (else null: ask the storage, which stores it). */
  timestamp: number | null
  /** The page storage.list would answer, in its order; null when no page was read. */
  page: KintoObject[] | null
  /**
   * Set when the page read beside the statement (planFollowsValues) failed and the permission
   * test passed: storage.list's own error, for the caller to raise where it asks for that page,
   * as storage.list would have (not earlier: a caller refused gets its 403 as before).
   */
  pageFailed?: {error: unknown}
}

/**
 * Most bytes of a page read as one column: the driver makes that column one string, and a string
 * past Node's limit (512 MiB) threw in the socket's data handler, which took the whole server
 * down (a list of sixty 10 MB records, each under the body limit). A bigger page is left to
 * storage.list, row by row.
 */
export const PAGE_COLUMN_MAX_BYTES = 64 * 1024 * 1024

/**
 * The statement for one shape of query (how many bound permissions, objects, ACLs; a timestamp
 * or not), with scalar parameters: PostgreSQL then settles on one generic plan for the named
 * statement instead of planning every execution (planning this statement costs several times
 * running it). Built once per shape.
 */
function statementFor(shape: {bound: number; objects: number; acls: number; timestamp: boolean}, page?: {sql: string; maxBytes: number}): {name: string; sql: string} {
  let n = 1
  const next = () => `$${++n}`
  const ctes: string[] = []
  const columns = ["CASE WHEN $1::text IS NULL THEN NULL ELSE ARRAY(SELECT principal FROM g) END AS groups"]
  if (shape.bound > 0) {
    const principals = next()
    const pairs = Array.from({length: shape.bound}, () => `(${next()}::text, ${next()}::text)`)
    const allowed = `EXISTS (
    SELECT 1 FROM access_control_entries a
     WHERE (a.object_id, a.permission) IN (${pairs.join(', ')})
       AND (a.principal = ANY(${principals}::text[]) OR a.principal IN (SELECT principal FROM g))
  )`
    // With a page, the test is a CTE (evaluated once) that the page's column waits on.
    columns.push(page === undefined ? `${allowed} AS allowed` : '(SELECT allowed FROM p) AS allowed')
    if (page !== undefined) ctes.push(`p AS (SELECT ${allowed} AS allowed)`)
  } else columns.push('NULL::boolean AS allowed')
  for (let i = 0; i < shape.objects; i++) {
    columns.push(`(SELECT json_build_array(o.id, as_epoch(o.last_modified), o.data) FROM objects o
     WHERE o.id = ${next()} AND o.parent_id = ${next()} AND o.resource_name = ${next()} AND NOT o.deleted) AS o${i}`)
  }
  for (let i = 0; i < shape.acls; i++) {
    columns.push(`(SELECT json_agg(json_build_array(permission, principal)) FROM access_control_entries
     WHERE object_id = ${next()}) AS acl${i}`)
  }
  if (shape.timestamp) {
    // The stored timestamp, or the latest object's when that is newer (storage.resourceTimestamp
    // answers the greater of the two); no row when none is stored. Written as a correlated
    // subquery rather than an aggregate over a UNION: the same answer, planned ~3× faster, which
    // counts whenever PostgreSQL plans the statement for its values (a filtered page).
    const parent = next()
    const resource = next()
    columns.push(`(SELECT as_epoch(GREATEST(t.last_modified, (SELECT o.last_modified FROM objects o
       WHERE o.parent_id = ${parent} AND o.resource_name = ${resource} ORDER BY o.last_modified DESC LIMIT 1)))
     FROM timestamps t WHERE t.parent_id = ${parent} AND t.resource_name = ${resource}) AS ts`)
  }
  if (page !== undefined) {
    // storage.list's own statement, its rows in its order (an aggregate over a sorted, limited
    // subquery keeps the order), read only when the permission test passed, and NULL past
    // maxBytes (PAGE_COLUMN_MAX_BYTES; pg_column_size of the aggregate is its length, no copy).
    columns.push(`CASE WHEN (SELECT allowed FROM p) THEN (SELECT CASE WHEN pg_column_size(agg.a) <= ${Math.trunc(page.maxBytes)} THEN agg.a END FROM (
    SELECT COALESCE(json_agg(json_build_array(l.id, l.last_modified, l.data)), '[]'::json) AS a FROM (
    ${page.sql}
   ) AS l) AS agg) END AS page`)
  }
  const sql = `WITH g AS (
  SELECT principal FROM user_principals
   WHERE $1::text IS NOT NULL AND (user_id = $1 OR user_id = 'system.Authenticated')
)${ctes.map((c) => `, ${c}`).join('')}
SELECT ${columns.join(',\n  ')}`
  return {name: `kinto_prefetch_${shape.bound}_${shape.objects}_${shape.acls}_${shape.timestamp ? 1 : 0}`, sql}
}

const statements = new Map<string, {name?: string; sql: string}>()

type Row = {
  groups: string[] | null
  allowed: boolean | null
  ts?: number | string | null
  page?: Array<[string, number, unknown]> | null
} & Record<string, unknown>

/**
 * Whether the page's best plan depends on its filter values. A named statement runs on a generic
 * plan only when PostgreSQL finds it no costlier than planning for the values; for a filter on a
 * value it does not know it guesses almost no row matches, finds that plan (read the whole list,
 * then sort) costlier, and plans the whole prefetch again at every execution (~0.5 ms, several
 * times the statement's run). Such a page is left out of the statement: storage.list's own
 * statement, planned for its values in a tenth of that, is sent right behind it on the same
 * connection, in the same round trip (pg's pipeline mode, db/pg-driver.ts). PostgreSQL runs them
 * in order, so the timestamp is read before the page, the order upstream reads a list in. Filters
 * on last_modified (`_since`) keep a good generic plan, unless one holds a long list (hasLongList).
 */
function planFollowsValues(options: ListOptions): boolean {
  return (options.filters ?? []).some((f) => f.field !== 'last_modified') || hasLongList(options.filters)
}

/** Runs the prefetch statement (PostgreSQL server or PGlite). */
export async function postgresPrefetch(q: Queryable | SqlClient, query: PrefetchQuery, pages?: PageSql, options: {pageMaxBytes?: number} = {}): Promise<Prefetched> {
  const pageMaxBytes = options.pageMaxBytes ?? PAGE_COLUMN_MAX_BYTES
  const shape = {bound: query.bound.length, objects: query.objects.length, acls: query.acls.length, timestamp: query.timestamp !== undefined}
  const params: unknown[] = [query.userId]
  if (query.bound.length > 0) params.push(query.principals)
  for (const [uri, perm] of query.bound) params.push(uri, perm)
  for (const o of query.objects) params.push(o.id, o.parentId, o.resourceName)
  params.push(...query.acls)
  if (query.timestamp) params.push(query.timestamp.parentId, query.timestamp.resourceName)
  let page: string | undefined
  const asked = query.page && pages && shape.bound > 0 ? {...query.page, pages} : undefined
  // A page read beside the statement rather than in it (planFollowsValues).
  const beside = asked && planFollowsValues(asked.options) ? asked : undefined
  if (asked && !beside) {
    // The page's values are numbered after the statement's own.
    const p = new Params()
    p.values.push(...params)
    page = asked.pages.listSql(asked.resourceName, asked.parentId, asked.options, p)
    params.splice(0, params.length, ...p.values)
  }
  const key = `${shape.bound}/${shape.objects}/${shape.acls}/${shape.timestamp}`
  let statement: {name?: string; sql: string} | undefined
  if (page === undefined) {
    statement = statements.get(key)
    if (!statement) statements.set(key, (statement = statementFor(shape)))
  } else {
    const pageKey = `${key}\u0000${pageMaxBytes}\u0000${page}`
    statement = statements.get(pageKey)
    if (!statement) {
      const built = statementFor(shape, {sql: page, maxBytes: pageMaxBytes})
      // One name per page text (statement-names.ts); past the bound it runs unnamed, built again.
      statement = {name: statementName(`${built.name}_page`, pageKey), sql: built.sql}
      if (statement.name !== undefined) statements.set(pageKey, statement)
    }
  }
  const {sql} = statement
  const named = statement.name === undefined ? undefined : {name: statement.name}
  const run = (conn: Queryable) =>
    conn.query<Row>(sql, params, named).catch((error: unknown) => {
      throw translateError(error)
    })
  let row: Row
  let pageRows: KintoObject[] | null = null
  let pageFailed: {error: unknown} | undefined
  if (beside) {
    // Both statements on one connection, the second sent before the first is answered: one
    // round trip. Both settle before the connection goes back to the pool.
    const both = async (conn: Queryable) => {
      const start = () => [run(conn), beside.pages.bind(conn).list(beside.resourceName, beside.parentId, beside.options)] as const
      const [res, found] = await Promise.allSettled(conn.together ? conn.together(start) : start())
      if (res.status === 'rejected') throw res.reason
      return [res.value, found] as const
    }
    const [res, found] = 'withConnection' in q ? await q.withConnection(both) : await both(q)
    row = res.rows[0]
    // Read before the permission test was known: kept (answer or error) only when it passed.
    if (row.allowed) {
      if (found.status === 'fulfilled') pageRows = found.value
      else pageFailed = {error: found.reason}
    }
  } else {
    row = (await run(q)).rows[0]
    // Null when the test failed or the page passed pageMaxBytes (storage.list then reads it), an
    // array (maybe empty) when the page was read.
    pageRows = page === undefined || !row.page ? null : row.page.map(([id, lastModified, data]) => objectOfRow(id, lastModified, data))
  }
  const objects = query.objects.map((_, i) => {
    const found = row[`o${i}`] as [string, number, unknown] | null
    return found ? objectOfRow(found[0], found[1], found[2]) : null
  })
  const acls = query.acls.map((_, i) => {
    const perms: Record<string, Set<string>> = {}
    for (const [permission, principal] of (row[`acl${i}`] as Array<[string, string]> | null) ?? []) {
      ;(perms[permission] ??= new Set()).add(principal)
    }
    return perms
  })
  return {
    groups: row.groups,
    allowed: row.allowed,
    objects,
    acls,
    timestamp: row.ts === undefined || row.ts === null ? null : Number(row.ts),
    page: pageRows,
    ...(pageFailed ? {pageFailed} : {}),
  }
}

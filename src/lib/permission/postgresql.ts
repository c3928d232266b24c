/**
 * PostgreSQL permission backend (upstream: kinto.core.permission.postgresql) over upstream's tables
 * `user_principals(user_id, principal)` and `access_control_entries(object_id, permission, principal)`.
 * Every operation is one statement; lists travel as array parameters (unnest / ANY).
 */
import type {Queryable, SqlClient} from '../db/index.js'
import {PostgresBackend, runTransaction} from '../db/backend.js'
import {hasWildcard, wildcardToLike} from '../storage/wildcard.js'
import {type BoundPermissions, type Permission, permissionHeartbeat} from './types.js'

export class PostgresPermission extends PostgresBackend implements Permission {
  readonly kind = 'postgresql' as const

  constructor(client: SqlClient, tx?: Queryable) {
    super(client, tx, 'Permission')
  }

  /** The same backend, running every statement on an open transaction. */
  bind(tx: Queryable): PostgresPermission {
    return new PostgresPermission(this.client, tx)
  }

  transaction<T>(fn: (permission: PostgresPermission) => Promise<T>): Promise<T> {
    return runTransaction(this.client, (q) => fn(this.bind(q)), 'Permission')
  }

  private async rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.guard(async () => (await this.q.query<T>(sql, params)).rows)
  }

  private async run(sql: string, params: unknown[] = []): Promise<void> {
    await this.guard(() => this.q.query(sql, params))
  }

  heartbeat(readonly: boolean): Promise<boolean> {
    return permissionHeartbeat(this, readonly)
  }

  async flush(): Promise<void> {
    await this.run('DELETE FROM user_principals')
    await this.run('DELETE FROM access_control_entries')
  }

  async getUserPrincipals(userId: string): Promise<Set<string>> {
    const rows = await this.rows<{principal: string}>(
      `SELECT principal FROM user_principals WHERE user_id = $1 OR user_id = 'system.Authenticated'`,
      [userId],
    )
    return new Set(rows.map((r) => r.principal))
  }

  addUserPrincipal(userId: string, principal: string): Promise<void> {
    return this.run('INSERT INTO user_principals (user_id, principal) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, principal])
  }

  removeUserPrincipal(userId: string, principal: string): Promise<void> {
    return this.run('DELETE FROM user_principals WHERE user_id = $1 AND principal = $2', [userId, principal])
  }

  removePrincipal(principal: string): Promise<void> {
    return this.run('DELETE FROM user_principals WHERE principal = $1', [principal])
  }

  async getObjectPermissionPrincipals(objectId: string, permission: string): Promise<Set<string>> {
    const rows = await this.rows<{principal: string}>(
      'SELECT principal FROM access_control_entries WHERE object_id = $1 AND permission = $2',
      [objectId, permission],
    )
    return new Set(rows.map((r) => r.principal))
  }

  addPrincipalToAce(objectId: string, permission: string, principal: string): Promise<void> {
    return this.run(
      'INSERT INTO access_control_entries (object_id, permission, principal) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [objectId, permission, principal],
    )
  }

  /**
   * One statement: the entry goes in (unless it is there), and the ACL is read. The SELECT runs on
   * the statement's snapshot, which does not see the row its own CTE inserts: that row comes from
   * RETURNING (ON CONFLICT DO NOTHING returns nothing when the row was already there, and then the
   * SELECT sees it), so each entry appears exactly once. Ordered as the primary key orders them.
   */
  async addPrincipalToAceAndRead(objectId: string, permission: string, principal: string): Promise<Record<string, Set<string>>> {
    const rows = await this.rows<{permission: string; principal: string}>(
      `WITH added AS (
         INSERT INTO access_control_entries (object_id, permission, principal) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING
         RETURNING permission, principal
       )
       SELECT permission, principal FROM access_control_entries WHERE object_id = $1
       UNION ALL
       SELECT permission, principal FROM added
       ORDER BY permission, principal`,
      [objectId, permission, principal],
    )
    const perms: Record<string, Set<string>> = {}
    for (const r of rows) (perms[r.permission] ??= new Set()).add(r.principal)
    return perms
  }

  /** addPrincipalToAceAndRead's statement for many entries (the same union, per object). */
  async addPrincipalsToAcesAndRead(entries: Array<[string, string, string]>): Promise<Array<Record<string, Set<string>>>> {
    if (entries.length === 0) return []
    const rows = await this.rows<{object_id: string; permission: string; principal: string}>(
      `WITH added AS (
         INSERT INTO access_control_entries (object_id, permission, principal)
         SELECT DISTINCT e.object_id, e.permission, e.principal FROM unnest($1::text[], $2::text[], $3::text[]) AS e(object_id, permission, principal)
         ON CONFLICT DO NOTHING
         RETURNING object_id, permission, principal
       )
       SELECT object_id, permission, principal FROM access_control_entries WHERE object_id = ANY($1::text[])
       UNION ALL
       SELECT object_id, permission, principal FROM added
       ORDER BY object_id, permission, principal`,
      [entries.map((e) => e[0]), entries.map((e) => e[1]), entries.map((e) => e[2])],
    )
    const byId = new Map<string, Record<string, Set<string>>>(entries.map(([id]) => [id, {}]))
    for (const r of rows) (byId.get(r.object_id)![r.permission] ??= new Set()).add(r.principal)
    return entries.map(([id]) => byId.get(id)!)
  }

  removePrincipalFromAce(objectId: string, permission: string, principal: string): Promise<void> {
    return this.run('DELETE FROM access_control_entries WHERE object_id = $1 AND permission = $2 AND principal = $3', [
      objectId,
      permission,
      principal,
    ])
  }

  removePrincipalFromObjects(principal: string, objectIds: string[]): Promise<void> {
    if (objectIds.length === 0) return Promise.resolve()
    return this.run('DELETE FROM access_control_entries WHERE principal = $1 AND object_id = ANY($2::text[])', [principal, objectIds])
  }

  async getObjectPermissions(objectId: string, permissions?: string[]): Promise<Record<string, Set<string>>> {
    return (await this.getObjectsPermissions([objectId], permissions))[0]
  }

  async getObjectsPermissions(objectIds: string[], permissions?: string[]): Promise<Array<Record<string, Set<string>>>> {
    if (objectIds.length === 0) return []
    const params: unknown[] = [objectIds]
    let sql = 'SELECT object_id, permission, principal FROM access_control_entries WHERE object_id = ANY($1::text[])'
    if (permissions !== undefined) {
      params.push(permissions)
      sql += ' AND permission = ANY($2::text[])'
    }
    const rows = await this.rows<{object_id: string; permission: string; principal: string}>(sql, params)
    const byId = new Map<string, Record<string, Set<string>>>(objectIds.map((id) => [id, {}]))
    for (const r of rows) {
      const perms = byId.get(r.object_id)!
      ;(perms[r.permission] ??= new Set()).add(r.principal)
    }
    return objectIds.map((id) => byId.get(id)!)
  }

  async replaceObjectPermissions(objectId: string, permissions: Record<string, Iterable<string>>): Promise<void> {
    const names = Object.keys(permissions)
    if (names.length === 0) return
    const perms: string[] = []
    const principals: string[] = []
    for (const name of names) {
      for (const principal of new Set(permissions[name])) {
        perms.push(name)
        principals.push(principal)
      }
    }
    if (perms.length === 0) {
      await this.run('DELETE FROM access_control_entries WHERE object_id = $1 AND permission = ANY($2::text[])', [objectId, names])
      return
    }
    // One statement: the DELETE runs to completion first (the InitPlan reads all of it before the
    // first row is inserted), then the new entries go in.
    await this.run(
      `WITH removed AS (
         DELETE FROM access_control_entries WHERE object_id = $1 AND permission = ANY($2::text[]) RETURNING 1
       )
       INSERT INTO access_control_entries (object_id, permission, principal)
       SELECT DISTINCT $1, n.permission, n.principal
         FROM unnest($3::text[], $4::text[]) AS n(permission, principal)
        WHERE (SELECT count(*) FROM removed) >= 0
       ON CONFLICT DO NOTHING`,
      [objectId, names, perms, principals],
    )
  }

  async deleteObjectPermissions(...objectIds: string[]): Promise<void> {
    if (objectIds.length === 0) return
    // The exact ids as one array parameter: a page of a plural DELETE names up to
    // storage_max_fetch_size of them, and one `object_id = $n` each took PostgreSQL 11 s to plan
    // for 10000 ids and failed past 65535 (the most parameters a statement has). A wildcard is a
    // LIKE each (the object_id column is C-collated: LIKE 'prefix%' uses the index).
    const exact = objectIds.filter((id) => !hasWildcard(id))
    const params: unknown[] = [exact]
    const conds = ['object_id = ANY($1::text[])']
    for (const id of objectIds) {
      if (!hasWildcard(id)) continue
      params.push(wildcardToLike(id))
      conds.push(`object_id LIKE $${params.length}`)
    }
    await this.run(`DELETE FROM access_control_entries WHERE ${conds.join(' OR ')}`, params)
  }

  async checkPermission(principals: Iterable<string>, boundPermissions: BoundPermissions): Promise<boolean> {
    const who = [...principals]
    if (who.length === 0 || boundPermissions.length === 0) return false
    const rows = await this.rows<{allowed: boolean}>(
      `SELECT EXISTS (
         SELECT 1 FROM access_control_entries a
           JOIN unnest($1::text[], $2::text[]) AS r(object_id, permission)
             ON a.object_id = r.object_id AND a.permission = r.permission
          WHERE a.principal = ANY($3::text[])
       ) AS allowed`,
      [boundPermissions.map((b) => b[0]), boundPermissions.map((b) => b[1]), who],
    )
    return rows[0]?.allowed === true
  }

  async getAccessibleObjects(
    principals: Iterable<string>,
    boundPermissions?: BoundPermissions,
    options: {withChildren?: boolean} = {},
  ): Promise<Map<string, Set<string>>> {
    const who = [...principals]
    let rows: Array<{object_id: string; permission: string}>
    if (boundPermissions === undefined) {
      rows = await this.rows('SELECT object_id, permission FROM access_control_entries WHERE principal = ANY($1::text[])', [who])
    } else {
      if (boundPermissions.length === 0 || who.length === 0) return new Map()
      const withChildren = options.withChildren ?? true
      rows = await this.rows(
        `SELECT DISTINCT a.object_id, a.permission
           FROM access_control_entries a
           JOIN unnest($1::text[], $2::text[]) AS r(pattern, permission)
             ON a.permission = r.permission AND a.object_id LIKE r.pattern
                ${withChildren ? '' : "AND a.object_id NOT LIKE r.pattern || '/%'"}
          WHERE a.principal = ANY($3::text[])`,
        [boundPermissions.map((b) => wildcardToLike(b[0])), boundPermissions.map((b) => b[1]), who],
      )
    }
    const result = new Map<string, Set<string>>()
    for (const r of rows) {
      let s = result.get(r.object_id)
      if (!s) result.set(r.object_id, (s = new Set()))
      s.add(r.permission)
    }
    return result
  }

  async getAuthorizedPrincipals(boundPermissions: BoundPermissions): Promise<Set<string>> {
    if (boundPermissions.length === 0) return new Set()
    const rows = await this.rows<{principal: string}>(
      `SELECT DISTINCT a.principal FROM access_control_entries a
         JOIN unnest($1::text[], $2::text[]) AS r(object_id, permission)
           ON a.object_id = r.object_id AND a.permission = r.permission`,
      [boundPermissions.map((b) => b[0]), boundPermissions.map((b) => b[1])],
    )
    return new Set(rows.map((r) => r.principal))
  }

  async close(): Promise<void> {}
}

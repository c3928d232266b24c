/**
 * Cross-check with upstream's storage layout: what our postgresql backends write must be the rows
 * upstream Kinto would have written (so one database can be served alternately by both), and rows
 * written the way upstream writes them must read back correctly through our backends.
 * "Upstream's statements" below are the row shapes its storage issues.
 */
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {PostgresCache} from '../../src/lib/cache/postgresql.js'
import type {SqlClient} from '../../src/lib/db/index.js'
import {realServerUrl} from '../helpers/db.js'
import {closeTarget, openTarget, type PgTarget} from './pg-target.js'

interface RawObject {
  id: string
  parent_id: string
  resource_name: string
  epoch: number
  data: Record<string, unknown>
  deleted: boolean
}

const kinds: Array<'pglite' | 'postgresql'> = realServerUrl ? ['pglite', 'postgresql'] : ['pglite']

for (const kind of kinds) {
  describe(`rows as upstream stores them (${kind})`, () => {
    let target: PgTarget
    let sql: SqlClient
    beforeAll(async () => {
      target = await openTarget(kind, {'kinto.cache_prefix': 'pfx:'})
      sql = target.registry.get(target.db.url)
    })
    afterAll(() => closeTarget(target))
    beforeEach(async () => {
      await target.backends.storage.flush()
      await target.backends.permission.flush()
    })

    async function raw(id: string, parentId: string, resourceName = 'record'): Promise<RawObject | undefined> {
      const res = await sql.query<RawObject>(
        `SELECT id, parent_id, resource_name, as_epoch(last_modified) AS epoch, data, deleted
           FROM objects WHERE id = $1 AND parent_id = $2 AND resource_name = $3`,
        [id, parentId, resourceName],
      )
      return res.rows[0]
    }

    /** Upstream's create/update of a fresh object: data without id/last_modified, NULL timestamp (trigger). */
    async function upstreamInsert(id: string, parentId: string, resourceName: string, data: object): Promise<void> {
      await sql.query(
        `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
         VALUES ($1, $2, $3, $4::jsonb, from_epoch(NULL), FALSE)`,
        [id, parentId, resourceName, JSON.stringify(data)],
      )
    }

    /** Upstream's delete: tombstone in place, timestamp left to the trigger. */
    async function upstreamDelete(id: string, parentId: string, resourceName: string): Promise<void> {
      await sql.query(
        `UPDATE objects SET deleted = TRUE, data = '{"deleted": true}'::jsonb, last_modified = from_epoch(NULL)
          WHERE id = $1 AND parent_id = $2 AND resource_name = $3 AND NOT deleted`,
        [id, parentId, resourceName],
      )
    }

    it('objects: same columns, parent ids and data as upstream writes; timestamps via as_epoch', async () => {
      const storage = target.backends.storage
      const bucket = await storage.create('bucket', '', {id: 'b1', title: 'B'})
      const coll = await storage.create('collection', '/buckets/b1', {id: 'c1'})
      const ours = await storage.create('record', '/buckets/b1/collections/c1', {id: 'ours', title: 't', last_modified: undefined})
      await upstreamInsert('theirs', '/buckets/b1/collections/c1', 'record', {title: 't'})

      expect(await raw('b1', '', 'bucket')).toEqual({id: 'b1', parent_id: '', resource_name: 'bucket', epoch: bucket.last_modified, data: {title: 'B'}, deleted: false})
      expect(await raw('c1', '/buckets/b1', 'collection')).toMatchObject({epoch: coll.last_modified, data: {}, deleted: false})
      const a = (await raw('ours', '/buckets/b1/collections/c1'))!
      const b = (await raw('theirs', '/buckets/b1/collections/c1'))!
      expect(a.epoch).toBe(ours.last_modified)
      expect({...a, id: '', epoch: 0}).toEqual({...b, id: '', epoch: 0})
      expect(b.epoch).toBeGreaterThan(a.epoch)
    })

    it('tombstones: deleted = TRUE, data = {"deleted": true}, as upstream', async () => {
      const storage = target.backends.storage
      const P = '/buckets/b1/collections/c1'
      await storage.create('record', P, {id: 'ours', secret: 'gone'})
      await upstreamInsert('theirs', P, 'record', {secret: 'gone'})
      const tomb = await storage.delete('record', P, 'ours')
      await upstreamDelete('theirs', P, 'record')
      const a = (await raw('ours', P))!
      const b = (await raw('theirs', P))!
      expect(a).toEqual({id: 'ours', parent_id: P, resource_name: 'record', epoch: tomb.last_modified, data: {deleted: true}, deleted: true})
      expect({...b, id: 'ours', epoch: tomb.last_modified}).toEqual(a)
      // deleteAll writes the same shape.
      await storage.create('record', P, {id: 'bulk', x: 1})
      await storage.deleteAll('record', P)
      expect(await raw('bulk', P)).toMatchObject({data: {deleted: true}, deleted: true})
    })

    it('rows written by upstream read back through our storage, tombstones included', async () => {
      const storage = target.backends.storage
      const P = '/buckets/b9/collections/c9'
      await upstreamInsert('r1', P, 'record', {n: 1, nested: {k: 'v'}})
      await upstreamInsert('r2', P, 'record', {n: 2})
      await upstreamDelete('r2', P, 'record')
      const r1 = (await raw('r1', P))!
      const r2 = (await raw('r2', P))!
      expect(await storage.get('record', P, 'r1')).toEqual({n: 1, nested: {k: 'v'}, id: 'r1', last_modified: r1.epoch})
      expect(await storage.list('record', P, {includeDeleted: true, sorting: [{field: 'id', direction: 1}]})).toEqual([
        {n: 1, nested: {k: 'v'}, id: 'r1', last_modified: r1.epoch},
        {deleted: true, id: 'r2', last_modified: r2.epoch},
      ])
      expect(await storage.resourceTimestamp('record', P)).toBe(r2.epoch)
      // Our next write continues upstream's sequence.
      expect((await storage.create('record', P, {})).last_modified).toBeGreaterThan(r2.epoch)
    })

    it('list timestamps: the timestamps row upstream reads', async () => {
      const storage = target.backends.storage
      const t = await storage.resourceTimestamp('record', '/buckets/b1/collections/empty')
      const rows = await sql.query<{parent_id: string; resource_name: string; epoch: number}>(
        'SELECT parent_id, resource_name, as_epoch(last_modified) AS epoch FROM timestamps',
      )
      expect(rows.rows).toEqual([{parent_id: '/buckets/b1/collections/empty', resource_name: 'record', epoch: t}])
      // Readonly reads add nothing.
      await storage.resourceTimestamp('record', '/other', {readonly: true})
      expect((await sql.query('SELECT 1 FROM timestamps')).rows).toHaveLength(1)
    })

    it('permission rows: user_principals and access_control_entries', async () => {
      const perm = target.backends.permission
      await perm.addUserPrincipal('basicauth:alice', '/buckets/b1/groups/g1')
      await perm.replaceObjectPermissions('/buckets/b1', {write: ['basicauth:alice'], read: ['system.Everyone']})
      expect((await sql.query('SELECT user_id, principal FROM user_principals')).rows).toEqual([
        {user_id: 'basicauth:alice', principal: '/buckets/b1/groups/g1'},
      ])
      const aces = await sql.query('SELECT object_id, permission, principal FROM access_control_entries ORDER BY permission')
      expect(aces.rows).toEqual([
        {object_id: '/buckets/b1', permission: 'read', principal: 'system.Everyone'},
        {object_id: '/buckets/b1', permission: 'write', principal: 'basicauth:alice'},
      ])
      // And upstream-written entries are read back.
      await sql.query(`INSERT INTO access_control_entries (object_id, permission, principal) VALUES ('/buckets/b2', 'write', 'bob')`)
      expect(await perm.checkPermission(['bob'], [['/buckets/b2', 'write']])).toBe(true)
    })

    it('cache rows: prefixed key, JSON text value, ttl timestamp', async () => {
      const cache = target.backends.cache as PostgresCache
      await cache.set('token', {a: 1}, 600)
      const rows = await sql.query<{key: string; value: string; secs: number}>(
        `SELECT key, value, EXTRACT(EPOCH FROM (ttl - now()))::float8 AS secs FROM cache WHERE key LIKE 'pfx:%'`,
      )
      expect(rows.rows).toHaveLength(1)
      expect(rows.rows[0].key).toBe('pfx:token')
      expect(JSON.parse(rows.rows[0].value)).toEqual({a: 1})
      expect(rows.rows[0].secs).toBeGreaterThan(590)
      await sql.query(`INSERT INTO cache (key, value, ttl) VALUES ('pfx:up', '"from upstream"', sec2ttl(60))`)
      expect(await cache.get('up')).toBe('from upstream')
    })
  })
}

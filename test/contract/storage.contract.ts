/**
 * The storage contract: every Storage implementation must pass it (memory, PGlite, PostgreSQL).
 * Expected values are written out by hand from upstream's PostgreSQL semantics,
 * so memory and postgresql are each held to the same answers, not to each other.
 */
import {beforeEach, describe, expect, it} from 'vitest'

import type {Backends} from '../../src/lib/backends.js'
import {IntegrityError} from '../../src/lib/db/backend.js'
import {EXACT_INTEGER} from '../../src/lib/json.js'
import {
  type Filter,
  type JsonValue,
  type KintoObject,
  MISSING,
  ObjectNotFoundError,
  PreconditionFailedError,
  type Sort,
  type Storage,
  UnicityError,
} from '../../src/lib/storage/types.js'

const R = 'record'
const P = '/buckets/b1/collections/c1'

const ids = (objs: KintoObject[]) => objs.map((o) => o.id)
const sortedIds = (objs: KintoObject[]) => ids(objs).sort()

/** Upstream's keyset pagination rules after `last` for a sort (kinto/core/resource). */
export function paginationRules(sorting: Sort[], last: KintoObject): Filter[][] {
  return sorting.map((_, i) =>
    sorting.slice(0, i + 1).map((s, j) => {
      const value = fieldOf(last, s.field)
      const isLast = j === i
      return {field: s.field, value, operator: isLast ? (s.direction > 0 ? 'gt' : 'lt') : 'eq'} as Filter
    }),
  )
}

function fieldOf(obj: KintoObject, field: string): Filter['value'] {
  let cur: unknown = obj
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !(part in (cur as object))) return MISSING
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur as Filter['value']
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

export function storageContract(get: () => Backends): void {
  let storage: Storage
  beforeEach(async () => {
    storage = get().storage
    await storage.flush()
  })

  describe('objects', () => {
    it('creates with a generated id and reads it back', async () => {
      const created = await storage.create(R, P, {title: 'hello', n: 1})
      expect(created.id).toMatch(/^[0-9a-f-]{36}$/)
      expect(typeof created.last_modified).toBe('number')
      expect(await storage.get(R, P, created.id)).toEqual({title: 'hello', n: 1, id: created.id, last_modified: created.last_modified})
    })

    it('uses a given id and id generator', async () => {
      expect((await storage.create(R, P, {id: 'abc', x: 1})).id).toBe('abc')
      expect((await storage.create(R, P, {x: 2}, {idGenerator: () => 'generated'})).id).toBe('generated')
      expect(sortedIds(await storage.list(R, P))).toEqual(['abc', 'generated'])
    })

    it('raises UnicityError with the existing object on a live duplicate', async () => {
      const first = await storage.create(R, P, {id: 'dup', v: 1})
      const err = await rejection(storage.create(R, P, {id: 'dup', v: 2}))
      expect(err).toBeInstanceOf(UnicityError)
      expect((err as UnicityError).existing).toEqual(first)
      expect((await storage.get(R, P, 'dup')).v).toBe(1)
    })

    it('revives a tombstone on create', async () => {
      await storage.create(R, P, {id: 'r', v: 1})
      const tomb = await storage.delete(R, P, 'r')
      const revived = await storage.create(R, P, {id: 'r', v: 2})
      expect(revived.last_modified).toBeGreaterThan(tomb.last_modified)
      expect(await storage.get(R, P, 'r')).toEqual({v: 2, id: 'r', last_modified: revived.last_modified})
      expect(await storage.list(R, P, {includeDeleted: true})).toHaveLength(1)
    })

    it('get of a missing object, or of another list, is ObjectNotFoundError', async () => {
      await storage.create(R, P, {id: 'x'})
      expect(await rejection(storage.get(R, P, 'nope'))).toBeInstanceOf(ObjectNotFoundError)
      expect(await rejection(storage.get(R, '/buckets/b1/collections/c2', 'x'))).toBeInstanceOf(ObjectNotFoundError)
      expect(await rejection(storage.get('collection', P, 'x'))).toBeInstanceOf(ObjectNotFoundError)
    })

    it('getMany reads the live objects among ids of one list (where offered)', async (ctx) => {
      if (!storage.getMany) return ctx.skip('getMany is not offered by this storage')
      const a = await storage.create(R, P, {id: 'a', v: 1})
      const b = await storage.create(R, P, {id: 'b', v: 2})
      await storage.create(R, P, {id: 'gone'})
      await storage.delete(R, P, 'gone')
      await storage.create(R, '/buckets/b1/collections/c2', {id: 'c'})
      await storage.create('collection', P, {id: 'a'})
      const found = await storage.getMany(R, P, ['b', 'gone', 'c', 'missing', 'a'])
      expect([...found].sort((x, y) => x.id.localeCompare(y.id))).toEqual([a, b])
      expect(await storage.getMany(R, P, [])).toEqual([])
    })

    it('createMany writes rows in order, increasing timestamps; a live id is left alone, a tombstone revived (where offered)', async (ctx) => {
      if (!storage.createMany) return ctx.skip('createMany is not offered by this storage')
      const live = await storage.create(R, P, {id: 'live', v: 0})
      await storage.create(R, P, {id: 'tomb', v: 0})
      await storage.delete(R, P, 'tomb')
      const rows = await storage.createMany(R, P, [{obj: {id: 'n1', v: 1}}, {obj: {id: 'live', v: 2}}, {obj: {id: 'tomb', v: 3}}, {obj: {v: 4}, idGenerator: () => 'gen'}])
      expect(rows.map((r) => r && {id: r.id, v: r.v})).toEqual([{id: 'n1', v: 1}, null, {id: 'tomb', v: 3}, {id: 'gen', v: 4}])
      const stamps = rows.filter((r) => r !== null).map((r) => r.last_modified)
      expect(stamps[0]).toBeGreaterThan(live.last_modified)
      expect(stamps).toEqual([...stamps].sort((a, b) => a - b))
      expect(new Set(stamps).size).toBe(stamps.length)
      expect(await storage.get(R, P, 'live')).toEqual(live)
      expect(await storage.get(R, P, 'tomb')).toMatchObject({id: 'tomb', v: 3})
    })

    it('update creates, then replaces the whole body', async () => {
      const a = await storage.update(R, P, 'u1', {a: 1, b: 2})
      expect(a).toMatchObject({id: 'u1', a: 1, b: 2})
      const b = await storage.update(R, P, 'u1', {c: 3, id: 'ignored', last_modified: undefined})
      expect(b.last_modified).toBeGreaterThan(a.last_modified)
      expect(await storage.get(R, P, 'u1')).toEqual({c: 3, id: 'u1', last_modified: b.last_modified})
    })

    it('update revives a tombstone', async () => {
      await storage.create(R, P, {id: 't'})
      await storage.delete(R, P, 't')
      const back = await storage.update(R, P, 't', {v: 'again'})
      expect(await storage.get(R, P, 't')).toEqual({v: 'again', id: 't', last_modified: back.last_modified})
    })

    it('keeps JSON values intact (unicode, nesting, numbers)', async () => {
      const body = {s: 'é 😀 "q" \\ \n', nested: {a: [1, {b: null}], e: {}}, f: 1.5, neg: -3, big: 2 ** 40, t: true}
      const created = await storage.create(R, P, body)
      expect(await storage.get(R, P, created.id)).toEqual({...body, id: created.id, last_modified: created.last_modified})
    })

    it('returns copies: changing a returned object changes nothing stored', async () => {
      const created = await storage.create(R, P, {nested: {a: 1}})
      ;(created.nested as {a: number}).a = 99
      const fetched = await storage.get(R, P, created.id)
      ;(fetched.nested as {a: number}).a = 98
      expect((await storage.get(R, P, created.id)).nested).toEqual({a: 1})
    })
  })

  describe('timestamps', () => {
    it('strictly increase within a list, across creates, updates and deletes', async () => {
      const seen: number[] = []
      for (let i = 0; i < 15; i++) seen.push((await storage.create(R, P, {i})).last_modified)
      seen.push((await storage.update(R, P, 'x', {})).last_modified)
      seen.push((await storage.delete(R, P, 'x')).last_modified)
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1])
    })

    it('bumps a given timestamp equal to the list timestamp, keeps a different one', async () => {
      const first = await storage.create(R, P, {id: 'a'})
      const bumped = await storage.create(R, P, {id: 'b', last_modified: first.last_modified})
      expect(bumped.last_modified).toBeGreaterThan(first.last_modified)
      const future = bumped.last_modified + 100000
      expect((await storage.create(R, P, {id: 'c', last_modified: future})).last_modified).toBe(future)
      expect(await storage.resourceTimestamp(R, P)).toBe(future)
      const past = first.last_modified - 5000
      expect((await storage.update(R, P, 'd', {last_modified: past})).last_modified).toBe(past)
      expect(await storage.resourceTimestamp(R, P)).toBe(future)
      expect((await storage.create(R, P, {id: 'e'})).last_modified).toBe(future + 1)
    })

    it("refuses a given timestamp held by another object or tombstone of the list (the unique index), not the object's own", async () => {
      const a = await storage.create(R, P, {id: 'a'})
      const gone = await storage.create(R, P, {id: 'gone'})
      const tomb = await storage.delete(R, P, 'gone')
      await storage.create(R, P, {id: 'newest'})
      await expect(storage.create(R, P, {id: 'b', last_modified: a.last_modified})).rejects.toBeInstanceOf(IntegrityError)
      await expect(storage.update(R, P, 'b', {last_modified: tomb.last_modified})).rejects.toBeInstanceOf(IntegrityError)
      await expect(storage.delete(R, P, 'newest', {lastModified: a.last_modified})).rejects.toBeInstanceOf(IntegrityError)
      expect((await storage.update(R, P, 'a', {v: 2, last_modified: a.last_modified})).last_modified).toBe(a.last_modified)
      expect((await storage.update(R, P, 'gone', {last_modified: tomb.last_modified})).last_modified).toBe(tomb.last_modified)
      expect((await storage.update(R, P, 'newest', {last_modified: gone.last_modified})).last_modified).toBe(gone.last_modified)
    })

    it('a delete may carry its timestamp', async () => {
      const obj = await storage.create(R, P, {id: 'a'})
      const tomb = await storage.delete(R, P, 'a', {lastModified: obj.last_modified + 1000})
      expect(tomb).toEqual({id: 'a', last_modified: obj.last_modified + 1000, deleted: true})
    })

    it('are independent per list', async () => {
      const a = await storage.create(R, P, {id: 'x', last_modified: 5_000_000_000_000})
      const b = await storage.create(R, '/buckets/b1/collections/c2', {id: 'x'})
      expect(b.last_modified).toBeLessThan(a.last_modified)
      expect(await storage.resourceTimestamp(R, '/buckets/b1/collections/c2')).toBe(b.last_modified)
    })

    it('list timestamp of an empty list is stored once and then stable', async () => {
      const t1 = await storage.resourceTimestamp(R, '/buckets/b1/collections/empty')
      expect(t1).toBeGreaterThan(1_600_000_000_000)
      await new Promise((r) => setTimeout(r, 5))
      expect(await storage.resourceTimestamp(R, '/buckets/b1/collections/empty')).toBe(t1)
      const created = await storage.create(R, '/buckets/b1/collections/empty', {})
      expect(created.last_modified).toBeGreaterThan(t1)
      expect(await storage.resourceTimestamp(R, '/buckets/b1/collections/empty')).toBe(created.last_modified)
    })

    it('readonly reads never write: a never-written list answers 0', async () => {
      expect(await storage.resourceTimestamp(R, '/never', {readonly: true})).toBe(0)
      expect(await storage.resourceTimestamp(R, '/never', {readonly: true})).toBe(0)
      const obj = await storage.create(R, P, {})
      expect(await storage.resourceTimestamp(R, P, {readonly: true})).toBe(obj.last_modified)
      // The readonly read stored nothing: a writable read now stores the clock.
      const stored = await storage.resourceTimestamp(R, '/never')
      expect(stored).toBeGreaterThan(0)
      expect(await storage.resourceTimestamp(R, '/never', {readonly: true})).toBe(stored)
    })

    it('include tombstones', async () => {
      await storage.create(R, P, {id: 'a'})
      // A null bound (`_since=null`) is SQL NULL: no comparison with it holds.
      for (const operator of ['gt', 'lt', 'eq', 'not', 'min', 'max'] as const) {
        expect(await storage.list(R, P, {filters: [{field: 'last_modified', operator, value: null}], includeDeleted: true}), operator).toEqual([])
      }
      const tomb = await storage.delete(R, P, 'a')
      expect(await storage.resourceTimestamp(R, P)).toBe(tomb.last_modified)
    })

    it('allResourcesTimestamps gives the newest per parent', async () => {
      await storage.create(R, '/buckets/b/collections/c1', {})
      const c1 = await storage.create(R, '/buckets/b/collections/c1', {})
      const c2 = await storage.create(R, '/buckets/b/collections/c2', {})
      await storage.create('group', '/buckets/b', {})
      const all = await storage.allResourcesTimestamps!(R)
      expect(all).toEqual({'/buckets/b/collections/c1': c1.last_modified, '/buckets/b/collections/c2': c2.last_modified})
    })
  })

  describe('delete and tombstones', () => {
    it('delete leaves a tombstone, shown only with includeDeleted', async () => {
      await storage.create(R, P, {id: 'a', v: 1})
      await storage.create(R, P, {id: 'b', v: 2})
      // A null bound (`_since=null`) is SQL NULL: no comparison with it holds.
      for (const operator of ['gt', 'lt', 'eq', 'not', 'min', 'max'] as const) {
        expect(await storage.list(R, P, {filters: [{field: 'last_modified', operator, value: null}], includeDeleted: true}), operator).toEqual([])
      }
      const tomb = await storage.delete(R, P, 'a')
      expect(tomb).toEqual({id: 'a', last_modified: tomb.last_modified, deleted: true})
      expect(await rejection(storage.get(R, P, 'a'))).toBeInstanceOf(ObjectNotFoundError)
      expect(ids(await storage.list(R, P))).toEqual(['b'])
      const all = await storage.list(R, P, {includeDeleted: true, sorting: [{field: 'id', direction: 1}]})
      expect(all).toEqual([
        {deleted: true, id: 'a', last_modified: tomb.last_modified},
        expect.objectContaining({id: 'b', v: 2}),
      ])
      expect(await storage.count(R, P)).toBe(1)
    })

    it('deleting a missing object or a tombstone is ObjectNotFoundError', async () => {
      expect(await rejection(storage.delete(R, P, 'nope'))).toBeInstanceOf(ObjectNotFoundError)
      await storage.create(R, P, {id: 'a'})
      await storage.delete(R, P, 'a')
      expect(await rejection(storage.delete(R, P, 'a'))).toBeInstanceOf(ObjectNotFoundError)
    })

    it('withDeleted: false removes without a tombstone', async () => {
      await storage.create(R, P, {id: 'a'})
      await storage.delete(R, P, 'a', {withDeleted: false})
      expect(await storage.list(R, P, {includeDeleted: true})).toEqual([])
    })

    it('deleteAll turns the matching objects into tombstones with distinct timestamps', async () => {
      for (let i = 0; i < 6; i++) await storage.create(R, P, {id: `o${i}`, even: i % 2 === 0})
      await storage.create(R, '/buckets/b1/collections/other', {id: 'keep'})
      const deleted = await storage.deleteAll(R, P, {filters: [{field: 'even', operator: 'eq', value: true}]})
      expect(sortedIds(deleted)).toEqual(['o0', 'o2', 'o4'])
      expect(deleted.every((d) => d.deleted === true && Object.keys(d).length === 3)).toBe(true)
      expect(new Set(deleted.map((d) => d.last_modified)).size).toBe(3)
      expect(sortedIds(await storage.list(R, P))).toEqual(['o1', 'o3', 'o5'])
      expect(await storage.count(R, '/buckets/b1/collections/other')).toBe(1)
    })

    it('deleteAll honours sorting and limit', async () => {
      for (const v of [5, 3, 9, 1]) await storage.create(R, P, {id: `v${v}`, v})
      const deleted = await storage.deleteAll(R, P, {sorting: [{field: 'v', direction: 1}], limit: 2})
      expect(sortedIds(deleted)).toEqual(['v1', 'v3'])
    })

    it('deleteAll over a parent wildcard, and hard deletes', async () => {
      await storage.create(R, '/buckets/b1/collections/c1', {id: 'a'})
      await storage.create(R, '/buckets/b1/collections/c2', {id: 'b'})
      await storage.create(R, '/buckets/b2/collections/c1', {id: 'c'})
      const deleted = await storage.deleteAll(R, '/buckets/b1/collections/*')
      expect(sortedIds(deleted)).toEqual(['a', 'b'])
      expect(sortedIds(await storage.list(R, '/buckets/*/collections/*'))).toEqual(['c'])
      const hard = await storage.deleteAll(R, '/buckets/b2/collections/*', {withDeleted: false})
      expect(ids(hard)).toEqual(['c'])
      expect(sortedIds(await storage.list(R, '/buckets/*/collections/*', {includeDeleted: true}))).toEqual(['a', 'b'])
    })

    it('purgeDeleted removes tombstones (all, before, maxRetained)', async () => {
      const stamps: number[] = []
      for (let i = 0; i < 5; i++) {
        await storage.create(R, P, {id: `t${i}`})
        stamps.push((await storage.delete(R, P, `t${i}`)).last_modified)
      }
      await storage.create(R, P, {id: 'live'})
      await storage.create(R, '/buckets/b1/collections/c2', {id: 'x'})
      await storage.delete(R, '/buckets/b1/collections/c2', 'x')

      expect(await storage.purgeDeleted(R, P, {before: stamps[2]})).toBe(2)
      expect(sortedIds(await storage.list(R, P, {includeDeleted: true}))).toEqual(['live', 't2', 't3', 't4'])
      expect(await storage.purgeDeleted(R, P, {maxRetained: 1})).toBe(2)
      expect(sortedIds(await storage.list(R, P, {includeDeleted: true}))).toEqual(['live', 't4'])
      expect(await storage.purgeDeleted(R, '/buckets/b1/collections/*')).toBe(2)
      expect(ids(await storage.list(R, '/buckets/b1/collections/*', {includeDeleted: true}))).toEqual(['live'])
    })

    it('purgeDeleted keeps N newest per list', async () => {
      for (const c of ['c1', 'c2']) {
        for (let i = 0; i < 3; i++) {
          await storage.create(R, `/buckets/b/collections/${c}`, {id: `${c}-${i}`})
          await storage.delete(R, `/buckets/b/collections/${c}`, `${c}-${i}`)
        }
      }
      expect(await storage.purgeDeleted(R, '/buckets/b/collections/*', {maxRetained: 2})).toBe(2)
      expect(sortedIds(await storage.list(R, '/buckets/b/collections/*', {includeDeleted: true}))).toEqual(['c1-1', 'c1-2', 'c2-1', 'c2-2'])
    })

    it('purgeDeleted of a whole parent also forgets the list timestamps', async () => {
      const t = await storage.resourceTimestamp(R, '/buckets/gone/collections/c')
      await new Promise((r) => setTimeout(r, 3))
      expect(await storage.purgeDeleted(null, '/buckets/gone/collections/c')).toBe(0)
      expect(await storage.resourceTimestamp(R, '/buckets/gone/collections/c', {readonly: true})).toBe(0)
      expect(await storage.resourceTimestamp(R, '/buckets/gone/collections/c')).toBeGreaterThan(t)
    })

    it('trimObjects keeps the newest N matching objects', async () => {
      for (let i = 0; i < 5; i++) await storage.create('history', '/buckets/b', {id: `h${i}`, user_id: i < 4 ? 'alice' : 'bob'})
      const deleted = await storage.trimObjects!('history', '/buckets/b', [{field: 'user_id', operator: 'eq', value: 'alice'}], 2)
      expect(deleted.sort()).toEqual(['h0', 'h1'])
      expect(sortedIds(await storage.list('history', '/buckets/b', {includeDeleted: true}))).toEqual(['h2', 'h3', 'h4'])
    })

    it('flush removes objects, tombstones and list timestamps', async () => {
      await storage.create(R, P, {id: 'a'})
      await storage.delete(R, P, 'a')
      await storage.resourceTimestamp(R, '/empty')
      await storage.flush()
      expect(await storage.list(R, P, {includeDeleted: true})).toEqual([])
      expect(await storage.resourceTimestamp(R, '/empty', {readonly: true})).toBe(0)
    })
  })

  describe('filters', () => {
    beforeEach(async () => {
      const rows: Array<Record<string, unknown>> = [
        {id: 'a', n: 1, s: 'apple', tags: ['x', 'y'], o: {k: 'v', num: 10}, b: true},
        {id: 'b', n: 2, s: 'Banana', tags: ['y'], o: {k: 'w'}, b: false},
        {id: 'c', n: 3, s: 'cherry_pie', tags: [], nul: null, b: true},
        {id: 'd', n: 'three', s: '100%', tags: 'x', o: {num: 5}},
        {id: 'e', s: 'éclair', tags: [['x'], {z: 1}], arr: [1, 2]},
        {id: 'f', n: 2.5, arr: [1], deep: {a: {b: {c: 'found'}}}},
      ]
      for (const r of rows) await storage.create(R, P, r)
    })

    const cases: Array<[string, Filter, string[]]> = [
      ['eq number', {field: 'n', operator: 'eq', value: 2}, ['b']],
      ['eq string', {field: 's', operator: 'eq', value: 'apple'}, ['a']],
      ['eq null matches JSON null only', {field: 'nul', operator: 'eq', value: null}, ['c']],
      ['eq boolean', {field: 'b', operator: 'eq', value: false}, ['b']],
      ['eq array is exact equality', {field: 'tags', operator: 'eq', value: ['y']}, ['b']],
      ['eq nested field', {field: 'o.k', operator: 'eq', value: 'v'}, ['a']],
      ['eq deep field', {field: 'deep.a.b.c', operator: 'eq', value: 'found'}, ['f']],
      ['eq id', {field: 'id', operator: 'eq', value: 'c'}, ['c']],
      ['not: missing fields match', {field: 'n', operator: 'not', value: 2}, ['a', 'c', 'd', 'e', 'f']],
      ['lt: missing fields do not match, strings sort below numbers', {field: 'n', operator: 'lt', value: 3}, ['a', 'b', 'd', 'f']],
      ['max', {field: 'n', operator: 'max', value: 2.5}, ['a', 'b', 'd', 'f']],
      ['gt: missing fields match (sorted last)', {field: 'n', operator: 'gt', value: 2}, ['c', 'e', 'f']],
      ['min', {field: 'n', operator: 'min', value: 3}, ['c', 'e']],
      ['gt string vs numbers: jsonb type order', {field: 'n', operator: 'gt', value: 'a'}, ['a', 'b', 'c', 'd', 'e', 'f']],
      ['lt string', {field: 's', operator: 'lt', value: 'apple'}, ['b', 'd']],
      ['in', {field: 'n', operator: 'in', value: [1, 3, 'three']}, ['a', 'c', 'd']],
      ['in empty matches nothing', {field: 'n', operator: 'in', value: []}, []],
      ['exclude: missing fields match', {field: 'n', operator: 'exclude', value: [1, 2]}, ['c', 'd', 'e', 'f']],
      ['exclude empty: only objects without the field (upstream NOT IN (NULL))', {field: 'n', operator: 'exclude', value: []}, ['e']],
      ['in on id', {field: 'id', operator: 'in', value: ['a', 'f', 'zz']}, ['a', 'f']],
      ['exclude on id', {field: 'id', operator: 'exclude', value: ['a', 'f']}, ['b', 'c', 'd', 'e']],
      ['like is case-insensitive and implicitly %v%', {field: 's', operator: 'like', value: 'AN'}, ['b']],
      ['like folds non-ASCII letters too (ILIKE under a UTF-8 ctype)', {field: 's', operator: 'like', value: 'ÉCLAIR'}, ['e']],
      ['like with * wildcard anchors', {field: 's', operator: 'like', value: 'c*'}, ['c']],
      ['like: _ is a single-character wildcard', {field: 's', operator: 'like', value: 'cherry_p*'}, ['c']],
      ['like on a number field uses its text', {field: 'n', operator: 'like', value: '2.'}, ['f']],
      ['like on id', {field: 'id', operator: 'like', value: 'E'}, ['e']],
      ['has true: JSON null counts as present', {field: 'nul', operator: 'has', value: true}, ['c']],
      ['has false', {field: 'o', operator: 'has', value: false}, ['c', 'e', 'f']],
      ['has on nested', {field: 'o.num', operator: 'has', value: true}, ['a', 'd']],
      ['contains all values', {field: 'tags', operator: 'contains', value: ['x', 'y']}, ['a']],
      ['contains one value', {field: 'tags', operator: 'contains', value: ['y']}, ['a', 'b']],
      ['contains: a non-array field never matches', {field: 'tags', operator: 'contains', value: ['x']}, ['a']],
      ['contains nested containers', {field: 'tags', operator: 'contains', value: [{z: 1}]}, ['e']],
      ['contains_any', {field: 'tags', operator: 'contains_any', value: ['x', 'nothing']}, ['a']],
      ['contains_any numbers', {field: 'arr', operator: 'contains_any', value: [2, 3]}, ['e']],
      ['contains_any: field must be an array', {field: 's', operator: 'contains_any', value: ['apple']}, []],
      ['id lt (C collation)', {field: 'id', operator: 'lt', value: 'c'}, ['a', 'b']],
    ]

    for (const [title, filter, expected] of cases) {
      it(title, async () => {
        expect(sortedIds(await storage.list(R, P, {filters: [filter]}))).toEqual(expected)
        expect(await storage.count(R, P, [filter])).toBe(expected.length)
      })
    }

    it('a null or boolean value on id reads as on PostgreSQL: null is SQL NULL, booleans are True/False', async () => {
      for (const id of ['null', 'true', 'True']) await storage.create(R, P, {id})
      for (const operator of ['eq', 'not', 'lt', 'max', 'gt', 'min'] as const) {
        expect(await storage.list(R, P, {filters: [{field: 'id', operator, value: null}]}), operator).toEqual([])
      }
      expect(ids(await storage.list(R, P, {filters: [{field: 'id', operator: 'eq', value: true}]}))).toEqual(['True'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'id', operator: 'gt', value: false}]}))).toEqual(['True', 'a', 'b', 'c', 'd', 'e', 'f', 'null', 'true'])
    })

    it('long in/exclude lists match by jsonb equality: 2.5 is 2.50, 1 is not "1" nor true, containers exactly', async () => {
      const many = Array.from({length: 5000}, (_, i) => `x${i}`)
      const values: JsonValue[] = [...many, 1, 2.50, '3', 'three', [1], {k: 'w'}, EXACT_INTEGER + '12345678901234567890']
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'n', operator: 'in', value: values}]}))).toEqual(['a', 'd', 'f'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'o', operator: 'in', value: values}]}))).toEqual(['b'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'arr', operator: 'in', value: values}]}))).toEqual(['f'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'b', operator: 'in', value: [1, 0, 'true']}]}))).toEqual([])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'n', operator: 'exclude', value: values}]}))).toEqual(['b', 'c', 'e'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'id', operator: 'in', value: [...many, 'b', 'e']}]}))).toEqual(['b', 'e'])
      expect(sortedIds(await storage.list(R, P, {filters: [{field: 'id', operator: 'exclude', value: [...many, 'b', 'e']}]}))).toEqual(['a', 'c', 'd', 'f'])
    })

    it('several filters combine with AND', async () => {
      const filters: Filter[] = [
        {field: 'b', operator: 'eq', value: true},
        {field: 'n', operator: 'gt', value: 1},
      ]
      expect(sortedIds(await storage.list(R, P, {filters}))).toEqual(['c'])
    })

    it('filters on last_modified, and they see tombstones when asked', async () => {
      const all = await storage.list(R, P, {sorting: [{field: 'last_modified', direction: 1}]})
      const pivot = all[2].last_modified
      expect(ids(await storage.list(R, P, {filters: [{field: 'last_modified', operator: 'gt', value: pivot}], sorting: [{field: 'last_modified', direction: 1}]}))).toEqual(ids(all.slice(3)))
      expect(ids(await storage.list(R, P, {filters: [{field: 'last_modified', operator: 'eq', value: pivot}]}))).toEqual([all[2].id])
      expect(ids(await storage.list(R, P, {filters: [{field: 'last_modified', operator: 'in', value: [pivot, all[0].last_modified]}], sorting: [{field: 'id', direction: 1}]}))).toEqual(
        [all[0].id, all[2].id].sort(),
      )
      // A null bound (`_since=null`) is SQL NULL: no comparison with it holds.
      for (const operator of ['gt', 'lt', 'eq', 'not', 'min', 'max'] as const) {
        expect(await storage.list(R, P, {filters: [{field: 'last_modified', operator, value: null}], includeDeleted: true}), operator).toEqual([])
      }
      const tomb = await storage.delete(R, P, 'a')
      const since = await storage.list(R, P, {filters: [{field: 'last_modified', operator: 'gt', value: all[5].last_modified}], includeDeleted: true})
      expect(since).toEqual([{deleted: true, id: 'a', last_modified: tomb.last_modified}])
    })
  })

  describe('integers beyond 2^53 (held exact: EXACT_INTEGER)', () => {
    // jsonb keeps them as numeric: they are numbers among numbers, compared digit for digit;
    // a double compares as the decimal text it is written as.
    const big = (digits: string) => (EXACT_INTEGER + digits) as unknown as JsonValue
    beforeEach(async () => {
      const rows: Array<Record<string, unknown>> = [
        {id: 'small', v: 5},
        {id: 'big', v: big('12345678901234567890'), list: [big('12345678901234567890')]},
        {id: 'bigger', v: big('12345678901234567891')},
        {id: 'negative', v: big('-12345678901234567890')},
        {id: 'double', v: 12345678901234567000},
        {id: 'text', v: 'a'},
      ]
      for (const r of rows) await storage.create(R, P, r)
    })

    const cases: Array<[string, Filter, string[]]> = [
      ['eq', {field: 'v', operator: 'eq', value: big('12345678901234567890')}, ['big']],
      ['eq: a double is not the integer next to it', {field: 'v', operator: 'eq', value: big('12345678901234567000')}, ['double']],
      ['gt a small number', {field: 'v', operator: 'gt', value: 5}, ['big', 'bigger', 'double']],
      ['lt a small number', {field: 'v', operator: 'lt', value: 5}, ['negative', 'text']],
      ['gt between two of them', {field: 'v', operator: 'gt', value: big('12345678901234567890')}, ['bigger']],
      ['max: the double is below (as its decimal text, not its binary value)', {field: 'v', operator: 'max', value: big('12345678901234567100')}, ['double', 'negative', 'small', 'text']],
      ['in', {field: 'v', operator: 'in', value: [big('12345678901234567891'), 5]}, ['bigger', 'small']],
      ['contains', {field: 'list', operator: 'contains', value: [big('12345678901234567890')]}, ['big']],
      ['contains_any', {field: 'list', operator: 'contains_any', value: [big('12345678901234567890')]}, ['big']],
      ['like reads the digits', {field: 'v', operator: 'like', value: '*67890'}, ['big', 'negative']],
    ]

    for (const [title, filter, expected] of cases) {
      it(title, async () => {
        expect(sortedIds(await storage.list(R, P, {filters: [filter]}))).toEqual(expected)
      })
    }

    it('a filter on id reads the digits', async () => {
      await storage.create(R, P, {id: '12345678901234567890'})
      for (const operator of ['eq', 'in'] as const) {
        expect(ids(await storage.list(R, P, {filters: [{field: 'id', operator, value: big('12345678901234567890')}]}))).toEqual(['12345678901234567890'])
      }
    })

    it('sort among numbers', async () => {
      const sorting: Sort[] = [{field: 'v', direction: 1}]
      expect(ids(await storage.list(R, P, {sorting}))).toEqual(['text', 'negative', 'small', 'double', 'big', 'bigger'])
    })
  })

  describe('sorting', () => {
    it('follows PostgreSQL jsonb order across types, missing values last', async () => {
      const values: Array<[string, unknown]> = [
        ['obj2', {a: 1, b: 2}],
        ['arr2', [1, 2]],
        ['true', true],
        ['num25', 2.5],
        ['strB', 'B'],
        ['null', null],
        ['missing', undefined],
        ['emptyarr', []],
        ['strb', 'b'],
        ['false', false],
        ['num1', 1],
        ['arr1', [1]],
        ['obj0', {}],
        ['obj1', {a: 1}],
        ['numneg', -4],
        ['str', ''],
      ]
      for (const [id, v] of values) await storage.create(R, P, v === undefined ? {id} : {id, v: v as never})
      const asc = ids(await storage.list(R, P, {sorting: [{field: 'v', direction: 1}]}))
      const expected = ['emptyarr', 'null', 'str', 'strB', 'strb', 'numneg', 'num1', 'num25', 'false', 'true', 'arr1', 'arr2', 'obj0', 'obj1', 'obj2', 'missing']
      expect(asc).toEqual(expected)
      const desc = ids(await storage.list(R, P, {sorting: [{field: 'v', direction: -1}]}))
      expect(desc).toEqual([...expected].reverse())
    })

    it('sorts strings by code point, ids as C text, with secondary keys', async () => {
      for (const [id, g, s] of [
        ['Z', 1, 'b'],
        ['a', 1, 'a'],
        ['é', 2, 'a'],
        ['_', 2, 'a'],
        ['b', 1, 'é'],
        ['c', 1, 'z'],
      ] as const)
        await storage.create(R, P, {id, g, s})
      expect(ids(await storage.list(R, P, {sorting: [{field: 'id', direction: 1}]}))).toEqual(['Z', '_', 'a', 'b', 'c', 'é'])
      const byGroup = await storage.list(R, P, {sorting: [{field: 'g', direction: -1}, {field: 's', direction: 1}, {field: 'id', direction: 1}]})
      expect(ids(byGroup)).toEqual(['_', 'é', 'a', 'Z', 'c', 'b'])
    })

    it('nested object fields sort and objects compare by size, then keys', async () => {
      await storage.create(R, P, {id: '1', o: {b: 1}})
      await storage.create(R, P, {id: '2', o: {a: 2}})
      await storage.create(R, P, {id: '3', o: {a: 1}})
      await storage.create(R, P, {id: '4', o: {aa: 0}})
      await storage.create(R, P, {id: '5', o: {a: 1, b: 0}})
      expect(ids(await storage.list(R, P, {sorting: [{field: 'o', direction: 1}]}))).toEqual(['3', '2', '4', '1', '5'])
      expect(ids(await storage.list(R, P, {sorting: [{field: 'o.a', direction: 1}, {field: 'id', direction: 1}]}))).toEqual(['3', '5', '2', '1', '4'])
    })
  })

  describe('pagination', () => {
    it('keyset pages visit every object once, in order, including objects missing the sort field', async () => {
      const titles = ['m', 'a', undefined, 'z', 'a', undefined, 'k', 'a', 'q', undefined, 'b']
      for (const [i, t] of titles.entries()) await storage.create(R, P, t === undefined ? {id: `o${i}`} : {id: `o${i}`, title: t})
      for (const direction of [1, -1] as const) {
        const sorting: Sort[] = [
          {field: 'title', direction},
          {field: 'last_modified', direction: -1},
        ]
        const full = ids(await storage.list(R, P, {sorting}))
        expect(full).toHaveLength(titles.length)
        const visited: string[] = []
        let rules: Filter[][] | undefined
        for (let page = 0; page < 20; page++) {
          const got = await storage.list(R, P, {sorting, paginationRules: rules, limit: 3 + 1})
          const shown = got.slice(0, 3)
          visited.push(...ids(shown))
          if (got.length <= 3) break
          rules = paginationRules(sorting, shown.at(-1)!)
        }
        expect(visited).toEqual(full)
      }
    })

    it('limit caps the result', async () => {
      for (let i = 0; i < 5; i++) await storage.create(R, P, {i})
      expect(await storage.list(R, P, {limit: 2})).toHaveLength(2)
    })
  })

  describe('parent wildcards', () => {
    beforeEach(async () => {
      await storage.create(R, '/buckets/b1/collections/c1', {id: 'r1'})
      await storage.create(R, '/buckets/b1/collections/c2', {id: 'r2'})
      await storage.create(R, '/buckets/b_2/collections/c1', {id: 'r3'})
      await storage.create(R, '/buckets/bX2/collections/c1', {id: 'r4'})
      await storage.create('collection', '/buckets/b1', {id: 'c1'})
    })

    it('list and count across parents', async () => {
      expect(sortedIds(await storage.list(R, '/buckets/b1/collections/*'))).toEqual(['r1', 'r2'])
      expect(await storage.count(R, '/buckets/*')).toBe(4)
      expect(await storage.count('collection', '/buckets/*')).toBe(1)
    })

    it('only * is a wildcard: _ and % in a parent id are literal', async () => {
      expect(sortedIds(await storage.list(R, '/buckets/b_2/collections/*'))).toEqual(['r3'])
      expect(sortedIds(await storage.list(R, '/buckets/b%/collections/*'))).toEqual([])
      expect(sortedIds(await storage.deleteAll(R, '/buckets/b_2/*'))).toEqual(['r3'])
      expect(await storage.count(R, '/buckets/bX2/collections/c1')).toBe(1)
    })
  })

  describe('conditional writes', () => {
    it('update with If-Match: matching timestamp succeeds, stale one fails with the current object', async () => {
      const v1 = await storage.create(R, P, {id: 'a', v: 1})
      const v2 = await storage.update(R, P, 'a', {v: 2}, {condition: {kind: 'last_modified', value: v1.last_modified}})
      const err = await rejection(storage.update(R, P, 'a', {v: 3}, {condition: {kind: 'last_modified', value: v1.last_modified}}))
      expect(err).toBeInstanceOf(PreconditionFailedError)
      expect((err as PreconditionFailedError).existing).toEqual(v2)
      expect((await storage.get(R, P, 'a')).v).toBe(2)
    })

    it('If-Match on a missing object fails with no existing object', async () => {
      for (const condition of [{kind: 'exists'}, {kind: 'last_modified', value: 1}] as const) {
        const err = await rejection(storage.update(R, P, 'missing', {}, {condition}))
        expect(err).toBeInstanceOf(PreconditionFailedError)
        expect((err as PreconditionFailedError).existing).toBeUndefined()
        expect(await rejection(storage.delete(R, P, 'missing', {condition}))).toBeInstanceOf(PreconditionFailedError)
      }
      expect(await storage.list(R, P, {includeDeleted: true})).toEqual([])
    })

    it('If-Match: * on an existing object succeeds', async () => {
      await storage.create(R, P, {id: 'a'})
      expect((await storage.update(R, P, 'a', {v: 1}, {condition: {kind: 'exists'}})).v).toBe(1)
    })

    it('If-None-Match: * creates, or fails with the existing object; a tombstone counts as absent', async () => {
      const created = await storage.update(R, P, 'n', {v: 1}, {condition: {kind: 'absent'}})
      const err = await rejection(storage.update(R, P, 'n', {v: 2}, {condition: {kind: 'absent'}}))
      expect(err).toBeInstanceOf(PreconditionFailedError)
      expect((err as PreconditionFailedError).existing).toEqual(created)
      await storage.delete(R, P, 'n')
      expect((await storage.update(R, P, 'n', {v: 3}, {condition: {kind: 'absent'}})).v).toBe(3)
    })

    it('delete with conditions', async () => {
      const a = await storage.create(R, P, {id: 'a'})
      const stale = await rejection(storage.delete(R, P, 'a', {condition: {kind: 'last_modified', value: a.last_modified - 1}}))
      expect((stale as PreconditionFailedError).existing).toEqual(a)
      const absent = await rejection(storage.delete(R, P, 'a', {condition: {kind: 'absent'}}))
      expect(absent).toBeInstanceOf(PreconditionFailedError)
      expect(await rejection(storage.delete(R, P, 'zz', {condition: {kind: 'absent'}}))).toBeInstanceOf(ObjectNotFoundError)
      expect((await storage.delete(R, P, 'a', {condition: {kind: 'last_modified', value: a.last_modified}})).deleted).toBe(true)
    })
  })

  describe('concurrency', () => {
    it('20 concurrent updates with the same If-Match: exactly one wins', async () => {
      const base = await storage.create(R, P, {id: 'hot', v: 0})
      const results = await Promise.allSettled(
        Array.from({length: 20}, (_, i) => storage.update(R, P, 'hot', {v: i + 1}, {condition: {kind: 'last_modified', value: base.last_modified}})),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
      expect(won).toHaveLength(1)
      expect(lost.every((r) => r.reason instanceof PreconditionFailedError)).toBe(true)
      const winner = (won[0] as PromiseFulfilledResult<KintoObject>).value
      expect(await storage.get(R, P, 'hot')).toEqual(winner)
    })

    it('20 concurrent If-Match updates, each in its own request transaction: exactly one wins', async () => {
      const backends = get()
      const base = await storage.create(R, P, {id: 'hot', v: 0})
      const results = await Promise.allSettled(
        Array.from({length: 20}, (_, i) =>
          backends.transaction(async (tx) => {
            const current = await tx.storage.get(R, P, 'hot')
            return tx.storage.update(R, P, 'hot', {v: current.v as number + i + 1}, {condition: {kind: 'last_modified', value: base.last_modified}})
          }),
        ),
      )
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      expect(results.every((r) => r.status === 'fulfilled' || r.reason instanceof PreconditionFailedError)).toBe(true)
    })

    it('concurrent If-None-Match: * creates of one id: exactly one wins', async () => {
      const results = await Promise.allSettled(Array.from({length: 10}, (_, i) => storage.update(R, P, 'once', {i}, {condition: {kind: 'absent'}})))
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      expect(results.every((r) => r.status === 'fulfilled' || r.reason instanceof PreconditionFailedError)).toBe(true)
    })

    it('40 parallel creates in one list all succeed with distinct increasing timestamps', async () => {
      const created = await Promise.all(Array.from({length: 40}, (_, i) => storage.create(R, P, {i})))
      const stamps = created.map((c) => c.last_modified)
      expect(new Set(stamps).size).toBe(40)
      const listed = await storage.list(R, P, {sorting: [{field: 'last_modified', direction: 1}]})
      expect(listed).toHaveLength(40)
      expect(await storage.resourceTimestamp(R, P)).toBe(Math.max(...stamps))
    })

    it('40 parallel creates, each in a transaction, all succeed with distinct timestamps', async () => {
      const backends = get()
      const created = await Promise.all(
        Array.from({length: 40}, (_, i) =>
          backends.transaction(async (tx) => {
            const obj = await tx.storage.create(R, P, {i})
            await tx.permission.addPrincipalToAce(`${P}/records/${obj.id}`, 'write', 'alice')
            return obj
          }),
        ),
      )
      expect(new Set(created.map((c) => c.last_modified)).size).toBe(40)
    })

    it('transactions reading a new list timestamp and writing the list, in either order, do not deadlock', async () => {
      const backends = get()
      const work = Array.from({length: 10}, (_, i) => `/buckets/b/collections/fresh${i}`).flatMap((list) => [
        backends.transaction(async (tx) => {
          await tx.storage.resourceTimestamp(R, list)
          await new Promise((r) => setTimeout(r, 5))
          return tx.storage.create(R, list, {})
        }),
        backends.transaction(async (tx) => {
          const obj = await tx.storage.create(R, list, {})
          await new Promise((r) => setTimeout(r, 5))
          await tx.storage.resourceTimestamp(R, list)
          return obj
        }),
      ])
      const results = await Promise.allSettled(work)
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    })

    it('parallel updates, deletes and creates mixed in one list never collide', async () => {
      for (let i = 0; i < 10; i++) await storage.create(R, P, {id: `m${i}`})
      const ops = Array.from({length: 30}, (_, i) =>
        i % 3 === 0 ? storage.update(R, P, `m${i % 10}`, {i}) : i % 3 === 1 ? storage.create(R, P, {i}) : storage.deleteAll(R, P, {filters: [{field: 'id', operator: 'eq', value: `m${i % 10}`}]}),
      )
      await Promise.all(ops)
      const all = await storage.list(R, P, {includeDeleted: true})
      expect(new Set(all.map((o) => o.last_modified)).size).toBe(all.length)
    })
  })

  describe('transactions', () => {
    it('commits storage and permission changes together', async () => {
      const backends = get()
      await backends.transaction(async (tx) => {
        await tx.storage.create(R, P, {id: 'tx1'})
        await tx.permission.addPrincipalToAce(`${P}/records/tx1`, 'write', 'alice')
      })
      expect((await storage.get(R, P, 'tx1')).id).toBe('tx1')
      expect(await backends.permission.getObjectPermissionPrincipals(`${P}/records/tx1`, 'write')).toEqual(new Set(['alice']))
    })

    it('rolls back storage and permission changes when fn throws', async () => {
      const backends = get()
      await storage.create(R, P, {id: 'keep', v: 1})
      const before = await storage.resourceTimestamp(R, P)
      const err = await rejection(
        backends.transaction(async (tx) => {
          await tx.storage.create(R, P, {id: 'tx2'})
          await tx.storage.update(R, P, 'keep', {v: 2})
          await tx.storage.delete(R, P, 'keep')
          await tx.permission.addPrincipalToAce(`${P}/records/tx2`, 'write', 'alice')
          await tx.permission.addUserPrincipal('alice', '/buckets/b1/groups/g')
          throw new Error('boom')
        }),
      )
      expect((err as Error).message).toBe('boom')
      expect(ids(await storage.list(R, P, {includeDeleted: true}))).toEqual(['keep'])
      expect((await storage.get(R, P, 'keep')).v).toBe(1)
      expect(await storage.resourceTimestamp(R, P)).toBe(before)
      expect(await backends.permission.getObjectPermissionPrincipals(`${P}/records/tx2`, 'write')).toEqual(new Set())
      expect(await backends.permission.getUserPrincipals('alice')).toEqual(new Set())
    })

    it('errors thrown inside a transaction come out unchanged', async () => {
      const backends = get()
      await storage.create(R, P, {id: 'dup'})
      const err = await rejection(backends.transaction((tx) => tx.storage.create(R, P, {id: 'dup'})))
      expect(err).toBeInstanceOf(UnicityError)
      class AppError extends Error {}
      const custom = new AppError('from the caller')
      expect(await rejection(backends.transaction(async () => Promise.reject(custom)))).toBe(custom)
    })
  })

  it('heartbeat works, readonly too', async () => {
    expect(await storage.heartbeat(false)).toBe(true)
    expect(await storage.heartbeat(true)).toBe(true)
    expect(await storage.list('__heartbeat__', '__heartbeat__', {includeDeleted: true})).toEqual([])
  })
}

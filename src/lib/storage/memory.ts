/**
 * In-process storage (upstream: kinto.core.storage.memory), with the postgresql backend's semantics
 * so that both answer the same: the `bump_timestamp` rule, tombstones, list timestamps that include
 * tombstones and the "empty list" timestamps row, jsonb filters and ordering (evaluate.ts).
 *
 * Every method runs synchronously once called, so each one is atomic in Node's single thread.
 * Transactions (`transaction(fn)`) run one at a time and undo their changes when fn throws.
 */
import {IntegrityError} from '../db/backend.js'
import {compareBySorting, matchesAll, matchesRules} from './evaluate.js'
import {type Journal, Mutex, rollback} from './mutex.js'
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
import {hasWildcard, wildcardMatcher} from './wildcard.js'

export interface MemoryStorageOptions {
  /** Never write a list timestamp (kinto.readonly). */
  readonly?: boolean
  /** storage_max_fetch_size: most objects a list (limit+1) or a delete_all returns. */
  maxFetchSize?: number
  /** Clock in epoch milliseconds (tests). */
  now?: () => number
}

class Collection {
  readonly live = new Map<string, KintoObject>()
  readonly tombs = new Map<string, KintoObject>()
  /** The `timestamps` row: the timestamp a list had when read empty. */
  floor: number | undefined
  /** Cached newest timestamp of live objects and tombstones; null = to recompute. */
  private newest: number | undefined | null = undefined

  latest(): number | undefined {
    if (this.newest === null) {
      let max: number | undefined
      for (const o of this.live.values()) if (max === undefined || o.last_modified > max) max = o.last_modified
      for (const o of this.tombs.values()) if (max === undefined || o.last_modified > max) max = o.last_modified
      this.newest = max
    }
    if (this.floor !== undefined && (this.newest === undefined || this.floor > this.newest)) return this.floor
    return this.newest
  }

  added(ts: number): void {
    if (this.newest !== null && (this.newest === undefined || ts > this.newest)) this.newest = ts
  }

  removed(ts: number): void {
    if (this.newest !== null && this.newest !== undefined && ts >= this.newest) this.newest = null
  }

  get empty(): boolean {
    return this.live.size === 0 && this.tombs.size === 0 && this.floor === undefined
  }
}

/** The data shared by a storage and its transaction-bound views. */
export class MemoryStorageState {
  /** parent id → resource name → collection */
  readonly parents = new Map<string, Map<string, Collection>>()
  readonly mutex = new Mutex()
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T
}

/** The stored body of an object: its fields without id and last_modified (upstream's `data`). */
function dataOf(obj: Record<string, unknown>): Record<string, unknown> {
  const data = clone(obj)
  delete data.id
  delete data.last_modified
  return data
}

export class MemoryStorage implements Storage {
  readonly kind = 'memory' as const
  private readonly readonly: boolean
  private readonly maxFetchSize: number
  private readonly now: () => number

  constructor(
    private readonly options: MemoryStorageOptions = {},
    readonly state: MemoryStorageState = new MemoryStorageState(),
    private readonly journal?: Journal,
  ) {
    this.readonly = options.readonly ?? false
    this.maxFetchSize = options.maxFetchSize ?? 10000
    this.now = options.now ?? Date.now
  }

  /**
   * Runs fn with a storage bound to a transaction: transactions run one after the other, and every
   * change made through the bound storage is undone if fn throws. Not reentrant.
   */
  transaction<T>(fn: (storage: MemoryStorage) => Promise<T>): Promise<T> {
    return this.state.mutex.run(async () => {
      const journal: Journal = []
      try {
        return await fn(new MemoryStorage(this.options, this.state, journal))
      } catch (error) {
        rollback(journal)
        throw error
      }
    })
  }

  // --- primitive changes (journaled) ---------------------------------------------------------

  private collection(parentId: string, resourceName: string, create: true): Collection
  private collection(parentId: string, resourceName: string, create?: false): Collection | undefined
  private collection(parentId: string, resourceName: string, create = false): Collection | undefined {
    let byResource = this.state.parents.get(parentId)
    if (!byResource) {
      if (!create) return undefined
      byResource = new Map()
      this.state.parents.set(parentId, byResource)
    }
    let coll = byResource.get(resourceName)
    if (!coll && create) {
      coll = new Collection()
      byResource.set(resourceName, coll)
    }
    return coll
  }

  private setEntry(coll: Collection, which: 'live' | 'tombs', id: string, obj: KintoObject | undefined): void {
    const map = coll[which]
    const previous = map.get(id)
    if (previous) coll.removed(previous.last_modified)
    if (obj) {
      map.set(id, obj)
      coll.added(obj.last_modified)
    } else map.delete(id)
    this.journal?.push(() => {
      const current = map.get(id)
      if (current) coll.removed(current.last_modified)
      if (previous) {
        map.set(id, previous)
        coll.added(previous.last_modified)
      } else map.delete(id)
    })
  }

  private setFloor(coll: Collection, value: number | undefined): void {
    const previous = coll.floor
    coll.floor = value
    this.journal?.push(() => {
      coll.floor = previous
    })
  }

  /**
   * The bump_timestamp trigger: clock (or previous+1), unless a given value differs from previous.
   * A given value kept must be free in the list, as PostgreSQL's unique index on (parent_id,
   * resource_name, last_modified) wants it (the object's own row aside): two objects sharing a
   * timestamp would let a page boundary between them skip one (cursors compare last_modified).
   */
  private bump(coll: Collection, given: number | null, id: string): number {
    const previous = coll.latest()
    let current = this.now()
    if (previous !== undefined && previous >= current) current = previous + 1
    if (given === null || given === previous) return current
    for (const entries of [coll.live, coll.tombs]) {
      for (const [other, obj] of entries) {
        if (other !== id && obj.last_modified === given) throw new IntegrityError('Integrity constraint violated')
      }
    }
    return given
  }

  private matchingCollections(parentId: string, resourceName: string): Array<[string, Collection]> {
    if (!hasWildcard(parentId)) {
      const coll = this.collection(parentId, resourceName)
      return coll ? [[parentId, coll]] : []
    }
    const match = wildcardMatcher(parentId)
    const result: Array<[string, Collection]> = []
    for (const [pid, byResource] of this.state.parents) {
      if (!match(pid)) continue
      const coll = byResource.get(resourceName)
      if (coll) result.push([pid, coll])
    }
    return result
  }

  // --- Storage --------------------------------------------------------------------------------

  heartbeat(readonly: boolean): Promise<boolean> {
    return storageHeartbeat(this, readonly)
  }

  async flush(): Promise<void> {
    const saved = [...this.state.parents]
    this.state.parents.clear()
    this.journal?.push(() => {
      this.state.parents.clear()
      for (const [k, v] of saved) this.state.parents.set(k, v)
    })
  }

  async resourceTimestamp(resourceName: string, parentId: string, options: {readonly?: boolean} = {}): Promise<number> {
    const coll = this.collection(parentId, resourceName)
    const latest = coll?.latest()
    if (this.readonly || options.readonly) return latest ?? 0
    const target = coll ?? this.collection(parentId, resourceName, true)
    if (target.floor === undefined) {
      const value = latest ?? this.now()
      this.setFloor(target, value)
      return value
    }
    return latest!
  }

  async allResourcesTimestamps(resourceName: string): Promise<Record<string, number>> {
    const result: Array<[string, number]> = []
    for (const [pid, byResource] of this.state.parents) {
      const latest = byResource.get(resourceName)?.latest()
      if (latest !== undefined) result.push([pid, latest])
    }
    result.sort((a, b) => b[1] - a[1])
    return Object.fromEntries(result.slice(0, this.maxFetchSize + 1))
  }

  async create(resourceName: string, parentId: string, obj: Record<string, unknown>, options: {idGenerator?: () => string} = {}): Promise<KintoObject> {
    const id = newObjectId(obj, options.idGenerator)
    const coll = this.collection(parentId, resourceName, true)
    const existing = coll.live.get(id)
    if (existing) throw new UnicityError('id', clone(existing))
    return this.write(coll, id, dataOf(obj), toEpoch(obj.last_modified))
  }

  /** Stores a live object (reviving a tombstone) with a bumped timestamp. */
  private write(coll: Collection, id: string, data: Record<string, unknown>, given: number | null): KintoObject {
    const last_modified = this.bump(coll, given, id)
    const stored = {...data, id, last_modified} as KintoObject
    if (coll.tombs.has(id)) this.setEntry(coll, 'tombs', id, undefined)
    this.setEntry(coll, 'live', id, stored)
    return clone(stored)
  }

  async get(resourceName: string, parentId: string, objectId: string): Promise<KintoObject> {
    const obj = this.collection(parentId, resourceName)?.live.get(objectId)
    if (!obj) throw new ObjectNotFoundError(resourceName, objectId)
    return clone(obj)
  }

  private checkCondition(existing: KintoObject | undefined, condition: WriteCondition | undefined): void {
    if (!condition) return
    switch (condition.kind) {
      case 'absent':
        if (existing) throw new PreconditionFailedError(clone(existing))
        return
      case 'exists':
        if (!existing) throw new PreconditionFailedError(undefined)
        return
      case 'last_modified':
        if (!existing || existing.last_modified !== condition.value) throw new PreconditionFailedError(existing && clone(existing))
    }
  }

  async update(
    resourceName: string,
    parentId: string,
    objectId: string,
    obj: Record<string, unknown>,
    options: {condition?: WriteCondition} = {},
  ): Promise<KintoObject> {
    const coll = this.collection(parentId, resourceName, true)
    this.checkCondition(coll.live.get(objectId), options.condition)
    return this.write(coll, objectId, dataOf(obj), toEpoch(obj.last_modified))
  }

  async delete(
    resourceName: string,
    parentId: string,
    objectId: string,
    options: {withDeleted?: boolean; lastModified?: number; condition?: WriteCondition} = {},
  ): Promise<KintoObject> {
    const coll = this.collection(parentId, resourceName)
    const existing = coll?.live.get(objectId)
    if (options.condition?.kind === 'absent') {
      if (existing) throw new PreconditionFailedError(clone(existing))
      throw new ObjectNotFoundError(resourceName, objectId)
    }
    this.checkCondition(existing, options.condition)
    if (!coll || !existing) throw new ObjectNotFoundError(resourceName, objectId)
    return this.remove(coll, objectId, options.withDeleted ?? true, toEpoch(options.lastModified))
  }

  private remove(coll: Collection, id: string, withDeleted: boolean, given: number | null): KintoObject {
    const existing = coll.live.get(id)!
    if (!withDeleted) {
      this.setEntry(coll, 'live', id, undefined)
      return {id, last_modified: existing.last_modified, deleted: true}
    }
    const last_modified = this.bump(coll, given, id)
    const tomb: KintoObject = {deleted: true, id, last_modified}
    this.setEntry(coll, 'live', id, undefined)
    this.setEntry(coll, 'tombs', id, tomb)
    return {id, last_modified, deleted: true}
  }

  async deleteAll(resourceName: string, parentId: string, options: ListOptions & {withDeleted?: boolean} = {}): Promise<KintoObject[]> {
    const candidates: Array<[Collection, KintoObject]> = []
    for (const [, coll] of this.matchingCollections(parentId, resourceName)) {
      for (const obj of coll.live.values()) {
        if (matchesAll(obj, options.filters) && matchesRules(obj, options.paginationRules)) candidates.push([coll, obj])
      }
    }
    if (options.sorting?.length) candidates.sort((a, b) => compareBySorting(a[1], b[1], options.sorting!))
    const limit = options.limit ? Math.min(this.maxFetchSize, options.limit) : this.maxFetchSize
    return candidates.slice(0, limit).map(([coll, obj]) => this.remove(coll, obj.id, options.withDeleted ?? true, null))
  }

  async purgeDeleted(resourceName: string | null, parentId: string, options: {before?: number; maxRetained?: number} = {}): Promise<number> {
    const {before, maxRetained} = options
    if (before !== undefined && maxRetained !== undefined) throw new Error('`before` and `maxRetained` are exclusive options.')
    const match = wildcardMatcher(parentId)
    let count = 0
    for (const [pid, byResource] of [...this.state.parents]) {
      if (!match(pid)) continue
      for (const [name, coll] of byResource) {
        if (resourceName !== null && name !== resourceName) continue
        let doomed = [...coll.tombs.values()]
        if (before !== undefined) doomed = doomed.filter((t) => t.last_modified < before)
        else if (maxRetained !== undefined) doomed = doomed.sort((a, b) => b.last_modified - a.last_modified).slice(Math.max(0, maxRetained))
        for (const t of doomed) this.setEntry(coll, 'tombs', t.id, undefined)
        count += doomed.length
        // Purging a whole parent also forgets its lists' timestamps (as upstream).
        if (resourceName === null && before === undefined && coll.floor !== undefined) this.setFloor(coll, undefined)
      }
    }
    return count
  }

  async list(resourceName: string, parentId: string, options: ListOptions = {}): Promise<KintoObject[]> {
    const found: KintoObject[] = []
    for (const [, coll] of this.matchingCollections(parentId, resourceName)) {
      const sources = options.includeDeleted ? [coll.live.values(), coll.tombs.values()] : [coll.live.values()]
      for (const source of sources) {
        for (const obj of source) {
          if (matchesAll(obj, options.filters) && matchesRules(obj, options.paginationRules)) found.push(obj)
        }
      }
    }
    if (options.sorting?.length) found.sort((a, b) => compareBySorting(a, b, options.sorting!))
    const limit = options.limit ? Math.min(this.maxFetchSize + 1, options.limit) : this.maxFetchSize
    return found.slice(0, limit).map((o) => clone(o))
  }

  async count(resourceName: string, parentId: string, filters?: Filter[]): Promise<number> {
    let n = 0
    for (const [, coll] of this.matchingCollections(parentId, resourceName)) {
      for (const obj of coll.live.values()) if (matchesAll(obj, filters)) n++
    }
    return n
  }

  async countAll(resourceName: string): Promise<{objects: number; tombstones: number}> {
    let objects = 0
    let tombstones = 0
    for (const byResource of this.state.parents.values()) {
      const coll = byResource.get(resourceName)
      if (!coll) continue
      objects += coll.live.size
      tombstones += coll.tombs.size
    }
    return {objects, tombstones}
  }

  async trimObjects(resourceName: string, parentId: string, filters: Filter[], maxObjects: number): Promise<string[]> {
    const coll = this.collection(parentId, resourceName)
    if (!coll) return []
    const all = [...coll.live.values(), ...coll.tombs.values()].filter((o) => matchesAll(o, filters))
    all.sort((a, b) => b.last_modified - a.last_modified)
    const doomed = all.slice(Math.max(0, maxObjects))
    for (const o of doomed) this.setEntry(coll, o.deleted === true && coll.tombs.get(o.id) === o ? 'tombs' : 'live', o.id, undefined)
    return doomed.map((o) => o.id)
  }

  async close(): Promise<void> {}
}

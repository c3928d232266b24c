/**
 * The storage backend interface (upstream: kinto.core.storage.StorageBase), implemented by
 * memory.ts and postgresql.ts and checked by ONE contract suite (test/contract/storage.test.ts).
 *
 * Objects are plain JSON objects with `id` and `last_modified` (integer epoch milliseconds).
 * `resourceName` is `bucket`, `collection`, `group`, `record`, `account`, `history`…;
 * `parentId` is the parent URI without `/v1` (`/buckets/b1/collections/c1`), `""` for buckets.
 */
import {TypedBackendError} from '../db/backend.js'

export {BackendError, IntegrityError} from '../db/backend.js'

export type JsonValue = null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue}
export type KintoObject = {id: string; last_modified: number; deleted?: boolean; [key: string]: JsonValue | undefined}

export type FilterOperator =
  | 'eq' | 'not' | 'lt' | 'gt' | 'min' | 'max' | 'in' | 'exclude' | 'like' | 'has' | 'contains' | 'contains_any'

/**
 * A value that is absent from an object (not JSON null). Only pagination rules carry it (upstream's
 * MISSING): the last object of a page may lack a sorted field. Operators allowed with it: eq, lt, gt,
 * min, max.
 */
export const MISSING: unique symbol = Symbol('MISSING')
export type Missing = typeof MISSING

/** `field` may be dotted (`author.name`); `id` and `last_modified` are columns. */
export interface Filter {
  field: string
  value: JsonValue | Missing
  operator: FilterOperator
}

export interface Sort {
  field: string
  /** 1 ascending, -1 descending */
  direction: 1 | -1
}

export interface ListOptions {
  filters?: Filter[]
  sorting?: Sort[]
  /** Keyset pagination: OR over the groups, AND inside a group (upstream's pagination_rules). */
  paginationRules?: Filter[][]
  /** At most this many objects (the caller asks limit+1 to know whether a next page exists). */
  limit?: number
  includeDeleted?: boolean
}

/** A precondition checked atomically with the write (If-Match / If-None-Match). */
export type WriteCondition =
  | {kind: 'exists'}
  | {kind: 'absent'}
  | {kind: 'last_modified'; value: number}

export class ObjectNotFoundError extends TypedBackendError {
  constructor(readonly resourceName: string, readonly objectId: string) {
    super(`${resourceName} ${objectId} not found`)
    this.name = 'ObjectNotFoundError'
  }
}

/** Create of an id that is already live. `existing` is the stored object. */
export class UnicityError extends TypedBackendError {
  constructor(readonly field: string, readonly existing: KintoObject) {
    super(`${field} is not unique: ${existing.id}`)
    this.name = 'UnicityError'
  }
}

/** A WriteCondition did not hold. `existing` is the current object (undefined when absent). */
export class PreconditionFailedError extends TypedBackendError {
  constructor(readonly existing: KintoObject | undefined) {
    super('Resource was modified meanwhile')
    this.name = 'PreconditionFailedError'
  }
}

/** Upstream's errno 201 case. Our backends do not raise it (readonly lists without rows answer 0). */
export class ReadonlyTimestampError extends Error {
  constructor() {
    super('Resource timestamp cannot be written. Plural endpoint must be hit at least once from a writable instance.')
    this.name = 'ReadonlyTimestampError'
  }
}

export interface Storage {
  /** Check that the backend works (heartbeat). Writes unless readonly. */
  heartbeat(readonly: boolean): Promise<boolean>
  /** Remove every object and timestamp (metadata kept). */
  flush(): Promise<void>
  /**
   * The list timestamp (ms): the newest of the list's objects and tombstones and of its `timestamps`
   * row. Unless readonly (the option, or the backend built readonly), it then
   * stores that value (or the clock when the list is empty) as the `timestamps` row if there is none,
   * as upstream does. Readonly never writes: a list never written answers 0 (upstream: 503 errno 201),
   * a stable value that every process agrees on.
   */
  resourceTimestamp(resourceName: string, parentId: string, options?: {readonly?: boolean}): Promise<number>
  /** Max timestamp per (parent, resource) matching a parent pattern (`*` wildcard). */
  allResourcesTimestamps?(resourceName: string): Promise<Record<string, number>>

  create(resourceName: string, parentId: string, obj: Record<string, unknown>, options?: {idGenerator?: () => string}): Promise<KintoObject>
  /**
   * create() of several objects of one list in one write (a batch's consecutive creates), in
   * order: their timestamps increase in that order. For objects without a `last_modified` of
   * their own, with distinct ids. An id that is live is not created: null in its place (create()
   * says why). Offered where one statement does it (postgresql).
   */
  createMany?(resourceName: string, parentId: string, items: Array<{obj: Record<string, unknown>; idGenerator?: () => string}>): Promise<Array<KintoObject | null>>
  get(resourceName: string, parentId: string, objectId: string): Promise<KintoObject>
  /**
   * get() of several ids of one list in one read (a batch's creates with ids): the live objects
   * among them, in no particular order (a missing id or a tombstone is not there). Offered where
   * one statement does it (postgresql).
   */
  getMany?(resourceName: string, parentId: string, objectIds: string[]): Promise<KintoObject[]>
  /**
   * Inside a transaction: takes the list's write lock (the one writes take) until the transaction
   * ends, so what is read next stays current until the write. Without it (memory: transactions
   * already run one at a time) or outside a transaction, nothing to do.
   */
  lockList?(resourceName: string, parentId: string): Promise<void>
  /** Upsert: creates when missing (or a tombstone), replaces the data otherwise. */
  update(resourceName: string, parentId: string, objectId: string, obj: Record<string, unknown>, options?: {condition?: WriteCondition}): Promise<KintoObject>
  /** Turns a live object into a tombstone (or removes it when withDeleted is false). Returns the tombstone. */
  delete(resourceName: string, parentId: string, objectId: string, options?: {withDeleted?: boolean; lastModified?: number; condition?: WriteCondition}): Promise<KintoObject>
  /** Deletes what list() would return for the same options; parentId may contain `*`. Returns tombstones. */
  deleteAll(resourceName: string, parentId: string, options?: ListOptions & {withDeleted?: boolean}): Promise<KintoObject[]>
  /** Hard-deletes tombstones; returns how many. */
  purgeDeleted(resourceName: string | null, parentId: string, options?: {before?: number; maxRetained?: number}): Promise<number>
  list(resourceName: string, parentId: string, options?: ListOptions): Promise<KintoObject[]>
  count(resourceName: string, parentId: string, filters?: Filter[]): Promise<number>
  /** Live objects and tombstones of a resource type under every parent (one query: /__counters__). */
  countAll(resourceName: string): Promise<{objects: number; tombstones: number}>
  /** History auto-trim: keep the newest `maxObjects` matching, delete the rest; returns the ids deleted. */
  trimObjects?(resourceName: string, parentId: string, filters: Filter[], maxObjects: number): Promise<string[]>
  close(): Promise<void>
}

/** Every storage backend's heartbeat: a read when readonly, else an object written and removed again (upstream's writes one and removes them only now and then). */
/** The object, or null where storage.get finds none (ObjectNotFoundError); other errors go on. */
export async function getOrNull(storage: Pick<Storage, 'get'>, resourceName: string, parentId: string, id: string): Promise<KintoObject | null> {
  try {
    return await storage.get(resourceName, parentId, id)
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null
    throw err
  }
}

export async function storageHeartbeat(storage: Pick<Storage, 'list' | 'create' | 'deleteAll'>, readonly: boolean): Promise<boolean> {
  if (readonly) {
    await storage.list('__heartbeat__', '__heartbeat__', {limit: 1})
    return true
  }
  await storage.create('__heartbeat__', '__heartbeat__', {__heartbeat__: true})
  await storage.deleteAll('__heartbeat__', '__heartbeat__', {withDeleted: false})
  return true
}

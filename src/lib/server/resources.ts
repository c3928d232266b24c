/**
 * Kinto's resources: buckets, collections, groups and records, with their
 * fields, parents, cache rules and the cascades that run when they change (deleting a bucket
 * deletes what is inside; group members get or lose the group principal).
 */
import {asBool, asList} from '../config/settings.js'
import {EXACT_INTEGER, exactIntegerText} from '../json.js'
import {ObjectNotFoundError, getOrNull, type KintoObject} from '../storage/types.js'
import type {RequestContext} from './context.js'
import {invalid, invalidParameters, missingParent, type ValidationIssue} from './errors.js'
import type {ResourceEvent} from './events.js'
import {cacheExpiresHeaders} from './headers.js'
import {checkSchema, SchemaValidationError, unusableSchema, validateAgainstSchema} from './jsonschema.js'
import {isPlainObject} from './patch.js'
import {PERMISSIONS_FIELD, type ResourceDefinition} from './resource/definition.js'
import {colanderNull, colanderStringError, pyRepr} from './py-repr.js'
import {defaultCacheHeaders} from './resource/endpoints.js'
import type {ResourceRequest} from './resource/request.js'
import type {Runtime} from './runtime.js'

function schemaField(data: Record<string, unknown>, field: string, prefix: string, issues: ValidationIssue[]): void {
  if (!(field in data)) return
  const value = data[field]
  if (!isPlainObject(value)) {
    issues.push({location: 'body', name: `${prefix}${field}`, description: `"${pyRepr(value)}" is not a mapping type: Does not implement dict-like functionality.`})
    return
  }
  // A valid Draft 7 schema that still cannot validate anything (an invalid regex…) is refused
  // here, once, rather than failing every record written later.
  const problem = checkSchema(value) ?? unusableSchema(value)
  if (problem) issues.push({location: 'body', name: `${prefix}${field}`, description: problem})
}

function throwIssues(issues: ValidationIssue[]): void {
  if (issues.length > 0) throw invalidParameters(issues)
}

function schemaValidationEnabled(r: ResourceRequest): boolean {
  return asBool(r.ctx.settings, 'experimental_collection_schema_validation')
}

/** The bucket of the request, loaded once per request (batch included); 404 errno 111 if missing. */
async function requestBucket(r: ResourceRequest): Promise<KintoObject> {
  const bucketId = r.params.bucket_id
  let buckets = r.ctx.bound.extra.get('buckets') as Map<string, KintoObject> | undefined
  if (!buckets) {
    buckets = new Map()
    r.ctx.bound.extra.set('buckets', buckets)
  }
  let bucket = buckets.get(bucketId)
  if (!bucket) {
    try {
      bucket = await r.storage.get('bucket', '', bucketId)
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw missingParent('bucket', bucketId)
      throw err
    }
    buckets.set(bucketId, bucket)
  }
  return bucket
}

/** upstream's validate_from_bucket_schema_or_400: the bucket's `<resource>:schema`, if any. */
async function validateFromBucketSchema(r: ResourceRequest, obj: Record<string, unknown>, ignore: string[]): Promise<void> {
  if (!schemaValidationEnabled(r)) return
  const bucket = await requestBucket(r)
  const schema = bucket[`${r.def.name}:schema`]
  if (!isPlainObject(schema)) return
  validateOr400(obj, schema, ignore)
}

function validateOr400(obj: Record<string, unknown>, schema: Record<string, unknown>, ignore: string[]): void {
  try {
    validateAgainstSchema(obj, schema, ignore)
  } catch (err) {
    if (err instanceof SchemaValidationError) throw invalid('body', err.field, err.message)
    throw err
  }
}

const INTERNAL_FIELDS = ['last_modified', PERMISSIONS_FIELD]

const CASCADED = 'cascaded'

/** Whether a bucket or a collection was deleted earlier in this request or its batch. */
function cascaded(r: ResourceRequest): boolean {
  return r.ctx.bound.extra.get(CASCADED) === true
}

/**
 * A group or a collection is made only in a bucket that exists (404 errno 111, as a record in a
 * missing collection). Only create rights from settings (`group_create_principals`…), or a batch
 * that deleted the bucket before, get here without one; upstream then stores the object below no
 * bucket, where nobody lists it, and a bucket made later under that name finds it there, with
 * its members and writers.
 */
async function bucketOfCreation(r: ResourceRequest, old: unknown): Promise<void> {
  if (old !== null) return
  if (cascaded(r)) {
    // The batch's bucket, loaded before the deletion, may be gone: read it again.
    if ((await getOrNull(r.storage, 'bucket', '', r.params.bucket_id)) === null) throw missingParent('bucket', r.params.bucket_id)
  } else if (createRightsFromSettings(r)) {
    await requestBucket(r)
  }
  // Otherwise the create right came from an ACE of the bucket, deleted with it: it exists.
}

/** Whether settings may let callers create this resource's objects (`group_create_principals`…). */
function createRightsFromSettings(r: ResourceRequest): boolean {
  const name = r.def.name
  return [`${name}_create_principals`, `${name}_write_principals`].some((key) => asList(r.ctx.settings, key).length > 0)
}

/** A record written after a deletion in its batch: its collection, loaded before, may be gone. */
async function liveCollection(r: ResourceRequest): Promise<void> {
  if (!cascaded(r)) return
  if ((await getOrNull(r.storage, 'collection', `/buckets/${r.params.bucket_id}`, r.params.collection_id)) === null) {
    throw missingParent('collection', r.params.collection_id)
  }
}

export const bucketResource: ResourceDefinition = {
  name: 'bucket',
  pluralPath: '/buckets',
  objectPath: '/buckets/{id}',
  permissions: ['read', 'write', 'collection:create', 'group:create'],
  parentId: () => '',
  validateData(data, _r, prefix) {
    const issues: ValidationIssue[] = []
    for (const field of ['collection:schema', 'group:schema', 'record:schema']) schemaField(data, field, prefix, issues)
    throwIssues(issues)
    return data
  },
}

const DROP = Symbol('drop')

/**
 * colander.Int() deserialising a JSON value, as upstream's `cache_expires` field: a value colander
 * takes for "nothing" (null, "", [], {}) is DROP (the field is `missing=drop`); anything else is
 * Python's `int()` of it (true is 1, a float is truncated, a string may carry blanks, a sign and
 * `_` between digits), or undefined when int() refuses it. Integers beyond 2^53 keep their digits.
 */
function colanderInt(v: unknown): number | string | typeof DROP | undefined {
  if (colanderNull(v)) return DROP
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) || 0 : undefined
  if (typeof v === 'string') {
    if (exactIntegerText(v) !== undefined) return v
    const m = /^([+-]?)(\d+(?:_\d+)*)$/.exec(v.trim())
    if (!m) return undefined
    const digits = m[2].replaceAll('_', '').replace(/^0+(?=\d)/, '')
    const text = (m[1] === '-' && digits !== '0' ? '-' : '') + digits
    const n = Number(text)
    return Number.isSafeInteger(n) ? n : EXACT_INTEGER + text
  }
  return undefined
}

export const collectionResource: ResourceDefinition = {
  name: 'collection',
  pluralPath: '/buckets/{bucket_id}/collections',
  objectPath: '/buckets/{bucket_id}/collections/{id}',
  permissions: ['read', 'write', 'record:create'],
  parentId: (params) => `/buckets/${params.bucket_id}`,
  validateData(data, _r, prefix) {
    const issues: ValidationIssue[] = []
    schemaField(data, 'schema', prefix, issues)
    if ('cache_expires' in data) {
      const v = colanderInt(data.cache_expires)
      if (v === DROP) delete data.cache_expires
      else if (v === undefined) issues.push({location: 'body', name: `${prefix}cache_expires`, description: `"${pyRepr(data.cache_expires)}" is not a number`})
      else data.cache_expires = v
    }
    throwIssues(issues)
    return data
  },
  async processObject(r, obj, old) {
    await bucketOfCreation(r, old)
    await validateFromBucketSchema(r, obj, [...INTERNAL_FIELDS])
    return obj
  },
}

export const groupResource: ResourceDefinition = {
  name: 'group',
  pluralPath: '/buckets/{bucket_id}/groups',
  objectPath: '/buckets/{bucket_id}/groups/{id}',
  permissions: ['read', 'write'],
  parentId: (params) => `/buckets/${params.bucket_id}`,
  validateData(data, _r, prefix) {
    const issues: ValidationIssue[] = []
    if (!('members' in data) || data.members === undefined) data.members = []
    const members = data.members
    if (!Array.isArray(members)) {
      issues.push({location: 'body', name: `${prefix}members`, description: `"${pyRepr(members)}" is not iterable`})
    } else {
      members.forEach((m, i) => {
        const error = colanderStringError(m)
        if (error !== undefined) {
          issues.push({location: 'body', name: `${prefix}members.${i}`, description: error})
        } else if (m.startsWith('/buckets/') || m === 'system.Everyone') {
          issues.push({location: 'body', name: `${prefix}members.${i}`, description: `'${m}' is not a valid user ID.`})
        }
      })
    }
    throwIssues(issues)
    return data
  },
  async processObject(r, obj, old) {
    await bucketOfCreation(r, old)
    await validateFromBucketSchema(r, obj, [...INTERNAL_FIELDS])
    return obj
  },
}

/** The collection of a record request (checked before anything else; 404 errno 111). */
export async function recordCollection(r: ResourceRequest): Promise<KintoObject> {
  const uri = r.parentId
  let collection = r.ctx.bound.collections.get(uri)
  if (!collection) {
    try {
      collection = await r.storage.get('collection', `/buckets/${r.params.bucket_id}`, r.params.collection_id)
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw missingParent('collection', r.params.collection_id)
      throw err
    }
    r.ctx.bound.collections.set(uri, collection)
  }
  return collection
}

export const recordResource: ResourceDefinition = {
  name: 'record',
  pluralPath: '/buckets/{bucket_id}/collections/{collection_id}/records',
  objectPath: '/buckets/{bucket_id}/collections/{collection_id}/records/{id}',
  permissions: ['read', 'write'],
  parentId: (params) => `/buckets/${params.bucket_id}/collections/${params.collection_id}`,
  async init(r) {
    await recordCollection(r)
  },
  // Not once loaded (recordCollection keeps it for the request and its batch).
  prefetchObjects: (params, bound) =>
    bound.collections.has(`/buckets/${params.bucket_id}/collections/${params.collection_id}`)
      ? []
      : [{resourceName: 'collection', parentId: `/buckets/${params.bucket_id}`, id: params.collection_id}],
  async processObject(r, obj) {
    await liveCollection(r)
    if (!schemaValidationEnabled(r)) return obj
    const collection = await recordCollection(r)
    const ignore = ['last_modified', 'schema', PERMISSIONS_FIELD]
    if (isPlainObject(collection.schema)) {
      validateOr400(obj, collection.schema as Record<string, unknown>, [...ignore])
      obj.schema = collection.last_modified
    }
    await validateFromBucketSchema(r, obj, ignore)
    return obj
  },
  cacheHeaders(r, headers) {
    const anonymous = r.ctx.knownIdentity?.userId == null
    defaultCacheHeaders(r, headers, anonymous)
    if (!anonymous) return
    const {bucket_id: bid, collection_id: cid} = r.params
    const settings = r.ctx.settings
    let cacheExpires: unknown
    for (const key of [
      `${bid}.${cid}.record_cache_expires_seconds`,
      `${bid}.record_cache_expires_seconds`,
      'record_cache_expires_seconds',
      `${bid}_${cid}_record_cache_expires_seconds`,
      `${bid}_record_cache_expires_seconds`,
    ]) {
      cacheExpires = settings[key]
      if (cacheExpires !== undefined && cacheExpires !== null) break
    }
    const collection = r.ctx.bound.collections.get(r.parentId)
    const metadata = collection?.cache_expires
    if (metadata !== undefined && metadata !== null) {
      const fromSetting = Number(cacheExpires) || -1
      // An integer beyond 2^53 is kept as its digits (exact integer text): its nearest double.
      cacheExpires = Math.max(Math.trunc(fromSetting), Math.trunc(Number(exactIntegerText(metadata) ?? metadata)))
    }
    if (cacheExpires !== undefined && cacheExpires !== null && Number.isFinite(Number(cacheExpires))) {
      delete headers.Pragma
      Object.assign(headers, cacheExpiresHeaders(Math.trunc(Number(cacheExpires))))
    }
  },
}

export const CORE_RESOURCES = [bucketResource, collectionResource, groupResource, recordResource]

/** Resource names that live below a bucket or a collection (cascades reach them all). */
function childResourceNames(runtime: Runtime): string[] {
  return [...new Set([...runtime.resourceNames, 'history'])].filter((n) => n !== 'bucket')
}

/**
 * Hard-deletes every object below `pattern`, in the request's transaction; returns the groups
 * deleted (their ids). deleteAll takes at most storage_max_fetch_size objects per call (upstream's
 * cap, which upstream's cascades leave at one call: the rest of a big collection outlived it and
 * came back with a collection of the same name); a cascade repeats it until none is left, a
 * bounded number of rows in memory at a time.
 */
async function deleteEverythingBelow(ctx: RequestContext, pattern: string): Promise<string[]> {
  const {storage} = ctx.tx
  const groups: string[] = []
  for (const name of childResourceNames(ctx.runtime)) {
    let deleted: KintoObject[]
    do {
      deleted = await storage.deleteAll(name, pattern, {withDeleted: false})
      if (name === 'group') for (const group of deleted) groups.push(group.id as string)
    } while (deleted.length > 0)
  }
  await storage.purgeDeleted(null, pattern)
  return groups
}

/**
 * Marks the request (its batch) as having deleted a bucket or a collection: the bucket and the
 * collections it loaded before may be gone, so a write below one looks again (bucketOfCreation,
 * liveCollection) rather than make objects below nothing. Upstream trusts what it loaded and
 * deletes such objects at the end of the batch, after answering 201.
 */
function markCascaded(ctx: RequestContext): void {
  ctx.bound.extra.set(CASCADED, true)
}

/** Registers the core cascades (upstream's subscribers in kinto/views/*.py). */
export function registerCoreListeners(runtime: Runtime): void {
  runtime.events.onChanged({resources: ['bucket'], actions: ['delete']}, async (event: ResourceEvent, ctx) => {
    for (const {old} of event.impacted) {
      if (!old) continue
      const uri = `/buckets/${old.id as string}`
      markCascaded(ctx)
      for (const pattern of [uri, `${uri}/*`]) {
        const groups = await deleteEverythingBelow(ctx, pattern)
        await ctx.tx.permission.deleteObjectPermissions(pattern)
        // Unlike upstream (its cascade deletes the groups without their event), the members lose
        // these groups, as when a group is deleted: a bucket made again under the same name, with
        // ACEs naming a group URI, must give them nothing.
        for (const id of groups) await ctx.tx.permission.removePrincipal(`${uri}/groups/${id}`)
      }
    }
  })
  runtime.events.onChanged({resources: ['collection'], actions: ['delete']}, async (event, ctx) => {
    for (const {old} of event.impacted) {
      if (!old) continue
      const uri = `${event.parentId}/collections/${old.id as string}`
      markCascaded(ctx)
      await deleteEverythingBelow(ctx, uri)
      await ctx.tx.permission.deleteObjectPermissions(`${uri}/*`)
    }
  })
  runtime.events.onChanged({resources: ['group'], actions: ['delete']}, async (event, ctx) => {
    for (const {old} of event.impacted) {
      if (!old) continue
      await ctx.tx.permission.removePrincipal(`${event.parentId}/groups/${old.id as string}`)
    }
  })
  runtime.events.onChanged({resources: ['group'], actions: ['create', 'update']}, async (event, ctx) => {
    for (const change of event.impacted) {
      const before = new Set<string>(Array.isArray(change.old?.members) ? (change.old!.members as string[]) : [])
      const after = new Set<string>(Array.isArray(change.new.members) ? (change.new.members as string[]) : [])
      const groupUri = `${event.parentId}/groups/${change.new.id as string}`
      for (const member of after) if (!before.has(member)) await ctx.tx.permission.addUserPrincipal(member, groupUri)
      for (const member of before) if (!after.has(member)) await ctx.tx.permission.removeUserPrincipal(member, groupUri)
    }
  })
}

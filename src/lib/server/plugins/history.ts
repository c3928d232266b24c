/**
 * kinto.plugins.history: every change of a bucket, group, collection or
 * record is written, in the request's transaction, as a `history` object below its bucket:
 * {action, uri, user_id, resource_name, <resource>_id, collection_id?, date, target: {data,
 * permissions}} (no `timestamp`; `bucket_id` only on bucket entries). `GET|DELETE
 * /buckets/{id}/history` lists them with the resource framework (filters on known fields,
 * sorting, pagination); `/buckets/{id}/snapshot/collections/{cid}@{timestamp}` rebuilds a
 * collection's records as they were at a timestamp.
 *
 * Who reads an entry: what grants reading the bucket, or the entry's own read ACE (the bucket's,
 * the collection's and the object's readers and writers when it was written).
 * Settings: history.exclude_resources, history.exclude_user_ids, history.auto_trim_max_count,
 * history.auto_trim_threshold (100), history.auto_trim_user_ids.
 */
import {asBool, asInt, asList, type Settings} from '../../config/settings.js'
import {KintoError} from '../../errors.js'
import type {Filter, KintoObject} from '../../storage/types.js'
import {registerInheritance} from '../authorization.js'
import type {RequestContext} from '../context.js'
import {forbidden, invalid, notFound, unauthorized} from '../errors.js'
import type {ResourceEvent} from '../events.js'
import {timedListener} from '../hooks.js'
import type {ResourceDefinition} from '../resource/definition.js'
import type {ViewDef} from '../router.js'
import type {KintoPlugin} from './index.js'

/** `/buckets/a/collections/b` → {bucket: 'a', collection: 'b'} (the capability's excluded_resources). */
export function uriToDict(uri: string): Record<string, string> {
  const parts = uri.split('/')
  if (parts.length === 3) return {bucket: parts[2]}
  if (parts.length === 5) return parts[3] === 'collections' ? {bucket: parts[2], collection: parts[4]} : {bucket: parts[2], group: parts[4]}
  if (parts.length === 7) return {bucket: parts[2], collection: parts[4], record: parts[6]}
  throw new Error(`Invalid URI: ${uri}`)
}

let lastMicros = 0

/**
 * Python's datetime.now(timezone.utc).isoformat(): microseconds and +00:00. The clock gives
 * milliseconds; dates taken within one millisecond count its microseconds up, so they strictly
 * increase within the process, as upstream's successive datetime.now() calls: the entries of one
 * batch or plural DELETE sort by date in the order they were written.
 */
export function isoDateUtc(): string {
  const micros = Math.max(Date.now() * 1000, lastMicros + 1)
  lastMicros = micros
  const iso = new Date(Math.floor(micros / 1000)).toISOString()
  return `${iso.slice(0, 19)}.${String(micros % 1_000_000).padStart(6, '0')}+00:00`
}

function objectUri(resourceName: string, params: {id: string; bucket_id?: string; collection_id?: string}): string {
  switch (resourceName) {
    case 'bucket':
      return `/buckets/${params.id}`
    case 'collection':
      return `/buckets/${params.bucket_id}/collections/${params.id}`
    case 'group':
      return `/buckets/${params.bucket_id}/groups/${params.id}`
    case 'record':
      return `/buckets/${params.bucket_id}/collections/${params.collection_id}/records/${params.id}`
    default:
      throw new Error(`No history for resource '${resourceName}'.`)
  }
}

function asLists(perms: Record<string, Set<string>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, [...v].sort()]))
}

/** upstream's on_resource_changed, run before the request's transaction commits. */
async function onResourceChanged(event: ResourceEvent, ctx: RequestContext): Promise<void> {
  const settings = ctx.settings
  const resourceName = event.payload.resource_name as string
  // A deleted bucket takes its history with it (upstream writes the entry, then the bucket's
  // cascade removes it): nothing to write.
  if (resourceName === 'bucket' && event.action === 'delete') return

  const excludedUserIds = asList(settings, 'history.exclude_user_ids')
  const excluded = asList(settings, 'history.exclude_resources')
  const trimMax = asInt(settings, 'history.auto_trim_max_count', -1) ?? -1
  const trimUserIds = asList(settings, 'history.auto_trim_user_ids')
  const trimThreshold = asInt(settings, 'history.auto_trim_threshold', 100) ?? 100
  const {storage, permission} = ctx.tx

  // Each impacted object with the payload of the sub-request that changed it: a batch's grouped
  // event holds objects of several users (their own Authorization) and, for buckets, of several
  // buckets. Upstream takes the first sub-request's payload for all of them, which files every
  // bucket of the batch in the first one's history, readable by that bucket's readers.
  interface Target {
    uri: string
    target: Record<string, unknown>
    own: Record<string, unknown>
    bucketId: string
    bucketUri: string
    collectionUri: string | null
  }
  const targets: Target[] = []
  event.impacted.forEach((impacted, i) => {
    const own = event.payloads?.[i] ?? event.payload
    if (excludedUserIds.includes(String(own.user_id))) return
    const target = impacted.new
    const objId = target.id as string
    const bucketId = resourceName === 'bucket' ? objId : ((own.bucket_id as string | undefined) ?? objId)
    const bucketUri = `/buckets/${bucketId}`
    if (excluded.includes(bucketUri)) return
    let collectionUri: string | null = null
    if ('collection_id' in own) {
      collectionUri = `${bucketUri}/collections/${own.collection_id as string}`
      if (excluded.includes(collectionUri)) return
    }
    const uri = objectUri(resourceName, {id: objId, bucket_id: bucketId, collection_id: own.collection_id as string | undefined})
    if (excluded.includes(uri)) return
    targets.push({uri, target, own, bucketId, bucketUri, collectionUri})
  })
  if (targets.length === 0) return

  const ids = [...new Set(targets.flatMap((t) => [t.uri, t.bucketUri, ...(t.collectionUri ? [t.collectionUri] : [])]))]
  const all = await permission.getObjectsPermissions(ids)
  const permsById = new Map(ids.map((id, i) => [id, all[i] ?? {}]))
  const explicit = asBool(settings, 'explicit_permissions')
  const trimFor = (userId: unknown) => trimMax > 0 && (trimUserIds.length === 0 || trimUserIds.includes(String(userId)))

  const entries = targets.map((t) => {
    const perms = asLists(permsById.get(t.uri) ?? {})
    const {timestamp: _timestamp, bucket_id: _bucketId, ...attrs} = t.own
    attrs[`${resourceName}_id`] = t.target.id
    attrs.uri = t.uri
    // The bucket's and the collection's readers and writers, and the object's.
    const readers = new Set<string>()
    for (const p of [permsById.get(t.bucketUri) ?? {}, t.collectionUri ? (permsById.get(t.collectionUri) ?? {}) : {}, perms]) {
      for (const principal of p.read ?? []) readers.add(principal)
      for (const principal of p.write ?? []) readers.add(principal)
    }
    return {t, readers, obj: {date: isoDateUtc(), target: {data: t.target, permissions: perms}, ...attrs}}
  })

  // Many entries (a page of a plural DELETE: up to storage_max_fetch_size) in one INSERT per
  // bucket and one ACL write where the backends offer them: one by one, a 10000-record page took
  // 13 s of its 15 s writing its history. Auto-trim counts after each entry: that stays one by one.
  if (entries.length > 1 && !entries.some(({t}) => trimFor(t.own.user_id)) && storage.createMany && (!explicit || permission.addPrincipalsToAcesAndRead)) {
    const byBucket = new Map<string, typeof entries>()
    for (const entry of entries) {
      const group = byBucket.get(entry.t.bucketUri)
      if (group) group.push(entry)
      else byBucket.set(entry.t.bucketUri, [entry])
    }
    const aces: Array<[string, string, string]> = []
    for (const [bucketUri, group] of byBucket) {
      const created = await storage.createMany('history', bucketUri, group.map(({obj}) => ({obj})))
      created.forEach((entry, i) => {
        // A history id is a fresh uuid: createMany answers null only for an id already live.
        if (!entry) throw new Error('A new history entry id is already taken.')
        for (const p of group[i].readers) aces.push([`${bucketUri}/history/${entry.id}`, 'read', p])
      })
    }
    if (explicit) await permission.addPrincipalsToAcesAndRead!(aces)
    return
  }

  for (const {t, readers, obj} of entries) {
    const entry = await storage.create('history', t.bucketUri, obj)

    if (trimFor(t.own.user_id)) {
      const filters: Filter[] = [{field: 'resource_name', value: resourceName, operator: 'eq'}]
      if (trimUserIds.length > 0) filters.push({field: 'user_id', value: t.own.user_id as string | null, operator: 'eq'})
      const count = await storage.count('history', t.bucketUri, filters)
      if (count > trimMax + trimThreshold && storage.trimObjects) {
        const deleted = await storage.trimObjects('history', t.bucketUri, filters, trimMax)
        // Their read ACEs go with them (upstream leaves them: the permission table grows without
        // bound while auto-trim bounds the entries). In slices: the first trim of a long history
        // deletes as many entries as it holds, more than a call takes arguments.
        for (let i = 0; i < deleted.length; i += 1000) {
          await permission.deleteObjectPermissions(...deleted.slice(i, i + 1000).map((id) => `${t.bucketUri}/history/${id}`))
        }
        ctx.runtime.logger.debug?.({rid: ctx.req.scope?.rid, deleted: deleted.length, bucket: t.bucketUri, resource: resourceName}, 'Trimmed old history entries.')
      }
    }

    // Without explicit permissions, entries are readable through the bucket's permissions only.
    if (!explicit) continue
    await permission.replaceObjectPermissions(`${t.bucketUri}/history/${entry.id}`, {read: [...readers]})
  }
}

export const historyResource: ResourceDefinition = {
  name: 'history',
  pluralPath: '/buckets/{bucket_id}/history',
  objectPath: null,
  permissions: ['read', 'write'],
  pluralMethods: ['GET', 'DELETE'],
  openapi: {tags: ['History'], operationIds: {GET: 'get_history', DELETE: 'delete_history'}},
  parentId: (params) => `/buckets/${params.bucket_id}`,
  knownFields: ['user_id', 'uri', 'action', 'date', 'resource_name', 'bucket_id', 'collection_id', 'group_id', 'record_id', 'target'],
  // Ids are strings: `?collection_id=1` is the collection "1", not the number 1. Upstream turns
  // integers back into text for three of them only, not group_id (kinto-admin's group history).
  textFields: ['bucket_id', 'collection_id', 'group_id', 'record_id'],
}

/** GET /buckets/{bid}/snapshot/collections/{cid}@{timestamp}: the records as they were then. */
const snapshotView: ViewDef = {
  method: 'GET',
  permission: 'public',
  async handler(ctx) {
    // Upstream's route `{collection_id}@{timestamp}`: both non-empty, the id taking what it can.
    const match = /^(.+)@(.+)$/s.exec(ctx.params.spec)
    if (!match) throw notFound()
    const bucketId = ctx.params.bucket_id
    const [, collectionId, raw] = match
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw invalid('path', 'timestamp', `Invalid timestamp '${raw}'`)
    }
    const timestamp = Number(raw)
    const bucketUri = `/buckets/${bucketId}`
    const collectionUri = `${bucketUri}/collections/${collectionId}`
    const identity = await ctx.identity()
    const {storage, permission} = ctx.tx
    const allowed = await permission.checkPermission(identity.principals, [
      [bucketUri, 'read'],
      [bucketUri, 'write'],
      [collectionUri, 'read'],
      [collectionUri, 'write'],
    ])
    if (!allowed) throw identity.userId === null ? unauthorized() : forbidden()

    const all = await storage.list('record', collectionUri, {includeDeleted: true})
    const unchanged = all.filter((r) => r.last_modified <= timestamp && !r.deleted)
    const changed = all.filter((r) => r.last_modified > timestamp).map((r) => r.id)
    const byNewest = (a: KintoObject, b: KintoObject) => b.last_modified - a.last_modified
    if (changed.length === 0) return {body: {data: unchanged.sort(byNewest)}}

    const entries = await storage.list('history', bucketUri, {
      filters: [
        {field: 'resource_name', value: 'record', operator: 'eq'},
        {field: 'collection_id', value: collectionId, operator: 'eq'},
        {field: 'record_id', value: changed, operator: 'in'},
        {field: 'target.data.last_modified', value: timestamp, operator: 'max'},
      ],
      sorting: [{field: 'last_modified', direction: -1}],
    })
    const newestBefore = new Map<string, KintoObject>()
    for (const entry of entries) {
      const rid = entry.record_id as string
      if (!newestBefore.has(rid)) newestBefore.set(rid, entry)
    }
    const result: KintoObject[] = [...unchanged]
    for (const rid of changed) {
      const entry = newestBefore.get(rid)
      if (!entry) continue // created after the timestamp
      const data = (entry.target as {data: KintoObject}).data
      // An entry written by a deletion holds the tombstone: the record did not exist then.
      if (data.deleted) continue
      result.push(data)
    }
    return {body: {data: result.sort(byNewest)}}
  },
}

function historyCapability(settings: Settings): Record<string, unknown> {
  const exposed: Record<string, unknown> = {}
  const trimMax = asInt(settings, 'history.auto_trim_max_count', -1) ?? -1
  if (trimMax > 0) exposed.auto_trim_max_count = trimMax
  const trimUserIds = asList(settings, 'history.auto_trim_user_ids')
  if (trimUserIds.length > 0) exposed.auto_trim_user_ids = trimUserIds
  const excluded = asList(settings, 'history.exclude_resources')
  if (excluded.length > 0) exposed.excluded_resources = excluded.map(uriToDict)
  return exposed
}

/** The history capability of these settings; a KintoError for an exclude_resources entry that is no URI. */
function checkedHistoryCapability(settings: Settings): Record<string, unknown> {
  try {
    return historyCapability(settings)
  } catch (err) {
    throw new KintoError(`kinto.history.exclude_resources: ${(err as Error).message}.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: 'List bucket, collection, group or record URIs without /v1, e.g. /buckets/b1 /buckets/b1/collections/c1.',
    })
  }
}

export const historyPlugin: KintoPlugin = {
  name: 'kinto.plugins.history',
  checkSettings: (settings) => void checkedHistoryCapability(settings),
  includeme(api) {
    const {runtime} = api
    const capability = checkedHistoryCapability(runtime.settings)
    runtime.addCapability('history', {
      description: 'Track changes on data.',
      url: 'http://kinto.readthedocs.io/en/latest/api/1.x/history.html',
      ...capability,
    })
    registerInheritance('history', {
      read: {bucket: ['write', 'read'], history: ['write', 'read']},
      write: {bucket: ['write'], history: ['write']},
    })
    api.addResource(historyResource)
    api.addService({
      name: 'history_snapshot',
      pattern: '/buckets/{bucket_id}/snapshot/collections/{spec}',
      views: new Map([['GET', snapshotView]]),
      openapi: {
        path: '/buckets/{bucket_id}/snapshot/collections/{collection_id}@{timestamp}',
        pathTypes: {timestamp: 'integer'},
        // The view checks read access itself; upstream's has no `permission` and is described so.
        authenticated: true,
        responses: {'200': 'The records of the collection at that timestamp.', '401': 'The collection is not readable anonymously.', '403': 'The caller may not read the collection.'},
      },
    })
    // Timed as upstream times it (`plugins.history.seconds`) when metrics are on.
    runtime.events.onChanged({resources: ['bucket', 'group', 'collection', 'record']}, timedListener(runtime.hooks, 'plugins.history', onResourceChanged))
  },
}

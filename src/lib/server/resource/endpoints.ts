/**
 * What each resource endpoint does (upstream's Resource views): list, create, delete a list;
 * read, replace, patch, delete an object. Each takes the request's ResourceRequest.
 */
import {alertHeader} from '../../state/eos.js'
import {ObjectNotFoundError, type KintoObject, type WriteCondition} from '../../storage/types.js'
import {invalid, notFoundObject} from '../errors.js'
import type {Action} from '../events.js'
import {cacheExpiresHeaders, timestampHeaders} from '../headers.js'
import {deepEqual, isPlainObject, recursiveUpdate, setOwn, type PatchOperation} from '../patch.js'
import {queryInteger} from '../querystring.js'
import type {ViewResult} from '../types.js'
import {PERMISSIONS_FIELD, type Annotated} from './definition.js'
import {dictSubset} from './fields.js'
import {applyPatchDocument} from './json-patch.js'
import {listFields, listFilters, listLimit, listSorting, pageOptions} from './list-query.js'
import {nextPageUrl, paginationRules} from './pagination.js'
import {NotModified, type BodyPayload, type ResourceRequest} from './request.js'

const LEGACY_TO_URL = 'https://kinto.readthedocs.io/en/2.4.0/api/resource.html#list-of-available-url-parameters'

export async function pluralGet(r: ResourceRequest, head: boolean): Promise<ViewResult> {
  const identity = r.ctx.knownIdentity ?? (await r.ctx.identity())
  const headers: Record<string, string> = {}
  const timestamp = await r.timestamp()
  Object.assign(headers, timestampHeaders(timestamp))
  cacheHeaders(r, headers, identity.userId === null)
  if (hasPreconditions(r)) {
    const notModified = await raise304or(r, null)
    if (notModified) return notModified
    await r.raise412IfModified({})
  }

  const {filters, alert} = listFilters(r)
  const limit = listLimit(r)
  const sorting = listSorting(r)
  // Read (and checked) for a HEAD too, before its answer, as upstream's _plural_get.
  const fields = listFields(r)
  if (alert) headers.Alert = alertHeader('soft-eol', alert, LEGACY_TO_URL)
  const {rules, offset} = await paginationRules(r, sorting)

  if (head) {
    const count = await r.storage.count(r.def.name, r.parentId, filters)
    headers['Total-Objects'] = headers['Total-Records'] = String(count)
    return {headers, body: await r.postprocess([])}
  }

  const objects = await r.storage.list(r.def.name, r.parentId, pageOptions(filters, sorting, limit, rules))
  if (limit && objects.length === limit + 1) {
    headers['Next-Page'] = await nextPageUrl(r, sorting, limit, objects[objects.length - 2], offset + objects.length)
  }
  let page: Array<Record<string, unknown>> = objects.slice(0, limit)
  if (fields) page = page.map((o) => dictSubset(o, fields))
  return {headers, body: await r.postprocess(page)}
}

/** Whether If-Match or If-None-Match came: without them a read has no condition to check. */
function hasPreconditions(r: ResourceRequest): boolean {
  const {ifMatch, ifNoneMatch} = r.preconditions()
  return ifMatch !== undefined || ifNoneMatch !== undefined
}

export async function raise304or(r: ResourceRequest, obj: Annotated | null): Promise<ViewResult | null> {
  try {
    await r.raise304IfNotModified(obj)
    return null
  } catch (err) {
    if (err instanceof NotModified) {
      // Upstream's 304 carries the timestamp headers only (no cache headers of the 200).
      return {status: 304, headers: timestampHeaders(err.timestamp)}
    }
    throw err
  }
}

export async function pluralPost(r: ResourceRequest): Promise<ViewResult> {
  const payload = r.payload as BodyPayload
  let newObject: Record<string, unknown> = payload.data ?? emptyData(r)
  let existing: Annotated | null = null
  const objectId = r.objectId()
  if (objectId !== null) {
    newObject.id = objectId
    existing = await r.getObjectOrNull(objectId)
  }
  await r.raise412IfModified(existing)
  let obj: Annotated
  let action: Action
  let status = 200
  if (existing) {
    obj = existing
    action = 'read'
  } else {
    newObject = await r.processObject(newObject, null, payload)
    obj = await r.createObject(newObject, true)
    status = 201
    action = 'create'
  }
  return {status, headers: timestampHeaders(obj.last_modified), body: await r.postprocess(obj, action)}
}

export async function pluralDelete(r: ResourceRequest): Promise<ViewResult> {
  await r.storage.lockList?.(r.def.name, r.parentId)
  await r.raise412IfModified({})
  const {filters, alert} = listFilters(r)
  const limit = listLimit(r)
  const sorting = listSorting(r)
  const {rules, offset} = await paginationRules(r, sorting)
  const objects = await r.storage.list(r.def.name, r.parentId, {filters, sorting, limit: limit + 1, paginationRules: rules})
  const deleted = await r.storage.deleteAll(r.def.name, r.parentId, {filters, sorting, limit, paginationRules: rules})
  // Every object of the list gone (no filter, no earlier page, no next one): one wildcard
  // delete, upstream's shortcut. Upstream takes it for any page without a filter, which also
  // stripped the permissions of the objects the page did not reach.
  const wholeList = filters.length === 0 && !rules?.length && objects.length <= limit
  if (wholeList) await r.permission.deleteObjectPermissions(r.objectUri('*'))
  else if (deleted.length > 0) await r.permission.deleteObjectPermissions(...deleted.map((d) => r.objectUri(d.id)))
  const headers: Record<string, string> = {}
  if (alert) headers.Alert = alertHeader('soft-eol', alert, LEGACY_TO_URL)
  if (deleted.length > 0) {
    if (limit && objects.length === limit + 1) {
      // Upstream builds the cursor from the last tombstone, which lacks the sorted fields
      // (a second page sorted on a data field then deletes nothing); the last object deleted,
      // as it was, gives the same cursor for the default sort and a right one for the others.
      // The token's offset is the one this page was given, as upstream (a GET adds what it read).
      headers['Next-Page'] = await nextPageUrl(r, sorting, limit, objects[limit - 1], offset)
    }
    Object.assign(headers, timestampHeaders(Math.max(...deleted.map((d) => d.last_modified))))
  } else {
    Object.assign(headers, timestampHeaders(await r.timestamp()))
  }
  const action: Action = deleted.length > 0 ? 'delete' : 'read'
  return {headers, body: await r.postprocess(deleted, action, objects.slice(0, limit))}
}

export async function objectGet(r: ResourceRequest): Promise<ViewResult> {
  const id = r.params.id
  r.checkId(id)
  const identity = r.ctx.knownIdentity ?? (await r.ctx.identity())
  const obj = await r.getObjectOr404(id)
  const headers = timestampHeaders(obj.last_modified)
  cacheHeaders(r, headers, identity.userId === null)
  if (hasPreconditions(r)) {
    const notModified = await raise304or(r, obj)
    if (notModified) return notModified
    await r.raise412IfModified(obj)
  }
  const fields = listFields(r)
  const shown = fields ? dictSubset(obj, fields) : obj
  return {headers, body: await r.postprocess(shown as Annotated)}
}

export async function objectPut(r: ResourceRequest): Promise<ViewResult> {
  const id = r.params.id
  r.checkId(id)
  const payload = r.payload as BodyPayload
  const existing = await r.getObjectOrNull(id)
  await r.raise412IfModified(existing)
  let postObject: Record<string, unknown>
  if (payload.data !== undefined) postObject = payload.data
  else if (existing) {
    const {[PERMISSIONS_FIELD]: _p, ...rest} = existing
    postObject = rest
  } else postObject = emptyData(r)
  if (!('id' in postObject)) postObject.id = id
  if (postObject.id !== id) throw invalid('body', 'id', 'Object id does not match existing object')
  const newObject = await r.processObject(postObject, existing, payload)
  let obj: Annotated
  let status = 200
  if (existing) {
    obj = await r.updateObject(newObject, writeCondition(r))
  } else {
    obj = await r.createObject(newObject, true)
    status = 201
  }
  return {status, headers: timestampHeaders(obj.last_modified), body: await r.postprocess(obj, existing ? 'update' : 'create', existing)}
}

export async function objectPatch(r: ResourceRequest): Promise<ViewResult> {
  const id = r.params.id
  r.checkId(id)
  const existing = await r.getObjectOr404(id)
  await r.raise412IfModified(existing)
  const behavior = (r.ctx.req.headers['response-behavior'] ?? 'full').trim()
  const payload = r.payload
  let requested: Record<string, unknown> | PatchOperation[]
  if (Array.isArray(payload)) requested = payload
  else {
    if (payload.data === undefined && payload.permissions === undefined) {
      throw invalid('body', 'data', 'Provide at least one of data or permissions')
    }
    requested = payload.data ?? {}
  }
  const {updated, applied} = applyChanges(r, existing, requested)
  if (!('id' in updated)) updated.id = id
  if (updated.id !== id) throw invalid('body', 'id', 'Object id does not match existing object')
  const newObject = await r.processObject(updated, existing, payload)
  const changed = Object.keys(applied).filter((k) => !deepEqual((existing as Record<string, unknown>)[k], newObject[k]))
  const saved = await r.updateObject(newObject, writeCondition(r))
  let data: Record<string, unknown>
  if (behavior === 'light') data = Object.fromEntries(changed.map((k) => [k, (saved as Record<string, unknown>)[k]]))
  else if (behavior === 'diff') {
    data = Object.fromEntries(
      changed.filter((k) => !deepEqual(applied[k], (saved as Record<string, unknown>)[k])).map((k) => [k, (saved as Record<string, unknown>)[k]]),
    )
  } else data = saved
  const timestamp = saved.last_modified ?? existing.last_modified
  const {[PERMISSIONS_FIELD]: _perms, ...savedData} = saved
  return {headers: timestampHeaders(timestamp), body: await r.postprocess(data, 'update', existing, savedData)}
}

export function applyChanges(r: ResourceRequest, obj: Annotated, requested: Record<string, unknown> | PatchOperation[]): {updated: Record<string, unknown>; applied: Record<string, unknown>} {
  let applied: Record<string, unknown>
  let updated: Record<string, unknown>
  if (Array.isArray(requested)) {
    const data = applyPatchDocument(obj, requested).data
    if (!isPlainObject(data)) throw invalid('body', null, 'JSON Patch operation failed: data must stay an object')
    applied = data
    updated = {...applied}
  } else {
    applied = {...requested}
    updated = {...obj}
    if (r.isMergePatch()) recursiveUpdate(updated, applied)
    else for (const [k, v] of Object.entries(applied)) setOwn(updated, k, v)
  }
  for (const [field, value] of Object.entries(applied)) {
    const has = Object.hasOwn(obj, field)
    if (r.def.readonlyFields?.includes(field) && has && !deepEqual((obj as Record<string, unknown>)[field], value)) {
      throw invalid('body', field, `Cannot modify ${field}`)
    }
  }
  const {[PERMISSIONS_FIELD]: perms, ...data} = updated
  const validated = r.validateData(data, '')
  if (perms !== undefined) validated[PERMISSIONS_FIELD] = perms
  return {updated: validated, applied}
}

export async function objectDelete(r: ResourceRequest): Promise<ViewResult> {
  const id = r.params.id
  r.checkId(id)
  const obj = await r.getObjectOr404(id)
  await r.raise412IfModified(obj)
  let lastModified: number | undefined = queryInteger(r.ctx.req.query, 'last_modified') ?? undefined
  if (lastModified !== undefined && (lastModified === 0 || lastModified <= obj.last_modified || !Number.isSafeInteger(lastModified))) {
    lastModified = undefined
  }
  let deleted: KintoObject
  try {
    deleted = await r.deleteObject(obj, lastModified, writeCondition(r))
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw notFoundObject(r.def.name, id)
    throw err
  }
  return {headers: timestampHeaders(deleted.last_modified), body: await r.postprocess(deleted, 'delete', obj)}
}

/** The condition to check atomically with a write (If-Match on an existing object). */
function writeCondition(r: ResourceRequest): WriteCondition | undefined {
  const {ifMatch} = r.preconditions()
  if (typeof ifMatch === 'number') return {kind: 'last_modified', value: ifMatch}
  return undefined
}

function cacheHeaders(r: ResourceRequest, headers: Record<string, string>, identityAnonymous: boolean): void {
  if (r.def.cacheHeaders) {
    r.def.cacheHeaders(r, headers)
    return
  }
  defaultCacheHeaders(r, headers, identityAnonymous)
}

/**
 * The data of a body without `data`: `{}` when the schema accepts an empty object (else its 400).
 * As upstream, no defaults are filled in then (a group created without data has no `members`).
 */
function emptyData(r: ResourceRequest): Record<string, unknown> {
  r.validateData({}, 'data.')
  return {}
}

/** Default cache headers: `<resource>_cache_expires_seconds` for anonymous requests. */
export function defaultCacheHeaders(r: ResourceRequest, headers: Record<string, string>, anonymous: boolean): void {
  const value = r.ctx.settings[`${r.def.name}_cache_expires_seconds`]
  const seconds = value === undefined || value === null || value === '' ? 0 : Number(value)
  if (seconds && anonymous && Number.isFinite(seconds)) Object.assign(headers, cacheExpiresHeaders(Math.trunc(seconds)))
  else headers['Cache-Control'] = 'no-cache, no-store'
}

/**
 * kinto_attachment (Kinto/kinto-attachment, local storage): files attached to records.
 *
 * `POST …/records/{id}/attachment` (multipart: `attachment`, optional `data`, `permissions`)
 * stores the file below `kinto.attachment.base_path` and writes the record's `attachment`
 * attribute {location, hash, filename, size, mimetype[, original]} with a PATCH (a PUT when the
 * record is missing) run as a sub-request: the record's own validation, permissions, events and
 * timestamps apply. `DELETE …/attachment` removes the file and the attribute.
 *
 * Which file belongs to which record is kept as upstream keeps it, in storage objects
 * (`attachments` below `__attachments__`: {location, bucket_uri, collection_uri, record_uri}),
 * so a database shared with upstream Kinto stays consistent. Deleting a record, collection or
 * bucket deletes its files, replacing a file deletes the old one, unless `keep_old_files`.
 * Files are removed only after the transaction commits; a failed request leaves no new file.
 */
import path from 'node:path'

import {type Settings} from '../../../config/settings.js'
import type {KintoObject} from '../../../storage/types.js'
import {permits, type AuthorizationContext} from '../../authorization.js'
import {RequestContext} from '../../context.js'
import {ERRNO, forbidden, HttpError, unauthorized} from '../../errors.js'
import type {ResourceEvent} from '../../events.js'
import {measure} from '../../hooks.js'
import type {Runtime} from '../../runtime.js'
import {deepEqual} from '../../patch.js'
import type {ViewDef} from '../../router.js'
import type {KintoRequest, KintoResponse, ViewResult} from '../../types.js'
import type {KintoPlugin} from '../index.js'
import {locationUrl, optionsFor, readAttachmentSettings, type AttachmentSettings} from './settings.js'
import {LocalStore, newFileName} from './store.js'
import {FILE_FIELD, receiveUpload, type ReceivedUpload} from './upload.js'

export const ATTACHMENT_VERSION = '9.0.1'
const LINKS = 'attachments'
const LINKS_PARENT = '__attachments__'
/** The resource name of the links kinto-attachment < 9.0 wrote (its 9.0 migration renames them to `attachments`). */
const LEGACY_LINKS = ''
const RECORD_PATTERN = '/buckets/{bucket_id}/collections/{collection_id}/records/{id}'

export interface AttachmentRuntime {
  settings: AttachmentSettings
  store: LocalStore
}

const byRuntime = new WeakMap<Runtime, AttachmentRuntime>()

/** The attachment settings and store of a runtime that includes kinto_attachment (undefined otherwise). */
export function attachmentsOf(runtime: Runtime): AttachmentRuntime | undefined {
  return byRuntime.get(runtime)
}

function uris(params: Record<string, string>) {
  const bucket = `/buckets/${params.bucket_id}`
  const collection = `${bucket}/collections/${params.collection_id}`
  return {bucket, collection, record: `${collection}/records/${params.id}`}
}

/** upstream's `folder` setting: `{bucket_id}`, `{collection_id}` (and `{id}`) filled from the route. */
function folderFor(pattern: string, params: Record<string, string>): string {
  const folder = pattern.replace(/\{(bucket_id|collection_id|id)\}/g, (_, k: string) => params[k] ?? '')
  const clean = path.posix.normalize(folder.replace(/^\/+/, '')).replace(/\/+$/, '')
  if (clean === '.') return ''
  if (clean.startsWith('..')) throw new Error(`kinto.attachment.folder '${pattern}' leaves the attachments folder.`)
  return clean
}

/** A request context on the record itself (as a PUT on it would have), for its permission check. */
function recordContext(ctx: RequestContext, method: string): RequestContext {
  const p = `/${ctx.runtime.routePrefix}${uris(ctx.params).record}`
  const req: KintoRequest = {...ctx.req, method, path: p, rawPath: p, rawQuery: '', query: new Map(), body: null}
  const sub = new RequestContext(ctx.runtime, req, ctx.tx, ctx.bound, ctx)
  sub.params = {...ctx.params}
  sub.service = ctx.runtime.router.get('record-object')
  return sub
}

/** upstream's AttachmentRouteFactory: `write` on the record when it exists, `record:create` on its collection otherwise. */
async function prepare(ctx: RequestContext): Promise<AuthorizationContext> {
  const sub = recordContext(ctx, 'PUT')
  const view = sub.service!.views.get('PUT')!
  return (await view.prepare!(sub)) as AuthorizationContext
}

/** The permission check done again before the upload is read, so that nobody writes to disk uninvited. */
async function checkBeforeUpload(ctx: RequestContext): Promise<void> {
  const authz = await prepare(ctx)
  const identity = await ctx.identity()
  const {allowed} = await permits(ctx.settings, ctx.tx.permission, authz, identity.principals)
  if (!allowed) throw identity.userId === null ? unauthorized() : forbidden()
}

const AUTOSAVE = 'attachment:autosave'

/** Writes the record with a sub-request (PATCH, or PUT when missing) as upstream's patch_record. */
async function patchRecord(ctx: RequestContext, body: Record<string, unknown>, createMissing: boolean): Promise<KintoResponse> {
  let saving = ctx.bound.extra.get(AUTOSAVE) as Set<string> | undefined
  if (!saving) ctx.bound.extra.set(AUTOSAVE, (saving = new Set()))
  saving.add(uris(ctx.params).record)
  const headers: Record<string, string | undefined> = {...ctx.req.headers, 'content-type': 'application/json'}
  delete headers['content-length']
  const p = `/${ctx.runtime.routePrefix}${uris(ctx.params).record}`
  const sub = (method: string): KintoRequest => ({
    ...ctx.req,
    multipart: undefined,
    method,
    path: p,
    rawPath: p,
    rawQuery: '',
    query: new Map(),
    headers,
    body: Buffer.from(JSON.stringify(body), 'utf8'),
  })
  let {response} = await ctx.runtime.subrequest(ctx, sub('PATCH'))
  if (response.status === 404 && createMissing) ({response} = await ctx.runtime.subrequest(ctx, sub('PUT')))
  return response
}

/** Fails the request with the sub-request's error (its status and Kinto body). */
function subrequestFailure(response: KintoResponse): HttpError {
  const b = (response.body ?? {}) as {errno?: number; error?: string; message?: string; details?: unknown; info?: string}
  return new HttpError(response.status, {errno: b.errno, error: b.error, message: b.message, details: b.details, info: b.info, headers: response.headers})
}

/** The stored files linked to objects whose `<field>` is one of `uris`; the links are removed. */
async function unlinkFiles(ctx: RequestContext, field: string, uriList: string[]): Promise<Array<{location: string; bucket: string; collection: string}>> {
  if (uriList.length === 0) return []
  const filters = [{field, operator: 'in' as const, value: uriList}]
  const links: KintoObject[] = []
  // Links written by kinto-attachment before 9.0 (resource name '') count too: upstream's
  // `kinto migrate` renames them, ours never did, and their files would outlive their records.
  for (const name of [LINKS, LEGACY_LINKS]) {
    const found = await ctx.tx.storage.list(name, LINKS_PARENT, {filters})
    if (found.length > 0) await ctx.tx.storage.deleteAll(name, LINKS_PARENT, {filters, withDeleted: false})
    links.push(...found)
  }
  return links.map((l: KintoObject) => {
    const parts = String(l.collection_uri ?? '').split('/')
    return {location: String(l.location), bucket: parts[2] ?? '', collection: parts[4] ?? ''}
  })
}

/** After the commit, removes the files of removed links (unless keep_old_files applies to them). */
function removeAfterCommit(ctx: RequestContext, a: AttachmentRuntime, files: Array<{location: string; bucket: string; collection: string}>): void {
  const doomed = files.filter((f) => !optionsFor(a.settings, f.bucket, f.collection).keepOldFiles)
  if (doomed.length === 0) return
  const bound = ctx.bound
  bound.afterTransaction.push(async () => {
    if (bound.abort) return
    for (const f of doomed) await a.store.delete(f.location)
  })
}

function postView(a: AttachmentRuntime): ViewDef {
  const upload = async (ctx: RequestContext): Promise<{received: ReceivedUpload; folder: string}> => {
    const memo = ctx.req.multipart ? uploads.get(ctx.req.multipart) : undefined
    if (memo) return memo
    const multipart = ctx.req.multipart
    if (!multipart) throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Content-Type should be multipart/form-data'})
    const options = optionsFor(a.settings, ctx.params.bucket_id, ctx.params.collection_id)
    const folder = folderFor(options.folder, ctx.params)
    const state: UploadState = {committed: false, location: null}
    states.set(multipart, state)
    const pending = receiveUpload(multipart, a.store, a.settings, options, folder).then((received) => {
      // Whatever happens next, a file not committed with its record is removed.
      multipart.settlers.push(async () => {
        if (!state.committed) {
          await a.store.delete(path.relative(a.store.basePath, received.file.tempPath)).catch(() => undefined)
          if (state.location) await a.store.delete(state.location).catch(() => undefined)
        }
      })
      return {received, folder}
    })
    const result = await pending
    uploads.set(multipart, result)
    return result
  }
  return {
    method: 'POST',
    permission: 'dynamic',
    prepare,
    async beforeTransaction(ctx) {
      // Stream the file before the transaction opens: a slow upload holds no database connection.
      if (!ctx.req.multipart) return
      await checkBeforeUpload(ctx)
      await upload(ctx)
    },
    async handler(ctx): Promise<ViewResult> {
      const {received, folder} = await upload(ctx)
      const state = states.get(ctx.req.multipart!)!
      const options = optionsFor(a.settings, ctx.params.bucket_id, ctx.params.collection_id)
      if (!state.location) {
        const name = newFileName(options, received.file.filename, ctx.params.id)
        state.location = await a.store.commit(received.file.tempPath, folder, name)
      }
      const attachment: Record<string, unknown> = {
        filename: received.file.filename,
        hash: received.file.hash,
        location: locationUrl(a.settings.baseUrl, state.location),
        mimetype: received.file.mimetype,
        size: received.file.size,
      }
      if (received.file.original) attachment.original = received.file.original
      const body: Record<string, unknown> = {data: {...received.data, [FILE_FIELD]: attachment}}
      if (received.permissions) body.permissions = received.permissions
      // The record first: on PostgreSQL its row lock orders concurrent uploads to one record, so
      // the links read next include those of an upload that committed meanwhile.
      const response = await patchRecord(ctx, body, true)
      if (response.status >= 400) throw subrequestFailure(response)
      const u = uris(ctx.params)
      removeAfterCommit(ctx, a, await unlinkFiles(ctx, 'record_uri', [u.record]))
      await ctx.tx.storage.create(LINKS, LINKS_PARENT, {location: state.location, bucket_uri: u.bucket, collection_uri: u.collection, record_uri: u.record})
      const bound = ctx.bound
      bound.afterTransaction.push(async () => {
        if (!bound.abort) state.committed = true
      })
      // Absolute, as upstream's web framework sends a Location.
      const headers: Record<string, string> = {Location: ctx.absoluteUrl(u.record), ...recordTimestampHeaders(response)}
      return {status: response.status, body: attachment, headers}
    },
  }
}

interface UploadState {
  committed: boolean
  /** The file's location relative to base_path once it has its final name. */
  location: string | null
}
const states = new WeakMap<object, UploadState>()
const uploads = new WeakMap<object, {received: ReceivedUpload; folder: string}>()

function deleteView(a: AttachmentRuntime): ViewDef {
  return {
    method: 'DELETE',
    permission: 'dynamic',
    prepare,
    async handler(ctx): Promise<ViewResult> {
      const u = uris(ctx.params)
      const response = await patchRecord(ctx, {data: {[FILE_FIELD]: null}}, false)
      if (response.status >= 400) throw subrequestFailure(response)
      removeAfterCommit(ctx, a, await unlinkFiles(ctx, 'record_uri', [u.record]))
      return {status: 204, headers: recordTimestampHeaders(response)}
    },
  }
}

/** The written record's ETag and Last-Modified, which upstream's answers to POST and DELETE carry. */
function recordTimestampHeaders(response: {headers: Record<string, string>}): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const h of ['ETag', 'Last-Modified']) if (response.headers[h]) headers[h] = response.headers[h]
  return headers
}

/** upstream's on_delete_record: deleted records, collections, buckets take their files. */
async function onDeleted(a: AttachmentRuntime, event: ResourceEvent, ctx: RequestContext): Promise<void> {
  const p = event.payload
  const objectUri = (obj: Record<string, unknown>): string => {
    if (event.resourceName === 'bucket') return `/buckets/${String(obj.id)}`
    if (event.resourceName === 'collection') return `/buckets/${String(p.bucket_id)}/collections/${String(obj.id)}`
    return `/buckets/${String(p.bucket_id)}/collections/${String(p.collection_id)}/records/${String(obj.id)}`
  }
  const list = event.impacted.map((i) => objectUri(i.old ?? i.new))
  removeAfterCommit(ctx, a, await unlinkFiles(ctx, `${event.resourceName}_uri`, list))
}

/** upstream's on_update_record: a client may not alter the attachment metadata itself. */
function onUpdated(event: ResourceEvent, ctx: RequestContext): void {
  const saving = ctx.bound.extra.get(AUTOSAVE) as Set<string> | undefined
  const p = event.payload
  for (const change of event.impacted) {
    const uri = `/buckets/${String(p.bucket_id)}/collections/${String(p.collection_id)}/records/${String(change.new.id)}`
    if (saving?.has(uri)) continue
    const before = change.old?.[FILE_FIELD]
    const after = change.new[FILE_FIELD]
    if (before && after && !deepEqual(before, after)) {
      throw new HttpError(400, {message: 'Attachment metadata cannot be modified.'})
    }
  }
}

export function attachmentCapability(settings: AttachmentSettings): Record<string, unknown> & {description: string; url: string} {
  return {
    version: ATTACHMENT_VERSION,
    description: 'Add file attachments to records',
    url: 'https://github.com/Kinto/kinto-attachment/',
    base_url: settings.capabilityBaseUrl,
    gzipped: settings.global.gzipped,
  }
}

/**
 * upstream's heartbeat: a file can be written and removed in base_path (its own folder: a folder
 * made for the check would be left behind, and removing it would race a concurrent check).
 */
function heartbeat(a: AttachmentRuntime) {
  return async (_backends: unknown, readonly: boolean): Promise<boolean> => {
    if (readonly) return true
    const {Readable} = await import('node:stream')
    const written = await a.store.write(Readable.from([Buffer.from('{"test": "write"}')]), '', 0)
    await a.store.delete(path.relative(a.store.basePath, written.tempPath))
    return true
  }
}

/**
 * Upstream times every method of its file storage as `backend.localfilestorage.seconds`
 * (label `method`): storing a file is `save`, removing one `delete`.
 */
function timeStore(runtime: Runtime, store: LocalStore): void {
  const timed = <A extends unknown[], R>(method: string, fn: (...args: A) => Promise<R>) => (...args: A): Promise<R> =>
    measure(
      () => fn(...args),
      (elapsedMs, result, failed) => runtime.hooks.emit('backendCall', {family: 'localfilestorage', method, elapsedMs, result, failed}),
    )
  store.write = timed('save', store.write.bind(store))
  store.delete = timed('delete', store.delete.bind(store))
}

export function includeAttachments(runtime: Runtime, settings: Settings, baseDir?: string): AttachmentRuntime {
  const parsed = readAttachmentSettings(settings)
  // A relative base_path is taken from the ini's folder, as other paths of the ini.
  const a: AttachmentRuntime = {settings: parsed, store: new LocalStore(path.resolve(baseDir ?? '.', parsed.basePath))}
  byRuntime.set(runtime, a)
  if (runtime.hooks.has('backendCall')) timeStore(runtime, a.store)
  if (!parsed.global.randomize || [...parsed.overrides.values()].some((o) => o.randomize === false)) {
    runtime.logger.warn({}, 'kinto.attachment.randomize = false is ignored: kinto-ops never names stored files after the client\'s filename.')
  }
  return a
}

export const attachmentPlugin: KintoPlugin = {
  name: 'kinto_attachment',
  includeme(api) {
    const a = includeAttachments(api.runtime, api.runtime.settings, api.baseDir)
    api.addService({
      name: 'attachment',
      pattern: `${RECORD_PATTERN}/attachment`,
      views: new Map([
        ['POST', postView(a)],
        ['DELETE', deleteView(a)],
      ]),
    })
    api.runtime.addCapability('attachments', attachmentCapability(a.settings))
    api.runtime.heartbeats.set('attachments', heartbeat(a))
    api.runtime.events.onChanged({resources: ['record', 'collection', 'bucket'], actions: ['delete']}, (event, ctx) => onDeleted(a, event, ctx))
    api.runtime.events.onChanged({resources: ['record'], actions: ['update']}, (event, ctx) => onUpdated(event, ctx))
  },
}

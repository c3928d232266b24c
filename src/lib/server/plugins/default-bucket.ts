/**
 * kinto.plugins.default_bucket: `/buckets/default[/…]` is each user's
 * personal bucket. Its id is the first 32 hex digits of HMAC-SHA256(default_bucket_hmac_secret,
 * user id), shaped as a UUID, so upstream Kinto and kinto-ops give a user the same bucket.
 *
 * A request on it creates the bucket (and the collection it names) when missing — with their
 * create events, so history sees them — then runs as a sub-request on the real path, in the same
 * transaction. Implicit creations need no permission (the bucket belongs to its user).
 */
import {createHmac} from 'node:crypto'

import {asBool, asInt, asString, type Settings} from '../../config/settings.js'
import {UnicityError, getOrNull, type KintoObject} from '../../storage/types.js'
import {RequestContext} from '../context.js'
import {invalid, methodNotAllowed, unauthorized} from '../errors.js'
import {drainEvents} from '../events.js'
import {DEFAULT_EXPOSED_HEADERS} from '../cors.js'
import {redirect} from '../headers.js'
import {stringifyJson} from '../../json.js'
import {isPlainObject} from '../patch.js'
import {PERMISSIONS_FIELD, type ResourceDefinition} from '../resource/definition.js'
import {consumeTokenNonce} from '../resource/pagination.js'
import {ResourceRequest} from '../resource/request.js'
import {bucketResource, collectionResource} from '../resources.js'
import {findView, type ViewDef} from '../router.js'
import type {KintoRequest, ViewResult} from '../types.js'
import type {KintoPlugin} from './index.js'

/** The personal bucket id of a (prefixed) user id. */
export function defaultBucketId(settings: Settings, userId: string): string {
  const secret = asString(settings, 'default_bucket_hmac_secret') ?? ''
  const hex = createHmac('sha256', Buffer.from(secret, 'utf8')).update(userId, 'utf8').digest('hex').slice(0, 32)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const CREATED = 'default_bucket:created'

/** Names created implicitly in this request (a batch creates each once). */
function createdSet(ctx: RequestContext): Set<string> {
  let set = ctx.bound.extra.get(CREATED) as Set<string> | undefined
  if (!set) ctx.bound.extra.set(CREATED, (set = new Set()))
  return set
}

/**
 * Creates one object as a PUT on its URI would (ACL with the caller as writer, create event),
 * unless it exists. Returns the object created, or null.
 */
async function implicitCreate(
  ctx: RequestContext,
  def: ResourceDefinition,
  params: Record<string, string>,
  uri: string,
): Promise<KintoObject | null> {
  const path = `/${ctx.runtime.routePrefix}${uri}`
  const req: KintoRequest = {...ctx.req, method: 'PUT', path, rawPath: path, rawQuery: '', query: new Map(), body: null}
  const fake = new RequestContext(ctx.runtime, req, ctx.tx, ctx.bound, ctx)
  fake.params = params
  fake.service = ctx.runtime.router.get(`${def.name}-object`)
  await fake.identity()
  const r = new ResourceRequest(fake, def, 'object')
  if (!r.idGenerator.match(params.id)) throw invalid('path', null, `Invalid ${def.name} id`)
  let created
  try {
    created = await r.createObject({id: params.id})
  } catch (err) {
    if (err instanceof UnicityError) return null
    throw err
  }
  await r.postprocess(created, 'create')
  const {[PERMISSIONS_FIELD]: _perms, ...obj} = created
  return obj as KintoObject
}

/**
 * A DELETE of the bucket or of one of its collections: the sub-requests of the batch after it
 * must make it again (upstream's memo keeps it as made, and they then write below an object that
 * is gone: a 403, or records in a bucket that no longer exists).
 */
function forgetDeleted(ctx: RequestContext, created: Set<string>, bucketUri: string): void {
  if (ctx.method !== 'DELETE') return
  const subpath = ctx.params.subpath?.replace(/\/+$/, '')
  if (subpath === undefined || subpath === '') {
    for (const uri of [...created]) if (uri === bucketUri || uri.startsWith(`${bucketUri}/`)) created.delete(uri)
    return
  }
  const match = /^collections\/([^/]+)$/.exec(subpath)
  if (match) created.delete(`${bucketUri}/collections/${match[1]}`)
}

/** What the request needs created: the bucket unless it is this very PUT, and the collection it names. */
function implicitTargets(ctx: RequestContext): {bucket: boolean; collectionId: string | null} {
  const subpath = ctx.params.subpath
  const bucket = !(ctx.method === 'PUT' && subpath === undefined)
  let collectionId: string | null = null
  if (subpath !== undefined && subpath.replace(/\/+$/, '').startsWith('collections/')) {
    const cid = subpath.split('/')[1]
    const isThisPut = ctx.method === 'PUT' && subpath.replace(/\/+$/, '') === `collections/${cid}`
    if (cid && !isThisPut) collectionId = cid
  }
  return {bucket, collectionId}
}

async function createImplicitObjects(ctx: RequestContext, bucketId: string): Promise<void> {
  await createMissing(ctx, bucketId)
  forgetDeleted(ctx, createdSet(ctx), `/buckets/${bucketId}`)
}

async function createMissing(ctx: RequestContext, bucketId: string): Promise<void> {
  const created = createdSet(ctx)
  const bucketUri = `/buckets/${bucketId}`
  const targets = implicitTargets(ctx)
  const wantBucket = targets.bucket && !created.has(bucketUri)
  const collectionUri = targets.collectionId === null ? null : `${bucketUri}/collections/${targets.collectionId}`
  const wantCollection = collectionUri !== null && !created.has(collectionUri)
  if (!wantBucket && !wantCollection) return

  const run = async () => {
    if (wantBucket) {
      const bucket = await implicitCreate(ctx, bucketResource, {id: bucketId}, bucketUri)
      created.add(bucketUri)
      if (bucket) {
        let buckets = ctx.bound.extra.get('buckets') as Map<string, KintoObject> | undefined
        if (!buckets) ctx.bound.extra.set('buckets', (buckets = new Map()))
        buckets.set(bucketId, bucket)
      }
    }
    if (wantCollection) {
      const params = {bucket_id: bucketId, id: targets.collectionId!}
      const collection = await implicitCreate(ctx, collectionResource, params, collectionUri)
      created.add(collectionUri)
      if (collection) ctx.bound.collections.set(collectionUri, collection)
    }
  }

  if (ctx.tx !== ctx.runtime.backends) {
    await run() // already in the request's transaction
    return
  }
  // A read (GET) runs without a transaction: look first, and create what is missing in one.
  const missingBucket = wantBucket && (await getOrNull(ctx.tx.storage, 'bucket', '', bucketId)) === null
  const missingCollection = wantCollection && (await getOrNull(ctx.tx.storage, 'collection', bucketUri, targets.collectionId!)) === null
  if (!missingBucket && !missingCollection) {
    if (wantBucket) created.add(bucketUri)
    if (wantCollection) created.add(collectionUri!)
    return
  }
  await ctx.runtime.backends.transaction(async (tx) => {
    const plain = ctx.tx
    ctx.tx = tx
    try {
      await run()
      // Their events (history…) are written in the same transaction.
      await drainEvents(ctx.runtime.events, ctx.bound.events, ctx)
    } finally {
      ctx.tx = plain
    }
  })
}

/** The request body with `default` in data.id replaced by the bucket id (upstream). */
function rewrittenBody(ctx: RequestContext, bucketId: string): {body: Buffer; json: boolean} {
  const raw = ctx.req.body
  if (!raw || raw.length === 0) return {body: Buffer.from('{"data":{}}'), json: true}
  let parsed: unknown
  try {
    parsed = ctx.body()
  } catch {
    return {body: raw, json: false}
  }
  if (isPlainObject(parsed) && isPlainObject(parsed.data) && typeof parsed.data.id === 'string') {
    const data = {...parsed.data, id: parsed.data.id.replaceAll('default', bucketId)}
    return {body: Buffer.from(stringifyJson({...parsed, data}), 'utf8'), json: true}
  }
  return {body: raw, json: false}
}

/** The request on the personal bucket's real path (`default` replaced by its id). */
function realPaths(ctx: RequestContext, bucketId: string): {path: string; rawPath: string} {
  const prefix = `/${ctx.runtime.routePrefix}/buckets/`
  const replace = (p: string) => p.replace(`${prefix}default`, `${prefix}${bucketId}`)
  return {path: replace(ctx.req.path), rawPath: replace(ctx.req.rawPath)}
}

/**
 * An upload (a multipart body, kinto_attachment) is read before the transaction opens, as on
 * the real path: the bucket and collection are created first (in a transaction of their own, as
 * for a read), then the real view's own pre-transaction step runs.
 */
async function beforeUpload(ctx: RequestContext): Promise<void> {
  if (!ctx.req.multipart) return
  const identity = await ctx.identity()
  if (identity.userId === null || ctx.runtime.readonly) return
  const bucketId = defaultBucketId(ctx.settings, identity.userId)
  const real = realPaths(ctx, bucketId)
  const match = ctx.runtime.route(real.path)
  const view = match ? findView(match.service, ctx.req.method) : undefined
  if (!match || !view?.beforeTransaction) return
  await createImplicitObjects(ctx, bucketId)
  const sub = new RequestContext(ctx.runtime, {...ctx.req, ...real}, ctx.tx, ctx.bound, ctx)
  sub.params = match.params
  sub.service = match.service
  sub.view = view
  await view.beforeTransaction(sub)
}

async function defaultBucketView(ctx: RequestContext): Promise<ViewResult> {
  const identity = await ctx.identity()
  if (identity.userId === null) throw unauthorized()
  if (ctx.runtime.readonly) throw methodNotAllowed()
  if (ctx.req.path.endsWith('/') && asBool(ctx.settings, 'trailing_slash_redirect_enabled')) {
    // As upstream: the alias itself is redirected (`/buckets/default/` → `/buckets/default`), with
    // the answer of every trailing-slash redirect (upstream's not-found view makes it, outside any
    // service: the default exposed headers).
    const ttl = asInt(ctx.settings, 'trailing_slash_redirect_ttl_seconds', 3600) ?? 3600
    const response = redirect(ctx.req, ctx.req.rawPath.replace(/\/+$/, '') + (ctx.req.rawQuery ? `?${ctx.req.rawQuery}` : ''), ttl)
    response.headers['Access-Control-Expose-Headers'] = DEFAULT_EXPOSED_HEADERS.join(',')
    return response
  }
  const bucketId = defaultBucketId(ctx.settings, identity.userId)
  // A method the real endpoint has no view for: upstream's sub-request raises its 405, which rolls
  // the implicit creations back (a plural PUT makes no personal bucket). Not in a batch, whose
  // view turns it into a sub-response and keeps them.
  const real = realPaths(ctx, bucketId)
  const target = ctx.runtime.route(real.path)
  if (ctx.parent || !target || findView(target.service, ctx.req.method)) await createImplicitObjects(ctx, bucketId)

  const {body, json} = rewrittenBody(ctx, bucketId)
  const headers = {...ctx.req.headers}
  delete headers['content-length']
  if (json && !(ctx.req.body && ctx.req.body.length > 0)) headers['content-type'] = 'application/json'
  // A rewritten body is UTF-8, whatever charset the client's was in.
  else if (json && headers['content-type']) headers['content-type'] = headers['content-type'].replace(/;\s*charset\s*=\s*("[^"]*"|[^;]*)/i, '; charset=utf-8')
  const sub: KintoRequest = {...ctx.req, ...real, headers, body}
  const {response} = await ctx.runtime.subrequest(ctx, sub)
  return {status: response.status, headers: response.headers, body: response.body}
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']
/**
 * What the replayed views may expose to browsers (lists and objects): a preflight's allowed
 * headers. A replayed answer keeps its view's exposed headers; the alias' own errors get the defaults.
 */
const EXPOSED = ['Next-Page', 'Last-Modified', 'ETag', 'Cache-Control', 'Expires', 'Pragma', 'Total-Objects', 'Total-Records']

function views(): Map<string, ViewDef> {
  return new Map(
    METHODS.map((method) => {
      const view: ViewDef = {method, permission: 'public', corsHeaders: EXPOSED, replaysExposedHeaders: true, checksOrigin: true, handler: defaultBucketView}
      // A list DELETE's pagination token is taken from the cache before the transaction.
      if (method === 'DELETE') view.beforeTransaction = (ctx) => consumeTokenNonce(ctx, ctx.req.query)
      if (method === 'POST') view.beforeTransaction = beforeUpload
      return [method, view]
    }),
  )
}

export const defaultBucketPlugin: KintoPlugin = {
  name: 'kinto.plugins.default_bucket',
  includeme(api) {
    api.addService({name: 'default_bucket', pattern: '/buckets/default', views: views(), matchFirst: true, openapi: false})
    api.addService({name: 'default_bucket_collection', pattern: '/buckets/default/{subpath*}', views: views(), matchFirst: true, openapi: false})
    api.addUserInfo(async (ctx, info) => {
      const identity = await ctx.identity()
      if (identity.userId) info.bucket = defaultBucketId(ctx.settings, identity.userId)
    })
    api.runtime.addCapability('default_bucket', {
      description: 'The default bucket is an alias for a personal bucket where collections are created implicitly.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/buckets.html#personal-bucket-default',
    })
  },
}

/**
 * `POST /batch`: sub-requests run in the batch's one transaction, each through the runtime as a
 * request of its own (upstream's kinto/core/views/batch.py).
 */
import {asInt} from '../config/settings.js'
import type {BatchWrite} from './auth.js'
import {RequestContext, mediaType} from './context.js'
import {originRefused} from './cors.js'
import {ERRNO, HttpError, integrityError, invalid, invalidParameters, type ValidationIssue} from './errors.js'
import {stringifyJson} from '../json.js'
import {isPlainObject, ownValue, setOwn} from './patch.js'
import {parseQuery} from './querystring.js'
import {consumeTokenNonce} from './resource/pagination.js'
import {drainEvents} from './events.js'
import {Turns} from './batch-turns.js'
import {batchBackends} from './prefetch.js'
import {colanderStringError, isPythonStr, pyRepr} from './py-repr.js'
import {writeTarget} from './resource/services.js'
import {decodePath, type OpenApiHints, type Service} from './router.js'
import type {Runtime} from './runtime.js'
import type {KintoRequest, KintoResponse} from './types.js'
import {service} from './views.js'

const BATCH_METHODS = ['GET', 'HEAD', 'DELETE', 'TRACE', 'POST', 'PUT', 'PATCH']

/** upstream's merge_dicts: fills missing keys of `a` from `b`, recursively, never overwriting. */
function mergeDefaults(a: Record<string, unknown>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) {
    // Own members only (`__proto__`, `toString`… are keys like any other): merging into
    // a[`__proto__`] would write into Object.prototype for the whole process.
    if (isPlainObject(v)) {
      if (!isPlainObject(ownValue(a, k))) {
        if (Object.hasOwn(a, k)) continue
        setOwn(a, k, {})
      }
      mergeDefaults(a[k] as Record<string, unknown>, v)
    } else if (!Object.hasOwn(a, k)) {
      setOwn(a, k, v)
    }
  }
}

interface SubrequestSpec {
  method: string
  path: string
  headers: Record<string, string>
  body?: Record<string, unknown>
}

function validateBatchRequest(spec: unknown, where: string, issues: ValidationIssue[], pathRequired: boolean): SubrequestSpec | null {
  if (!isPlainObject(spec)) {
    issues.push({location: 'body', name: where, description: `"${pyRepr(spec)}" is not a mapping type: Does not implement dict-like functionality.`})
    return null
  }
  const unknown = Object.keys(spec).filter((k) => !['method', 'path', 'headers', 'body'].includes(k))
  if (unknown.length > 0) {
    issues.push({location: 'body', name: where, description: `Unrecognized keys in mapping: "${pyRepr(Object.fromEntries(unknown.map((k) => [k, spec[k]])))}"`})
  }
  // colander String nodes: a value Python reads as false is missing (an optional one is dropped:
  // a method of "" or null is GET), another non-string is refused.
  const methodError = colanderStringError(spec.method, 'method')
  if (methodError === undefined && !BATCH_METHODS.includes(spec.method as string)) {
    issues.push({location: 'body', name: `${where}.method`, description: `"${pyRepr(spec.method)}" is not one of ${BATCH_METHODS.join(', ')}`})
  } else if (methodError !== undefined && methodError !== 'Required') {
    issues.push({location: 'body', name: `${where}.method`, description: methodError})
  }
  const pathError = colanderStringError(spec.path, 'path')
  if (pathError === undefined && !(spec.path as string).startsWith('/')) {
    issues.push({location: 'body', name: `${where}.path`, description: 'String does not match expected pattern'})
  } else if (pathError !== undefined && (pathRequired || pathError !== 'Required')) {
    issues.push({location: 'body', name: `${where}.path`, description: pathError})
  }
  if (spec.headers !== undefined) {
    if (!isPlainObject(spec.headers)) {
      issues.push({location: 'body', name: `${where}.headers`, description: `"${pyRepr(spec.headers)}" is not a mapping type: Does not implement dict-like functionality.`})
    } else if (!Object.values(spec.headers).every(isPythonStr)) {
      issues.push({location: 'body', name: `${where}.headers`, description: `${pyRepr(spec.headers)} contains non string value`})
    } else {
      for (const [k, v] of Object.entries(spec.headers)) {
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n\0]/.test(v as string)) {
          issues.push({location: 'body', name: `${where}.headers`, description: `Invalid header ${pyRepr(k)}`})
        }
      }
    }
  }
  if (spec.body !== undefined && !isPlainObject(spec.body)) {
    issues.push({location: 'body', name: `${where}.body`, description: `"${pyRepr(spec.body)}" is not a mapping type: Does not implement dict-like functionality.`})
  }
  return {
    method: methodError === 'Required' ? 'GET' : (spec.method as string),
    path: spec.path as string,
    headers: (spec.headers as Record<string, string> | undefined) ?? {},
    body: spec.body as Record<string, unknown> | undefined,
  }
}

export function batchService(runtime: Runtime): Service {
  return service('batch', '/batch', [
    {
      method: 'POST',
      permission: 'public',
      contentTypes: ['application/json'],
      parseBody: true,
      checksOrigin: true,
      beforeTransaction: async (ctx) => {
        if (runtime.cors.refusal(ctx.req)) return // refused by the handler
        let specs: SubrequestSpec[]
        try {
          specs = batchSpecs(ctx)
        } catch {
          return // reported by the handler
        }
        const writes: BatchWrite[] = []
        for (const spec of specs) {
          // Sub-requests with credentials of their own are authenticated now, before the
          // transaction: policies may use the cache (accounts), which PGlite's single connection
          // cannot serve while the transaction holds it. Not those whose credentials an earlier
          // write of the batch makes (a new account): they are authenticated at their turn.
          const auth = Object.entries(spec.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1]
          if (auth !== undefined && !ctx.bound.identities.has(auth)) {
            const headers = {...ctx.req.headers, authorization: auth}
            if (!runtime.policies.some((p) => p.readsBatchWrites?.(headers, writes))) {
              await new RequestContext(runtime, {...ctx.req, headers}, ctx.tx, ctx.bound, ctx).identity()
            }
          }
          if (spec.method !== 'GET' && spec.method !== 'HEAD') writes.push({method: spec.method, path: spec.path, body: spec.body})
          if (spec.method !== 'DELETE' || !spec.path.includes('?')) continue
          await consumeTokenNonce(ctx, parseQuery(spec.path.slice(spec.path.indexOf('?') + 1)))
        }
      },
      handler: async (ctx) => {
        const refusal = runtime.cors.refusal(ctx.req)
        if (refusal) throw originRefused(refusal, () => batchSpecs(ctx))
        const specs = batchSpecs(ctx)
        // 0 or empty (null): no limit, as upstream's falsy test
        const limit = asInt(runtime.settings, 'batch_max_requests', 0)
        if (limit && specs.length > limit) throw invalid('body', 'requests', `Number of requests is limited to ${limit}`)
        const targets = specs.map((s) => subrequestTarget(runtime, s.path))
        if (targets.some((t) => t?.name === 'batch')) {
          throw invalid('body', 'requests', 'Recursive call on /batch endpoint is forbidden.')
        }
        const privateIssues: ValidationIssue[] = []
        targets.forEach((t, i) => {
          if (t && isPrivateService(t)) {
            privateIssues.push({location: 'body', name: `requests.${i}.path`, description: `${t.pattern} cannot be reached through /batch.`})
          }
        })
        if (privateIssues.length > 0) throw invalidParameters(privateIssues)
        await lockWriteTargets(ctx, runtime, specs)
        // Sub-requests share the batch's permission checks (prefetch.ts batchBackends).
        ctx.tx = batchBackends(ctx.tx, () => !ctx.bound.abort)
        const responses = []
        // Each sub-request is built once: run detection builds those it looks at (the first of
        // a run that does not start, the one that ends a run) and the loop uses what it built.
        const built: Built[] = []
        const build = (i: number): Built => (built[i] ??= tryBuildSubrequest(ctx, specs[i], runtime.routePrefix))
        for (let i = 0; i < specs.length; ) {
          if (ctx.bound.abort) {
            // A 409 rolled the batch back: what comes after is not run (on PostgreSQL the
            // transaction is failed; elsewhere its writes would be answered 2xx, then undone). Each
            // answers the conflict too. Upstream runs them in a new transaction and keeps them,
            // while the sub-requests before the 409 are undone.
            for (; i < specs.length; i++) {
              const one = build(i)
              const path = 'sub' in one ? one.sub.path : specs[i].path
              const failed = runtime.errorResponse(integrityError(runtime.retryAfter), {...ctx.req, method: specs[i].method, path, rawPath: path})
              responses.push({status: failed.status, path, headers: failed.headers, body: failed.body ?? ''})
            }
            break
          }
          const first = build(i)
          if ('sub' in first && !ctx.bound.abort && reachesPendingDeletion(ctx, runtime, first.sub.path)) {
            await drainEvents(runtime.events, ctx.bound.events, ctx)
          }
          const run = createRun(ctx, runtime, specs, i, build)
          if (run) {
            // Consecutive creates in one list: their INSERTs and ACEs written together (batch-turns.ts).
            const turns = new Turns(ctx.tx, run.list, run.ids)
            const batchTx = ctx.tx
            ctx.tx = turns.tx
            let outcomes
            try {
              outcomes = await turns.run(ctx.bound.events, run.subs.length, (k, ready) => runtime.subrequest(ctx, run.subs[k], ready))
            } finally {
              ctx.tx = batchTx
            }
            for (const outcome of outcomes) {
              if ('error' in outcome) throw outcome.error
              responses.push(batchResponse(outcome.value))
            }
            i += run.subs.length
            continue
          }
          const spec = specs[i]
          const one = build(i++)
          if ('error' in one) {
            // A path that is not UTF-8: that sub-request's own 400.
            const failed = runtime.errorResponse(one.error, {...ctx.req, method: spec.method, path: spec.path, rawPath: spec.path})
            responses.push({status: failed.status, path: spec.path, headers: failed.headers, body: failed.body ?? ''})
            continue
          }
          responses.push(batchResponse(await runtime.subrequest(ctx, one.sub)))
        }
        return {body: {responses}}
      },
    },
  ], {openapi: BATCH_OPENAPI})
}

/** `/__api__`'s batch operation, named as upstream's (tag Batch, operationId batch). */
const BATCH_OPENAPI: OpenApiHints = {
  tags: ['Batch'],
  operationIds: {POST: 'batch'},
  responses: {'200': 'The answer of each sub-request, in order.', '400': 'The batch is invalid.', default: 'An error.'},
  body: {
    name: 'BatchPayloadSchema',
    schema: (() => {
      const request = (pathRequired: boolean) => ({
        type: 'object',
        properties: {
          method: {type: 'string', enum: BATCH_METHODS},
          path: {type: 'string', pattern: '^/'},
          headers: {type: 'object', additionalProperties: {type: 'string'}},
          body: {type: 'object'},
        },
        ...(pathRequired ? {required: ['path']} : {}),
        additionalProperties: false,
      })
      return {type: 'object', properties: {defaults: request(false), requests: {type: 'array', items: request(true)}}, required: ['requests'], additionalProperties: false}
    })(),
  },
}

/**
 * Whether a sub-request reaches (at or below) a bucket, collection or group that an earlier
 * sub-request of the batch deleted, while that deletion's event still waits for the end of the
 * batch. Its cascade (the children and ACEs of the deleted object) must run first: run at the
 * end, it would also delete what the batch made there again after the deletion (the bucket's new
 * ACEs, its new collections and records), as upstream's does. `/buckets/default` may name any
 * bucket.
 */
function reachesPendingDeletion(ctx: RequestContext, runtime: Runtime, path: string): boolean {
  const prefix = `/${runtime.routePrefix}`
  const uri = path.startsWith(prefix + '/') ? path.slice(prefix.length) : path
  for (const event of ctx.bound.events.pending()) {
    if (event.action !== 'delete') continue
    const plural = {bucket: '/buckets', collection: `${event.parentId}/collections`, group: `${event.parentId}/groups`}[event.resourceName]
    if (plural === undefined) continue
    if (uri === '/buckets/default' || uri.startsWith('/buckets/default/')) return true
    for (const {old} of event.impacted) {
      const deleted = `${plural}/${(old ?? {}).id as string}`
      if (uri === deleted || uri.startsWith(deleted + '/')) return true
    }
  }
  return false
}

/** A sub-response as the batch answers it. */
function batchResponse({response, req}: {response: KintoResponse; req: KintoRequest}) {
  const body = req.method === 'HEAD' ? '' : (response.body ?? '')
  // The length its body would have had as a response of its own, as upstream reports.
  const headers = body === '' ? response.headers : {...response.headers, 'Content-Length': String(Buffer.byteLength(stringifyJson(body)))}
  return {status: response.status, path: req.path, headers, body}
}

/**
 * The run of sub-requests from `start` whose creates can be written together (batch-turns.ts),
 * when there are two or more: record POSTs to one list whose reads before their INSERT do not
 * depend on the creates before them in the run: no `last_modified` in the data (it would read
 * the list timestamp), no If-Match / If-None-Match (a 412 reads it too), ids that differ, and an
 * id only when nobody listens to reads (an existing id answers with a read event, which would
 * come before the run's earlier create events). `ids`: the run's ids (strings), read together.
 */
function createRun(
  ctx: RequestContext,
  runtime: Runtime,
  specs: SubrequestSpec[],
  start: number,
  /** The sub-request of spec i, built once per batch (the loop runs what this builds). */
  build: (i: number) => Built,
): {list: {resourceName: string; parentId: string}; subs: KintoRequest[]; ids: string[]} | null {
  if (!Turns.offered(ctx.tx)) return null
  const subs: KintoRequest[] = []
  const ids = new Set<string>()
  const given: string[] = []
  let list: [string, string] | null = null
  for (let i = start; i < specs.length; i++) {
    const spec = specs[i]
    if (spec.method !== 'POST' || !isPlainObject(spec.body) || !isPlainObject(spec.body.data)) break
    const data = spec.body.data
    if (data.last_modified !== undefined) break
    if (Object.hasOwn(data, 'id')) {
      const id = JSON.stringify(data.id)
      if (ids.has(id) || runtime.events.listensTo('read')) break
      ids.add(id)
    }
    const one = build(i)
    if ('error' in one) break
    const {sub} = one
    if (sub.headers['if-match'] !== undefined || sub.headers['if-none-match'] !== undefined) break
    const matched = runtime.route(sub.path)
    const target = matched?.service.resourceName === 'record' && matched.service.endpointType === 'plural' ? writeTarget(matched.service, 'POST', matched.params) : null
    if (!target || (list && (target[0] !== list[0] || target[1] !== list[1]))) break
    list = target
    subs.push(sub)
    if (typeof data.id === 'string') given.push(data.id)
  }
  return list && subs.length >= 2 ? {list: {resourceName: list[0], parentId: list[1]}, subs, ids: given} : null
}

/** The validated sub-requests of a batch body (defaults merged), parsed once per request. */
function batchSpecs(ctx: RequestContext): SubrequestSpec[] {
  const cached = ctx.locals.get('batch:specs') as SubrequestSpec[] | undefined
  if (cached) return cached
  const body = ctx.body()
  if (!isPlainObject(body)) {
    throw invalid('body', '', `"${pyRepr(body)}" is not a mapping type: Does not implement dict-like functionality.`)
  }
  const issues: ValidationIssue[] = []
  const unknown = Object.keys(body).filter((k) => k !== 'defaults' && k !== 'requests')
  if (unknown.length > 0) {
    issues.push({location: 'body', name: '', description: `Unrecognized keys in mapping: "${pyRepr(Object.fromEntries(unknown.map((k) => [k, body[k]])))}"`})
  }
  const defaults = body.defaults
  const requests = body.requests
  if (requests === undefined) issues.push({location: 'body', name: 'requests', description: 'Required'})
  else if (!Array.isArray(requests)) issues.push({location: 'body', name: 'requests', description: `"${pyRepr(requests)}" is not iterable`})
  if (defaults !== undefined) validateBatchRequest(defaults, 'defaults', issues, false)
  const specs: SubrequestSpec[] = []
  if (Array.isArray(requests)) {
    requests.forEach((request, i) => {
      if (isPlainObject(defaults) && isPlainObject(request)) mergeDefaults(request, defaults)
      const spec = validateBatchRequest(request, `requests.${i}`, issues, true)
      if (spec) specs.push(spec)
    })
  }
  if (issues.length > 0) throw invalidParameters(issues)
  ctx.locals.set('batch:specs', specs)
  return specs
}

/**
 * The service a sub-request path reaches, decoded as the sub-request will be and with the
 * trailing slashes its redirect would drop; null when nothing matches (or the path is not UTF-8).
 * Upstream tests `'/batch' in path` on the raw path, which misses `/%62atch` (a batch inside a
 * batch, whose `defaults` multiply the work at each level) and refuses `/buckets/batched/…`.
 */
function subrequestTarget(runtime: Runtime, path: string): Service | null {
  return subrequestMatch(runtime, path)?.service ?? null
}

function subrequestMatch(runtime: Runtime, path: string): {service: Service; params: Record<string, string>} | null {
  const {rawPath} = splitTarget(path, runtime.routePrefix)
  let decoded: string
  try {
    decoded = decodePath(rawPath)
  } catch {
    return null
  }
  return runtime.route(decoded, true)
}

/**
 * Takes, in one global order, the list locks of every write of the batch before running any
 * (when it writes to two lists or more):
 * two batches writing the same lists in opposite orders would otherwise each hold one lock and
 * wait for the other's (a deadlock PostgreSQL breaks by aborting one). Locks taken later (a
 * listener's, such as history's) come after all these in every transaction.
 */
async function lockWriteTargets(ctx: RequestContext, runtime: Runtime, specs: SubrequestSpec[]): Promise<void> {
  const lockList = ctx.tx.storage.lockList?.bind(ctx.tx.storage)
  if (!lockList) return
  const lists = new Map<string, [string, string]>()
  for (const spec of specs) {
    const matched = subrequestMatch(runtime, spec.path)
    const target = matched && writeTarget(matched.service, spec.method, matched.params)
    if (target) lists.set(JSON.stringify(target), target)
  }
  // One list: no order to keep. Its lock is taken where the storage needs it (the first write,
  // or a read under the lock before one), so a batch of creates holds it for its INSERT and the
  // rest of the batch, not while each sub-request is validated.
  if (lists.size < 2) return
  for (const key of [...lists.keys()].sort()) await lockList(...lists.get(key)!)
}

/**
 * The `__…__` endpoints (heartbeat, version, flush…): a reverse proxy restricts them by path
 * (`location ~ ^/v[0-9]+/__` in our nginx snippet), which a batch sub-request would get around; upstream
 * lets a batch reach them, we refuse them (400, nothing runs).
 */
function isPrivateService(service: Service): boolean {
  return /^\/__[^/]*__(\/|$)/.test(service.pattern)
}

/** A sub-request path with the version prefix (added when missing), split at `?`. */
function splitTarget(path: string, routePrefix: string): {rawPath: string; rawQuery: string} {
  let target = path
  const apiPrefix = `/${routePrefix}`
  if (!target.startsWith(apiPrefix)) target = apiPrefix + target
  const q = target.indexOf('?')
  return {rawPath: q >= 0 ? target.slice(0, q) : target, rawQuery: q >= 0 ? target.slice(q + 1) : ''}
}

/** A sub-request as built from its spec, or why it could not be (buildSubrequest's error). */
type Built = {sub: KintoRequest} | {error: unknown}

function tryBuildSubrequest(parent: RequestContext, spec: SubrequestSpec, routePrefix: string): Built {
  try {
    return {sub: buildSubrequest(parent, spec, routePrefix)}
  } catch (error) {
    return {error}
  }
}

function buildSubrequest(parent: RequestContext, spec: SubrequestSpec, routePrefix: string): KintoRequest {
  const {rawPath, rawQuery} = splitTarget(spec.path, routePrefix)
  const headers: Record<string, string | undefined> = {...parent.req.headers}
  delete headers['content-length']
  for (const [k, v] of Object.entries(spec.headers)) headers[k.toLowerCase()] = v
  let body: Buffer | null = null
  // An empty object is no body, as upstream's `body or ""` (the default bucket's view then reads
  // the sub-request as bodiless: {"data": {}}).
  if (spec.body !== undefined && Object.keys(spec.body).length > 0) {
    // The body is sent as JSON (upstream's rule), but a PATCH keeps its merge-patch flavour:
    // upstream turns it into a plain JSON PATCH (nested objects replaced, nulls stored).
    const merge = spec.method === 'PATCH' && mediaType(headers['content-type']) === 'application/merge-patch+json'
    headers['content-type'] = `${merge ? 'application/merge-patch+json' : 'application/json'}; charset=utf-8`
    body = Buffer.from(stringifyJson(spec.body), 'utf8')
  }
  const path = decodePath(rawPath)
  // As for a top-level request (app.ts): a NUL never reaches the router nor the database.
  if (path.includes('\u0000')) throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Invalid URL path.'})
  return {
    method: spec.method,
    path,
    rawPath,
    rawQuery,
    query: parseQuery(rawQuery),
    headers,
    body,
    scheme: parent.req.scheme,
    host: parent.req.host,
    scope: parent.req.scope,
  }
}

export {service as defineService}

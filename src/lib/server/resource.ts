/**
 * The resource framework (upstream's kinto.core.resource): one definition gives a plural endpoint
 * (HEAD GET POST DELETE) and an object endpoint (GET PUT PATCH DELETE) with filters, sorting,
 * keyset pagination, `_fields`, concurrency control (ETag, If-Match, If-None-Match), permissions
 * in bodies, ACL bookkeeping and resource events. Buckets, collections, groups and records are
 * definitions (resources.ts); plugins add theirs the same way.
 */
import {randomUUID} from 'node:crypto'

import {asBool, asInt} from '../config/settings.js'
import {
  MISSING,
  ObjectNotFoundError,
  type Filter,
  type JsonValue,
  type KintoObject,
  type Sort,
  type Storage,
  type WriteCondition,
} from '../storage/types.js'
import type {ObjectKey} from '../prefetch.js'
import {EVERYONE, inheritedPermissions, type AuthorizationContext} from './authorization.js'
import type {RequestContext} from './context.js'
import {ERRNO, HttpError, MESSAGES, invalid, invalidParameters, notFoundObject, type ValidationIssue} from './errors.js'
import type {Action} from './events.js'
import type {IdGenerator} from './ids.js'
import {
  applyJsonPatch,
  deepClone,
  deepEqual,
  isPlainObject,
  JsonPatchError,
  recursiveUpdate,
  type PatchOperation,
} from './patch.js'
import {
  encodeQuery,
  extractFields,
  extractFilters,
  extractLimit,
  extractSorting,
  extractToken,
  queryFieldList,
  queryInteger,
  type RawQuery,
} from './querystring.js'
import {prefetchRead} from './prefetch.js'
import {formatPattern, type Service, type ViewDef} from './router.js'
import {cacheExpiresHeaders, timestampHeaders} from './headers.js'
import type {ViewResult} from './types.js'

export const PERMISSIONS_FIELD = '__permissions__'
const JSON_TYPES = ['application/json']
const PATCH_TYPES = ['application/json', 'application/merge-patch+json', 'application/json-patch+json']
const LIST_CORS = ['Next-Page', 'Last-Modified', 'ETag', 'Cache-Control', 'Expires', 'Pragma']
const OBJECT_CORS = ['Last-Modified', 'ETag', 'Cache-Control', 'Expires', 'Pragma']

export type Annotated = KintoObject & {[PERMISSIONS_FIELD]?: Record<string, string[]>}

/** A resource type and what makes it special. */
export interface ResourceDefinition {
  name: string
  /** e.g. `/buckets/{bucket_id}/collections` */
  pluralPath: string
  /** e.g. `/buckets/{bucket_id}/collections/{id}`; null for plural-only resources. */
  objectPath: string | null
  /** Permission names accepted in bodies. */
  permissions: readonly string[]
  /**
   * Parent id of the objects (`/buckets/b1`), from the route params. For resources whose parent
   * depends on the caller (accounts), declare the `ctx` parameter: `ctx.knownIdentity` is then
   * set when it is called (a parentId without it lets reads authenticate with their prefetch).
   */
  parentId(params: Record<string, string>, ctx: RequestContext): string
  /** The principal given the write permission on what a request writes (default: the caller). */
  writerPrincipal?(r: ResourceRequest, caller: string): string
  /**
   * A closed schema: the only fields lists accept in filters, `_sort` and `_fields` (besides
   * id, last_modified, deleted); unknown ones are a 400 as upstream. Undefined: any field.
   */
  knownFields?: readonly string[]
  /** Rewrites the list filters taken from the querystring (history: ids compared as strings). */
  adjustFilters?(filters: Filter[]): Filter[]
  /** Rewrites the list sorting taken from the querystring (permissions: by uri, no last_modified). */
  adjustSorting?(sorting: Sort[]): Sort[]
  /** Reads come from this instead of the storage backend (a computed list such as /permissions). */
  model?(r: ResourceRequest): Storage
  /**
   * Validates and normalises `data` of a full object (create, replace, and after a PATCH);
   * returns the normalised data or throws a 400. `prefix` names fields in errors (`data.`).
   */
  validateData?(data: Record<string, unknown>, r: ResourceRequest, prefix: string): Record<string, unknown>
  /** Fields that cannot change once set. */
  readonlyFields?: readonly string[]
  /** Called once when the resource is set up for a request (a record checks its collection). */
  init?(r: ResourceRequest): Promise<void>
  /** Objects init() reads (a record's collection), fetched with a read's other data in one statement. */
  prefetchObjects?(params: Record<string, string>): ObjectKey[]
  /** Extra processing of an object before it is stored (schema validation…). */
  processObject?(r: ResourceRequest, obj: Record<string, unknown>, old: Annotated | null): Promise<Record<string, unknown>>
  /** Adds cache headers to GET responses (default: `<name>_cache_expires_seconds`). */
  cacheHeaders?(r: ResourceRequest, headers: Record<string, string>): void
  pluralMethods?: readonly string[]
  objectMethods?: readonly string[]
}

const DEFAULT_PLURAL_METHODS = ['HEAD', 'GET', 'POST', 'DELETE']
const DEFAULT_OBJECT_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE']
const READONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Builds the plural and object services of a resource, honouring readonly and `*_enabled` settings. */
export function resourceServices(def: ResourceDefinition, ctx: {settings: Record<string, unknown>; readonly: boolean}): Service[] {
  const services: Service[] = []
  const enabled = (type: string, method: string) => {
    if (ctx.readonly && !READONLY_METHODS.has(method)) return false
    const key = `${type}_${def.name}_${method.toLowerCase()}_enabled`
    return ctx.settings[key] === undefined ? true : asBool(ctx.settings, key)
  }
  const plural: Service = {name: `${def.name}-plural`, pattern: def.pluralPath, views: new Map(), resourceName: def.name, endpointType: 'plural'}
  for (const method of def.pluralMethods ?? DEFAULT_PLURAL_METHODS) {
    if (enabled('plural', method)) plural.views.set(method, pluralView(def, method))
  }
  services.push(plural)
  if (def.objectPath) {
    const object: Service = {name: `${def.name}-object`, pattern: def.objectPath, views: new Map(), resourceName: def.name, endpointType: 'object'}
    for (const method of def.objectMethods ?? DEFAULT_OBJECT_METHODS) {
      if (enabled('object', method)) object.views.set(method, objectView(def, method))
    }
    services.push(object)
  }
  for (const service of services) definitions.set(service, def)
  return services
}

const definitions = new WeakMap<Service, ResourceDefinition>()
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * The list (resource name, parent id) a write on a resource endpoint writes to — the one whose
 * lock it takes — when it can be told from the route alone (not for a parent that depends on the
 * caller, nor a computed model). A batch takes the locks of all its writes first, in one order.
 */
export function writeTarget(service: Service, method: string, params: Record<string, string>): [string, string] | null {
  const def = definitions.get(service)
  if (!def || def.model || !WRITE_METHODS.has(method) || def.parentId.length > 1) return null
  return [def.name, (def.parentId as (p: Record<string, string>) => string)(params)]
}

function baseView(def: ResourceDefinition, kind: 'plural' | 'object', method: string): Omit<ViewDef, 'handler'> {
  const contentTypes = method === 'PATCH' ? PATCH_TYPES : method === 'POST' || method === 'PUT' ? JSON_TYPES : undefined
  return {
    method,
    permission: 'dynamic',
    accept: JSON_TYPES,
    contentTypes,
    parseBody: contentTypes !== undefined,
    prepare: async (ctx) => {
      // Who calls is known before the resource is set up when its parent depends on it (a
      // parentId that takes the context, as accounts'). Otherwise a read learns it with its data.
      if (def.parentId.length > 1) await ctx.identity()
      const authz = await ResourceRequest.get(ctx, def, kind).authorizationContext()
      // Known from here on (a read's prefetch brought the groups): the request's log line names
      // the user even when the request fails before its permission check (406, 415…).
      await ctx.identity()
      return authz
    },
  }
}

function pluralView(def: ResourceDefinition, method: string): ViewDef {
  const base = baseView(def, 'plural', method)
  const run = (fn: (r: ResourceRequest) => Promise<ViewResult>) => async (ctx: RequestContext) => {
    const r = ResourceRequest.get(ctx, def, 'plural')
    await r.init()
    r.validateRequest()
    return fn(r)
  }
  switch (method) {
    case 'HEAD':
      return {...base, corsHeaders: [...LIST_CORS, 'Total-Objects', 'Total-Records'], handler: run((r) => r.pluralGet(true))}
    case 'GET':
      return {...base, corsHeaders: LIST_CORS, handler: run((r) => r.pluralGet(false))}
    case 'POST':
      return {...base, handler: run((r) => r.pluralPost())}
    case 'DELETE':
      return {...base, beforeTransaction: (ctx) => consumeTokenNonce(ctx, ctx.req.query), handler: run((r) => r.pluralDelete())}
    default:
      throw new Error(`Unsupported plural method ${method}`)
  }
}

function objectView(def: ResourceDefinition, method: string): ViewDef {
  const base = baseView(def, 'object', method)
  const run = (fn: (r: ResourceRequest) => Promise<ViewResult>) => async (ctx: RequestContext) => {
    const r = ResourceRequest.get(ctx, def, 'object')
    await r.init()
    r.validateRequest()
    return fn(r)
  }
  switch (method) {
    case 'GET':
      return {...base, corsHeaders: OBJECT_CORS, handler: run((r) => r.objectGet())}
    case 'PUT':
      return {...base, handler: run((r) => r.objectPut())}
    case 'PATCH':
      return {...base, handler: run((r) => r.objectPatch())}
    case 'DELETE':
      return {...base, handler: run((r) => r.objectDelete())}
    default:
      throw new Error(`Unsupported object method ${method}`)
  }
}

type BodyPayload = {data?: Record<string, unknown>; permissions?: Record<string, string[] | null>}
type Payload = BodyPayload | PatchOperation[]

interface Preconditions {
  ifMatch?: number | '*'
  ifNoneMatch?: number | '*'
}

function preconditionHeader(value: string | undefined, name: string): number | '*' | undefined {
  if (value === undefined) return undefined
  const v = value.trim()
  if (v === '*') return '*'
  const m = /^"([0-9]+)"$/.exec(v)
  if (!m) throw invalid('header', name, 'The value should be integer between double quotes.')
  return Number(m[1])
}

/** The resource as one request uses it (upstream's Resource instance with its Model). */
export class ResourceRequest {
  readonly parentId: string
  readonly idGenerator: IdGenerator
  private initialized = false
  private timestampValue?: number
  private currentObject: Annotated | null = null
  private currentObjectLoaded = false
  private preconditionsValue?: Preconditions
  private payloadValue?: Payload

  static get(ctx: RequestContext, def: ResourceDefinition, kind: 'plural' | 'object'): ResourceRequest {
    const key = `resource:${def.name}:${kind}`
    let r = ctx.locals.get(key) as ResourceRequest | undefined
    if (!r) {
      r = new ResourceRequest(ctx, def, kind)
      ctx.locals.set(key, r)
    }
    return r
  }

  constructor(
    readonly ctx: RequestContext,
    readonly def: ResourceDefinition,
    readonly kind: 'plural' | 'object',
  ) {
    this.parentId = def.parentId(ctx.params, ctx)
    this.idGenerator = ctx.runtime.idGeneratorFor(def.name)
  }

  private modelValue?: Storage

  get storage(): Storage {
    if (!this.def.model) return this.ctx.tx.storage
    this.modelValue ??= this.def.model(this)
    return this.modelValue
  }

  get permission() {
    return this.ctx.tx.permission
  }

  get params(): Record<string, string> {
    return this.ctx.params
  }

  async init(): Promise<void> {
    if (this.initialized) return
    this.initialized = true
    await this.def.init?.(this)
  }

  // -------------------------------------------------------------------------------------------
  // Ids and URIs

  /** URI of an object of this resource (for permissions): `/buckets/b1/collections/c1`. */
  objectUri(id: string): string {
    if (!this.def.objectPath) return `${formatPattern(this.def.pluralPath, this.params)}/${id}`
    return formatPattern(this.def.objectPath, {...this.params, id})
  }

  get pluralUri(): string {
    return formatPattern(this.def.pluralPath, this.params)
  }

  /** The object id of this request: the URL's, or `data.id` of a POST (null when absent). */
  objectId(): string | null {
    if (this.ctx.method === 'POST') {
      let body: unknown
      try {
        body = this.ctx.body()
      } catch {
        return null
      }
      if (!isPlainObject(body) || !isPlainObject(body.data) || !Object.hasOwn(body.data, 'id')) return null
      const id = body.data.id
      this.checkId(id)
      return id as string
    }
    return this.params.id ?? null
  }

  checkId(id: unknown): void {
    if (typeof id !== 'string' || !this.idGenerator.match(id)) {
      throw invalid('path', null, 'Invalid object id')
    }
  }

  // -------------------------------------------------------------------------------------------
  // Authorization (upstream's RouteFactory)

  async authorizationContext(): Promise<AuthorizationContext> {
    const method = this.ctx.method
    const writeOnObject = this.kind === 'object' && ['PUT', 'DELETE', 'PATCH'].includes(method)
    const postOnPlural = this.kind === 'plural' && method === 'POST'
    let postedId: string | null = null
    if (writeOnObject || postOnPlural) {
      await this.init()
      const id = this.objectId()
      postedId = id
      if (id !== null) {
        // Read under the list's write lock: concurrent writers of this list wait until this
        // transaction ends, so the object read here is the one the write replaces (no lost
        // update, If-Match and If-None-Match decided on the current version, no race to create).
        await this.storage.lockList?.(this.def.name, this.parentId)
        try {
          this.currentObject = await this.getObject(id)
        } catch (err) {
          if (!(err instanceof ObjectNotFoundError)) throw err
        }
        this.currentObjectLoaded = true
      }
    }
    let permissionObjectId = this.kind === 'plural' ? this.pluralUri : this.objectUri(this.params.id)
    let required = {HEAD: 'read', GET: 'read', POST: 'create', DELETE: 'write', PATCH: 'write', PUT: 'write'}[method] ?? 'read'
    if (method === 'PUT') {
      if (this.currentObject === null || this.ctx.req.headers['if-none-match'] === '*') {
        permissionObjectId = this.pluralUri
        required = 'create'
      }
    }
    if (method === 'POST' && this.currentObject !== null && postedId !== null) {
      permissionObjectId = this.objectUri(postedId)
      required = 'read'
    }
    if (method === 'GET' || method === 'HEAD') await this.prefetch(permissionObjectId)
    return {
      resourceName: this.def.name,
      onPluralEndpoint: this.kind === 'plural',
      requiredPermission: required,
      permissionObjectId,
      currentObjectExists: this.currentObject !== null,
      objectIdMatch: this.kind === 'plural' ? this.objectUri('*') : null,
    }
  }

  /**
   * A read's data in one statement when the backends can (prefetch.ts): the caller's groups,
   * the read permission check (as permits() will ask it), init()'s objects, and the target
   * object with its ACL (object endpoint) or the list timestamp (plural endpoint).
   */
  private async prefetch(permissionObjectId: string): Promise<void> {
    const objects = this.def.prefetchObjects?.(this.params) ?? []
    const acls: string[] = []
    const id = this.params.id
    if (this.kind === 'object' && id !== undefined && this.idGenerator.match(id)) {
      objects.push({resourceName: this.def.name, parentId: this.parentId, id})
      acls.push(this.objectUri(id))
    }
    await prefetchRead(this.ctx, {
      objects,
      acls,
      bound: inheritedPermissions(permissionObjectId, 'read'),
      timestamp: this.kind === 'plural' ? {resourceName: this.def.name, parentId: this.parentId} : undefined,
    })
  }

  // -------------------------------------------------------------------------------------------
  // Model

  /** The list timestamp (upstream's resource_timestamp), computed once per request. */
  async timestamp(): Promise<number> {
    if (this.timestampValue === undefined) {
      this.timestampValue = await this.storage.resourceTimestamp(this.def.name, this.parentId, {readonly: this.ctx.runtime.readonly})
    }
    return this.timestampValue
  }

  private async callerPrincipals(): Promise<string[]> {
    const identity = await this.ctx.identity()
    return [...identity.principals, identity.userId ?? EVERYONE]
  }

  private async currentPrincipal(): Promise<string> {
    const caller = (await this.ctx.identity()).userId ?? EVERYONE
    return this.def.writerPrincipal ? this.def.writerPrincipal(this, caller) : caller
  }

  /** Adds the object's permissions when the caller is in its own write ACE (else `{}`). */
  async annotate(obj: KintoObject, uri: string): Promise<Annotated> {
    const perms = await this.permission.getObjectPermissions(uri)
    const writers = perms.write ?? new Set<string>()
    const principals = await this.callerPrincipals()
    const shown: Record<string, string[]> = {}
    if (principals.some((p) => writers.has(p))) {
      for (const [perm, set] of Object.entries(perms)) if (set.size > 0) shown[perm] = [...set].sort()
    }
    return {...obj, [PERMISSIONS_FIELD]: shown}
  }

  async getObject(id: string): Promise<Annotated> {
    const obj = await this.storage.get(this.def.name, this.parentId, id)
    return this.annotate(obj, this.objectUri(id))
  }

  /** The object of this request, loaded by the route factory when it was a write. */
  async getObjectOr404(id: string): Promise<Annotated> {
    if (this.currentObjectLoaded && this.currentObject && this.currentObject.id === id) return this.currentObject
    try {
      return await this.getObject(id)
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw notFoundObject(this.def.name, id)
      throw err
    }
  }

  private async getObjectOrNull(id: string): Promise<Annotated | null> {
    try {
      return await this.getObjectOr404(id)
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return null
      throw err
    }
  }

  private async allowWrite(uri: string): Promise<void> {
    if (asBool(this.ctx.settings, 'explicit_permissions')) {
      await this.permission.addPrincipalToAce(uri, 'write', await this.currentPrincipal())
    }
  }

  async createObject(obj: Record<string, unknown>): Promise<Annotated> {
    const {[PERMISSIONS_FIELD]: perms, ...data} = obj as Record<string, unknown>
    const created = await this.storage.create(this.def.name, this.parentId, data, {idGenerator: () => this.idGenerator.generate()})
    const uri = this.objectUri(created.id)
    await this.permission.replaceObjectPermissions(uri, (perms as Record<string, string[]>) ?? {})
    await this.allowWrite(uri)
    return this.annotate(created, uri)
  }

  async updateObject(obj: Record<string, unknown>, condition?: WriteCondition): Promise<Annotated> {
    const {[PERMISSIONS_FIELD]: perms, ...data} = obj as Record<string, unknown>
    const id = data.id as string
    const updated = await this.storage.update(this.def.name, this.parentId, id, data, condition ? {condition} : undefined)
    const uri = this.objectUri(id)
    await this.permission.replaceObjectPermissions(uri, (perms as Record<string, string[]>) ?? {})
    await this.allowWrite(uri)
    return this.annotate(updated, uri)
  }

  async deleteObject(obj: KintoObject, lastModified?: number, condition?: WriteCondition): Promise<KintoObject> {
    const uri = this.objectUri(obj.id)
    await this.permission.deleteObjectPermissions(uri)
    return this.storage.delete(this.def.name, this.parentId, obj.id, {lastModified, condition})
  }

  // -------------------------------------------------------------------------------------------
  // Request helpers

  preconditions(): Preconditions {
    if (!this.preconditionsValue) {
      const headers = this.ctx.req.headers
      this.preconditionsValue = {
        ifMatch: preconditionHeader(headers['if-match'], 'If-Match'),
        ifNoneMatch: preconditionHeader(headers['if-none-match'], 'If-None-Match'),
      }
    }
    return this.preconditionsValue
  }

  /** 412 when If-Match / If-None-Match do not hold (upstream's _raise_412_if_modified). */
  async raise412IfModified(obj: Annotated | Record<string, never> | null): Promise<void> {
    const {ifMatch, ifNoneMatch} = this.preconditions()
    if (ifMatch === undefined && ifNoneMatch === undefined) return
    const exists = obj !== null
    let expected: number
    if (ifNoneMatch === '*' && exists) expected = -1
    else if (ifMatch !== undefined && !exists) expected = -1
    else if (ifMatch !== undefined && ifMatch !== '*') expected = ifMatch
    else return
    const hasObject = obj !== null && Object.keys(obj).length > 0
    const current = hasObject ? (obj as Annotated).last_modified : await this.timestamp()
    if (current !== expected) {
      let details: unknown
      if (hasObject) {
        const {[PERMISSIONS_FIELD]: _perms, ...existing} = obj as Annotated
        details = {existing}
      }
      throw new HttpError(412, {
        errno: ERRNO.MODIFIED_MEANWHILE,
        message: MESSAGES.modifiedMeanwhile,
        details,
        headers: timestampHeaders(current),
      })
    }
  }

  /** 304 when If-None-Match is the current timestamp. */
  async raise304IfNotModified(obj: Annotated | null): Promise<void> {
    const {ifNoneMatch} = this.preconditions()
    if (ifNoneMatch === undefined || ifNoneMatch === '*') return
    const current = obj ? obj.last_modified : await this.timestamp()
    if (current === ifNoneMatch) throw new NotModified(current)
  }

  /**
   * Validates headers, querystring and body as upstream's request schemas do, before the
   * endpoint runs (400 errno 107).
   */
  validateRequest(): void {
    this.preconditions()
    const q = this.ctx.req.query
    const method = this.ctx.method
    if (this.kind === 'plural') {
      for (const name of ['_limit', '_since', '_to', '_before', 'last_modified']) queryInteger(q, name)
      queryFieldList(q, '_sort')
      extractToken(q)
      if (method === 'GET' || method === 'HEAD') queryFieldList(q, '_fields')
    } else if (method === 'GET' || method === 'HEAD') {
      queryFieldList(q, '_fields')
    }
    if (method === 'PATCH') {
      const behavior = (this.ctx.req.headers['response-behavior'] ?? 'full').trim()
      if (!['full', 'light', 'diff'].includes(behavior)) {
        throw invalid('header', 'Response-Behavior', `"${behavior}" is not one of full, light, diff`)
      }
    }
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') this.payloadValue = this.validatedBody(method)
  }

  private get payload(): Payload {
    if (!this.payloadValue) this.payloadValue = this.validatedBody(this.ctx.method)
    return this.payloadValue
  }

  /** The condition to check atomically with a write (If-Match on an existing object). */
  private writeCondition(): WriteCondition | undefined {
    const {ifMatch} = this.preconditions()
    if (typeof ifMatch === 'number') return {kind: 'last_modified', value: ifMatch}
    return undefined
  }

  private cacheHeaders(headers: Record<string, string>, identityAnonymous: boolean): void {
    if (this.def.cacheHeaders) {
      this.def.cacheHeaders(this, headers)
      return
    }
    defaultCacheHeaders(this, headers, identityAnonymous)
  }

  private isJsonPatch(): boolean {
    return this.ctx.contentType === 'application/json-patch+json'
  }

  private isMergePatch(): boolean {
    return this.ctx.contentType === 'application/merge-patch+json'
  }

  /** Validates the body of POST/PUT/PATCH (upstream's request schema). */
  validatedBody(method: string): Payload {
    const body = this.ctx.body()
    if (method === 'PATCH' && this.isJsonPatch()) return validateJsonPatch(body)
    if (!isPlainObject(body)) {
      throw invalid('body', '', `"${pyRepr(body)}" is not a mapping type: Does not implement dict-like functionality.`)
    }
    const unknown = Object.keys(body).filter((k) => k !== 'data' && k !== 'permissions')
    if (unknown.length > 0) {
      const shown = Object.fromEntries(unknown.map((k) => [k, body[k]]))
      throw invalid('body', '', `Unrecognized keys in mapping: "${pyRepr(shown)}"`)
    }
    const result: {data?: Record<string, unknown>; permissions?: Record<string, string[] | null>} = {}
    if (body.data !== undefined) {
      if (!isPlainObject(body.data)) {
        throw invalid('body', 'data', `"${pyRepr(body.data)}" is not a mapping type: Does not implement dict-like functionality.`)
      }
      result.data = method === 'PATCH' ? {...body.data} : this.validateData({...body.data}, 'data.')
    }
    if (body.permissions !== undefined) result.permissions = this.validatePermissions(body.permissions)
    return result
  }

  validateData(data: Record<string, unknown>, prefix: string): Record<string, unknown> {
    return this.def.validateData ? this.def.validateData(data, this, prefix) : data
  }

  private validatePermissions(value: unknown): Record<string, string[] | null> {
    if (!isPlainObject(value)) {
      throw invalid('body', 'permissions', `"${pyRepr(value)}" is not a mapping type: Does not implement dict-like functionality.`)
    }
    const issues: ValidationIssue[] = []
    const result: Record<string, string[] | null> = {}
    for (const [perm, principals] of Object.entries(value)) {
      if (principals === null) {
        result[perm] = null
        continue
      }
      if (!this.def.permissions.includes(perm)) {
        issues.push({location: 'body', name: `permissions.${perm}`, description: `"${perm}" is not one of ${this.def.permissions.join(', ')}`})
        continue
      }
      if (!Array.isArray(principals)) {
        issues.push({location: 'body', name: `permissions.${perm}`, description: `"${pyRepr(principals)}" is not iterable`})
        continue
      }
      principals.forEach((p, i) => {
        if (typeof p !== 'string') issues.push({location: 'body', name: `permissions.${perm}.${i}`, description: `${pyRepr(p)} is not a string: {'${pyRepr(p)}'}`})
      })
      result[perm] = principals as string[]
    }
    if (issues.length > 0) throw invalidParameters(issues)
    return result
  }

  /** upstream's process_object: last_modified rules and permissions from the payload. */
  async processObject(
    newObj: Record<string, unknown>,
    old: Annotated | null,
    payload: Payload,
  ): Promise<Record<string, unknown>> {
    const lm = newObj.last_modified
    // Integers only (upstream), and within what a bigint column and a JS number hold exactly.
    if (typeof lm !== 'number' || !Number.isSafeInteger(lm)) delete newObj.last_modified
    else if (old && lm <= old.last_modified) delete newObj.last_modified

    let permissions: Record<string, string[]>
    if (Array.isArray(payload)) {
      permissions = jsonPatchPermissions(old, payload)
    } else if (this.isMergePatch()) {
      permissions = deepClone(old?.[PERMISSIONS_FIELD] ?? {}) as Record<string, string[]>
      recursiveUpdate(permissions, payload.permissions ?? {})
    } else {
      permissions = {}
      for (const [k, v] of Object.entries(payload.permissions ?? {})) if (v !== null) permissions[k] = v
    }
    const annotated: Record<string, unknown> = {...newObj}
    if (Object.keys(permissions).length > 0) {
      if (this.ctx.method === 'PUT' || this.isMergePatch()) {
        for (const perm of this.def.permissions) if (!(perm in permissions)) permissions[perm] = []
      }
      annotated[PERMISSIONS_FIELD] = permissions
    }
    return this.def.processObject ? this.def.processObject(this, annotated, old) : annotated
  }

  /** Response body + event (upstream's postprocess). */
  async postprocess(
    result: Annotated | KintoObject | Record<string, unknown> | Array<Record<string, unknown>>,
    action: Action = 'read',
    old?: Annotated | KintoObject | Array<Record<string, unknown>> | null,
    /** What listeners see as the new object when the body shows less (PATCH light/diff). */
    eventData?: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = {}
    let data: unknown = result
    if (!Array.isArray(result)) {
      const {[PERMISSIONS_FIELD]: perms, ...rest} = result as Annotated
      if (perms !== undefined) body.permissions = perms
      data = rest
      if (old && !Array.isArray(old)) {
        const {[PERMISSIONS_FIELD]: _p, ...oldRest} = old as Annotated
        old = oldRest as KintoObject
      }
    }
    body.data = data
    const timestamp = eventTimestamp(data, this.timestampValue)
    await this.ctx.notify({
      action,
      resourceName: this.def.name,
      parentId: this.parentId,
      timestamp,
      data: (eventData ?? data) as Record<string, unknown>,
      old: (old ?? undefined) as Record<string, unknown> | undefined,
    })
    return body
  }

  // -------------------------------------------------------------------------------------------
  // Endpoints

  async pluralGet(head: boolean): Promise<ViewResult> {
    const identity = await this.ctx.identity()
    const headers: Record<string, string> = {}
    const timestamp = await this.timestamp()
    Object.assign(headers, timestampHeaders(timestamp))
    this.cacheHeaders(headers, identity.userId === null)
    const notModified = await this.raise304or(headers, null)
    if (notModified) return notModified
    await this.raise412IfModified({})

    const {filters, alert} = this.filters()
    const limit = this.limit()
    const sorting = this.sorting()
    const fields = head ? undefined : this.fields()
    if (alert) headers.Alert = JSON.stringify({code: 'soft-eol', message: alert, url: LEGACY_TO_URL})
    const includeDeleted = filters.some((f) => f.field === 'last_modified')
    const {rules, offset} = await this.paginationRules(sorting)

    if (head) {
      const count = await this.storage.count(this.def.name, this.parentId, filters)
      headers['Total-Objects'] = headers['Total-Records'] = String(count)
      return {headers, body: await this.postprocess([])}
    }

    const objects = await this.storage.list(this.def.name, this.parentId, {
      filters,
      sorting,
      limit: limit + 1,
      paginationRules: rules,
      includeDeleted,
    })
    if (limit && objects.length === limit + 1) {
      headers['Next-Page'] = await this.nextPageUrl(sorting, limit, objects[objects.length - 2], offset + objects.length)
    }
    let page: Array<Record<string, unknown>> = objects.slice(0, limit)
    if (fields) page = page.map((o) => dictSubset(o, fields))
    return {headers, body: await this.postprocess(page)}
  }

  private async raise304or(headers: Record<string, string>, obj: Annotated | null): Promise<ViewResult | null> {
    try {
      await this.raise304IfNotModified(obj)
      return null
    } catch (err) {
      if (err instanceof NotModified) {
        return {status: 304, headers: {...headers, ...timestampHeaders(err.timestamp)}}
      }
      throw err
    }
  }

  async pluralPost(): Promise<ViewResult> {
    const payload = this.payload as BodyPayload
    let newObject: Record<string, unknown> = payload.data ?? this.validateData({}, 'data.')
    let existing: Annotated | null = null
    const objectId = this.objectId()
    if (objectId !== null) {
      newObject.id = objectId
      existing = await this.getObjectOrNull(objectId)
    }
    await this.raise412IfModified(existing)
    let obj: Annotated
    let action: Action
    let status = 200
    if (existing) {
      obj = existing
      action = 'read'
    } else {
      newObject = await this.processObject(newObject, null, payload)
      obj = await this.createObject(newObject)
      status = 201
      action = 'create'
    }
    return {status, headers: timestampHeaders(obj.last_modified), body: await this.postprocess(obj, action)}
  }

  async pluralDelete(): Promise<ViewResult> {
    await this.storage.lockList?.(this.def.name, this.parentId)
    await this.raise412IfModified({})
    const {filters} = this.filters()
    const limit = this.limit()
    const sorting = this.sorting()
    const {rules, offset} = await this.paginationRules(sorting)
    const objects = await this.storage.list(this.def.name, this.parentId, {filters, sorting, limit: limit + 1, paginationRules: rules})
    const deleted = await this.storage.deleteAll(this.def.name, this.parentId, {filters, sorting, limit, paginationRules: rules})
    if (filters.length === 0) await this.permission.deleteObjectPermissions(this.objectUri('*'))
    else if (deleted.length > 0) await this.permission.deleteObjectPermissions(...deleted.map((d) => this.objectUri(d.id)))
    const headers: Record<string, string> = {}
    if (deleted.length > 0) {
      if (limit && objects.length === limit + 1) {
        // Upstream builds the cursor from the last tombstone, which lacks the sorted fields
        // (a second page sorted on a data field then deletes nothing); the last object deleted,
        // as it was, gives the same cursor for the default sort and a right one for the others.
        headers['Next-Page'] = await this.nextPageUrl(sorting, limit, objects[limit - 1], offset + objects.length)
      }
      Object.assign(headers, timestampHeaders(Math.max(...deleted.map((d) => d.last_modified))))
    } else {
      Object.assign(headers, timestampHeaders(await this.timestamp()))
    }
    const action: Action = deleted.length > 0 ? 'delete' : 'read'
    return {headers, body: await this.postprocess(deleted, action, objects.slice(0, limit))}
  }

  async objectGet(): Promise<ViewResult> {
    const id = this.params.id
    this.checkId(id)
    const identity = await this.ctx.identity()
    const obj = await this.getObjectOr404(id)
    const headers = timestampHeaders(obj.last_modified)
    this.cacheHeaders(headers, identity.userId === null)
    const notModified = await this.raise304or(headers, obj)
    if (notModified) return notModified
    await this.raise412IfModified(obj)
    const fields = this.fields()
    const shown = fields ? dictSubset(obj, fields) : obj
    return {headers, body: await this.postprocess(shown as Annotated)}
  }

  async objectPut(): Promise<ViewResult> {
    const id = this.params.id
    this.checkId(id)
    const payload = this.payload as BodyPayload
    const existing = await this.getObjectOrNull(id)
    await this.raise412IfModified(existing)
    let postObject: Record<string, unknown>
    if (payload.data !== undefined) postObject = payload.data
    else if (existing) {
      const {[PERMISSIONS_FIELD]: _p, ...rest} = existing
      postObject = rest
    } else postObject = this.validateData({}, 'data.')
    if (!('id' in postObject)) postObject.id = id
    if (postObject.id !== id) throw invalid('body', 'id', 'Object id does not match existing object')
    const newObject = await this.processObject(postObject, existing, payload)
    let obj: Annotated
    let status = 200
    if (existing) {
      obj = await this.updateObject(newObject, this.writeCondition())
    } else {
      obj = await this.createObject(newObject)
      status = 201
    }
    return {status, headers: timestampHeaders(obj.last_modified), body: await this.postprocess(obj, existing ? 'update' : 'create', existing)}
  }

  async objectPatch(): Promise<ViewResult> {
    const id = this.params.id
    this.checkId(id)
    const existing = await this.getObjectOr404(id)
    await this.raise412IfModified(existing)
    const behavior = (this.ctx.req.headers['response-behavior'] ?? 'full').trim()
    const payload = this.payload
    let requested: Record<string, unknown> | PatchOperation[]
    if (Array.isArray(payload)) requested = payload
    else {
      if (payload.data === undefined && payload.permissions === undefined) {
        throw invalid('body', 'data', 'Provide at least one of data or permissions')
      }
      requested = payload.data ?? {}
    }
    const {updated, applied} = this.applyChanges(existing, requested)
    if (!('id' in updated)) updated.id = id
    if (updated.id !== id) throw invalid('body', 'id', 'Object id does not match existing object')
    const newObject = await this.processObject(updated, existing, payload)
    const changed = Object.keys(applied).filter((k) => !deepEqual((existing as Record<string, unknown>)[k], newObject[k]))
    const saved = await this.updateObject(newObject, this.writeCondition())
    let data: Record<string, unknown>
    if (behavior === 'light') data = Object.fromEntries(changed.map((k) => [k, (saved as Record<string, unknown>)[k]]))
    else if (behavior === 'diff') {
      data = Object.fromEntries(
        changed.filter((k) => !deepEqual(applied[k], (saved as Record<string, unknown>)[k])).map((k) => [k, (saved as Record<string, unknown>)[k]]),
      )
    } else data = saved
    const timestamp = saved.last_modified ?? existing.last_modified
    const {[PERMISSIONS_FIELD]: _perms, ...savedData} = saved
    return {headers: timestampHeaders(timestamp), body: await this.postprocess(data, 'update', existing, savedData)}
  }

  private applyChanges(obj: Annotated, requested: Record<string, unknown> | PatchOperation[]): {updated: Record<string, unknown>; applied: Record<string, unknown>} {
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
      if (this.isMergePatch()) recursiveUpdate(updated, applied)
      else Object.assign(updated, applied)
    }
    for (const [field, value] of Object.entries(applied)) {
      const has = Object.hasOwn(obj, field)
      if (this.def.readonlyFields?.includes(field) && has && !deepEqual((obj as Record<string, unknown>)[field], value)) {
        throw invalid('body', field, `Cannot modify ${field}`)
      }
    }
    const {[PERMISSIONS_FIELD]: perms, ...data} = updated
    const validated = this.validateData(data, '')
    if (perms !== undefined) validated[PERMISSIONS_FIELD] = perms
    return {updated: validated, applied}
  }

  async objectDelete(): Promise<ViewResult> {
    const id = this.params.id
    this.checkId(id)
    const obj = await this.getObjectOr404(id)
    await this.raise412IfModified(obj)
    let lastModified: number | undefined = queryInteger(this.ctx.req.query, 'last_modified')
    if (lastModified !== undefined && (lastModified === 0 || lastModified <= obj.last_modified || !Number.isSafeInteger(lastModified))) {
      lastModified = undefined
    }
    let deleted: KintoObject
    try {
      deleted = await this.deleteObject(obj, lastModified, this.writeCondition())
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw notFoundObject(this.def.name, id)
      throw err
    }
    return {headers: timestampHeaders(deleted.last_modified), body: await this.postprocess(deleted, 'delete', obj)}
  }

  // -------------------------------------------------------------------------------------------
  // Lists

  private filters(): {filters: Filter[]; alert?: string} {
    const q = this.ctx.req.query
    // Schema-validated parameters (400 on bad values even when unused).
    queryInteger(q, '_limit')
    const extracted = extractFilters(q)
    let filters = extracted.filters
    if (this.def.knownFields) {
      for (const f of filters) {
        if (this.isKnownField(f.field)) continue
        const param = f.operator === 'eq' ? f.field : `${f.operator}_${f.field}`
        throw invalid('querystring', param, `Unknown filter field '${param}'`)
      }
    }
    if (this.def.adjustFilters) filters = this.def.adjustFilters(filters)
    if (this.ctx.sharedIds !== null) filters.unshift({field: 'id', value: this.ctx.sharedIds, operator: 'in'})
    return {filters, alert: extracted.alert}
  }

  /** Whether a (dotted) field may be used in lists: any, unless the schema is closed. */
  private isKnownField(field: string): boolean {
    const known = this.def.knownFields
    if (!known) return true
    const root = field.split('.')[0]
    return known.includes(root) || root === 'id' || root === 'last_modified' || root === 'deleted'
  }

  private sorting(): Sort[] {
    let sorting = extractSorting(this.ctx.req.query)
    for (const {field} of sorting) {
      if (!this.isKnownField(field)) throw invalid('querystring', null, `Unknown sort field '${field}'`)
    }
    if (this.def.adjustSorting) sorting = this.def.adjustSorting(sorting)
    return sorting
  }

  private fields(): string[] | undefined {
    const fields = extractFields(this.ctx.req.query)
    if (fields && this.def.knownFields) {
      const unknown = [...new Set(fields.map((f) => f.split('.')[0]).filter((f) => !this.isKnownField(f)))]
      if (unknown.length > 0) throw invalid('body', 'Invalid _fields parameter', `Fields ${unknown.join(',')} do not exist`)
    }
    return fields
  }

  private limit(): number {
    const s = this.ctx.settings
    return extractLimit(this.ctx.req.query, asInt(s, 'paginate_by', null), asInt(s, 'storage_max_fetch_size', 10000) ?? 10000)
  }

  private async paginationRules(sorting: Sort[]): Promise<{rules?: Filter[][]; offset: number}> {
    const token = extractToken(this.ctx.req.query)
    if (!token) return {offset: 0}
    const fail = (description: string) => invalidParameters({location: 'querystring', name: null, description})
    const info = decodeToken(token)
    if (!info) throw fail('_token has invalid content')
    // The cursor's timestamp meets a bigint column: only an integer we could have written.
    const lastObject = info.last_object as Record<string, unknown>
    if (Object.hasOwn(lastObject, 'last_modified') && !Number.isSafeInteger(lastObject.last_modified)) {
      throw fail('_token has invalid content')
    }
    if (this.ctx.method === 'DELETE') {
      // The nonce was taken from the cache before the transaction (consumeTokenNonce); single use.
      const nonce = info.nonce
      const valid = typeof nonce === 'string' && this.ctx.bound.nonces.get(nonce) === true
      if (typeof nonce === 'string') this.ctx.bound.nonces.set(nonce, false)
      if (!valid) throw fail('_token was already used or has expired.')
    }
    const offset = typeof info.offset === 'number' ? info.offset : 0
    return {rules: buildPaginationRules(sorting, info.last_object as Record<string, unknown>), offset}
  }

  private async nextPageUrl(sorting: Sort[], limit: number, lastObject: Record<string, unknown>, offset: number): Promise<string> {
    const nonce = `pagination-token-${randomUUID()}`
    if (this.ctx.method === 'DELETE') {
      // Stored once the transaction has committed, before the client gets the token.
      const validity = asInt(this.ctx.settings, 'pagination_token_validity_seconds', 600) ?? 600
      const cache = this.ctx.runtime.backends.cache
      this.ctx.bound.afterTransaction.push(() => cache.set(nonce, '', validity))
    }
    const last: Record<string, unknown> = {}
    for (const {field} of sorting) {
      const v = findNestedValue(lastObject, field)
      if (v !== MISSING) last[field] = v
    }
    const token = Buffer.from(JSON.stringify({last_object: last, offset, nonce}), 'utf8').toString('base64')
    const params = new Map<string, string>()
    for (const [k, v] of this.ctx.req.query) params.set(k, Array.isArray(v) ? v[v.length - 1] : v)
    params.set('_limit', String(limit))
    params.set('_token', token)
    return `${this.ctx.req.scheme}://${this.ctx.req.host}${this.ctx.req.rawPath}?${encodeQuery(params)}`
  }
}

class NotModified extends Error {
  constructor(readonly timestamp: number) {
    super('Not Modified')
  }
}

const LEGACY_TO_URL = 'https://kinto.readthedocs.io/en/2.4.0/api/resource.html#list-of-available-url-parameters'

/** Default cache headers: `<resource>_cache_expires_seconds` for anonymous requests. */
export function defaultCacheHeaders(r: ResourceRequest, headers: Record<string, string>, anonymous: boolean): void {
  const value = r.ctx.settings[`${r.def.name}_cache_expires_seconds`]
  const seconds = value === undefined || value === null || value === '' ? 0 : Number(value)
  if (seconds && anonymous && Number.isFinite(seconds)) Object.assign(headers, cacheExpiresHeaders(Math.trunc(seconds)))
  else headers['Cache-Control'] = 'no-cache, no-store'
}

function eventTimestamp(data: unknown, listTimestamp: number | undefined): number {
  if (Array.isArray(data)) {
    let max = listTimestamp ?? 0
    for (const o of data) if (typeof (o as KintoObject).last_modified === 'number') max = Math.max(max, (o as KintoObject).last_modified)
    return max
  }
  const lm = (data as KintoObject | undefined)?.last_modified
  return typeof lm === 'number' ? lm : (listTimestamp ?? 0)
}

/** upstream's _build_pagination_rules: OR of (equal on earlier sort keys, beyond on the last). */
export function buildPaginationRules(sorting: Sort[], lastObject: Record<string, unknown>): Filter[][] {
  const rules: Filter[][] = []
  for (let n = sorting.length; n > 0; n--) {
    const rule: Filter[] = []
    for (const {field} of sorting.slice(0, n - 1)) {
      rule.push({field, value: valueOrMissing(lastObject, field), operator: 'eq'})
    }
    const {field, direction} = sorting[n - 1]
    rule.push({field, value: valueOrMissing(lastObject, field), operator: direction === -1 ? 'lt' : 'gt'})
    rules.push(rule)
  }
  return rules
}

function valueOrMissing(obj: Record<string, unknown>, field: string): JsonValue | typeof MISSING {
  return Object.hasOwn(obj, field) ? (obj[field] as JsonValue) : MISSING
}

/** upstream's find_nested_value: dotted paths, preferring the longest existing key. */
export function findNestedValue(d: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(d, path)) return d[path]
  const parts = path.split('.')
  let root: string | undefined
  for (let i = parts.length; i > 0; i--) {
    const candidate = parts.slice(0, i).join('.')
    if (Object.hasOwn(d, candidate)) {
      root = candidate
      break
    }
  }
  if (root === undefined || !isPlainObject(d[root])) return MISSING
  return findNestedValue(d[root] as Record<string, unknown>, path.slice(root.length + 1))
}

/** upstream's dict_subset for `_fields`. */
export function dictSubset(d: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {}
  for (const key of keys) {
    const dot = key.indexOf('.')
    if (dot >= 0) {
      const field = key.slice(0, dot)
      const sub = key.slice(dot + 1)
      if (isPlainObject(d[field])) {
        const subvalue = dictSubset(d[field] as Record<string, unknown>, [sub])
        result[field] = dictMerge(subvalue, isPlainObject(result[field]) ? (result[field] as Record<string, unknown>) : {})
      } else if (Object.hasOwn(d, field)) result[field] = d[field]
    } else if (Object.hasOwn(d, key)) result[key] = d[key]
  }
  return result
}

function dictMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {...b}
  for (const [k, v] of Object.entries(a)) {
    result[k] = isPlainObject(v) ? dictMerge(v, isPlainObject(result[k]) ? (result[k] as Record<string, unknown>) : {}) : v
  }
  return result
}

/** A pagination token's content, or null when it is not a valid token. */
function decodeToken(token: string): Record<string, unknown> | null {
  let info: unknown
  try {
    info = JSON.parse(decodeBase64Strict(token))
  } catch {
    return null
  }
  if (!isPlainObject(info) || !isPlainObject(info.last_object) || !('offset' in info) || !('nonce' in info)) return null
  return info
}

/**
 * Takes the nonce of a DELETE's `_token` out of the cache, before the transaction (the cache
 * cannot be reached inside one on PGlite). The result is read by the endpoint.
 */
export async function consumeTokenNonce(ctx: RequestContext, query: RawQuery): Promise<void> {
  let token: string | undefined
  try {
    token = extractToken(query)
  } catch {
    return
  }
  if (!token) return
  const info = decodeToken(token)
  if (!info || typeof info.nonce !== 'string' || ctx.bound.nonces.has(info.nonce)) return
  const previous = await ctx.runtime.backends.cache.delete(info.nonce)
  ctx.bound.nonces.set(info.nonce, previous !== undefined && previous !== null)
}

function decodeBase64Strict(token: string): string {
  const cleaned = token.trim()
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(cleaned) || cleaned.length % 4 !== 0) throw new Error('invalid base64')
  return new TextDecoder('utf-8', {fatal: true}).decode(Buffer.from(cleaned, 'base64'))
}

function validateJsonPatch(body: unknown): PatchOperation[] {
  if (!Array.isArray(body)) throw invalid('body', '', `"${pyRepr(body)}" is not iterable`)
  const issues: ValidationIssue[] = []
  const ops: PatchOperation[] = []
  body.forEach((op, i) => {
    if (!isPlainObject(op)) {
      issues.push({location: 'body', name: String(i), description: `"${pyRepr(op)}" is not a mapping type: Does not implement dict-like functionality.`})
      return
    }
    const unknown = Object.keys(op).filter((k) => !['op', 'path', 'from', 'value'].includes(k))
    if (unknown.length > 0) issues.push({location: 'body', name: String(i), description: `Unrecognized keys in mapping: "${pyRepr(Object.fromEntries(unknown.map((k) => [k, op[k]])))}"`})
    if (typeof op.op !== 'string' || !['test', 'add', 'remove', 'replace', 'move', 'copy'].includes(op.op)) {
      issues.push({location: 'body', name: `${i}.op`, description: `"${pyRepr(op.op)}" is not one of test, add, remove, replace, move, copy`})
    }
    for (const key of ['path', 'from'] as const) {
      if (key === 'from' && op.from === undefined) continue
      if (typeof op[key] !== 'string' || !/^(\/\w*)+/u.test(op[key] as string)) {
        issues.push({location: 'body', name: `${i}.${key}`, description: op[key] === undefined ? 'Required' : 'String does not match expected pattern'})
      }
    }
    ops.push(op as unknown as PatchOperation)
  })
  if (issues.length > 0) throw invalidParameters(issues)
  return ops
}

/** The document JSON-Patch operations apply to: {data, permissions: {perm: {principal: principal}}}. */
function patchDocument(obj: Annotated): Record<string, unknown> {
  const {[PERMISSIONS_FIELD]: perms, ...data} = obj
  const permissions: Record<string, Record<string, string>> = {read: {}, write: {}}
  for (const [perm, principals] of Object.entries(perms ?? {})) {
    permissions[perm] = Object.fromEntries(principals.map((p) => [p, p]))
  }
  return {data, permissions}
}

const PRINCIPAL_OP = /^\/permissions\/([^/]+)\/(.+)$/

/**
 * `add`/`remove` of `/permissions/<perm>/<principal>`: the principal is the value, and it is
 * everything after the permission name. Upstream hands these to a JSON pointer, so principals
 * with slashes (group URIs such as `/buckets/b/groups/g`, which kinto-http's addPermissions
 * sends) fail there; we apply them to the permission sets directly.
 */
function isPrincipalOp(op: PatchOperation): boolean {
  return (op.op === 'add' || op.op === 'remove') && PRINCIPAL_OP.test(op.path)
}

/** Applies a JSON-Patch to {data, permissions}; returns both (permissions as principal lists). */
function applyPatchDocument(obj: Annotated | null, ops: PatchOperation[]): {data: unknown; permissions: Record<string, string[]>} {
  let doc: {data?: unknown; permissions?: unknown}
  try {
    doc = applyJsonPatch(patchDocument(obj ?? ({} as Annotated)), ops.filter((op) => !isPrincipalOp(op))) as typeof doc
  } catch (err) {
    if (err instanceof JsonPatchError) throw invalid('body', null, `JSON Patch operation failed: ${err.message}`)
    throw err
  }
  const permissions: Record<string, string[]> = {}
  if (isPlainObject(doc.permissions)) {
    for (const [perm, principals] of Object.entries(doc.permissions)) {
      if (isPlainObject(principals)) permissions[perm] = Object.keys(principals)
      else if (Array.isArray(principals)) permissions[perm] = principals.filter((p): p is string => typeof p === 'string')
    }
  }
  for (const op of ops.filter(isPrincipalOp)) {
    const [, perm, principal] = PRINCIPAL_OP.exec(op.path)!
    const set = new Set(permissions[perm] ?? [])
    if (op.op === 'add') set.add(principal)
    else set.delete(principal)
    permissions[perm] = [...set]
  }
  return {data: doc.data, permissions}
}

function jsonPatchPermissions(old: Annotated | null, ops: PatchOperation[]): Record<string, string[]> {
  return applyPatchDocument(old, ops).permissions
}

/** A Python-like rendering of a value for colander-style messages. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  const inner = (x: unknown): string => (typeof x === 'string' ? `'${x}'` : pyRepr(x))
  if (Array.isArray(v)) return `[${v.map(inner).join(', ')}]`
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `'${k}': ${inner(x)}`).join(', ')}}`
  return String(v)
}

export {HttpError}

/**
 * The resource as one request uses it (upstream's Resource instance with its Model): ids and
 * URIs, the route factory's authorization context, reading and writing objects with their
 * permissions, preconditions (If-Match, If-None-Match), body validation and the response body
 * with its event. The endpoints themselves are endpoints.ts.
 */
import {asBool} from '../../config/settings.js'
import {ObjectNotFoundError, type KintoObject, type Storage, type WriteCondition} from '../../storage/types.js'
import {EVERYONE, checkPermission, inheritedPermissions, type AuthorizationContext} from '../authorization.js'
import type {Identity} from '../auth.js'
import type {RequestContext} from '../context.js'
import {ERRNO, HttpError, MESSAGES, invalid, invalidParameters, notFoundObject, type ValidationIssue} from '../errors.js'
import type {Action} from '../events.js'
import {timestampHeaders} from '../headers.js'
import {checkObjectId, postedObjectId, type IdGenerator} from '../ids.js'
import {deepClone, isPlainObject, recursiveUpdate, type PatchOperation} from '../patch.js'
import {prefetchRead, prefetchWrite, type ReadPlan} from '../prefetch.js'
import {listFilters, listLimit, listSorting, pageOptions} from './list-query.js'
import {paginationRules} from './pagination.js'
import {checkStringParameter, extractToken, queryFieldList, queryInteger} from '../querystring.js'
import {formatPattern} from '../router.js'
import {PERMISSIONS_FIELD, type Annotated, type ResourceDefinition} from './definition.js'
import {jsonPatchPermissions, validateJsonPatch} from './json-patch.js'
import {validatePermissions} from './body-permissions.js'
import {pyRepr} from '../py-repr.js'

export type BodyPayload = {data?: Record<string, unknown>; permissions?: Record<string, string[] | null>}
export type Payload = BodyPayload | PatchOperation[]

interface Preconditions {
  ifMatch?: number | '*'
  ifNoneMatch?: number | '*'
}

function preconditionHeader(value: string | undefined, name: string): number | '*' | undefined {
  // An empty value is no precondition: upstream's header schema drops it as a missing field.
  if (value === undefined || value === '') return undefined
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
  /** The id the route factory read (currentObject: what it found, null when nothing). */
  private currentObjectId: string | null = null
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
      return postedObjectId(body, this.idGenerator)
    }
    return this.params.id ?? null
  }

  /** A POST whose body gives no id (an invalid one is refused later, where it was before). */
  private postsWithoutId(): boolean {
    try {
      return this.objectId() === null
    } catch {
      return false
    }
  }

  checkId(id: unknown): void {
    checkObjectId(id, this.idGenerator)
  }

  // -------------------------------------------------------------------------------------------
  // Authorization (upstream's RouteFactory)

  async authorizationContext(): Promise<AuthorizationContext> {
    const method = this.ctx.method
    const writeOnObject = this.kind === 'object' && ['PUT', 'DELETE', 'PATCH'].includes(method)
    const postOnPlural = this.kind === 'plural' && method === 'POST'
    let postedId: string | null = null
    if (postOnPlural && this.def.prefetchObjects && this.postsWithoutId()) {
      // A record POST without an id: the parent and the create permission in one statement.
      await prefetchWrite(this.ctx, {objects: this.def.prefetchObjects(this.params, this.ctx.bound), bound: inheritedPermissions(this.pluralUri, `${this.def.name}:create`)})
    }
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
        this.currentObjectId = id
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
    if (method === 'GET' || method === 'HEAD') await this.prefetch(permissionObjectId, method)
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
  private async prefetch(permissionObjectId: string, method: string): Promise<void> {
    const objects = this.def.prefetchObjects?.(this.params, this.ctx.bound) ?? []
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
      page: method === 'GET' && this.kind === 'plural' ? await this.plannedPage() : undefined,
    })
  }

  /**
   * The page a list GET will read (pluralGet's storage.list call), read by the prefetch too when
   * its options are known now: not when the list may end in a 304 or 412 (a precondition header:
   * the page would be read for nothing), nor when the querystring is invalid (the 400 comes later,
   * in its place among the checks). Per-record read (shared objects) adds a filter afterwards:
   * that call differs from the planned one and goes to the storage.
   */
  private async plannedPage(): Promise<ReadPlan['page']> {
    const headers = this.ctx.req.headers
    if (this.kind !== 'plural' || headers['if-match'] !== undefined || headers['if-none-match'] !== undefined) return undefined
    try {
      const {filters} = listFilters(this)
      const limit = listLimit(this)
      const sorting = listSorting(this)
      const {rules} = await paginationRules(this, sorting)
      return {resourceName: this.def.name, parentId: this.parentId, options: pageOptions(filters, sorting, limit, rules)}
    } catch {
      return undefined
    }
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

  /**
   * Upstream reads (and so stores) the list timestamp at the start of every resource request. It
   * matters for a write that gives its own last_modified: the list keeps its timestamp (now, for a
   * list never read) instead of taking a client's value from the past, so it never goes backwards.
   */
  private async settleListTimestamp(data: Record<string, unknown>): Promise<void> {
    if (data.last_modified !== undefined) await this.timestamp()
  }

  /** Upstream's model principals: the caller's, plus the principal its writes are made as. */
  private async callerPrincipals(): Promise<string[]> {
    const identity = this.ctx.knownIdentity ?? (await this.ctx.identity())
    return [...identity.principals, this.principalOf(identity)]
  }

  private async currentPrincipal(): Promise<string> {
    return this.principalOf(this.ctx.knownIdentity ?? (await this.ctx.identity()))
  }

  private principalOf(identity: Identity): string {
    const caller = identity.userId ?? EVERYONE
    return this.def.writerPrincipal ? this.def.writerPrincipal(this, caller) : caller
  }

  /** Adds the object's permissions when the caller is in its own write ACE (else `{}`). */
  async annotate(obj: KintoObject, uri: string, acl?: Record<string, Set<string>>): Promise<Annotated> {
    const perms = acl ?? (await this.permission.getObjectPermissions(uri))
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
    // Read under the list lock by this request: nothing has written it since.
    if (this.currentObjectLoaded && this.currentObjectId === id) return this.currentObject ?? Promise.reject(notFoundObject(this.def.name, id))
    try {
      return await this.getObject(id)
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw notFoundObject(this.def.name, id)
      throw err
    }
  }

  async getObjectOrNull(id: string): Promise<Annotated | null> {
    try {
      return await this.getObjectOr404(id)
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return null
      throw err
    }
  }

  /** The writer's write ACE (explicit_permissions), and the object's ACL when that read it too. */
  private async allowWrite(uri: string): Promise<Record<string, Set<string>> | undefined> {
    if (!asBool(this.ctx.settings, 'explicit_permissions')) return undefined
    return this.permission.addPrincipalToAceAndRead(uri, 'write', await this.currentPrincipal())
  }

  /** `absent` (read under the list's lock, or a new id): the ACL first, so that only the INSERT
   * runs in the lock until COMMIT (a failing create rolls it back: a 409 rolls a batch back). */
  async createObject(obj: Record<string, unknown>, absent = false): Promise<Annotated> {
    const {[PERMISSIONS_FIELD]: perms, ...data} = obj as Record<string, unknown>
    await this.settleListTimestamp(data)
    if (absent) data.id ??= this.idGenerator.generate()
    const early = absent ? await this.writeAcl(String(data.id), perms) : undefined
    const created = await this.storage.create(this.def.name, this.parentId, data, {idGenerator: () => this.idGenerator.generate()})
    const {uri, acl} = early ?? (await this.writeAcl(created.id, perms))
    return this.annotate(created, uri, acl)
  }

  private async writeAcl(id: string, perms: unknown): Promise<{uri: string; acl?: Record<string, Set<string>>}> {
    await this.permission.replaceObjectPermissions(this.objectUri(id), (perms as Record<string, string[]>) ?? {})
    return {uri: this.objectUri(id), acl: await this.allowWrite(this.objectUri(id))}
  }

  async updateObject(obj: Record<string, unknown>, condition?: WriteCondition): Promise<Annotated> {
    const {[PERMISSIONS_FIELD]: perms, ...data} = obj as Record<string, unknown>
    const id = data.id as string
    await this.settleListTimestamp(data)
    const updated = await this.storage.update(this.def.name, this.parentId, id, data, condition ? {condition} : undefined)
    const uri = this.objectUri(id)
    await this.permission.replaceObjectPermissions(uri, (perms as Record<string, string[]>) ?? {})
    return this.annotate(updated, uri, await this.allowWrite(uri))
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
    const current = hasObject ? (obj as Annotated).last_modified : await this.preconditionTimestamp()
    if (current !== expected) {
      let details: unknown
      // A PUT with If-None-Match: * is allowed by the create permission alone (upstream's rule):
      // the object it finds is shown only to a caller who may read it. Upstream shows it to
      // anyone with `record:create` or `bucket:create` (every authenticated user, by default).
      if (hasObject && (expected !== -1 || ifNoneMatch !== '*' || (await this.callerMayRead((obj as Annotated).id)))) {
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

  /** Whether the caller has read (or write) on object `id` of this resource, inherited or its own. */
  private async callerMayRead(id: string): Promise<boolean> {
    const identity = this.ctx.knownIdentity ?? (await this.ctx.identity())
    const bound = inheritedPermissions(this.objectUri(id), 'read')
    return checkPermission(this.ctx.settings, this.permission, this.def.name, 'read', identity.principals, bound)
  }

  /** 304 when If-None-Match is the current timestamp ("0" is no validator: upstream ignores it). */
  async raise304IfNotModified(obj: Annotated | null): Promise<void> {
    const {ifNoneMatch} = this.preconditions()
    if (ifNoneMatch === undefined || ifNoneMatch === '*' || ifNoneMatch === 0) return
    const current = obj ? obj.last_modified : await this.preconditionTimestamp()
    if (current === ifNoneMatch) throw new NotModified(current)
  }

  /** The list timestamp preconditions are compared with (the list's, unless the resource says). */
  private async preconditionTimestamp(): Promise<number> {
    return this.def.preconditionTimestamp ?? (await this.timestamp())
  }

  /**
   * Validates headers, querystring and body as upstream's request schemas do, before the
   * endpoint runs (400 errno 107).
   */
  validateRequest(): void {
    // One colander schema upstream: every invalid header, querystring and body field is reported
    // together, except after a body that cannot be read (not JSON…): then only that.
    const q = this.ctx.req.query
    const method = this.ctx.method
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') this.ctx.body()
    else this.ctx.refuseUnreadableBody()
    const issues: ValidationIssue[] = []
    collectIssues(issues, () => this.preconditions())
    // A plural POST has no querystring schema upstream: what is there is not read, so not refused.
    if (this.kind === 'plural' && method !== 'POST') {
      for (const name of ['_limit', '_since', '_to', '_before', 'last_modified']) collectIssues(issues, () => queryInteger(q, name))
      collectIssues(issues, () => checkStringParameter(q, 'id'))
      queryFieldList(q, '_sort')
      collectIssues(issues, () => extractToken(q))
      if (method === 'GET' || method === 'HEAD') queryFieldList(q, '_fields')
    } else if (method === 'GET' || method === 'HEAD') {
      queryFieldList(q, '_fields')
    }
    if (method === 'PATCH') {
      const behavior = (this.ctx.req.headers['response-behavior'] ?? 'full').trim()
      if (!['full', 'light', 'diff'].includes(behavior)) {
        issues.push({location: 'header', name: 'Response-Behavior', description: `"${behavior}" is not one of full, light, diff`})
      }
    }
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') collectIssues(issues, () => (this.payloadValue = this.validatedBody(method)))
    if (issues.length > 0) throw invalidParameters(issues)
  }

  /** The validated body (validateRequest() reads it first). */
  get payload(): Payload {
    if (!this.payloadValue) this.payloadValue = this.validatedBody(this.ctx.method)
    return this.payloadValue
  }

  private isJsonPatch(): boolean {
    return this.ctx.contentType === 'application/json-patch+json'
  }

  isMergePatch(): boolean {
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
    // As colander: every invalid field of the body is reported, not only the first.
    const issues: ValidationIssue[] = []
    if (body.data !== undefined) {
      const data = body.data
      collectIssues(issues, () => {
        if (!isPlainObject(data)) {
          throw invalid('body', 'data', `"${pyRepr(data)}" is not a mapping type: Does not implement dict-like functionality.`)
        }
        result.data = method === 'PATCH' ? {...data} : this.validateData({...data}, 'data.')
      })
    } else if (this.def.dataRequired && method !== 'PATCH') {
      issues.push({location: 'body', name: 'data', description: 'Required'})
    }
    if (body.permissions !== undefined) {
      collectIssues(issues, () => {
        result.permissions = validatePermissions(body.permissions, this.def.permissions)
      })
    }
    if (issues.length > 0) throw invalidParameters(issues)
    return result
  }

  validateData(data: Record<string, unknown>, prefix: string): Record<string, unknown> {
    return this.def.validateData ? this.def.validateData(data, this, prefix) : data
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
      // As upstream, where the patched document only has the resource's permissions: an
      // operation on another name (`/permissions/foo/…`, `/permissions/__proto__/…`) fails.
      const unknown = Object.keys(permissions).find((k) => !this.def.permissions.includes(k))
      if (unknown !== undefined) throw invalid('body', null, `JSON Patch operation failed: member '${unknown}' not found`)
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
    if (this.ctx.notifies(action)) {
      await this.ctx.notify({
        action,
        resourceName: this.def.name,
        parentId: this.parentId,
        timestamp: eventTimestamp(data, this.timestampValue),
        data: (eventData ?? data) as Record<string, unknown>,
        old: (old ?? undefined) as Record<string, unknown> | undefined,
      })
    }
    return body
  }
}

/** Thrown by raise304IfNotModified(); the endpoints answer 304. */
export class NotModified extends Error {
  constructor(readonly timestamp: number) {
    super('Not Modified')
  }
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

/** Runs a validation step, keeping its 400 errno 107 details instead of stopping at them. */
function collectIssues(issues: ValidationIssue[], step: () => void): void {
  try {
    step()
  } catch (err) {
    if (!(err instanceof HttpError) || err.status !== 400 || err.errno !== ERRNO.INVALID_PARAMETERS || !Array.isArray(err.details)) throw err
    issues.push(...(err.details as ValidationIssue[]))
  }
}

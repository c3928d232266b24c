/**
 * The state of one request while it is dispatched: its transaction-bound backends, the data it
 * shares with a batch (principals, parent collections, events), who the caller is, the parsed
 * body and the response headers views add.
 */
import type {Cache} from '../cache/types.js'
import type {Settings} from '../config/settings.js'
import type {KintoObject} from '../storage/types.js'
import {identify, type Identity} from './auth.js'
import {urlOrigin} from './headers.js'
import {HttpError, invalidParameters, type ValidationIssue} from './errors.js'
import {EventCollector, type Action} from './events.js'
import {charsetOf, invalidBody, parseJsonBody} from './json.js'
import type {Service, ViewDef} from './router.js'
import type {Runtime} from './runtime.js'
import type {KintoRequest, TxBackends} from './types.js'

/** Shared by a request and its batch sub-requests (upstream's bound_data). */
export interface BoundData {
  events: EventCollector
  /** Parent collections already loaded (record requests), by collection URI. */
  collections: Map<string, KintoObject>
  /** Identities by Authorization header: a batch authenticates each caller once. */
  identities: Map<string, Promise<Identity>>
  /** Set when a sub-request asks the whole transaction to be rolled back (a 409 in a batch). */
  abort: boolean
  /** Set with abort when that 409 was a timestamp taken by a writer outside our locks (retryable). */
  abortRetryable: boolean
  /** Pagination nonces consumed from the cache before the transaction: nonce → was valid. */
  nonces: Map<string, boolean>
  /** Cache writes and other work to run once the transaction has committed (awaited before responding). */
  afterTransaction: Array<() => Promise<void>>
  /** Free-form space for plugins. */
  extra: Map<string, unknown>
}

/**
 * The cache as a batch's sub-request sees it while authenticating inside the transaction: one that
 * would wait for the transaction (PGlite's one connection) answers nothing there, and what is
 * written to it is written once the transaction is over. Any other cache is itself.
 */
function cacheInTransaction(cache: Cache, bound: BoundData): Cache {
  if (!cache.waitsForTransaction) return cache
  const later = (write: () => Promise<unknown>) => {
    bound.afterTransaction.push(async () => {
      await write()
    })
  }
  return {
    waitsForTransaction: true,
    heartbeat: () => cache.heartbeat(),
    flush: () => cache.flush(),
    close: () => cache.close(),
    get: async () => undefined,
    ttl: async () => -1,
    set: async (key, value, ttl) => later(() => cache.set(key, value, ttl)),
    expire: async (key, ttl) => later(() => cache.expire(key, ttl)),
    delete: async (key) => {
      later(() => cache.delete(key))
      return undefined
    },
  }
}

export function newBoundData(): BoundData {
  return {
    events: new EventCollector(),
    collections: new Map(),
    identities: new Map(),
    abort: false,
    abortRetryable: false,
    nonces: new Map(),
    afterTransaction: [],
    extra: new Map(),
  }
}

/** The media types upstream's validator reads as JSON (cornice: `^application/(.*?)json$`). */
const JSON_MEDIA_TYPE = /^application\/.*json$/

export class RequestContext {
  service?: Service
  view?: ViewDef
  params: Record<string, string> = {}
  /** Headers views set on the response (ETag, Next-Page…). */
  readonly responseHeaders: Record<string, string> = {}
  /** Ids the caller may see on a plural endpoint without list permission (null: all). */
  sharedIds: string[] | null = null
  /** Per-request cache for resource helpers. */
  readonly locals = new Map<string, unknown>()
  /**
   * The identity once computed (for logs). The hot paths read it here when it is known rather
   * than awaiting identity() again: each await of the settled promise is a microtask turn.
   */
  knownIdentity?: Identity
  private identityPromise?: Promise<Identity>
  private identityAsked = false
  private bodyValue: unknown = undefined
  private bodyParsed = false
  private bodyError: unknown

  /**
   * @param tx storage and permission: the request's transaction while the view runs; the plain
   *   backends in `beforeTransaction` hooks and in views that run without a transaction.
   */
  constructor(
    readonly runtime: Runtime,
    readonly req: KintoRequest,
    public tx: TxBackends,
    readonly bound: BoundData,
    readonly parent?: RequestContext,
  ) {}

  get settings(): Settings {
    return this.runtime.settings
  }

  get method(): string {
    return this.req.method
  }

  /**
   * Who is calling (computed once; group principals cached per batch). `ahead`: the runtime
   * authenticating before a transaction opens, which does not by itself make the identity the
   * request's (see identityUsed).
   */
  identity(ahead = false): Promise<Identity> {
    if (!ahead) this.identityAsked = true
    if (!this.identityPromise) {
      const key = this.req.headers.authorization ?? ''
      let shared = this.bound.identities.get(key)
      if (!shared) {
        shared = identify(this.runtime.policies, this.req.headers, {
          settings: this.settings,
          storage: this.tx.storage,
          permission: this.tx.permission,
          // Top-level requests authenticate before their transaction opens (see Runtime), and so
          // do a batch's sub-requests but those whose credentials a write of the batch makes.
          cache: this.parent ? cacheInTransaction(this.runtime.backends.cache, this.bound) : this.runtime.backends.cache,
          hooks: this.runtime.hooks,
          scope: this.bound,
        })
        this.bound.identities.set(key, shared)
        shared.catch(() => this.bound.identities.delete(key))
      }
      this.identityPromise = shared.then((identity) => (this.knownIdentity = identity))
    }
    return this.identityPromise
  }

  /**
   * Whether serving the request needed to know who calls: its view checks a permission, or asked
   * for the identity (hello, the default bucket). Upstream authenticates only then, and counts
   * only those requests in its `users` and `authentication` metrics: a batch (its sub-requests
   * authenticate, each counted) or a flush never is.
   */
  get identityUsed(): boolean {
    return this.identityAsked || (this.view !== undefined && this.view.permission !== 'public')
  }

  /** The media type of the request body, lower-cased, without parameters. */
  get contentType(): string {
    return mediaType(this.req.headers['content-type'])
  }

  /**
   * The JSON body (an empty body is `{}`, as upstream). Throws 400 errno 107 for invalid JSON
   * or a JSON scalar.
   */
  body(): unknown {
    if (!this.bodyParsed) {
      try {
        const raw = this.req.body
        if (!raw || raw.length === 0) {
          this.bodyValue = {}
        } else {
          const value = parseJsonBody(raw, charsetOf(this.req.headers['content-type']))
          if (value === null || typeof value !== 'object') {
            throw invalidBody('Should be a JSON object or an array')
          }
          this.bodyValue = value
        }
      } catch (err) {
        this.bodyError = err
      }
      this.bodyParsed = true
    }
    if (this.bodyError) throw this.bodyError
    return this.bodyValue
  }

  /**
   * Refuses a JSON body that cannot be read on a request that has no body to validate (GET, HEAD,
   * DELETE): upstream's validator reads the body of every request (a JSON type or none), so such a
   * body is a 400 there, with one detail (nothing is required of it). A body of another type is
   * not read.
   */
  refuseUnreadableBody(): void {
    const raw = this.req.body
    if (!raw || raw.length === 0) return
    const type = this.contentType
    if (type !== '' && !JSON_MEDIA_TYPE.test(type)) return
    try {
      this.body()
    } catch (err) {
      if (err instanceof HttpError && Array.isArray(err.details)) throw invalidParameters(err.details.slice(0, 1) as ValidationIssue[])
      throw err
    }
  }

  /** The request path without the version prefix (`/buckets/b1`). */
  get uri(): string {
    return this.req.path.replace(/^\/v\d+/, '') || '/'
  }

  /** Absolute URL of a path below the version prefix. */
  absoluteUrl(pathBelowPrefix: string, query?: string): string {
    const q = query ? `?${query}` : ''
    return `${urlOrigin(this.req)}/${this.runtime.routePrefix}${pathBelowPrefix}${q}`
  }

  /**
   * Whether an event of this action is recorded: a read event nobody listens to is not built
   * (every GET would pay for it). Callers on hot paths ask first, to skip notify()'s await.
   */
  notifies(action: Action): boolean {
    return action !== 'read' || this.runtime.events.listensTo('read')
  }

  /** Records a resource event (upstream's notify_resource_event), when notifies() says so. */
  async notify(options: {
    action: Action
    resourceName: string
    parentId: string
    timestamp: number
    data: Record<string, unknown> | Record<string, unknown>[]
    old?: Record<string, unknown> | Record<string, unknown>[]
    /** Ids locating the object (bucket_id, collection_id…); default: the route's params. */
    resourceData?: Record<string, string>
  }): Promise<void> {
    if (!this.notifies(options.action)) return
    const identity = await this.identity()
    const matchdict: Record<string, unknown> = {...(options.resourceData ?? this.params)}
    if (!options.resourceData && 'id' in matchdict) {
      matchdict[`${options.resourceName}_id`] = matchdict.id
      delete matchdict.id
    }
    const payload: Record<string, unknown> = {
      timestamp: options.timestamp,
      action: options.action,
      uri: this.uri,
      user_id: identity.userId,
      resource_name: options.resourceName,
      ...matchdict,
    }
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]) as Record<string, unknown>[]
    if (options.action === 'read') {
      this.bound.events.add({action: 'read', resourceName: options.resourceName, parentId: options.parentId, payload, readObjects: list(options.data)})
      return
    }
    let impacted
    if (options.action === 'create') impacted = [{new: options.data as Record<string, unknown>}]
    else if (options.action === 'delete' && Array.isArray(options.data)) {
      const olds = list(options.old)
      impacted = options.data.map((n, i) => ({new: n, old: olds[i]}))
    } else impacted = [{new: options.data as Record<string, unknown>, old: options.old as Record<string, unknown>}]
    this.bound.events.add({action: options.action, resourceName: options.resourceName, parentId: options.parentId, payload, impacted})
  }
}

/** The media type of a Content-Type value, lower-cased, without parameters (`''` when none). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase()
}

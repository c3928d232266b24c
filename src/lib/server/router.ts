/**
 * Services and their routes. A service is one URL pattern (below `/v1`) with views per method,
 * named as upstream names them (`record-plural`, `hello`…). Patterns use `{name}` segments that
 * match one non-empty path segment; a last `{name*}` segment matches the rest of the path (one
 * segment or more, `/` included). Routes match in registration order, except that services marked
 * `matchFirst` are tried before the others (the default bucket's `/buckets/default…` before
 * `/buckets/{id}…`, as upstream registers plugin routes first).
 */
import type {AuthorizationContext} from './authorization.js'
import type {RequestContext} from './context.js'
import {ERRNO, HttpError, methodNotAllowed} from './errors.js'
import {postedObjectId, type IdGenerator} from './ids.js'
import {charsetOf, parseJsonBody} from './json.js'
import type {KintoRequest, ViewResult} from './types.js'

export type PermissionMode =
  /** Resource permissions, decided by the view's prepare() result. */
  | 'dynamic'
  /** No permission required. */
  | 'public'
  /** Any authenticated user. */
  | 'authenticated'

export interface ViewDef {
  method: string
  permission: PermissionMode
  handler(ctx: RequestContext): Promise<ViewResult>
  /**
   * Runs after routing and before the permission check (upstream's route factory): loads the
   * target of writes and checks parents; returns what the permission check needs.
   */
  prepare?(ctx: RequestContext): Promise<AuthorizationContext | void>
  /**
   * Runs before the request's transaction starts, with `ctx.tx` being the plain backends: the
   * place for cache reads that decide the request (pagination nonces). Top-level requests only.
   */
  beforeTransaction?(ctx: RequestContext): Promise<void>
  /** Accepted request Content-Types (415 otherwise); undefined: any. */
  contentTypes?: string[]
  /** Offered response types (406 when the Accept header allows none); undefined: no check. */
  accept?: string[]
  /** Headers exposed to browsers for this method, beyond the default ones. */
  corsHeaders?: string[]
  /**
   * Its answers are another view's, replayed (the default bucket alias): they keep the headers
   * that view exposes to browsers instead of getting this one's; its own (errors) the default ones.
   */
  replaysExposedHeaders?: boolean
  /** Parse the body as JSON (POST/PUT/PATCH views). */
  parseBody?: boolean
  /**
   * The view refuses a request from an Origin not allowed itself, instead of the runtime before
   * it: a resource once it is set up (upstream builds the resource before its CORS validator, so
   * a missing parent is a 404 and an anonymous account list a 401 first), the default bucket
   * alias through the request it replays (an anonymous one is a 401 first).
   */
  checksOrigin?: boolean
}

export interface Service {
  name: string
  /** Pattern below the version prefix, e.g. `/buckets/{bucket_id}/collections/{id}`. */
  pattern: string
  /** Views by method, in definition order; HEAD falls back to GET. */
  views: Map<string, ViewDef>
  /** Set on resource services. */
  resourceName?: string
  endpointType?: 'plural' | 'object'
  /** Views that manage their own backend access (heartbeat) run outside a transaction. */
  noTransaction?: boolean
  /** Tried before the services without it (aliases over resource routes). */
  matchFirst?: boolean
  /** How `/__api__` describes it (openapi.ts); false: left out, as upstream's plain routes are. */
  openapi?: OpenApiHints | false
}

/** What `/__api__` cannot tell from a service itself: upstream's names and words for it. */
export interface OpenApiHints {
  /** The operations' tags (default: the service name's, as upstream makes them). */
  tags?: string[]
  /** operationId by method (default: `<verb>_<name>`, as upstream makes them). */
  operationIds?: Record<string, string>
  /** The path as documented, when the router's pattern differs (`{spec}` standing for two). */
  path?: string
  /** Types of the path parameters that are not strings. */
  pathTypes?: Record<string, string>
  /**
   * Every operation's answers by status code: a description (the body an object for a 2xx, the
   * error body for a 4xx, 5xx or default, none for a 3xx), or a Swagger response object.
   */
  responses?: Record<string, string | {description: string; schema?: Record<string, unknown>}>
  /** Its querystring parameters (a Swagger parameter each: name, type, required…). */
  query?: Array<{name: string; type: string; required: boolean} & Record<string, unknown>>
  /** The body parameter of its operations that read one: upstream's name for it and its schema. */
  body?: {name: string; schema: Record<string, unknown>}
  /**
   * Described with the authentication methods although its views are public to the router: they
   * check access themselves (upstream's view has no `permission`, so its `security` lists them).
   */
  authenticated?: boolean
}

interface CompiledRoute {
  service: Service
  segments: Array<{literal: string} | {param: string} | {rest: string}>
}

export class Router {
  private readonly routes: CompiledRoute[] = []
  private readonly byName = new Map<string, Service>()

  add(service: Service): void {
    if (this.byName.has(service.name)) throw new Error(`Service '${service.name}' is already registered.`)
    this.byName.set(service.name, service)
    const parts = service.pattern === '/' ? [] : service.pattern.split('/').slice(1)
    const segments = parts.map((s, i) => {
      const rest = /^\{(\w+)\*\}$/.exec(s)
      if (rest) {
        if (i !== parts.length - 1) throw new Error(`'${s}' must be the last segment of ${service.pattern}.`)
        return {rest: rest[1]}
      }
      const m = /^\{(\w+)\}$/.exec(s)
      return m ? {param: m[1]} : {literal: s}
    })
    const route = {service, segments}
    if (service.matchFirst) {
      const firstOther = this.routes.findIndex((r) => !r.service.matchFirst)
      this.routes.splice(firstOther < 0 ? this.routes.length : firstOther, 0, route)
    } else this.routes.push(route)
  }

  get(name: string): Service | undefined {
    return this.byName.get(name)
  }

  get services(): Service[] {
    return this.routes.map((r) => r.service)
  }

  /**
   * Matches a decoded path below the version prefix (`/buckets/b1`, `/` for the root). A preflight
   * (`method` OPTIONS) skips the aliases without an OPTIONS view: upstream's resource routes answer
   * it (`/buckets/default` is the bucket's preflight).
   */
  match(path: string, method?: string): {service: Service; params: Record<string, string>} | null {
    const parts = path === '/' ? [] : path.split('/').slice(1)
    for (const route of this.routes) {
      if (route.service.matchFirst && method === 'OPTIONS' && !route.service.views.has('OPTIONS')) continue
      const last = route.segments[route.segments.length - 1]
      const rest = last !== undefined && 'rest' in last
      if (rest ? parts.length < route.segments.length : route.segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < route.segments.length; i++) {
        const seg = route.segments[i]
        const part = parts[i]
        if ('rest' in seg) {
          params[seg.rest] = parts.slice(i).join('/')
        } else if ('literal' in seg) {
          if (seg.literal !== part) {
            ok = false
            break
          }
        } else {
          if (part === '') {
            ok = false
            break
          }
          params[seg.param] = part
        }
      }
      if (ok) return {service: route.service, params}
    }
    return null
  }
}

/** Fills a pattern with values: `/buckets/{id}` + {id: 'b1'} → `/buckets/b1`. */
export function formatPattern(pattern: string, params: Record<string, string>): string {
  let parts = compiledPatterns.get(pattern)
  if (!parts) {
    // Split on the placeholders: literals at even indexes, parameter names at odd ones.
    parts = pattern.split(/\{(\w+)\}/)
    compiledPatterns.set(pattern, parts)
  }
  let out = parts[0]
  for (let i = 1; i < parts.length; i += 2) {
    const v = params[parts[i]]
    if (v === undefined) throw new Error(`Missing '${parts[i]}' for ${pattern}`)
    out += v + parts[i + 1]
  }
  return out
}

/** Patterns are the services' own (a handful): each is split once. */
const compiledPatterns = new Map<string, string[]>()

/** The view serving a method (HEAD falls back to GET). */
export function findView(service: Service, method: string): ViewDef | undefined {
  return service.views.get(method) ?? (method === 'HEAD' ? service.views.get('GET') : undefined)
}

/** The methods a service answers (405 Allow), HEAD included when it serves GET. */
export function allowedMethods(service: Service, corsEnabled = true): string[] {
  const methods = [...service.views.keys()]
  // HEAD right after GET, where upstream's cornice adds it.
  if (methods.includes('GET') && !methods.includes('HEAD')) methods.splice(methods.indexOf('GET') + 1, 0, 'HEAD')
  // Every service answers preflights (upstream's cornice adds an OPTIONS view to each), unless
  // CORS is off (`cors_origins` empty).
  if (corsEnabled && !methods.includes('OPTIONS')) methods.push('OPTIONS')
  return methods
}

/** Decodes a URL path; 400 "Invalid URL path." when it is not UTF-8. */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Invalid URL path.'})
  }
}

/**
 * The 405 of a method the endpoint has no view for. But a POST to a resource's plural endpoint
 * (history has none): upstream's RouteFactory reads the object id from the body's `data.id`
 * before the view is looked up, so an invalid one is a 400 "Invalid object id" instead. A body
 * that is not JSON, or has no `data.id`, gets the 405.
 */
export function methodNotAllowedFor(
  ids: {idGeneratorFor(resourceName: string): IdGenerator},
  service: Service,
  req: KintoRequest,
  corsEnabled = true,
): HttpError {
  const notAllowed = methodNotAllowed(allowedMethods(service, corsEnabled))
  if (req.method !== 'POST' || service.endpointType !== 'plural' || !service.resourceName) return notAllowed
  if (!req.body || req.body.length === 0) return notAllowed
  let body: unknown
  try {
    body = parseJsonBody(req.body, charsetOf(req.headers['content-type']))
  } catch {
    return notAllowed
  }
  try {
    postedObjectId(body, ids.idGeneratorFor(service.resourceName))
  } catch (error) {
    return error as HttpError
  }
  return notAllowed
}

/**
 * The resource framework's view registration (upstream's kinto.core.resource viewset): one
 * definition gives a plural endpoint (HEAD GET POST DELETE) and an object endpoint (GET PUT PATCH
 * DELETE), honouring readonly and `*_enabled` settings. What each endpoint does is endpoints.ts.
 */
import {asBool} from '../../config/settings.js'
import type {RequestContext} from '../context.js'
import {originRefused} from '../cors.js'
import type {Service, ViewDef} from '../router.js'
import type {ViewResult} from '../types.js'
import type {ResourceDefinition} from './definition.js'
import {objectDelete, objectGet, objectPatch, objectPut, pluralDelete, pluralGet, pluralPost} from './endpoints.js'
import {consumeTokenNonce} from './pagination.js'
import {ResourceRequest} from './request.js'

const JSON_TYPES = ['application/json']
const PATCH_TYPES = ['application/json', 'application/merge-patch+json', 'application/json-patch+json']
const LIST_CORS = ['Next-Page', 'Last-Modified', 'ETag', 'Cache-Control', 'Expires', 'Pragma']
const OBJECT_CORS = ['Last-Modified', 'ETag', 'Cache-Control', 'Expires', 'Pragma']

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
  const hints = def.openapi ? {openapi: def.openapi} : {}
  const plural: Service = {name: `${def.name}-plural`, pattern: def.pluralPath, views: new Map(), resourceName: def.name, endpointType: 'plural', ...hints}
  for (const method of def.pluralMethods ?? DEFAULT_PLURAL_METHODS) {
    if (enabled('plural', method)) plural.views.set(method, pluralView(def, method))
  }
  services.push(plural)
  if (def.objectPath) {
    const object: Service = {name: `${def.name}-object`, pattern: def.objectPath, views: new Map(), resourceName: def.name, endpointType: 'object', ...hints}
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

/**
 * The parent id the object a route names is stored under, told from the route alone, with no
 * caller (DELETE /__user_data__ finds objects by URI); null for a computed model or a parent that
 * depends on the caller and no `storedParentId`.
 */
export function storedParentId(service: Service, params: Record<string, string>): string | null {
  const def = definitions.get(service)
  if (!def || def.model) return null
  if (def.storedParentId) return def.storedParentId(params)
  if (def.parentId.length > 1) return null
  return (def.parentId as (p: Record<string, string>) => string)(params)
}

function baseView(def: ResourceDefinition, kind: 'plural' | 'object', method: string): Omit<ViewDef, 'handler'> {
  const contentTypes = method === 'PATCH' ? PATCH_TYPES : method === 'POST' || method === 'PUT' ? JSON_TYPES : undefined
  return {
    method,
    permission: 'dynamic',
    accept: JSON_TYPES,
    contentTypes,
    parseBody: contentTypes !== undefined,
    checksOrigin: true,
    prepare: async (ctx) => {
      // Who calls is known before the resource is set up when its parent depends on it (a
      // parentId that takes the context, as accounts'). Otherwise a read learns it with its data.
      if (def.parentId.length > 1) await ctx.identity()
      const authz = await ResourceRequest.get(ctx, def, kind).authorizationContext()
      // Known from here on (a read's prefetch brought the groups): the request's log line names
      // the user even when the request fails before its permission check (406, 415…).
      if (!ctx.knownIdentity) await ctx.identity()
      return authz
    },
  }
}

/** A view's handler: the resource request set up and validated, then the endpoint. */
function runner(def: ResourceDefinition, kind: 'plural' | 'object') {
  return (fn: (r: ResourceRequest) => Promise<ViewResult>) => async (ctx: RequestContext) => {
    const r = ResourceRequest.get(ctx, def, kind)
    await r.init()
    const refusal = ctx.runtime.cors.refusal(ctx.req)
    if (refusal) throw originRefused(refusal, () => r.validateRequest())
    r.validateRequest()
    return fn(r)
  }
}

function pluralView(def: ResourceDefinition, method: string): ViewDef {
  const base = baseView(def, 'plural', method)
  const run = runner(def, 'plural')
  switch (method) {
    case 'HEAD':
      return {...base, corsHeaders: [...LIST_CORS, 'Total-Objects', 'Total-Records'], handler: run((r) => pluralGet(r, true))}
    case 'GET':
      return {...base, corsHeaders: LIST_CORS, handler: run((r) => pluralGet(r, false))}
    case 'POST':
      return {...base, handler: run((r) => pluralPost(r))}
    case 'DELETE':
      return {...base, beforeTransaction: (ctx) => consumeTokenNonce(ctx, ctx.req.query), handler: run((r) => pluralDelete(r))}
    default:
      throw new Error(`Unsupported plural method ${method}`)
  }
}

function objectView(def: ResourceDefinition, method: string): ViewDef {
  const base = baseView(def, 'object', method)
  const run = runner(def, 'object')
  switch (method) {
    case 'GET':
      return {...base, corsHeaders: OBJECT_CORS, handler: run((r) => objectGet(r))}
    case 'PUT':
      return {...base, handler: run((r) => objectPut(r))}
    case 'PATCH':
      return {...base, handler: run((r) => objectPatch(r))}
    case 'DELETE':
      return {...base, handler: run((r) => objectDelete(r))}
    default:
      throw new Error(`Unsupported object method ${method}`)
  }
}

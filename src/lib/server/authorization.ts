/**
 * Permission logic: which (object URI, permission) pairs grant a
 * permission on an object, the `*_principals` settings bypass, and the decision for one request
 * (upstream's AuthorizationPolicy.permits with its RouteFactory), including shared lists.
 *
 * Object URIs never carry the `/v1` prefix: `/buckets/b1/collections/c1`.
 */
import {asList, type Settings} from '../config/settings.js'
import type {BoundPermissions, Permission} from '../permission/types.js'

export const EVERYONE = 'system.Everyone'
export const AUTHENTICATED = 'system.Authenticated'
type Tree = Record<string, Record<string, Record<string, string[]>>>

/** Which permissions on which related objects grant a permission (upstream's inheritance tree). */
const INHERITANCE: Tree = {
  root: {'bucket:create': {}, write: {}, read: {}},
  bucket: {
    write: {bucket: ['write']},
    read: {bucket: ['write', 'read']},
    'read:attributes': {bucket: ['write', 'read', 'collection:create', 'group:create']},
    'group:create': {bucket: ['write', 'group:create']},
    'collection:create': {bucket: ['write', 'collection:create']},
  },
  group: {
    write: {bucket: ['write'], group: ['write']},
    read: {bucket: ['write', 'read'], group: ['write', 'read']},
  },
  collection: {
    write: {bucket: ['write'], collection: ['write']},
    read: {bucket: ['write', 'read'], collection: ['write', 'read']},
    'read:attributes': {bucket: ['write', 'read'], collection: ['write', 'read', 'record:create']},
    'record:create': {bucket: ['write'], collection: ['write', 'record:create']},
  },
  record: {
    write: {bucket: ['write'], collection: ['write'], record: ['write']},
    read: {bucket: ['write', 'read'], collection: ['write', 'read'], record: ['write', 'read']},
  },
}

/** Plugins (history, accounts…) add their resources' rules here. */
export function registerInheritance(resourceName: string, rules: Record<string, Record<string, string[]>>): void {
  INHERITANCE[resourceName] = rules
  plans.clear()
}

/** The inheritance tree as registered so far (read by `/permissions` to expand permissions). */
export function inheritanceTree(): Readonly<Tree> {
  return INHERITANCE
}

/** Resource name of a URI and whether it is a plural endpoint; ['', false] for the root. */
export function resourceEndpoint(uri: string): [string, boolean] {
  let parts = uri.split('/')
  const plural = parts.length % 2 === 0
  if (plural) parts = parts.slice(0, -1)
  if (parts.length <= 2) return ['', false]
  return [parts[parts.length - 2].replace(/s+$/, ''), plural]
}

/**
 * The objects a URI lies in, by resource name, as prefix lengths (in `/`-separated parts):
 * `/buckets/b/collections/c/records/r` gives bucket → 3 (`/buckets/b`), collection → 5,
 * record → 7 (itself): the shortest prefix that is an object of each resource, as upstream's
 * get_object_uri finds it.
 */
function ancestorObjects(parts: string[]): Map<string, number> {
  const found = new Map<string, number>()
  // Prefixes of an odd number of parts are objects (`/buckets/b`); an even one is the plural
  // endpoint of the object before it, so never the shortest for a name.
  for (let length = 3; length <= parts.length; length += 2) {
    const name = parts[length - 2].replace(/s+$/, '')
    if (!found.has(name)) found.set(name, length)
  }
  return found
}

/**
 * What inheritedPermissions() gives for a URI shape (its resource names, not its ids): the
 * granting pairs as (prefix length, permission). Reads compute it twice per request; the ids are
 * the only part that changes between requests.
 */
const plans = new Map<string, Array<[number, string]> | {missing: string}>()
const MAX_PLANS = 1000

function planFor(parts: string[], uri: string, permission: string): Array<[number, string]> | {missing: string} {
  const [resourceName, plural] = resourceEndpoint(uri)
  const tree = INHERITANCE[resourceName]
  if (!tree) return []
  const attributes = plural ? permission : `${permission}:attributes`
  const rules = tree[attributes] ?? tree[permission]
  if (!rules) return []
  const ancestors = ancestorObjects(parts)
  const seen = new Set<string>()
  const granters: Array<[number, string]> = []
  for (const [related, perms] of Object.entries(rules)) {
    const length = ancestors.get(related)
    if (length === undefined) return {missing: related}
    for (const perm of perms) {
      const key = `${length}\u0000${perm}`
      if (seen.has(key)) continue
      seen.add(key)
      granters.push([length, perm])
    }
  }
  // Longest URIs first (a longer prefix is a longer URI), stable otherwise.
  return granters
    .map((g, i) => [g, i] as const)
    .sort((a, b) => b[0][0] - a[0][0] || a[1] - b[1])
    .map(([g]) => g)
}

/** Every (uri, permission) pair that grants `permission` on `uri`, longest URIs first. */
export function inheritedPermissions(uri: string, permission: string): BoundPermissions {
  // A read asks twice for the same pairs (the prefetch plans them, the check uses them), with
  // other requests' reads in between: recent answers are kept, and the same array lets the
  // prefetched check recognise its pairs at once.
  const key = `${permission}\u0000${uri}`
  let bound = recent.get(key)
  if (bound === undefined) {
    bound = computeInheritedPermissions(uri, permission)
    if (recent.size >= MAX_RECENT) recent.clear()
    recent.set(key, bound)
  }
  return bound
}

/** Recent answers of inheritedPermissions (their arrays are never modified by callers). */
const recent = new Map<string, BoundPermissions>()
const MAX_RECENT = 256

function computeInheritedPermissions(uri: string, permission: string): BoundPermissions {
  const parts = uri.split('/')
  let key = `${parts.length}\u0000${permission}`
  for (let i = 1; i < parts.length; i += 2) key += `\u0000${parts[i]}`
  let plan = plans.get(key)
  if (plan === undefined) {
    plan = planFor(parts, uri, permission)
    if (plans.size >= MAX_PLANS) plans.clear()
    plans.set(key, plan)
  }
  if (!Array.isArray(plan)) throw new Error(`Cannot get URL of resource '${plan.missing}' from parent '${uri}'.`)
  return plan.map(([length, perm]) => [length === parts.length ? uri : parts.slice(0, length).join('/'), perm])
}

/** What a request needs: the object URI, the permission and where it is asked. */
export interface AuthorizationContext {
  /** Name of the resource of the endpoint (`record`), '' when not on a resource. */
  resourceName: string
  onPluralEndpoint: boolean
  /** `read`, `write`, `create`, or a plugin's own. */
  requiredPermission: string
  /** URI the permission applies to (`/buckets/b1`, or the plural URI for creations). */
  permissionObjectId: string
  /** The object targeted by a write (loaded before the check), null when absent or not loaded. */
  currentObjectExists: boolean
  /** `<object uri pattern>/*` used to find shared objects on plural endpoints. */
  objectIdMatch: string | null
}

export interface AuthorizationResult {
  allowed: boolean
  /** On plural endpoints read without access to the whole list: ids the caller may see. */
  sharedIds: string[] | null
}

/**
 * Checks bound permissions: first the `*_principals` settings keyed on the endpoint's resource,
 * then the permission backend.
 */
export async function checkPermission(
  settings: Settings,
  permission: Permission,
  resourceName: string,
  requiredPermission: string,
  principals: string[],
  boundPermissions: BoundPermissions,
): Promise<boolean> {
  const bound = boundPermissions.length > 0 ? boundPermissions : ([[resourceName, requiredPermission]] as BoundPermissions)
  for (const [, perm] of bound) {
    const allowedPrincipals = asList(settings, principalsSetting(resourceName, perm))
    if (allowedPrincipals.length > 0 && allowedPrincipals.some((p) => principals.includes(p))) return true
  }
  return permission.checkPermission(principals, bound)
}

/**
 * The setting naming principals granted `perm` on the endpoint's resource (`record_read_principals`,
 * `bucket_create_principals`). Every permission check asks for it, with the same few pairs: each
 * name is built once (the setting itself is read each time: settings reload).
 */
function principalsSetting(resourceName: string, perm: string): string {
  let byPerm = settingNames.get(resourceName)
  if (byPerm === undefined) {
    byPerm = new Map()
    settingNames.set(resourceName, byPerm)
  }
  let key = byPerm.get(perm)
  if (key === undefined) {
    key = resourceName && perm && perm.startsWith(resourceName) ? `${perm.replaceAll(':', '_')}_principals` : `${resourceName}_${perm}_principals`
    // Resource names and permissions are the runtime's own (a handful); the cap guards a plugin that would not be.
    if (byPerm.size < 100) byPerm.set(perm, key)
  }
  return key
}

const settingNames = new Map<string, Map<string, string>>()

/** upstream's AuthorizationPolicy.permits for the dynamic permission of resource endpoints. */
export async function permits(
  settings: Settings,
  permission: Permission,
  context: AuthorizationContext,
  principals: string[],
): Promise<AuthorizationResult> {
  const createPermission = `${context.resourceName}:create`
  let perm = context.requiredPermission
  if (perm === 'create') perm = createPermission
  const objectId = context.permissionObjectId
  let bound = inheritedPermissions(objectId, perm)
  const check = (b: BoundPermissions) =>
    checkPermission(settings, permission, context.resourceName, context.requiredPermission, principals, b)
  let allowed = await check(bound)

  const parentUri = objectId ? objectId.split('/').slice(0, -1).join('/') : ''

  // Writing a missing object is allowed when the parent is readable: a 404 follows.
  const objectUnknown = !context.onPluralEndpoint && !context.currentObjectExists
  if (context.requiredPermission === 'write' && objectUnknown) {
    bound = inheritedPermissions(parentUri, 'read')
    allowed = await check(bound)
  }

  let sharedIds: string[] | null = null
  const isListOperation = context.onPluralEndpoint && !perm.endsWith('create') && !context.currentObjectExists
  if (!allowed && isListOperation && context.objectIdMatch !== null) {
    const sharedBound = inheritedPermissions(context.objectIdMatch, perm)
    const fallback: BoundPermissions = sharedBound.length > 0 ? sharedBound : [[context.objectIdMatch, perm]]
    const accessible = await permission.getAccessibleObjects(principals, fallback, {withChildren: false})
    sharedIds = [...accessible.keys()].map((uri) => uri.split('/').pop() ?? uri)
    allowed = sharedIds.length > 0
    if (!allowed) {
      const createBound: BoundPermissions = bound.length > 0 ? [[parentUri, createPermission]] : [['', 'create']]
      allowed = await check(createBound)
    }
  }
  return {allowed, sharedIds}
}

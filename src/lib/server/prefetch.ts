/**
 * Reads in one statement (the hot path): a resource GET or HEAD asks the backends' prefetch
 * (src/lib/prefetch.ts) for everything its pipeline is about to read — the caller's groups, the
 * permission decision, the parent collection, the object, its ACL, the list timestamp, a list's
 * page — and then runs unchanged against backends that answer those calls from the result. Every
 * rule stays where it is (authorization.ts, resource/request.ts, resources.ts); only the round
 * trips go. A call the prefetch did not cover (another object, a shared-objects lookup, a list
 * call other than the planned one) goes to the backends.
 *
 * Only top-level reads outside any transaction prefetch (a batch's sub-requests run inside the
 * batch's transaction, which the prefetch would not see), and only when the backends offer it
 * (PostgreSQL storage and permission on one database). A record POST (prefetchWrite) runs the
 * same statement on its own transaction for its parent collection and its create permission.
 */
import type {BoundPermissions, Permission} from '../permission/types.js'
import type {ObjectKey, Prefetched} from '../prefetch.js'
import {ObjectNotFoundError, type KintoObject, type ListOptions, type Storage} from '../storage/types.js'
import {authenticate, identityFor, type Identity} from './auth.js'
import type {RequestContext} from './context.js'
import type {TxBackends} from './types.js'

/** What a read will ask the backends. */
export interface ReadPlan {
  /** Objects it will get (the target, its parent collection…). */
  objects: ObjectKey[]
  /** Object URIs whose ACL it will read. */
  acls: string[]
  /** The permission check it will make (inheritedPermissions of the target). */
  bound: BoundPermissions
  /** The list whose timestamp it will read. */
  timestamp?: {resourceName: string; parentId: string}
  /** The storage.list call it will make (a list GET whose options are known before its checks). */
  page?: {resourceName: string; parentId: string; options: ListOptions}
}

/**
 * Prefetches a read's data when possible: afterwards the request's identity is known (groups
 * included) and `ctx.tx` answers the planned calls without a round trip.
 */
export async function prefetchRead(ctx: RequestContext, plan: ReadPlan): Promise<void> {
  const backends = ctx.runtime.backends
  if (!backends.prefetch || ctx.tx !== backends) return
  const key = ctx.req.headers.authorization ?? ''
  const known = ctx.bound.identities.get(key)
  let identity: Identity | undefined = known ? await known : undefined
  let user: {userId: string; authnType: string} | null = null
  if (!identity) {
    user = await authenticate(ctx.runtime.policies, ctx.req.headers, {
      settings: ctx.settings,
      storage: backends.storage,
      permission: backends.permission,
      cache: backends.cache,
      hooks: ctx.runtime.hooks,
      scope: ctx.bound,
    })
  }
  const facts = await backends.prefetch({
    userId: identity ? null : (user?.userId ?? null),
    principals: identity ? identity.principals : identityFor(user, []).principals,
    bound: plan.bound,
    objects: plan.objects,
    acls: plan.acls,
    timestamp: plan.timestamp,
    page: plan.page,
  })
  if (!identity) {
    identity = identityFor(user, facts.groups ?? [])
    // RequestContext.identity() takes it from there (as for a batch's second sub-request).
    ctx.bound.identities.set(key, Promise.resolve(identity))
  }
  ctx.tx = prefetchedBackends(ctx.tx, plan, facts, identity.principals)
}

/**
 * A record POST's reads in one statement, inside its transaction: the parent collection and the
 * `create` permission check (the caller's groups are known: authentication ran before the
 * transaction). Run on the transaction, so it sees what the transaction (a batch) already wrote;
 * a call that differs from the plan still goes to the backends.
 */
export async function prefetchWrite(ctx: RequestContext, plan: {objects: ObjectKey[]; bound: BoundPermissions}): Promise<void> {
  const tx = ctx.tx
  if (!tx.prefetch || tx === ctx.runtime.backends) return
  const identity = await ctx.identity()
  const memo = checkMemoOf(tx.permission)
  // A batch's later creates in the collection: the parent is loaded and the check answered.
  if (plan.objects.length === 0 && memo?.answer(identity.principals, plan.bound) !== undefined) return
  const facts = await tx.prefetch({userId: null, principals: identity.principals, bound: plan.bound, objects: plan.objects, acls: []})
  if (facts.allowed !== null) memo?.remember(identity.principals, plan.bound, facts.allowed)
  ctx.tx = prefetchedBackends(tx, {objects: plan.objects, acls: [], bound: plan.bound}, facts, identity.principals)
}

/**
 * Permission checks already answered in a batch's transaction, kept until an entry one of them
 * read may have changed: a write to the ACL of one of their objects, any wildcard delete or
 * membership change forgets them all. Record creates write their new record's ACL only, so the
 * `create` check of 25 creates in one collection is read once. Nothing is answered while
 * `active()` is false (a 409 has rolled the batch back: the backend answers as before).
 */
class CheckMemo {
  private readonly answers = new Map<string, boolean>()
  private readonly objectIds = new Set<string>()

  constructor(private readonly active: () => boolean) {}

  private static key(principals: Iterable<string>, bound: BoundPermissions): string | null {
    let key = [...new Set(principals)].sort().join('\u0001') + '\u0002'
    for (const [objectId, permission] of bound) {
      if (objectId.includes('*')) return null
      key += `${objectId}\u0001${permission}\u0002`
    }
    return key
  }

  answer(principals: Iterable<string>, bound: BoundPermissions): boolean | undefined {
    if (!this.active()) return undefined
    const key = CheckMemo.key(principals, bound)
    return key === null ? undefined : this.answers.get(key)
  }

  remember(principals: Iterable<string>, bound: BoundPermissions, allowed: boolean): void {
    const key = CheckMemo.key(principals, bound)
    if (key === null || !this.active()) return
    this.answers.set(key, allowed)
    for (const [objectId] of bound) this.objectIds.add(objectId)
  }

  /** Before a write to the ACL of these objects (`*`: a wildcard; none: any principal's entries). */
  written(objectIds: string[] | null): void {
    if (objectIds !== null && objectIds.every((id) => !id.includes('*') && !this.objectIds.has(id))) return
    this.answers.clear()
    this.objectIds.clear()
  }
}

const checkMemos = new WeakMap<Permission, CheckMemo>()

/** The batch's CheckMemo under this permission backend (itself, or what it overrides). */
function checkMemoOf(permission: Permission): CheckMemo | undefined {
  for (let p: object | undefined = permission; p; p = overridden.get(p)) {
    const memo = checkMemos.get(p as Permission)
    if (memo) return memo
  }
  return undefined
}

/**
 * The batch's backends: its sub-requests ask permission checks through a CheckMemo. Every write
 * method of the permission backend goes through `written()` first; reads pass unchanged.
 */
export function batchBackends(tx: TxBackends, active: () => boolean): TxBackends {
  const memo = new CheckMemo(active)
  const inner = tx.permission
  const permission = override<Permission>(inner, {
    async checkPermission(principals, bound) {
      const asked = [...principals]
      const known = memo.answer(asked, bound)
      if (known !== undefined) return known
      const allowed = await inner.checkPermission(asked, bound)
      memo.remember(asked, bound, allowed)
      return allowed
    },
    flush: () => (memo.written(null), inner.flush()),
    addUserPrincipal: (userId, principal) => (memo.written(null), inner.addUserPrincipal(userId, principal)),
    removeUserPrincipal: (userId, principal) => (memo.written(null), inner.removeUserPrincipal(userId, principal)),
    removePrincipal: (principal) => (memo.written(null), inner.removePrincipal(principal)),
    addPrincipalToAce: (objectId, perm, principal) => (memo.written([objectId]), inner.addPrincipalToAce(objectId, perm, principal)),
    removePrincipalFromAce: (objectId, perm, principal) => (memo.written([objectId]), inner.removePrincipalFromAce(objectId, perm, principal)),
    removePrincipalFromObjects: (principal, objectIds) => (memo.written(objectIds), inner.removePrincipalFromObjects(principal, objectIds)),
    addPrincipalToAceAndRead: (objectId, perm, principal) => (memo.written([objectId]), inner.addPrincipalToAceAndRead(objectId, perm, principal)),
    replaceObjectPermissions: (objectId, perms) => (memo.written([objectId]), inner.replaceObjectPermissions(objectId, perms)),
    deleteObjectPermissions: (...objectIds) => (memo.written(objectIds), inner.deleteObjectPermissions(...objectIds)),
    addPrincipalsToAcesAndRead:
      inner.addPrincipalsToAcesAndRead && ((entries) => (memo.written(entries.map((e) => e[0])), inner.addPrincipalsToAcesAndRead!(entries))),
  })
  checkMemos.set(permission, memo)
  return {...tx, permission}
}

const objectKey = (resourceName: string, parentId: string, id: string) => `${resourceName}\u0000${parentId}\u0000${id}`

/** The backends, with the planned calls answered from the prefetch. */
function prefetchedBackends(inner: TxBackends, plan: ReadPlan, facts: Prefetched, principals: string[]): TxBackends {
  const objects = new Map<string, KintoObject | null>(plan.objects.map((k, i) => [objectKey(k.resourceName, k.parentId, k.id), facts.objects[i]]))
  const acls = new Map(plan.acls.map((uri, i) => [uri, facts.acls[i]]))
  const principalSet = new Set(principals)
  // The planned page's outcome, until the planned call takes it.
  let page: {rows: KintoObject[]} | {error: unknown} | null = facts.pageFailed ?? (facts.page ? {rows: facts.page} : null)
  const storage = override<Storage>(inner.storage, {
    async get(resourceName, parentId, id) {
      const key = objectKey(resourceName, parentId, id)
      if (!objects.has(key)) return inner.storage.get(resourceName, parentId, id)
      const found = objects.get(key)
      if (!found) throw new ObjectNotFoundError(resourceName, id)
      return {...found}
    },
    async resourceTimestamp(resourceName, parentId, options) {
      const t = plan.timestamp
      if (facts.timestamp !== null && t && t.resourceName === resourceName && t.parentId === parentId) return facts.timestamp
      return inner.storage.resourceTimestamp(resourceName, parentId, options)
    },
    async list(resourceName, parentId, options) {
      // The page only with the timestamp the prefetch read (in the page's statement, or in the
      // one before it): a timestamp read later (the first read of a list stores it) could be
      // newer than the page, and a client syncing with _since would then skip what it missed.
      // Answered once (the page, or the error its statement raised); another call reads again.
      const p = plan.page
      const found = page
      if (found && facts.timestamp !== null && p && p.resourceName === resourceName && p.parentId === parentId && sameValue(options ?? {}, p.options)) {
        page = null
        if ('error' in found) throw found.error
        return found.rows
      }
      return inner.storage.list(resourceName, parentId, options)
    },
  })
  const permission = override<Permission>(inner.permission, {
    async getObjectPermissions(uri, permissions) {
      const acl = permissions === undefined ? acls.get(uri) : undefined
      if (!acl) return inner.permission.getObjectPermissions(uri, permissions)
      return Object.fromEntries(Object.entries(acl).map(([perm, set]) => [perm, new Set(set)]))
    },
    async checkPermission(who, bound) {
      const asked = [...who]
      const same =
        facts.allowed !== null &&
        sameBound(bound, plan.bound) &&
        asked.length === principalSet.size &&
        asked.every((p) => principalSet.has(p))
      return same ? facts.allowed! : inner.permission.checkPermission(asked, bound)
    },
  })
  return {...inner, storage, permission}
}

/** Structural equality of list options (JSON-like values; a key set to undefined counts as absent). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const other = b as unknown[]
    return a.length === other.length && a.every((v, i) => sameValue(v, other[i]))
  }
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  if (Object.getPrototypeOf(ra) !== Object.prototype || Object.getPrototypeOf(rb) !== Object.prototype) return false
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined)
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined)
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(rb, k) && sameValue(ra[k], rb[k]))
}

function sameBound(a: BoundPermissions, b: BoundPermissions): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false
  return true
}

/** `target` with some methods replaced (the others still run on target itself). */
export function override<T extends object>(target: T, methods: Partial<T>): T {
  const bound = boundMethods(target)
  const proxy = new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(methods, prop)) return methods[prop as keyof T]
      const value: unknown = Reflect.get(t, prop, t)
      if (typeof value !== 'function') return value
      // The backends live as long as the server: their methods are bound once, not per request.
      const known = bound.get(prop)
      if (known && known.original === value) return known.bound
      const fresh = {original: value, bound: value.bind(t) as AnyMethod}
      bound.set(prop, fresh)
      return fresh.bound
    },
  })
  overridden.set(proxy, target)
  return proxy
}

/** What each override() proxy overrides. */
const overridden = new WeakMap<object, object>()

type AnyMethod = (...args: never[]) => unknown
type BoundMethod = {original: unknown; bound: AnyMethod}
const boundByTarget = new WeakMap<object, Map<string | symbol, BoundMethod>>()

function boundMethods(target: object): Map<string | symbol, BoundMethod> {
  let map = boundByTarget.get(target)
  if (!map) boundByTarget.set(target, (map = new Map()))
  return map
}

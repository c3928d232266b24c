/**
 * In-process permission backend (upstream: kinto.core.permission.memory), answering as the
 * postgresql one does. Transactions run one at a time and undo on throw.
 */
import {type Journal, Mutex, rollback} from '../storage/mutex.js'
import {hasWildcard, wildcardMatcher} from '../storage/wildcard.js'
import {type BoundPermissions, type Permission, permissionHeartbeat} from './types.js'

const SYSTEM_AUTHENTICATED = 'system.Authenticated'

export class MemoryPermissionState {
  /** user id → extra principals */
  readonly users = new Map<string, Set<string>>()
  /** object id → permission → principals */
  readonly aces = new Map<string, Map<string, Set<string>>>()
  readonly mutex = new Mutex()
}

/** Matches object ids like upstream's SQL: `LIKE pattern`, and without children `NOT LIKE pattern || '/%'`. */
function objectMatcher(pattern: string, withChildren: boolean): (id: string) => boolean {
  const match = wildcardMatcher(pattern)
  if (withChildren) return match
  const child = wildcardMatcher(pattern + '/*')
  return (id) => match(id) && !child(id)
}

export class MemoryPermission implements Permission {
  readonly kind = 'memory' as const

  constructor(
    readonly state: MemoryPermissionState = new MemoryPermissionState(),
    private readonly journal?: Journal,
  ) {}

  /** Runs fn with a permission backend bound to a transaction (one at a time, undone on throw). */
  transaction<T>(fn: (permission: MemoryPermission) => Promise<T>): Promise<T> {
    return this.state.mutex.run(async () => {
      const journal: Journal = []
      try {
        return await fn(new MemoryPermission(this.state, journal))
      } catch (error) {
        rollback(journal)
        throw error
      }
    })
  }

  // --- journaled primitives ---

  private setUser(userId: string, principals: Set<string> | undefined): void {
    const previous = this.state.users.get(userId)
    if (principals && principals.size > 0) this.state.users.set(userId, principals)
    else this.state.users.delete(userId)
    this.journal?.push(() => {
      if (previous) this.state.users.set(userId, previous)
      else this.state.users.delete(userId)
    })
  }

  private setAce(objectId: string, permission: string, principals: Set<string> | undefined): void {
    let perms = this.state.aces.get(objectId)
    const previous = perms?.get(permission)
    if (principals && principals.size > 0) {
      if (!perms) {
        perms = new Map()
        this.state.aces.set(objectId, perms)
      }
      perms.set(permission, principals)
    } else if (perms) {
      perms.delete(permission)
      if (perms.size === 0) this.state.aces.delete(objectId)
    }
    this.journal?.push(() => {
      let p = this.state.aces.get(objectId)
      if (previous) {
        if (!p) {
          p = new Map()
          this.state.aces.set(objectId, p)
        }
        p.set(permission, previous)
      } else if (p) {
        p.delete(permission)
        if (p.size === 0) this.state.aces.delete(objectId)
      }
    })
  }

  // --- Permission ---

  heartbeat(readonly: boolean): Promise<boolean> {
    return permissionHeartbeat(this, readonly)
  }

  async flush(): Promise<void> {
    const users = [...this.state.users]
    const aces = [...this.state.aces]
    this.state.users.clear()
    this.state.aces.clear()
    this.journal?.push(() => {
      for (const [k, v] of users) this.state.users.set(k, v)
      for (const [k, v] of aces) this.state.aces.set(k, v)
    })
  }

  async getUserPrincipals(userId: string): Promise<Set<string>> {
    return new Set([...(this.state.users.get(userId) ?? []), ...(this.state.users.get(SYSTEM_AUTHENTICATED) ?? [])])
  }

  async addUserPrincipal(userId: string, principal: string): Promise<void> {
    const current = this.state.users.get(userId)
    if (current?.has(principal)) return
    this.setUser(userId, new Set([...(current ?? []), principal]))
  }

  async removeUserPrincipal(userId: string, principal: string): Promise<void> {
    const current = this.state.users.get(userId)
    if (!current?.has(principal)) return
    const next = new Set(current)
    next.delete(principal)
    this.setUser(userId, next)
  }

  async removePrincipal(principal: string): Promise<void> {
    for (const [userId, principals] of [...this.state.users]) {
      if (!principals.has(principal)) continue
      const next = new Set(principals)
      next.delete(principal)
      this.setUser(userId, next)
    }
  }

  async getObjectPermissionPrincipals(objectId: string, permission: string): Promise<Set<string>> {
    return new Set(this.state.aces.get(objectId)?.get(permission) ?? [])
  }

  async addPrincipalToAce(objectId: string, permission: string, principal: string): Promise<void> {
    const current = this.state.aces.get(objectId)?.get(permission)
    if (current?.has(principal)) return
    this.setAce(objectId, permission, new Set([...(current ?? []), principal]))
  }

  async addPrincipalToAceAndRead(objectId: string, permission: string, principal: string): Promise<Record<string, Set<string>>> {
    await this.addPrincipalToAce(objectId, permission, principal)
    return this.getObjectPermissions(objectId)
  }

  async removePrincipalFromAce(objectId: string, permission: string, principal: string): Promise<void> {
    const current = this.state.aces.get(objectId)?.get(permission)
    if (!current?.has(principal)) return
    const next = new Set(current)
    next.delete(principal)
    this.setAce(objectId, permission, next)
  }

  async removePrincipalFromObjects(principal: string, objectIds: string[]): Promise<void> {
    for (const objectId of objectIds) {
      for (const permission of [...(this.state.aces.get(objectId)?.keys() ?? [])]) await this.removePrincipalFromAce(objectId, permission, principal)
    }
  }

  async getObjectPermissions(objectId: string, permissions?: string[]): Promise<Record<string, Set<string>>> {
    return (await this.getObjectsPermissions([objectId], permissions))[0]
  }

  async getObjectsPermissions(objectIds: string[], permissions?: string[]): Promise<Array<Record<string, Set<string>>>> {
    return objectIds.map((objectId) => {
      const result: Record<string, Set<string>> = {}
      const perms = this.state.aces.get(objectId)
      if (!perms) return result
      for (const [perm, principals] of perms) {
        if (permissions && !permissions.includes(perm)) continue
        result[perm] = new Set(principals)
      }
      return result
    })
  }

  async replaceObjectPermissions(objectId: string, permissions: Record<string, Iterable<string>>): Promise<void> {
    for (const [perm, principals] of Object.entries(permissions)) {
      this.setAce(objectId, perm, new Set(principals))
    }
  }

  async deleteObjectPermissions(...objectIds: string[]): Promise<void> {
    if (objectIds.length === 0) return
    const matchers = objectIds.map((p) => wildcardMatcher(p))
    const exact = objectIds.every((p) => !hasWildcard(p))
    const targets = exact ? objectIds.filter((id) => this.state.aces.has(id)) : [...this.state.aces.keys()].filter((id) => matchers.some((m) => m(id)))
    for (const id of targets) {
      for (const perm of [...(this.state.aces.get(id)?.keys() ?? [])]) this.setAce(id, perm, undefined)
    }
  }

  async checkPermission(principals: Iterable<string>, boundPermissions: BoundPermissions): Promise<boolean> {
    const wanted = new Set(principals)
    if (wanted.size === 0) return false
    for (const [objectId, perm] of boundPermissions) {
      const holders = this.state.aces.get(objectId)?.get(perm)
      if (holders) for (const p of holders) if (wanted.has(p)) return true
    }
    return false
  }

  async getAccessibleObjects(
    principals: Iterable<string>,
    boundPermissions?: BoundPermissions,
    options: {withChildren?: boolean} = {},
  ): Promise<Map<string, Set<string>>> {
    const wanted = new Set(principals)
    const result = new Map<string, Set<string>>()
    const add = (id: string, perm: string) => {
      let s = result.get(id)
      if (!s) result.set(id, (s = new Set()))
      s.add(perm)
    }
    const held = (holders: Set<string>) => {
      for (const p of holders) if (wanted.has(p)) return true
      return false
    }
    if (boundPermissions === undefined) {
      for (const [id, perms] of this.state.aces) for (const [perm, holders] of perms) if (held(holders)) add(id, perm)
      return result
    }
    const withChildren = options.withChildren ?? true
    for (const [pattern, perm] of boundPermissions) {
      const match = objectMatcher(pattern, withChildren)
      if (!hasWildcard(pattern)) {
        const holders = this.state.aces.get(pattern)?.get(perm)
        if (holders && held(holders) && match(pattern)) add(pattern, perm)
        continue
      }
      for (const [id, perms] of this.state.aces) {
        const holders = perms.get(perm)
        if (holders && match(id) && held(holders)) add(id, perm)
      }
    }
    return result
  }

  async getAuthorizedPrincipals(boundPermissions: BoundPermissions): Promise<Set<string>> {
    const result = new Set<string>()
    for (const [objectId, perm] of boundPermissions) for (const p of this.state.aces.get(objectId)?.get(perm) ?? []) result.add(p)
    return result
  }

  async close(): Promise<void> {}
}

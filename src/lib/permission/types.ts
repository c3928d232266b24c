/**
 * The permission backend interface (upstream: kinto.core.permission.PermissionBase), implemented by
 * memory.ts and postgresql.ts, checked by one contract suite.
 * Object ids are URIs without `/v1` (`/buckets/b1/collections/c1`).
 */

/** [objectUri, permission] pairs; `*` in a URI is a wildcard. */
export type BoundPermissions = Array<[string, string]>

export interface Permission {
  heartbeat(readonly: boolean): Promise<boolean>
  flush(): Promise<void>

  /** Extra principals of a user (group URIs), including those of `system.Authenticated`. */
  getUserPrincipals(userId: string): Promise<Set<string>>
  addUserPrincipal(userId: string, principal: string): Promise<void>
  removeUserPrincipal(userId: string, principal: string): Promise<void>
  /** Drop every membership in `principal` (a deleted group). */
  removePrincipal(principal: string): Promise<void>

  getObjectPermissionPrincipals(objectId: string, permission: string): Promise<Set<string>>
  addPrincipalToAce(objectId: string, permission: string, principal: string): Promise<void>
  removePrincipalFromAce(objectId: string, permission: string, principal: string): Promise<void>
  /** The principal out of every ACE of these objects, whatever the permission (one write). */
  removePrincipalFromObjects(principal: string, objectIds: string[]): Promise<void>
  /**
   * addPrincipalToAce, then the object's whole ACL as getObjectPermissions gives it after the
   * write: what a create or update answers with, in one round trip where the backend can.
   */
  addPrincipalToAceAndRead(objectId: string, permission: string, principal: string): Promise<Record<string, Set<string>>>
  /**
   * addPrincipalToAceAndRead for several [objectId, permission, principal] entries in one write
   * (a batch's consecutive creates): for each entry, in order, its object's whole ACL after the
   * write (entries of one object all answer it, every one of them in it; [] for no entries).
   * Offered where one statement does it (postgresql).
   */
  addPrincipalsToAcesAndRead?(entries: Array<[string, string, string]>): Promise<Array<Record<string, Set<string>>>>

  /** {perm: principals} of one object. */
  getObjectPermissions(objectId: string, permissions?: string[]): Promise<Record<string, Set<string>>>
  /** Same, for many objects (in order). */
  getObjectsPermissions(objectIds: string[], permissions?: string[]): Promise<Array<Record<string, Set<string>>>>
  /** Rewrites only the named permissions of the object (an empty list empties it). */
  replaceObjectPermissions(objectId: string, permissions: Record<string, Iterable<string>>): Promise<void>
  /** Deletes every ACE of the objects; ids may contain `*` (prefix wildcards for cascades). */
  deleteObjectPermissions(...objectIds: string[]): Promise<void>

  /** True when one of the principals holds one of the bound permissions. */
  checkPermission(principals: Iterable<string>, boundPermissions: BoundPermissions): Promise<boolean>
  /** Object URI → permissions, for objects matching the bound permissions and held by the principals. */
  getAccessibleObjects(principals: Iterable<string>, boundPermissions?: BoundPermissions, options?: {withChildren?: boolean}): Promise<Map<string, Set<string>>>
  /** Principals holding any of the bound permissions. */
  getAuthorizedPrincipals(boundPermissions: BoundPermissions): Promise<Set<string>>
  close(): Promise<void>
}

/** Every permission backend's heartbeat, as upstream's: a read when readonly, else a principal added to a user and removed. */
export async function permissionHeartbeat(permission: Pick<Permission, 'getUserPrincipals' | 'addUserPrincipal' | 'removeUserPrincipal'>, readonly: boolean): Promise<boolean> {
  const key = '__heartbeat__'
  if (readonly) {
    await permission.getUserPrincipals(key)
    return true
  }
  await permission.addUserPrincipal(key, 'alive')
  await permission.removeUserPrincipal(key, 'alive')
  return true
}

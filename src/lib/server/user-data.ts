/**
 * DELETE /__user_data__/{principal} (upstream's kinto/views/admin.py): what a principal owns goes,
 * and the principal with it. Kinto has no owners; an object is the principal's when the principal
 * is its only writer. Those objects are deleted as a delete of each would (tombstones, events, so
 * cascades, history and attachments follow, and their permissions); every other ACE loses the
 * principal; its group memberships go, and, when it is a group, the memberships of others in it.
 *
 * Nobody may call it unless `user-data_delete_principals` names them (upstream's default: no one).
 * One difference from upstream: an account owned by the principal (`/accounts/<id>`, stored under
 * its own id) is deleted too; upstream looks for it under the wrong parent, keeps it, and strips
 * only its permissions, so the account can still log in but no longer change its password.
 * Another: system.Everyone and system.Authenticated are refused (400); upstream strips them from
 * every ACE of the server.
 */
import {asInt} from '../config/settings.js'
import type {Filter, KintoObject} from '../storage/types.js'
import {AUTHENTICATED, EVERYONE, type AuthorizationContext} from './authorization.js'
import type {RequestContext} from './context.js'
import {invalid} from './errors.js'
import type {Service, ViewDef} from './router.js'
import type {Runtime} from './runtime.js'
import type {ViewResult} from './types.js'
import {service} from './views.js'
import {storedParentId} from './resource/services.js'

/** The parent URI of an object URI (`/buckets/b/collections/c` → `/buckets/b`), '' at the root. */
export function parentUri(objectUri: string): string {
  const parts = objectUri.split('/')
  return parts.length < 3 ? '' : parts.slice(0, -2).join('/')
}

/**
 * The URIs that are not below another of them: deleting a bucket deletes what it holds, so its
 * collections and records need no delete of their own (nor events: upstream's coalescing).
 */
export function outermost(uris: Iterable<string>): string[] {
  const kept = new Set<string>()
  // Sorted, an ancestor comes before what it holds.
  for (const uri of [...uris].sort()) {
    let parent = parentUri(uri)
    while (parent !== '' && !kept.has(parent)) parent = parentUri(parent)
    if (parent === '') kept.add(uri)
  }
  return [...kept]
}

/** Where an object of the API is stored: its resource, parent id, id, and the ids of its route. */
interface Located {
  resourceName: string
  parentId: string
  id: string
  /** The route's ids but its own (bucket_id, collection_id): the event's payload. */
  resourceData: Record<string, string>
}

function locate(runtime: Runtime, uri: string): Located | null {
  const match = runtime.router.match(uri)
  if (!match || match.service.endpointType !== 'object' || !match.service.resourceName) return null
  const {id, ...resourceData} = match.params
  if (id === undefined) return null
  const parentId = storedParentId(match.service, match.params)
  if (parentId === null) return null
  return {resourceName: match.service.resourceName, parentId, id, resourceData}
}

async function deleteUserData(ctx: RequestContext): Promise<ViewResult> {
  const principal = ctx.params.principal
  // Nobody's user id: every public or logged-in ACE of the server would go (upstream strips them).
  if (principal === EVERYONE || principal === AUTHENTICATED) {
    throw invalid('path', 'principal', `${principal} is not a user: it names everyone, or every logged-in user.`)
  }
  const {storage, permission} = ctx.tx

  const accessible = await permission.getAccessibleObjects([principal])
  const uris = [...accessible.keys()]
  const writers = uris.length > 0 ? await permission.getObjectsPermissions(uris, ['write']) : []
  const owned = new Set<string>()
  uris.forEach((uri, i) => {
    const write = writers[i]?.write
    if (write !== undefined && write.size === 1 && write.has(principal)) owned.add(uri)
  })
  // The objects it shares with others stay, without it.
  await permission.removePrincipalFromObjects(
    principal,
    uris.filter((uri) => !owned.has(uri)),
  )

  // Its objects, one delete per list (and per page of storage_max_fetch_size ids).
  const lists = new Map<string, {located: Located; ids: string[]; uris: string[]}>()
  const unrouted: string[] = []
  for (const uri of outermost(owned)) {
    const located = locate(ctx.runtime, uri)
    if (located === null) {
      // An ACE left on a URI no resource serves: nothing stored to delete.
      unrouted.push(uri)
      continue
    }
    const key = `${located.resourceName}\u0000${located.parentId}`
    let list = lists.get(key)
    if (list === undefined) lists.set(key, (list = {located, ids: [], uris: []}))
    list.ids.push(located.id)
    list.uris.push(uri)
  }
  const pageSize = Math.max(1, asInt(ctx.settings, 'storage_max_fetch_size', 10000) ?? 10000)
  for (const {located, ids, uris: listUris} of lists.values()) {
    const {resourceName, parentId, resourceData} = located
    for (let start = 0; start < ids.length; start += pageSize) {
      const filters: Filter[] = [{field: 'id', value: ids.slice(start, start + pageSize), operator: 'in'}]
      const old = new Map((await storage.list(resourceName, parentId, {filters})).map((o) => [o.id, o]))
      const tombstones = await storage.deleteAll(resourceName, parentId, {filters})
      if (tombstones.length > 0) {
        await ctx.notify({
          action: 'delete',
          resourceName,
          parentId,
          timestamp: tombstones.reduce((max: number, t: KintoObject) => Math.max(max, t.last_modified), 0),
          data: tombstones,
          old: tombstones.map((t) => old.get(t.id) ?? t),
          resourceData,
        })
      }
      await permission.deleteObjectPermissions(...listUris.slice(start, start + pageSize))
    }
  }
  if (unrouted.length > 0) await permission.deleteObjectPermissions(...unrouted)

  // Nobody is a member of it any more (a group), and it is a member of nothing.
  await permission.removePrincipal(principal)
  for (const group of await permission.getUserPrincipals(principal)) await permission.removeUserPrincipal(principal, group)

  return {status: 200, body: {data: {principal}}}
}

const deleteView: ViewDef = {
  method: 'DELETE',
  permission: 'dynamic',
  async prepare(ctx): Promise<AuthorizationContext> {
    return {
      resourceName: 'user-data',
      onPluralEndpoint: false,
      requiredPermission: 'delete',
      permissionObjectId: `/__user_data__/${ctx.params.principal}`,
      currentObjectExists: true,
      objectIdMatch: null,
    }
  },
  handler: deleteUserData,
}

/** The plural URL answers nothing (405), as upstream's resource without plural methods. */
export function userDataServices(runtime: Runtime): Service[] {
  return [
    service('user-data-plural', '/__user_data__', []),
    service('user-data-object', '/__user_data__/{principal}', runtime.readonly ? [] : [deleteView], {
      openapi: {
        responses: {
          '200': 'The principal whose data was deleted.',
          '401': 'The request carries no credentials, and the endpoint needs some.',
          '403': 'The caller is not named by user-data_delete_principals.',
          default: 'Another error.',
        },
      },
    }),
  ]
}

/**
 * `GET /v1/permissions`: every object the caller holds a permission on,
 * from the permission backend and from the `<resource>_<perm>_principals` settings, with the
 * permissions each one implies on the same object (bucket write → read, collection:create…).
 * Served with `experimental_permissions_endpoint` or the admin plugin, as upstream; readable by
 * `permissions_read_principals` (default everyone). A closed schema: filters and `_sort` on
 * uri, resource_name, permissions, bucket_id, collection_id, group_id, record_id; sorted by uri.
 */
import {asList, type Settings} from '../../config/settings.js'
import {compareBySorting, matchesAll, matchesRules} from '../../storage/evaluate.js'
import type {Filter, KintoObject, ListOptions, Storage} from '../../storage/types.js'
import {inheritanceTree} from '../authorization.js'
import type {RequestContext} from '../context.js'
import type {ResourceDefinition} from '../resource/definition.js'
import type {ResourceRequest} from '../resource/request.js'
import type {KintoPlugin} from './index.js'

/** Parent of the objects a `<resource>_create_principals` setting lets one create. */
const CREATE_PARENT: Record<string, string> = {
  collection: 'bucket',
  group: 'bucket',
  record: 'collection',
  bucket: 'root',
  account: 'root',
}

/** upstream's allowed_from_settings: resource → permissions the settings give these principals. */
export function allowedFromSettings(settings: Settings, principals: string[]): Map<string, Set<string>> {
  const tree = inheritanceTree()
  const result = new Map<string, Set<string>>()
  for (const key of Object.keys(settings)) {
    if (!/^(.+)_(create|write|read)_principals$/.test(key)) continue
    let [resource, permission] = key.split('_')
    if (permission === undefined || !(resource in tree)) continue
    const allowed = asList(settings, key)
    if (!allowed.some((p) => principals.includes(p))) continue
    if (permission === 'create') {
      permission = `${resource}:create`
      resource = CREATE_PARENT[resource] ?? ''
    }
    let set = result.get(resource)
    if (!set) result.set(resource, (set = new Set()))
    set.add(permission)
  }
  return result
}

type Descending = Map<string, Map<string, Map<string, Set<string>>>>

/** The inheritance tree inverted: from (resource, permission) to what it grants on each resource. */
function descendingTree(): Descending {
  const tree: Descending = new Map()
  for (const [onResource, rules] of Object.entries(inheritanceTree())) {
    for (const [obtained, from] of Object.entries(rules)) {
      for (const [fromResource, perms] of Object.entries(from)) {
        for (const perm of perms) {
          let byPerm = tree.get(fromResource)
          if (!byPerm) tree.set(fromResource, (byPerm = new Map()))
          let byResource = byPerm.get(perm)
          if (!byResource) byPerm.set(perm, (byResource = new Map()))
          let set = byResource.get(onResource)
          if (!set) byResource.set(onResource, (set = new Set()))
          set.add(obtained)
        }
      }
    }
  }
  return tree
}

/** The entries of the caller (upstream's PermissionsModel._get_objects, before filtering). */
async function permissionEntries(ctx: RequestContext): Promise<KintoObject[]> {
  const identity = await ctx.identity()
  const principals = identity.principals
  const {storage, permission} = ctx.tx
  const byUri = await permission.getAccessibleObjects(principals)
  const add = (uri: string, perms: Iterable<string>) => {
    let set = byUri.get(uri)
    if (!set) byUri.set(uri, (set = new Set()))
    for (const p of perms) set.add(p)
  }
  const fromSettings = allowedFromSettings(ctx.settings, principals)
  const descending = descendingTree()
  for (const rootPerm of fromSettings.get('root') ?? []) {
    add('/', [rootPerm])
    let root = descending.get('root')
    if (!root) descending.set('root', (root = new Map()))
    root.set(rootPerm, new Map([['root', new Set([rootPerm])]]))
  }
  const expanded = ['bucket', 'collection', 'group'].filter((r) => fromSettings.has(r))
  if (expanded.length > 0) {
    for (const bucket of await storage.list('bucket', '')) {
      const bucketUri = `/buckets/${bucket.id}`
      for (const resource of expanded) {
        const perms = fromSettings.get(resource)!
        if (resource === 'bucket') {
          add(bucketUri, perms)
          continue
        }
        for (const child of await storage.list(resource, bucketUri)) add(`${bucketUri}/${resource}s/${child.id}`, perms)
      }
    }
  }

  const entries: KintoObject[] = []
  for (const [uri, perms] of byUri) {
    let resourceName: string
    const matchdict: Record<string, string> = {}
    if (uri === '/') resourceName = 'root'
    else {
      // Only URIs of objects the API serves (history entries, for one, have no object endpoint).
      const match = ctx.runtime.router.match(uri)
      if (!match || match.service.endpointType !== 'object' || !match.service.resourceName) continue
      resourceName = match.service.resourceName
      Object.assign(matchdict, match.params)
      if ('id' in matchdict) matchdict[`${resourceName}_id`] = matchdict.id
    }
    const permissions = new Set(perms)
    for (const perm of perms) {
      for (const implied of descending.get(resourceName)?.get(perm)?.get(resourceName) ?? []) permissions.add(implied)
    }
    entries.push({...matchdict, uri, resource_name: resourceName, permissions: [...permissions].sort()} as unknown as KintoObject)
  }
  return entries
}

/** The computed list, read through the resource framework as if it were storage. */
function permissionsModel(r: ResourceRequest): Storage {
  let cached: Promise<KintoObject[]> | undefined
  // Evaluated as storage evaluates objects: the root entry's missing id is a missing value, sorted
  // last ascending and matched as one by filters and pagination rules.
  const entries = () => (cached ??= permissionEntries(r.ctx))
  const select = async (filters?: Filter[], rules?: Filter[][]) =>
    (await entries()).filter((entry) => matchesAll(entry, filters) && matchesRules(entry, rules))
  const model: Partial<Storage> = {
    // Upstream reads this list's timestamp from storage (as for any resource) before it swaps in
    // its computed model: the time of the first request, kept by the storage from then on.
    resourceTimestamp: (name, parent, options) => r.ctx.tx.storage.resourceTimestamp(name, parent, options),
    async list(_name: string, _parent: string, options: ListOptions = {}) {
      const found = await select(options.filters, options.paginationRules)
      if (options.sorting?.length) found.sort((a, b) => compareBySorting(a, b, options.sorting!))
      return options.limit ? found.slice(0, options.limit) : found
    },
    count: async (_name: string, _parent: string, filters?: Filter[]) => (await select(filters)).length,
  }
  return new Proxy(model, {
    get(target, prop) {
      if (prop in target) return target[prop as keyof Storage]
      return () => Promise.reject(new Error(`/permissions is read-only (${String(prop)}).`))
    },
  }) as Storage
}

export const permissionsResource: ResourceDefinition = {
  name: 'permissions',
  pluralPath: '/permissions',
  objectPath: null,
  permissions: [],
  pluralMethods: ['HEAD', 'GET'],
  parentId: () => '',
  // Upstream's schema declares `permissions` as a bare type, not a field: it is shown in every
  // entry but is no field to filter, sort or pick with _fields.
  knownFields: ['uri', 'resource_name', 'bucket_id', 'collection_id', 'group_id', 'record_id'],
  // Entries have no timestamp: not a filter, not a sort; `uri` (unique) keeps pages stable.
  adjustFilters: (filters) => filters.filter((f) => f.field !== 'last_modified'),
  adjustSorting(sorting) {
    const kept = sorting.filter((s) => s.field !== 'last_modified')
    if (!kept.some((s) => s.field === 'uri')) kept.push({field: 'uri', direction: -1})
    return kept
  },
  model: permissionsModel,
  // Its ETag (the stored list timestamp, as upstream) does not change with the ACLs, so it cannot
  // validate: preconditions compare with 0, as upstream's (never a 304, an If-Match fails).
  preconditionTimestamp: 0,
}

/** Switched on by core settings (experimental_permissions_endpoint) or the admin plugin. */
export const permissionsEndpoint: KintoPlugin = {
  name: 'permissions endpoint',
  includeme(api) {
    api.runtime.addCapability('permissions_endpoint', {
      description: 'The permissions endpoint can be used to list all user objects permissions.',
      url: 'https://kinto.readthedocs.io/en/latest/configuration/settings.html#activating-the-permissions-endpoint',
    })
    api.addResource(permissionsResource)
  },
}

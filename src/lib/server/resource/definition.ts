/**
 * What a resource type is: its paths, permissions and the hooks that make it special. Buckets,
 * collections, groups and records are definitions (../resources.ts); plugins add theirs the same way.
 */
import type {Filter, KintoObject, Sort, Storage} from '../../storage/types.js'
import type {ObjectKey} from '../../prefetch.js'
import type {BoundData, RequestContext} from '../context.js'
import type {OpenApiHints} from '../router.js'
import type {ResourceRequest} from './request.js'

export const PERMISSIONS_FIELD = '__permissions__'

export type Annotated = KintoObject & {[PERMISSIONS_FIELD]?: Record<string, string[]>}

/** A resource type and what makes it special. */
export interface ResourceDefinition {
  name: string
  /** e.g. `/buckets/{bucket_id}/collections` */
  pluralPath: string
  /** e.g. `/buckets/{bucket_id}/collections/{id}`; null for plural-only resources. */
  objectPath: string | null
  /** Permission names accepted in bodies. */
  permissions: readonly string[]
  /**
   * Parent id of the objects (`/buckets/b1`), from the route params. For resources whose parent
   * depends on the caller (accounts), declare the `ctx` parameter: `ctx.knownIdentity` is then
   * set when it is called (a parentId without it lets reads authenticate with their prefetch).
   */
  parentId(params: Record<string, string>, ctx: RequestContext): string
  /**
   * Where an object is stored, told from its route alone, for a resource whose parentId depends on
   * the caller (an account is stored under its own id); DELETE /__user_data__ finds objects by URI.
   */
  storedParentId?(params: Record<string, string>): string
  /** The principal given the write permission on what a request writes (default: the caller). */
  writerPrincipal?(r: ResourceRequest, caller: string): string
  /**
   * A closed schema: the only fields lists accept in filters, `_sort` and `_fields` (besides
   * id, last_modified, deleted); unknown ones are a 400 as upstream. Undefined: any field.
   */
  knownFields?: readonly string[]
  /**
   * String fields whose filter values are the text sent even when it reads as a number or a
   * boolean (history's ids: `?group_id=123` is the group "123").
   */
  textFields?: readonly string[]
  /** Rewrites the list filters taken from the querystring (/permissions: no last_modified). */
  adjustFilters?(filters: Filter[]): Filter[]
  /** Rewrites the list sorting taken from the querystring (permissions: by uri, no last_modified). */
  adjustSorting?(sorting: Sort[]): Sort[]
  /** Reads come from this instead of the storage backend (a computed list such as /permissions). */
  model?(r: ResourceRequest): Storage
  /**
   * The list timestamp If-Match / If-None-Match are compared with, where it is not the one the
   * answers carry: /permissions' entries have none (upstream's computed model says 0).
   */
  preconditionTimestamp?: number
  /**
   * Validates and normalises `data` of a full object (create, replace, and after a PATCH);
   * returns the normalised data or throws a 400. `prefix` names fields in errors (`data.`).
   */
  validateData?(data: Record<string, unknown>, r: ResourceRequest, prefix: string): Record<string, unknown>
  /**
   * Its data has required fields (an account's password): a PUT or POST body without `data` is a
   * 400 "data in body: Required", as upstream's schema when it refuses an empty object.
   */
  dataRequired?: boolean
  /** Fields that cannot change once set. */
  readonlyFields?: readonly string[]
  /** Called once when the resource is set up for a request (a record checks its collection). */
  init?(r: ResourceRequest): Promise<void>
  /**
   * Objects init() reads (a record's collection), fetched with a read's other data in one
   * statement; without those the request (or its batch) already holds.
   */
  prefetchObjects?(params: Record<string, string>, bound: BoundData): ObjectKey[]
  /** Extra processing of an object before it is stored (schema validation…). */
  processObject?(r: ResourceRequest, obj: Record<string, unknown>, old: Annotated | null): Promise<Record<string, unknown>>
  /** Adds cache headers to GET responses (default: `<name>_cache_expires_seconds`). */
  cacheHeaders?(r: ResourceRequest, headers: Record<string, string>): void
  pluralMethods?: readonly string[]
  objectMethods?: readonly string[]
  /** Upstream's names for its operations in `/__api__`, where they are not the default ones. */
  openapi?: OpenApiHints
}

/**
 * A list's query from the querystring: filters, sorting, `_fields` and the page size, checked
 * against a closed schema when the resource has one (unknown fields are a 400 as upstream).
 */
import {asInt} from '../../config/settings.js'
import type {Filter, ListOptions, Sort} from '../../storage/types.js'
import {invalid} from '../errors.js'
import {extractFields, extractFilters, extractLimit, extractSorting, queryInteger} from '../querystring.js'
import type {ResourceDefinition} from './definition.js'
import type {ResourceRequest} from './request.js'

export function listFilters(r: ResourceRequest): {filters: Filter[]; alert?: string} {
  const q = r.ctx.req.query
  // Schema-validated parameters (400 on bad values even when unused).
  queryInteger(q, '_limit')
  const extracted = extractFilters(q, {
    isKnownField: r.def.knownFields ? (field) => isKnownField(r.def, field) : undefined,
    textFields: r.def.textFields,
  })
  let filters = extracted.filters
  if (r.def.adjustFilters) filters = r.def.adjustFilters(filters)
  if (r.ctx.sharedIds !== null) filters.unshift({field: 'id', value: r.ctx.sharedIds, operator: 'in'})
  return {filters, alert: extracted.alert}
}

/** Whether a (dotted) field may be used in lists: any, unless the schema is closed. */
function isKnownField(def: ResourceDefinition, field: string): boolean {
  const known = def.knownFields
  if (!known) return true
  const root = field.split('.')[0]
  return known.includes(root) || root === 'id' || root === 'last_modified' || root === 'deleted'
}

export function listSorting(r: ResourceRequest): Sort[] {
  let sorting = extractSorting(r.ctx.req.query)
  for (const {field} of sorting) {
    if (!isKnownField(r.def, field)) throw invalid('querystring', null, `Unknown sort field '${field}'`)
  }
  if (r.def.adjustSorting) sorting = r.def.adjustSorting(sorting)
  return sorting
}

export function listFields(r: ResourceRequest): string[] | undefined {
  const fields = extractFields(r.ctx.req.query)
  if (fields && r.def.knownFields) {
    const unknown = [...new Set(fields.map((f) => f.split('.')[0]).filter((f) => !isKnownField(r.def, f)))]
    if (unknown.length > 0) throw invalid('body', 'Invalid _fields parameter', `Fields ${unknown.join(',')} do not exist`)
  }
  return fields
}

export function listLimit(r: ResourceRequest): number {
  const s = r.ctx.settings
  return extractLimit(r.ctx.req.query, asInt(s, 'paginate_by', null), asInt(s, 'storage_max_fetch_size', 10000) ?? 10000)
}

/**
 * The storage.list call of a list page (built here for the list GET and for its prefetch, which
 * answers only a call equal to the one it planned).
 */
export function pageOptions(filters: Filter[], sorting: Sort[], limit: number, rules: Filter[][] | undefined): ListOptions {
  return {
    filters,
    sorting,
    limit: limit + 1,
    paginationRules: rules,
    includeDeleted: filters.some((f) => f.field === 'last_modified'),
  }
}

/**
 * SQL fragments for the postgresql storage: filters, pagination rules and sorting over upstream's
 * `objects` table. Every value AND every JSON path element is a bind parameter; the SQL text is only
 * ever made of fixed pieces and `$n` placeholders, never of input.
 */
import {stringifyJson} from '../json.js'
import {idText, likePattern} from './evaluate.js'
import {type Filter, type JsonValue, MISSING, type Sort} from './types.js'
import {pyTruthy} from './jsonb.js'
import {hasWildcard, wildcardToLike} from './wildcard.js'

export class Params {
  readonly values: unknown[] = []

  /** Adds a bind value and returns its placeholder. */
  add(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

/** `data->$a::text->$b::text` (last hop `->>` for text) for a dotted field. */
function jsonField(field: string, params: Params, lastAsText = false): string {
  const parts = field.split('.')
  let sql = 'data'
  parts.forEach((part, i) => {
    sql += (lastAsText && i === parts.length - 1 ? '->>' : '->') + params.add(part) + '::text'
  })
  return sql
}

/** `{"a": {"b": value}}` for top-level containment (`data @> …`, which a GIN index can serve). */
function containmentJson(field: string, value: JsonValue): string {
  let obj: JsonValue = value
  for (const part of field.split('.').reverse()) obj = {[part]: obj}
  return stringifyJson(obj)
}

function isScalar(v: unknown): boolean {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v)
}

function asList(value: unknown): JsonValue[] {
  return Array.isArray(value) ? (value as JsonValue[]) : [value as JsonValue]
}

function epochParam(v: unknown): string {
  return typeof v === 'number' ? String(Math.round(v)) : String(v)
}

const COMPARATORS: Partial<Record<Filter['operator'], string>> = {eq: '=', not: '<>', lt: '<', gt: '>', min: '>=', max: '<='}

function idCondition(f: Filter, params: Params): string {
  const v = f.value
  const op = COMPARATORS[f.operator]
  // A null value (`?id=null`) is SQL NULL: no comparison with it holds.
  if (v === null && f.operator !== 'has') return 'FALSE'
  if (op) return `id ${op} ${params.add(idText(v))}`
  switch (f.operator) {
    case 'in': {
      const list = asList(v).map(idText)
      return list.length === 0 ? 'FALSE' : `id = ANY(${params.add(list)}::text[])`
    }
    case 'exclude': {
      const list = asList(v).map(idText)
      return list.length === 0 ? 'FALSE' : `id <> ALL(${params.add(list)}::text[])`
    }
    case 'like':
      return `id ILIKE ${params.add(likePattern(v))}`
    case 'has':
      return pyTruthy(v) ? 'TRUE' : 'FALSE'
    default:
      return 'FALSE'
  }
}

function modifiedCondition(f: Filter, params: Params): string {
  const v = f.value
  // A null bound (`_since=null`): from_epoch(NULL) is NULL, and no comparison with it holds.
  if (v === null) return 'FALSE'
  const op = COMPARATORS[f.operator]
  // from_epoch() on the value keeps the column bare, so the indexes on last_modified serve it.
  if (op) return `last_modified ${op} from_epoch(${params.add(epochParam(v))}::bigint)`
  switch (f.operator) {
    case 'in': {
      const list = asList(v).map(epochParam)
      return list.length === 0 ? 'FALSE' : `as_epoch(last_modified) = ANY(${params.add(list)}::bigint[])`
    }
    case 'exclude': {
      const list = asList(v).map(epochParam)
      return list.length === 0 ? 'FALSE' : `as_epoch(last_modified) <> ALL(${params.add(list)}::bigint[])`
    }
    case 'like':
      return `as_epoch(last_modified)::text ILIKE ${params.add(likePattern(v))}`
    case 'has':
      return pyTruthy(v) ? 'TRUE' : 'FALSE'
    default:
      return 'FALSE'
  }
}

function dataCondition(f: Filter, params: Params): string {
  const v = f.value as JsonValue
  if (f.operator === 'like') {
    const text = jsonField(f.field, params, true)
    return `(${text} IS NOT NULL AND ${text} ILIKE ${params.add(likePattern(v))})`
  }
  const field = jsonField(f.field, params)
  if (v === (MISSING as unknown)) {
    // Pagination past an object that lacks the sorted field (missing = SQL NULL, sorted last).
    switch (f.operator) {
      case 'eq':
      case 'min':
        return `${field} IS NULL`
      case 'lt':
        return `${field} IS NOT NULL`
      case 'max':
        return 'TRUE'
      case 'gt':
        return 'FALSE'
      default:
        throw new Error(`A filter with a missing value cannot use the '${f.operator}' operator.`)
    }
  }
  switch (f.operator) {
    case 'eq':
      if (isScalar(v)) return `(${field} IS NOT NULL AND data @> ${params.add(containmentJson(f.field, v))}::jsonb)`
      return `(${field} IS NOT NULL AND ${field} = ${params.add(stringifyJson(v))}::jsonb)`
    case 'not':
      return `(${field} IS NULL OR ${field} <> ${params.add(stringifyJson(v))}::jsonb)`
    case 'lt':
    case 'max':
      return `${field} ${COMPARATORS[f.operator]} ${params.add(stringifyJson(v))}::jsonb`
    case 'gt':
    case 'min':
      return `(${field} IS NULL OR ${field} ${COMPARATORS[f.operator]} ${params.add(stringifyJson(v))}::jsonb)`
    case 'in': {
      const list = asList(v)
      if (list.length === 0) return 'FALSE'
      return `(${field} IS NOT NULL AND ${field} = ANY(${params.add(list.map((x) => stringifyJson(x)))}::jsonb[]))`
    }
    case 'exclude': {
      const list = asList(v)
      // Upstream's `NOT IN (NULL)` for an empty list: only objects without the field match.
      if (list.length === 0) return `${field} IS NULL`
      return `(${field} IS NULL OR ${field} <> ALL(${params.add(list.map((x) => stringifyJson(x)))}::jsonb[]))`
    }
    case 'has':
      return pyTruthy(v) ? `${field} IS NOT NULL` : `${field} IS NULL`
    case 'contains':
      return `(${field} IS NOT NULL AND data @> ${params.add(containmentJson(f.field, v))}::jsonb)`
    case 'contains_any': {
      // Upstream's `array_agg(elements) && $n` compares every element with every item (a
      // 40,000-item list on 10,000 records: two minutes); each element is looked up in the items
      // instead (hashed when planned for them, hasLongList). CASE: elements only of an array.
      const list = asList(v).map((x) => stringifyJson(x))
      return (
        `CASE WHEN jsonb_typeof(${field}) = 'array'` +
        ` THEN EXISTS (SELECT 1 FROM jsonb_array_elements(${field}) AS e WHERE e = ANY(${params.add(list)}::jsonb[])) ELSE FALSE END`
      )
    }
    default:
      return 'FALSE'
  }
}

export function filterCondition(f: Filter, params: Params): string {
  const mark = params.values.length
  let sql: string
  if (f.field === 'id') sql = f.value === MISSING ? 'FALSE' : idCondition(f, params)
  else if (f.field === 'last_modified') sql = f.value === MISSING ? 'FALSE' : modifiedCondition(f, params)
  else sql = dataCondition(f, params)
  // A constant condition uses no parameter: drop those added on the way (an unused $n has no type).
  if (sql === 'TRUE' || sql === 'FALSE') params.values.length = mark
  return sql
}

/**
 * Lists longer than this (`in_`, `exclude_`, `contains_any_`, the shared ids of a list) are not
 * for a named statement: once PostgreSQL settles on its generic plan, `= ANY($n)` compares each
 * row with every item of the list in turn (a 40,000-item in_ on 10,000 records: 45 s), where a
 * plan made for the values looks each row up in a hash of the items (0.15 s).
 */
export const MAX_NAMED_LIST = 64

/** Whether a filter carries a list longer than MAX_NAMED_LIST. */
export function hasLongList(filters: readonly Filter[] | undefined): boolean {
  return (filters ?? []).some((f) => Array.isArray(f.value) && f.value.length > MAX_NAMED_LIST && ['in', 'exclude', 'contains_any'].includes(f.operator))
}

/** ` AND …` for every filter, or ''. */
export function filtersSql(filters: readonly Filter[] | undefined, params: Params): string {
  if (!filters || filters.length === 0) return ''
  return filters.map((f) => ' AND ' + filterCondition(f, params)).join('')
}

/** ` AND ((a AND b) OR (c))` for pagination rules, or ''. */
export function rulesSql(rules: readonly Filter[][] | undefined, params: Params): string {
  if (!rules || rules.length === 0) return ''
  const groups = rules.map((group) => (group.length === 0 ? 'TRUE' : group.map((f) => filterCondition(f, params)).join(' AND ')))
  return ` AND (${groups.map((g) => `(${g})`).join(' OR ')})`
}

/** ` ORDER BY …` (jsonb order; NULLS LAST ascending and FIRST descending: PostgreSQL's defaults). */
export function orderSql(sorting: readonly Sort[] | undefined, params: Params): string {
  if (!sorting || sorting.length === 0) return ''
  const parts = sorting.map((s) => {
    const column = s.field === 'id' ? 'objects.id' : s.field === 'last_modified' ? 'objects.last_modified' : jsonField(s.field, params)
    return `${column} ${s.direction < 0 ? 'DESC' : 'ASC'}`
  })
  return ' ORDER BY ' + parts.join(', ')
}

/** `parent_id = $n`, or `parent_id LIKE $n` when the parent id holds a `*` wildcard. */
export function parentSql(parentId: string, params: Params, column = 'parent_id'): string {
  if (hasWildcard(parentId)) return `${column} LIKE ${params.add(wildcardToLike(parentId))}`
  return `${column} = ${params.add(parentId)}`
}

/**
 * Filters, pagination rules and sorting evaluated in memory with the postgresql backend's semantics
 *: the same rows match and come out in the same order as the SQL would give.
 */
import {exactIntegerText, stringifyJson} from '../json.js'
import {compareCodePoints, compareJsonb, ilikeMatcher, jsonbAsText, jsonbContains, jsonbEquals, pyTruthy, scalarKey} from './jsonb.js'
import {type Filter, type JsonValue, type KintoObject, MISSING, type Missing, type Sort} from './types.js'

export const ID_FIELD = 'id'
export const MODIFIED_FIELD = 'last_modified'

/** A dotted field of an object, as `data->'a'->'b'` reads it: only through objects. */
export function fieldValue(obj: KintoObject, field: string): JsonValue | Missing {
  // An object without id is the root entry of /permissions: its id is a missing value.
  if (field === ID_FIELD) return obj.id === undefined ? MISSING : obj.id
  if (field === MODIFIED_FIELD) return obj.last_modified
  const parts = field.split('.')
  // id and last_modified are columns, not part of `data`.
  if (parts[0] === ID_FIELD || parts[0] === MODIFIED_FIELD) return MISSING
  let cur: JsonValue | undefined = obj as unknown as JsonValue
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return MISSING
    if (!Object.hasOwn(cur, part)) return MISSING
    cur = cur[part]
    if (cur === undefined) return MISSING
  }
  return cur as JsonValue
}

/** The ILIKE pattern upstream builds for `like`: `*` → `%`, and `%v%` when there is no `*`. */
export function likePattern(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value)
  const pattern = (s.includes('*') ? s : `*${s}*`).replaceAll('*', '%')
  // A pattern ending with an unpaired escape character is an error in PostgreSQL (a 503 for a
  // client's typo): that backslash stands for itself, as the in-memory matcher reads it.
  return /(^|[^\\])(\\\\)*\\$/.test(pattern) ? pattern + '\\' : pattern
}

const likeCache = new Map<string, (text: string) => boolean>()

/** Compiled ILIKE matchers, kept for repeated filters (one list scans many objects). */
function likeMatcher(value: unknown): (text: string) => boolean {
  const pattern = likePattern(value)
  let m = likeCache.get(pattern)
  if (!m) {
    if (likeCache.size >= 256) likeCache.clear()
    m = ilikeMatcher(pattern)
    likeCache.set(pattern, m)
  }
  return m
}

function asList(value: unknown): JsonValue[] {
  return Array.isArray(value) ? (value as JsonValue[]) : [value as JsonValue]
}

/**
 * The values of an in/exclude list, made once per list (one list call tests it on every object),
 * each form when first asked: a filter on id needs only the ids, one on last_modified the epochs.
 */
class ValueSet {
  private idSet?: Set<string>
  private epochSet?: Set<number>
  private scalarSet?: Set<string>
  private containerList?: JsonValue[]

  constructor(private readonly list: JsonValue[]) {}

  /** idText of each value, for the id column. */
  get ids(): Set<string> {
    return (this.idSet ??= new Set(this.list.map(idText)))
  }

  /** epoch of each value, for last_modified. */
  get epochs(): Set<number> {
    return (this.epochSet ??= new Set(this.list.map(epoch)))
  }

  /** Whether a stored value equals one of the list's (jsonbEquals on each, by sets). */
  has(left: JsonValue): boolean {
    if (this.scalarSet === undefined) {
      this.scalarSet = new Set()
      this.containerList = []
      for (const v of this.list) {
        const key = scalarKey(v)
        if (key === undefined) this.containerList.push(v)
        else this.scalarSet.add(key)
      }
    }
    const key = scalarKey(left)
    return key === undefined ? this.containerList!.some((x) => jsonbEquals(left, x)) : this.scalarSet.has(key)
  }
}

const valueSets = new WeakMap<object, ValueSet>()

function valueSet(value: unknown): ValueSet {
  const list = asList(value)
  let set = valueSets.get(list)
  if (!set) {
    set = new ValueSet(list)
    // A single value wrapped here is a new array each time: keep only the caller's arrays.
    if (Array.isArray(value)) valueSets.set(list, set)
  }
  return set
}

/**
 * A filter value on the id column as text: a number as its digits (upstream's str()), an exact
 * integer too, a boolean as Python's `True`/`False` (bool is an int to upstream).
 */
export function idText(v: unknown): string {
  if (typeof v === 'string') return exactIntegerText(v) ?? v
  if (typeof v === 'boolean') return v ? 'True' : 'False'
  return typeof v === 'number' ? String(v) : stringifyJson(v)
}

function epoch(v: unknown): number {
  return typeof v === 'number' ? v : Number(v)
}

function matchMissing(field: string, operator: Filter['operator'], left: JsonValue | Missing): boolean {
  if (field === MODIFIED_FIELD) return false
  switch (operator) {
    case 'eq':
    case 'min':
      return left === MISSING
    case 'lt':
      return left !== MISSING
    case 'max':
      return true
    case 'gt':
      return false
    default:
      throw new Error(`A filter with a missing value cannot use the '${operator}' operator.`)
  }
}

function matchId(id: string, f: Filter): boolean {
  const v = f.value
  // A null value (`?id=null`) is SQL NULL on the id column: no comparison with it holds.
  if (v === null && f.operator !== 'has') return false
  switch (f.operator) {
    case 'eq':
      return id === idText(v)
    case 'not':
      return id !== idText(v)
    case 'lt':
      return compareCodePoints(id, idText(v)) < 0
    case 'max':
      return compareCodePoints(id, idText(v)) <= 0
    case 'gt':
      return compareCodePoints(id, idText(v)) > 0
    case 'min':
      return compareCodePoints(id, idText(v)) >= 0
    case 'in':
      return valueSet(v).ids.has(id)
    case 'exclude': {
      const ids = valueSet(v).ids
      return ids.size > 0 && !ids.has(id)
    }
    case 'like':
      return likeMatcher(v)(id)
    case 'has':
      return pyTruthy(v)
    default:
      return false
  }
}

function matchModified(ts: number, f: Filter): boolean {
  const v = f.value
  // A null bound (`_since=null`) is SQL NULL: no comparison with it holds.
  if (v === null) return false
  switch (f.operator) {
    case 'eq':
      return ts === epoch(v)
    case 'not':
      return ts !== epoch(v)
    case 'lt':
      return ts < epoch(v)
    case 'max':
      return ts <= epoch(v)
    case 'gt':
      return ts > epoch(v)
    case 'min':
      return ts >= epoch(v)
    case 'in':
      return valueSet(v).epochs.has(ts)
    case 'exclude': {
      const epochs = valueSet(v).epochs
      return epochs.size > 0 && !epochs.has(ts)
    }
    case 'like':
      return likeMatcher(v)(String(ts))
    case 'has':
      return pyTruthy(v)
    default:
      return false
  }
}

function matchData(left: JsonValue | Missing, f: Filter): boolean {
  const v = f.value as JsonValue
  const present = left !== MISSING
  const l = left as JsonValue
  switch (f.operator) {
    case 'eq':
      return present && jsonbEquals(l, v)
    case 'not':
      return !present || !jsonbEquals(l, v)
    case 'lt':
      return present && compareJsonb(l, v) < 0
    case 'max':
      return present && compareJsonb(l, v) <= 0
    case 'gt':
      return !present || compareJsonb(l, v) > 0
    case 'min':
      return !present || compareJsonb(l, v) >= 0
    case 'in':
      return present && valueSet(v).has(l)
    case 'exclude':
      if (asList(v).length === 0) return !present
      return !present || !valueSet(v).has(l)
    case 'like': {
      if (!present) return false
      const text = jsonbAsText(l)
      return text !== undefined && likeMatcher(v)(text)
    }
    case 'has':
      return pyTruthy(v) ? present : !present
    case 'contains':
      return present && jsonbContains(l, v)
    case 'contains_any':
      return present && Array.isArray(l) && l.some((e) => valueSet(v).has(e))
    default:
      return false
  }
}

export function matchesFilter(obj: KintoObject, f: Filter): boolean {
  const left = fieldValue(obj, f.field)
  if (f.value === MISSING) return matchMissing(f.field, f.operator, left)
  if (f.field === ID_FIELD && left !== MISSING) return matchId(obj.id, f)
  if (f.field === MODIFIED_FIELD) return matchModified(obj.last_modified, f)
  return matchData(left, f)
}

export function matchesAll(obj: KintoObject, filters: readonly Filter[] | undefined): boolean {
  if (!filters) return true
  for (const f of filters) if (!matchesFilter(obj, f)) return false
  return true
}

/** Pagination rules: OR over the groups, AND inside a group. No rules: everything matches. */
export function matchesRules(obj: KintoObject, rules: readonly Filter[][] | undefined): boolean {
  if (!rules || rules.length === 0) return true
  return rules.some((group) => matchesAll(obj, group))
}

/** ORDER BY with PostgreSQL's rules: jsonb order, missing values last ascending and first descending. */
export function compareBySorting(a: KintoObject, b: KintoObject, sorting: readonly Sort[]): number {
  for (const s of sorting) {
    let c: number
    if (s.field === ID_FIELD && a.id !== undefined && b.id !== undefined) c = compareCodePoints(a.id, b.id)
    else if (s.field === MODIFIED_FIELD) c = a.last_modified === b.last_modified ? 0 : a.last_modified < b.last_modified ? -1 : 1
    else {
      const va = fieldValue(a, s.field)
      const vb = fieldValue(b, s.field)
      if (va === MISSING || vb === MISSING) c = va === vb ? 0 : va === MISSING ? 1 : -1
      else c = compareJsonb(va, vb)
    }
    if (c !== 0) return s.direction < 0 ? -c : c
  }
  return 0
}

/**
 * Querystrings as upstream reads them (form-urlencoded, UTF-8, blank values kept, a repeated key
 * gives a list), and the list parameters of plural endpoints: filters,
 * `_sort`, `_limit`, `_token`, `_fields`, `_since`/`_before`/`_to`.
 */
import {ERRNO, HttpError, invalid} from './errors.js'
import {MAX_JSON_DEPTH, maxNesting, nativeValue, unsafeValue} from './json.js'
import {asciiDigits, colanderNull, pythonFloatRepr, pythonIntText, pythonRepr, pythonStrip} from './py-repr.js'
import {exactIntegerText, withDoubles} from '../json.js'
import {pyTruthy} from '../storage/jsonb.js'
import type {Filter, FilterOperator, JsonValue, Sort} from '../storage/types.js'

export type RawQuery = Map<string, string | string[]>

// ignoreBOM keeps a leading U+FEFF: it is a character of the value, as for Python's decoder.
const utf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

function decodeComponent(s: string): string {
  const plus = s.replaceAll('+', ' ')
  if (!plus.includes('%')) return plus
  const bytes: number[] = []
  for (let i = 0; i < plus.length; i++) {
    const c = plus[i]
    if (c === '%' && /^[0-9a-fA-F]{2}$/.test(plus.slice(i + 1, i + 3))) {
      bytes.push(parseInt(plus.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b)
    }
  }
  return utf8.decode(Uint8Array.from(bytes))
}

/** Parses `a=1&b=2`; throws 400 errno 107 when the encoding is not UTF-8. */
export function parseQuery(raw: string): RawQuery {
  const result: RawQuery = new Map()
  if (!raw) return result
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const rawKey = eq < 0 ? part : part.slice(0, eq)
    const rawValue = eq < 0 ? '' : part.slice(eq + 1)
    let key: string
    let value: string
    try {
      key = decodeComponent(rawKey)
      value = decodeComponent(rawValue)
    } catch {
      throw new HttpError(400, {
        errno: ERRNO.INVALID_PARAMETERS,
        // Upstream's words (its two strings joined without a space), with the querystring as sent.
        message: `A request with an incorrect encoding in the querystring wasreceived. Please make sure your requests are encoded in UTF-8: ${raw}`,
      })
    }
    const existing = result.get(key)
    if (existing === undefined) result.set(key, value)
    else if (Array.isArray(existing)) existing.push(value)
    else result.set(key, [existing, value])
  }
  return result
}

/** Re-encodes a query (for Next-Page URLs): form encoding, spaces as `+`. */
export function encodeQuery(entries: Iterable<[string, string | string[]]>): string {
  const params = new URLSearchParams()
  for (const [k, v] of entries) {
    if (Array.isArray(v)) for (const item of v) params.append(k, item)
    else params.append(k, v)
  }
  return params.toString()
}

export const POSTGRESQL_MAX_INTEGER = 2n ** 63n

/**
 * An integer query parameter in [0, 2^63] (upstream's positive_big_integer), or undefined. Null
 * when its value is one colander's Integer reads as nothing (`null`, empty, `[]`, `{}`): the
 * schema drops it and lets it pass, and the view decides (`_limit` is then no limit,
 * `_since=null` a NULL bound that nothing passes, `_since=` "Invalid value for _since").
 */
export function queryInteger(query: RawQuery, name: string): number | null | undefined {
  const raw = query.get(name)
  if (raw === undefined) return undefined
  const fail = (description: string) => invalid('querystring', name, description)
  // A repeated parameter: colander's Integer gets the list of its texts (not decoded) and shows its str().
  if (Array.isArray(raw)) throw fail(`"${pythonRepr(raw)}" is not a number`)
  const v = nativeValue(raw)
  if (colanderNull(v)) return null
  // Python's int(): an integer text (an exact integer beyond 2^53 too) is read digit for digit.
  const text = exactIntegerText(v) ?? (typeof v === 'string' ? pythonIntText(v) : undefined)
  let n: number
  let exact: bigint
  if (text !== undefined) {
    exact = BigInt(text)
    n = Number(exact)
  } else if (typeof v === 'number' && Number.isFinite(v)) {
    n = Math.trunc(v)
    exact = BigInt(n)
  } else if (typeof v === 'boolean') {
    n = v ? 1 : 0
    exact = BigInt(n)
  } else {
    // colander's message shows the JSON-decoded value (upstream's QueryField), as Python's str().
    throw fail(`"${typeof v === 'string' ? v : pythonRepr(v)}" is not a number`)
  }
  if (exact < 0n) throw fail(`${exact} is less than minimum value 0`)
  if (exact > POSTGRESQL_MAX_INTEGER) throw fail(`${exact} is greater than maximum value ${POSTGRESQL_MAX_INTEGER}`)
  return n
}

/**
 * A colander String of the querystring schemas (`id` of every plural endpoint, `_token`): once
 * JSON-decoded, a value other than a string is a 400 (`?id=5`, `?id=true`, a repeated `id`),
 * unless Python reads it as false (`null`, `0`, `false`, `{}`…), which the schema lets pass.
 */
export function checkStringParameter(query: RawQuery, name: string): void {
  const raw = query.get(name)
  if (raw === undefined) return
  const v = Array.isArray(raw) ? raw : decodeValue(name, raw)
  const digits = exactIntegerText(v)
  if ((typeof v === 'string' && digits === undefined) || !pyTruthy(v)) return
  // A number written with a fraction or an exponent is a Python float (`1e3` shows as 1000.0).
  const float = typeof v === 'number' && typeof raw === 'string' && /[.eE]/.test(raw)
  throw invalid('querystring', name, `${digits ?? (float ? pythonFloatRepr(v) : pythonRepr(v))} is not a string: {'${name}': ''}`)
}

/**
 * A comma separated list parameter (`_sort`, `_fields`), or undefined. As upstream's FieldList:
 * the raw text split on commas, never JSON-decoded (`_sort=1` is the field "1", `_sort="a"` is
 * the entry `"a"`), and an empty entry dropped (so `_fields=` is no projection at all).
 */
export function queryFieldList(query: RawQuery, name: string): string[] | undefined {
  const raw = query.get(name)
  return raw === undefined ? undefined : fieldListItems(raw)
}

/** The items of a FieldList parameter: the text split on commas (a repeated parameter: its values), empty items dropped. */
function fieldListItems(raw: string | string[]): string[] {
  const entries = Array.isArray(raw) ? raw : raw.split(',')
  return entries.includes('') ? entries.filter((e) => e !== '') : entries
}

/** Query values as upstream's QuerySchema deserialises them (JSON-decoded; lists for in_/exclude_/contains_). */
export function decodedQuery(query: RawQuery): Map<string, unknown> {
  const values = new Map<string, unknown>()
  for (const [k, raw] of query) {
    if (k.startsWith('in_') || k.startsWith('exclude_')) {
      // A FieldList (an empty item: colander's String reads it as nothing), each item JSON-decoded.
      values.set(k, fieldListItems(raw).map((item) => decodeValue(k, item)))
    } else if (Array.isArray(raw)) {
      values.set(k, raw)
    } else if (k.startsWith('contains_')) {
      const v = decodeValue(k, raw)
      values.set(k, Array.isArray(v) ? v : [v])
    } else {
      values.set(k, decodeValue(k, raw))
    }
  }
  return values
}

/**
 * A query value JSON-decoded (nativeValue). An array or object nesting deeper than a body may
 * (MAX_JSON_DEPTH) is a 400: what reads filter values walks them recursively, and no stored value
 * is that deep.
 */
function decodeValue(name: string, raw: string): unknown {
  const v = nativeValue(raw)
  if (v !== null && typeof v === 'object' && maxNesting(raw) > MAX_JSON_DEPTH) {
    throw invalid('querystring', name, `Invalid value for ${name}: nesting deeper than ${MAX_JSON_DEPTH} levels`)
  }
  return v
}

/**
 * Dotted field paths become nested jsonb accesses in SQL: keep them to a sane depth and length
 * (PGlite fails on very deep expressions, and no real document needs more).
 */
export const MAX_FIELD_DEPTH = 32
export const MAX_FIELD_LENGTH = 1024

/**
 * Sort fields and filters of one list request. PostgreSQL refuses a statement of more than 1,664
 * columns or 65,535 bind parameters, a page token over n sort fields becomes n² conditions, and
 * each filter costs planning time: past these, a request is a 400, not a 503 that says "retry".
 * (Upstream has no such bound; no client needs more.) With MAX_FIELD_DEPTH, a statement stays
 * far below PostgreSQL's limits.
 */
export const MAX_SORT_FIELDS = 32
export const MAX_FILTERS = 500

function fieldTooComplex(field: string): boolean {
  return field.length > MAX_FIELD_LENGTH || field.split('.').length > MAX_FIELD_DEPTH
}

const OPERATORS: FilterOperator[] = ['lt', 'min', 'max', 'not', 'eq', 'gt', 'in', 'exclude', 'like', 'has', 'contains_any', 'contains']
const FILTER_PARAM = new RegExp(`^(${OPERATORS.join('|')})_([\\p{L}\\p{N}_.]+)$`, 'u')
const SORT_FIELD = /^([-+]?)([\p{L}\p{N}_.]+)$/u

/** A JSON string of the querystring (not an integer held exact, whose marker is a string too). */
function isText(value: unknown): value is string {
  return typeof value === 'string' && exactIntegerText(value) === undefined
}

function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return isText(value) && value.includes('\u0000')
  if (Array.isArray(value)) return value.some(hasNul)
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => k.includes('\u0000') || hasNul(v))
  return false
}

function isValidTimestamp(value: unknown, nowMs: number): boolean {
  let n: number
  if (typeof value === 'string') {
    // Python's re: `\d` is any script's decimal digit and `$` also matches before a final newline.
    if (!TIMESTAMP_TEXT.test(value)) return false
    n = timestampValue(value)
  } else if (typeof value === 'number') {
    n = Math.trunc(value)
  } else if (typeof value === 'boolean') {
    n = value ? 1 : 0
  } else {
    return false
  }
  return Number.isFinite(n) && n >= 0 && n < nowMs + 24 * 3600 * 1000
}

const TIMESTAMP_TEXT = /^(\p{Nd}+)\n?$|^("\p{Nd}+")\n?$/u

function timestampValue(value: unknown): number {
  if (typeof value === 'string') return Number(asciiDigits(value.replace(/\n$/, '').replaceAll('"', '')))
  if (typeof value === 'boolean') return value ? 1 : 0
  return Math.trunc(value as number)
}

const SCHEMA_INTEGERS = ['_since', '_to', '_before', 'last_modified']
const LIST_OPERATORS: FilterOperator[] = ['in', 'exclude', 'contains', 'contains_any']

/** Filters of a list request (upstream's _extract_filters), in querystring order. */
export function extractFilters(
  query: RawQuery,
  options: {nowMs?: number; isKnownField?: (field: string) => boolean; textFields?: readonly string[]} = {},
): {filters: Filter[]; alert?: string} {
  const nowMs = options.nowMs ?? Date.now()
  const decoded = decodedQuery(query)
  // Schema fields first: they validate even when not used as filters.
  for (const name of SCHEMA_INTEGERS) queryInteger(query, name)
  const filters: Filter[] = []
  let alert: string | undefined
  for (const [rawParam, value] of decoded) {
    const param = pythonStrip(rawParam)
    const fail = (description = `Invalid value for ${param}`) => invalid('querystring', param, description)
    if (param.startsWith('_') && !['_since', '_to', '_before'].includes(param)) continue
    // The schema's fields are read as its Integer reads them (`_since=1_0` is 10), unless it dropped them (`_since=`).
    const fromSchema = rawParam === param && SCHEMA_INTEGERS.includes(param) ? queryInteger(query, param) : undefined
    const schemaValue = typeof fromSchema === 'number' ? fromSchema : value
    if (param === '_since' || param === '_to' || param === '_before') {
      if (param === '_to') alert = '_to is now deprecated, you should use _before instead'
      if (schemaValue !== null && !isValidTimestamp(schemaValue, nowMs)) throw fail()
      // A null bound is kept: the storage compares with it as upstream's PostgreSQL (nothing passes).
      filters.push({field: 'last_modified', value: schemaValue === null ? null : timestampValue(schemaValue), operator: param === '_since' ? 'gt' : 'lt'})
      continue
    }
    const m = FILTER_PARAM.exec(param)
    let operator: FilterOperator = 'eq'
    let field = param
    if (m) {
      operator = m[1] as FilterOperator
      field = m[2]
    }
    // A closed schema's unknown field is refused before its value is looked at, as upstream.
    if (options.isKnownField && !options.isKnownField(field)) throw fail(`Unknown filter field '${param}'`)
    let v: unknown = schemaValue
    // A list operator whose raw name does not start with it (` in_x=a,b`: upstream strips the name
    // only after decoding its value) gets one value, which upstream's storage iterates: a text's
    // characters, an object's keys; anything else fails there (a 500), a 400 here. `contains_`
    // then asks the field to hold that value (`data @> {"x": value}`): equality here.
    if (LIST_OPERATORS.includes(operator) && !Array.isArray(v)) {
      if (operator === 'contains') {
        if (field === 'id' || field === 'last_modified') throw fail(`Field '${field}' is not an array`)
        operator = 'eq'
      }
      else if (typeof v === 'string' && exactIntegerText(v) === undefined) v = Array.from(v)
      else if (v !== null && typeof v === 'object') v = Object.keys(v)
      else throw fail()
    }
    if (field === 'id' && operator === 'eq' && param === 'id') v = idString(value)
    if (options.textFields?.includes(field)) v = sentText(v, query.get(rawParam), operator)
    if (operator === 'like' && !isText(v)) throw fail()
    if (operator === 'in' || operator === 'exclude') {
      const list = v as unknown[]
      const allIntegers = list.every((x) => (typeof x === 'number' && Number.isInteger(x)) || exactIntegerText(x) !== undefined)
      const allStrings = list.every(isText)
      if ((field === 'id' && !allStrings) || (field === 'last_modified' && !allIntegers)) throw fail()
    }
    if (field.includes('\u0000') || hasNul(v)) throw fail('Invalid character 0x00')
    // PostgreSQL's jsonb refuses what the body parser refuses: a 400 here, not a 503 there.
    if (unsafeValue(withDoubles(v)) !== null) throw fail('Invalid character: lone surrogate')
    if (fieldTooComplex(field)) throw fail(`Field '${field.slice(0, 64)}…' is too long or too deep`)
    if (field === 'last_modified') {
      if (!isValidTimestamp(v, nowMs)) throw fail()
      v = timestampValue(v)
    }
    if ((field === 'last_modified' || field === 'id') && (operator === 'contains' || operator === 'contains_any')) {
      throw fail(`Field '${field}' is not an array`)
    }
    filters.push({field, value: v as JsonValue, operator})
    if (filters.length > MAX_FILTERS) throw fail(`Too many filters: at most ${MAX_FILTERS} per request`)
  }
  return {filters, alert}
}

/** The `id` query parameter is a string field: `?id=12` means the id "12". */
function idString(value: unknown): unknown {
  if (typeof value === 'string') return exactIntegerText(value) ?? value
  if (typeof value === 'number') return String(value)
  if (typeof value === 'boolean') return value ? 'True' : 'False'
  return value
}

/**
 * A string field's value compared as the text sent where JSON decoding made it a number or a
 * boolean (`?group_id=123`, `1e3`, `true`), for equality and lists; a quoted value is already text.
 */
function sentText(value: unknown, raw: string | string[] | undefined, operator: FilterOperator): unknown {
  if (raw === undefined) return value
  const decodedAway = (x: unknown) => typeof x === 'number' || typeof x === 'boolean' || exactIntegerText(x) !== undefined
  if (operator === 'in' || operator === 'exclude') {
    // The items decodedQuery decoded, in its order.
    const items = fieldListItems(raw)
    return (value as unknown[]).map((x, i) => (decodedAway(x) ? items[i] : x))
  }
  return typeof raw === 'string' && (operator === 'eq' || operator === 'not') && decodedAway(value) ? raw : value
}

/** `_sort=a,-b` (invalid entries ignored as upstream does), with `-last_modified` appended. */
export function extractSorting(query: RawQuery): Sort[] {
  const specified = queryFieldList(query, '_sort') ?? []
  const sorting: Sort[] = []
  for (const entry of specified) {
    const m = SORT_FIELD.exec(pythonStrip(entry))
    if (!m) continue
    if (fieldTooComplex(m[2])) {
      throw invalid('querystring', '_sort', `Sort field '${m[2].slice(0, 64)}…' is too long or too deep`)
    }
    sorting.push({field: m[2], direction: m[1] === '-' ? -1 : 1})
    if (sorting.length > MAX_SORT_FIELDS) throw invalid('querystring', '_sort', `Too many sort fields: at most ${MAX_SORT_FIELDS}`)
  }
  // As upstream: only the exact entry `last_modified` counts (so `-last_modified` is repeated; harmless).
  if (!specified.includes('last_modified')) sorting.push({field: 'last_modified', direction: -1})
  return sorting
}

/** Effective page size: min(_limit, paginate_by), capped by storage_max_fetch_size. */
export function extractLimit(query: RawQuery, paginateBy: number | null, maxFetchSize: number): number {
  let limit: number | null | undefined = queryInteger(query, '_limit')
  if (limit === undefined) limit = paginateBy
  if (limit && paginateBy) limit = Math.min(limit, paginateBy)
  return limit ? Math.min(limit, maxFetchSize) : maxFetchSize
}

/** `_fields=a,b.c` with id and last_modified always kept; undefined when not asked. */
export function extractFields(query: RawQuery): string[] | undefined {
  const fields = queryFieldList(query, '_fields')
  if (!fields || fields.length === 0) return undefined
  return [...fields, 'id', 'last_modified']
}

/** The `_token` parameter: a string (checkStringParameter), or undefined when absent or Python-false. */
export function extractToken(query: RawQuery): string | undefined {
  checkStringParameter(query, '_token')
  const raw = query.get('_token')
  if (raw === undefined || Array.isArray(raw)) return undefined
  const v = nativeValue(raw)
  return typeof v === 'string' && v !== '' ? v : undefined
}

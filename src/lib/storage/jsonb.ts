/**
 * PostgreSQL's jsonb semantics in TypeScript, so that the memory backend filters and sorts exactly
 * as the postgresql backend does for the same data: ordering (`ORDER BY data->'f'`), equality,
 * containment (`@>`), the text form of `->>` and ILIKE patterns. Strings compare as in the "C"
 * collation (code point order), which is what the PGlite engine and C/C.UTF-8 databases use.
 */
import {exactIntegerText} from '../json.js'
import type {JsonValue} from './types.js'

// jsonb value type codes, in PostgreSQL's order (jbvNull < jbvString < jbvNumeric < jbvBool < jbvArray < jbvObject).
const T_NULL = 0
const T_STRING = 1
const T_NUMBER = 2
const T_BOOL = 3
const T_ARRAY = 16
const T_OBJECT = 17

type TokenKind = 'begin_array' | 'end_array' | 'begin_object' | 'end_object' | 'key' | 'value' | 'elem'

interface Token {
  kind: TokenKind
  type: number
  value?: JsonValue
  /** Elements or pairs of a container. */
  size?: number
  /** A top-level scalar is a one-element pseudo array in PostgreSQL. */
  raw?: boolean
}

function scalarType(v: JsonValue): number {
  if (v === null) return T_NULL
  switch (typeof v) {
    case 'string':
      // An integer beyond 2^53 held exact (json.ts) is a number: jsonb stores it as numeric.
      return exactIntegerText(v) === undefined ? T_STRING : T_NUMBER
    case 'number':
      return T_NUMBER
    case 'boolean':
      return T_BOOL
    default:
      return Array.isArray(v) ? T_ARRAY : T_OBJECT
  }
}

function isContainer(v: JsonValue): v is JsonValue[] | {[key: string]: JsonValue} {
  return v !== null && typeof v === 'object'
}

/** Compares strings by Unicode code point (= UTF-8 byte order = the "C" collation). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i)
    const cb = b.charCodeAt(i)
    if (ca === cb) continue
    // Surrogates (astral code points) sort after every BMP character in code point order.
    const sa = ca >= 0xd800 && ca <= 0xdfff
    const sb = cb >= 0xd800 && cb <= 0xdfff
    if (sa !== sb) return sa ? 1 : -1
    return ca < cb ? -1 : 1
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

/** Object keys in jsonb storage order: shorter (in bytes) first, then bytewise. */
export function jsonbKeyOrder(keys: string[]): string[] {
  return [...keys].sort((a, b) => utf8Length(a) - utf8Length(b) || compareCodePoints(a, b))
}

function* tokens(v: JsonValue, top: boolean): Generator<Token> {
  if (!isContainer(v)) {
    if (top) {
      yield {kind: 'begin_array', type: T_ARRAY, size: 1, raw: true}
      yield {kind: 'elem', type: scalarType(v), value: v}
      yield {kind: 'end_array', type: T_ARRAY}
    }
    return
  }
  if (Array.isArray(v)) {
    yield {kind: 'begin_array', type: T_ARRAY, size: v.length, raw: false}
    for (const e of v) {
      if (isContainer(e)) yield* tokens(e, false)
      else yield {kind: 'elem', type: scalarType(e), value: e}
    }
    yield {kind: 'end_array', type: T_ARRAY}
    return
  }
  const keys = jsonbKeyOrder(Object.keys(v).filter((k) => v[k] !== undefined))
  yield {kind: 'begin_object', type: T_OBJECT, size: keys.length}
  for (const k of keys) {
    yield {kind: 'key', type: T_STRING, value: k}
    const e = v[k]
    if (isContainer(e)) yield* tokens(e, false)
    else yield {kind: 'value', type: scalarType(e), value: e}
  }
  yield {kind: 'end_object', type: T_OBJECT}
}

function compareScalars(type: number, a: JsonValue, b: JsonValue): number {
  switch (type) {
    case T_NULL:
      return 0
    case T_STRING:
      return compareCodePoints(a as string, b as string)
    case T_NUMBER:
      return compareNumbers(a as number | string, b as number | string)
    case T_BOOL:
      return a === b ? 0 : a ? 1 : -1
    default:
      return 0
  }
}

/**
 * Two jsonb numbers, as PostgreSQL's numeric compares them. Doubles compare as doubles (the same
 * order as their decimal texts); an exact integer (json.ts) is compared with the decimal text the
 * other number is stored as (numericText): 12345678901234567000 is below 12345678901234567100,
 * although the double written 12345678901234567000 is 12345678901234567168.
 */
export function compareNumbers(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? 0 : a < b ? -1 : 1
  return compareDecimals(numberText(a), numberText(b))
}

function numberText(v: number | string): string {
  return typeof v === 'number' ? numericText(v) : (exactIntegerText(v) ?? v)
}

/** Two decimal texts without exponent (`-12.50`), compared by value. */
function compareDecimals(a: string, b: string): number {
  const pa = decimalParts(a)
  const pb = decimalParts(b)
  if (pa.negative !== pb.negative) return pa.negative ? -1 : 1
  const sign = pa.negative ? -1 : 1
  if (pa.int.length !== pb.int.length) return pa.int.length < pb.int.length ? -sign : sign
  if (pa.int !== pb.int) return pa.int < pb.int ? -sign : sign
  const width = Math.max(pa.frac.length, pb.frac.length)
  const fa = pa.frac.padEnd(width, '0')
  const fb = pb.frac.padEnd(width, '0')
  return fa === fb ? 0 : fa < fb ? -sign : sign
}

function decimalParts(text: string): {negative: boolean; int: string; frac: string} {
  const negative = text.startsWith('-')
  const [intPart, frac = ''] = text.replace(/^[-+]/, '').split('.')
  const int = intPart.replace(/^0+/, '')
  const fraction = frac.replace(/0+$/, '')
  // Zero has no sign in numeric.
  return {negative: negative && (int !== '' || fraction !== ''), int, frac: fraction}
}

/**
 * A key equal for two scalars exactly when jsonbEquals says so (numbers by decimal value: 2.5 and
 * 2.50, an exact integer and the double written with the same digits), for sets of values.
 * Undefined for an array or object.
 */
export function scalarKey(v: JsonValue): string | undefined {
  switch (scalarType(v)) {
    case T_NULL:
      return 'z'
    case T_BOOL:
      return v ? 'b1' : 'b0'
    case T_STRING:
      return 's' + (v as string)
    case T_NUMBER: {
      const {negative, int, frac} = decimalParts(numberText(v as number | string))
      return `n${negative ? '-' : ''}${int}.${frac}`
    }
    default:
      return undefined
  }
}

/**
 * jsonb ordering (PostgreSQL's compareJsonbContainers): Object > Array > Boolean > Number > String >
 * Null; arrays and objects with more members are greater; an empty top-level array sorts below null;
 * a top-level scalar sorts below a one-element array.
 */
export function compareJsonb(a: JsonValue, b: JsonValue): number {
  // Fast path: two scalars.
  if (!isContainer(a) && !isContainer(b)) {
    const ta = scalarType(a)
    const tb = scalarType(b)
    if (ta !== tb) return ta > tb ? 1 : -1
    return compareScalars(ta, a, b)
  }
  const ia = tokens(a, true)
  const ib = tokens(b, true)
  for (;;) {
    const na = ia.next()
    const nb = ib.next()
    if (na.done || nb.done) {
      if (na.done && nb.done) return 0
      return na.done ? -1 : 1 // cannot happen: sizes were compared first
    }
    const ta = na.value
    const tb = nb.value
    let res = 0
    if (ta.kind === tb.kind) {
      if (ta.kind === 'end_array' || ta.kind === 'end_object') continue
      if (ta.type === tb.type) {
        if (ta.type === T_ARRAY) {
          if (ta.raw !== tb.raw) res = ta.raw ? -1 : 1
          if (ta.size !== tb.size) res = ta.size! > tb.size! ? 1 : -1
        } else if (ta.type === T_OBJECT) {
          if (ta.size !== tb.size) res = ta.size! > tb.size! ? 1 : -1
        } else {
          res = compareScalars(ta.type, ta.value!, tb.value!)
        }
      } else {
        res = ta.type > tb.type ? 1 : -1
      }
    } else {
      res = ta.type > tb.type ? 1 : -1
    }
    if (res !== 0) return res
  }
}

export function jsonbEquals(a: JsonValue, b: JsonValue): boolean {
  return compareJsonb(a, b) === 0
}

/** `lhs @> rhs` for containers below the top level (PostgreSQL's JsonbDeepContains). */
export function jsonbContains(lhs: JsonValue, rhs: JsonValue): boolean {
  if (!isContainer(lhs) || !isContainer(rhs)) {
    if (isContainer(lhs) || isContainer(rhs)) return false
    return scalarType(lhs) === scalarType(rhs) && jsonbEquals(lhs, rhs)
  }
  if (Array.isArray(lhs) !== Array.isArray(rhs)) return false
  if (Array.isArray(lhs)) {
    const right = rhs as JsonValue[]
    return right.every((r) =>
      isContainer(r) ? lhs.some((l) => isContainer(l) && jsonbContains(l, r)) : lhs.some((l) => !isContainer(l) && scalarType(l) === scalarType(r) && jsonbEquals(l, r)),
    )
  }
  const left = lhs as {[key: string]: JsonValue}
  const right = rhs as {[key: string]: JsonValue}
  for (const [k, r] of Object.entries(right)) {
    if (r === undefined) continue
    if (!Object.hasOwn(left, k) || left[k] === undefined) return false
    if (!jsonbContains(left[k], r)) return false
  }
  return true
}

/** PostgreSQL's numeric output for a JSON number (no exponent notation). */
export function numericText(n: number): string {
  const s = String(n)
  if (!/e/i.test(s)) return s
  const [mantissa, expPart] = s.toLowerCase().split('e')
  const exp = Number(expPart)
  const negative = mantissa.startsWith('-')
  const digits = mantissa.replace('-', '')
  const [intPart, fracPart = ''] = digits.split('.')
  const all = intPart + fracPart
  const point = intPart.length + exp
  let out: string
  if (point <= 0) out = '0.' + '0'.repeat(-point) + all
  else if (point >= all.length) out = all + '0'.repeat(point - all.length)
  else out = all.slice(0, point) + '.' + all.slice(point)
  return (negative ? '-' : '') + out
}

/** The text PostgreSQL prints for a jsonb value (`jsonb::text`): `{"a": 1, "b": [1, 2]}`. */
export function jsonbText(v: JsonValue): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return exactIntegerText(v) ?? JSON.stringify(v)
  if (typeof v === 'number') return numericText(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (Array.isArray(v)) return '[' + v.map(jsonbText).join(', ') + ']'
  const keys = jsonbKeyOrder(Object.keys(v).filter((k) => v[k] !== undefined))
  return '{' + keys.map((k) => JSON.stringify(k) + ': ' + jsonbText(v[k])).join(', ') + '}'
}

/** `->>`: a string's own text, SQL NULL (undefined) for JSON null, the jsonb text otherwise. */
export function jsonbAsText(v: JsonValue): string | undefined {
  if (v === null) return undefined
  if (typeof v === 'string') return exactIntegerText(v) ?? v
  return jsonbText(v)
}

const NON_ASCII = /[\u0080-\uffff]/

/**
 * Lower case as PostgreSQL's ILIKE folds it under a UTF-8 ctype (C.UTF-8, en_US.UTF-8…), and as
 * upstream's memory backend (Python's re.IGNORECASE) matches: one code point at a time, so
 * `İ` is `i` and a final `Σ` is `σ` (String.toLowerCase alone makes `i̇` and `ς` of them).
 */
function ilikeLower(s: string): string {
  if (!NON_ASCII.test(s)) return s.toLowerCase()
  let out = ''
  for (const c of s) {
    const lower = c.toLowerCase()
    out += lower.length === c.length ? lower : String.fromCodePoint(lower.codePointAt(0)!)
  }
  return out
}

/** One character of an ILIKE pattern: a lower-cased code point, or `_` (ANY). */
const ANY = null
type LikeToken = string | typeof ANY

/**
 * A matcher for an SQL ILIKE pattern: `%` any run, `_` one character, `\` escapes the next one.
 * Letters are compared lower-cased, non-ASCII ones too (ilikeLower).
 * No regular expression: a pattern of many `%` (`like_x=*a*a*a…b`) would make one backtrack for
 * minutes on a long value, and a very long pattern does not compile. The pattern is cut at each
 * `%` into runs; the first run must match at the start, the last at the end, and each run between
 * at its leftmost place after the previous one, which is exact for `%` and takes at most
 * (pattern length × text length) steps.
 */
export function ilikeMatcher(pattern: string): (text: string) => boolean {
  const runs: LikeToken[][] = [[]]
  const chars = Array.from(pattern)
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]
    if (c === '\\' && i + 1 < chars.length) runs.at(-1)!.push(ilikeLower(chars[++i]))
    else if (c === '%') runs.push([])
    else if (c === '_') runs.at(-1)!.push(ANY)
    else runs.at(-1)!.push(ilikeLower(c))
  }
  const first = runs[0]
  const last = runs.at(-1)!
  const middle = runs.slice(1, -1)
  return (input) => {
    const text = Array.from(ilikeLower(input))
    if (runs.length === 1) return text.length === first.length && runAt(first, text, 0)
    if (text.length < first.length + last.length || !runAt(first, text, 0)) return false
    const end = text.length - last.length
    if (!runAt(last, text, end)) return false
    let at = first.length
    for (const run of middle) {
      let found = -1
      for (let i = at; i + run.length <= end; i++) {
        if (runAt(run, text, i)) {
          found = i
          break
        }
      }
      if (found < 0) return false
      at = found + run.length
    }
    return true
  }
}

function runAt(run: LikeToken[], text: string[], at: number): boolean {
  for (let j = 0; j < run.length; j++) {
    const t = run[j]
    if (t !== ANY && t !== text[at + j]) return false
  }
  return true
}

/** Python truthiness, as upstream reads the value of a `has_` filter. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return Object.keys(v).length > 0
  return true
}

/**
 * JSON text <-> values without bending integers. JavaScript numbers are doubles: an integer
 * beyond 2^53 (`12345678901234567890`) would come back as `12345678901234567000`, while upstream
 * Kinto (Python ints) and PostgreSQL's jsonb (numeric) keep every digit. Such an integer is held
 * in memory as a marked string (`EXACT_INTEGER` + its digits) that every serialiser here writes
 * back as a bare number; everything else is what JSON.parse / JSON.stringify give. Floats stay
 * doubles, as upstream's parser makes them.
 *
 * The marker starts with a NUL, which a request body may never contain (server/json.ts refuses
 * it) and PostgreSQL cannot store: it can only come from this module.
 */
import {lazyRequire} from './lazy.js'

export const EXACT_INTEGER = '\u0000n:'

/**
 * A run of 16 digits: the only texts that may hold an integer beyond 2^53 (a cheap test). Spelled
 * out: V8 scans for `\d{16}` an order of magnitude slower than for the same 16 atoms written one
 * by one (6 µs against 0.4 µs over a 2 kB page of records), and every JSON column goes through it.
 */
const LONG_DIGITS = /\d\d\d\d\d\d\d\d\d\d\d\d\d\d\d\d/
/** The marker as JSON.stringify writes it, in a string of its own. */
const MARKED = /"\\u0000n:(-?\d+)"/g
const MARKED_TEXT = '"\\u0000n:'

const losslessJson = lazyRequire<typeof import('lossless-json')>('lossless-json')

function exactNumber(text: string): number | string {
  const n = Number(text)
  if (Number.isSafeInteger(n) || /[.eE]/.test(text)) return n
  return EXACT_INTEGER + text
}

/** JSON.parse, but integers beyond 2^53 keep every digit. Throws JSON.parse's SyntaxError. */
export function parseJson(text: string): unknown {
  return exactValue(text, JSON.parse(text))
}

/** `parsed` (JSON.parse of `text`), or `text` parsed again keeping big integers exact when it has any. */
export function exactValue(text: string, parsed: unknown): unknown {
  if (!LONG_DIGITS.test(text)) return parsed
  try {
    return losslessJson().parse(text, null, exactNumber)
  } catch {
    // Its only refusal of what JSON.parse accepted: a key repeated with another value. There the
    // last one wins, as in JSON.parse and upstream; the integers are marked in the text first.
    return JSON.parse(markExactIntegers(text))
  }
}

/**
 * `text` (valid JSON) with each integer beyond 2^53 outside strings written as its marked string,
 * for JSON.parse: a linear scan, no recursion.
 */
function markExactIntegers(text: string): string {
  let out = ''
  let copied = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c /* \ */) i++
      else if (c === 0x22 /* " */) inString = false
      continue
    }
    if (c === 0x22) {
      inString = true
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1
      while (end < text.length && NUMBER_CHAR.test(text[end])) end++
      const value = exactNumber(text.slice(i, end))
      if (typeof value === 'string') {
        out += text.slice(copied, i) + JSON.stringify(value)
        copied = end
      }
      i = end - 1
    }
  }
  return out + text.slice(copied)
}

const NUMBER_CHAR = /[0-9.eE+-]/

/** JSON.stringify, writing exact integers back as numbers. */
export function stringifyJson(value: unknown): string {
  const text = JSON.stringify(value)
  return text !== undefined && text.includes(MARKED_TEXT) ? text.replace(MARKED, '$1') : text
}

/** The longest string V8 makes (Node 20): JSON longer than that cannot be one string. */
const STRING_MAX_CHARS = 0x1fffffe8

function isPlainContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value) as unknown
  return (proto === Object.prototype || proto === null) && typeof (value as {toJSON?: unknown}).toJSON !== 'function'
}

/**
 * stringifyJson's text, or its UTF-8 bytes when it cannot be one string (a page of big records:
 * sixty 10 MB records made a 600 MB answer past V8's string limit, and the server answered 500).
 * The bytes are written part by part (the members of its arrays and objects), each part a string
 * of its own under `maxChars`, and are the bytes stringifyJson's text would be.
 */
export function stringifyJsonOrBytes(value: unknown, maxChars = STRING_MAX_CHARS): string | Buffer {
  let text: string | undefined
  try {
    text = stringifyJson(value)
  } catch (error) {
    if (!(error instanceof RangeError) || !isPlainContainer(value)) throw error
  }
  if (text !== undefined && text.length <= maxChars) return text
  if (!isPlainContainer(value)) {
    // undefined or a function (no JSON): what stringifyJson answers.
    if (text === undefined) return stringifyJson(value)
    throw new RangeError(`A JSON string is longer than ${maxChars} characters.`)
  }
  const parts: Buffer[] = []
  const member = (v: unknown, inArray: boolean): void => {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') {
      // JSON.stringify leaves such a member out of an object, and writes null in an array.
      if (inArray) parts.push(Buffer.from('null'))
      return
    }
    const out = stringifyJsonOrBytes(v, maxChars)
    parts.push(typeof out === 'string' ? Buffer.from(out) : out)
  }
  if (Array.isArray(value)) {
    parts.push(Buffer.from('['))
    value.forEach((item, i) => {
      if (i > 0) parts.push(Buffer.from(','))
      member(item, true)
    })
    parts.push(Buffer.from(']'))
  } else {
    parts.push(Buffer.from('{'))
    let first = true
    for (const [key, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
      parts.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(key)}:`))
      first = false
      member(v, false)
    }
    parts.push(Buffer.from('}'))
  }
  return Buffer.concat(parts)
}

/** The exact integer a marked string holds, or undefined. */
export function exactIntegerText(value: unknown): string | undefined {
  return typeof value === 'string' && value.startsWith(EXACT_INTEGER) ? value.slice(EXACT_INTEGER.length) : undefined
}

/**
 * The value with each exact integer as the nearest double: for code that must see numbers (JSON
 * schema validation), never for what is stored or answered. Unchanged parts are not copied.
 */
export function withDoubles(value: unknown): unknown {
  if (typeof value === 'string') {
    const digits = exactIntegerText(value)
    return digits === undefined ? value : Number(digits)
  }
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    value.forEach((item, i) => {
      const next = withDoubles(item)
      if (next !== item) (out ??= value.slice())[i] = next
    })
    return out ?? value
  }
  let out: Record<string, unknown> | undefined
  for (const [k, item] of Object.entries(value)) {
    const next = withDoubles(item)
    if (next !== item) (out ??= {...value})[k] = next
  }
  return out ?? value
}

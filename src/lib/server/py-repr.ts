/**
 * Values rendered as Python renders them, for error messages that match upstream's word for word
 * (colander's and jsonschema's messages show request values this way).
 */

import {exactIntegerText} from '../json.js'

/** Python's repr() of a JSON value: `None`, `True`, `'text'`, `[1, 'a']`, `{'k': 'v'}`. */
export function pythonRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') {
    // An integer beyond 2^53 held exact (../json.ts): Python's int, all its digits.
    const digits = exactIntegerText(v)
    if (digits !== undefined) return digits
    return pythonStrRepr(v)
  }
  if (Array.isArray(v)) return `[${v.map(pythonRepr).join(', ')}]`
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pythonRepr(k)}: ${pythonRepr(x)}`).join(', ')}}`
  return String(v)
}

/** Characters Python's repr() writes as escapes: not printable (control, format, private, unassigned) or a separator but the space. */
const PY_UNPRINTABLE = /[\\\t\n\r]|(?! )[\p{C}\p{Z}]/gu

const PY_ESCAPES: Record<string, string> = {'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'}

/**
 * Python's repr() of a str: single quotes unless the text holds one and no double quote, the
 * quote and backslash escaped, \t \n \r, and other unprintable characters as \xhh, \uhhhh or
 * \Uhhhhhhhh.
 */
function pythonStrRepr(v: string): string {
  const quote = v.includes("'") && !v.includes('"') ? '"' : "'"
  const body = v.replace(PY_UNPRINTABLE, (c) => {
    const known = PY_ESCAPES[c]
    if (known) return known
    const code = c.codePointAt(0)!
    if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`
    if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`
    return `\\U${code.toString(16).padStart(8, '0')}`
  })
  return quote + (quote === "'" ? body.replaceAll("'", "\\'") : body) + quote
}

/** Python's str() of a JSON value (colander's `%s`): a string as it is, anything else as repr(). */
export function pyRepr(v: unknown): string {
  return isPythonStr(v) ? v : pythonRepr(v)
}

/** A JSON string of a request body: not an integer held exact (../json.ts), whose marker is a JS string. */
export function isPythonStr(v: unknown): v is string {
  return typeof v === 'string' && exactIntegerText(v) === undefined
}

/**
 * colander's error for a required String node (a password; an item of a sequence of Strings,
 * whose node has no name: group members, principals), or undefined for a valid value: a value
 * Python reads as false is missing ("Required"), another non-string is
 * "<value> is not a string: {'<node name>': ''}".
 */
export function colanderStringError(v: unknown, nodeName = ''): string | undefined {
  if (isPythonStr(v)) return v === '' ? 'Required' : undefined
  const falsy =
    v === undefined || v === null || v === false || v === 0 || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0)
  return falsy ? 'Required' : `${pyRepr(v)} is not a string: {'${nodeName}': ''}`
}

/** Whether colander reads a (JSON-decoded) value as nothing: null, "", [] or {} (`cstruct != 0 and not cstruct`). */
export function colanderNull(v: unknown): boolean {
  if (v === null || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  return typeof v === 'object' && Object.keys(v as object).length === 0
}

/** What Python's str.isspace() calls whitespace (JavaScript's trim() adds the BOM and lacks \x1c-\x1f, \x85). */
const PY_SPACE = '[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]'
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g')

/** Python's str.strip() without argument. */
export function pythonStrip(s: string): string {
  return s.replace(PY_STRIP, '')
}

/** The whitespace Python's int() skips around a number: str.isspace() but \x1c-\x1f. */
const PY_INT_SPACE = '[\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]'
const PY_INT = new RegExp(`^${PY_INT_SPACE}*([-+]?)(\\p{Nd}+(?:_\\p{Nd}+)*)${PY_INT_SPACE}*$`, 'u')
const DECIMAL_DIGIT = /\p{Nd}/u

/** ASCII digits for decimal digits of any script (each script's ten are consecutive code points, from its zero). */
export function asciiDigits(digits: string): string {
  let out = ''
  for (const ch of digits) {
    const cp = ch.codePointAt(0)!
    let start = cp
    while (start > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--
    out += String((cp - start) % 10)
  }
  return out
}

/** The integer Python's int() reads in a text (any script's digits, `_` between digits), as `-?digits`; undefined when it raises. */
export function pythonIntText(text: string): string | undefined {
  const m = PY_INT.exec(text)
  if (!m) return undefined
  const digits = asciiDigits(m[2].replaceAll('_', ''))
  return m[1] === '-' ? `-${digits}` : digits
}

/** Python's repr() of a float: shortest digits, `.0` on an integral value, an exponent below 1e-4 and from 1e16 (`1e-07`, `1e+16`). */
export function pythonFloatRepr(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf'
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0'
  const [mantissa, exp] = n.toExponential().split('e')
  const e = Number(exp)
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`
  const text = n.toFixed(Math.max(0, mantissa.replace(/^-?\d\.?/, '').length - e))
  return text.includes('.') ? text : `${text}.0`
}

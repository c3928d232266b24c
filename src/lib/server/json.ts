/**
 * JSON in and out of the runtime: request bodies are parsed defensively (valid UTF-8, a bounded
 * nesting depth, no NUL characters, no lone surrogates, no numbers that overflow to Infinity),
 * because everything accepted here may end up in a PostgreSQL jsonb column.
 */
import {exactValue} from '../json.js'
import {type HttpError, invalidParameters} from './errors.js'
import {rapidjsonError, utf8DecodeError} from './json-errors.js'

/** Deepest nesting of arrays/objects accepted in a request body. */
export const MAX_JSON_DEPTH = 100

// A byte order mark is kept, as Python's decoder keeps it: it is then no JSON, as upstream says.
const utf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

/** Python's names of ISO-8859-1, which WHATWG's TextDecoder reads as windows-1252. */
const LATIN1 = new Set(['latin1', 'latin-1', 'latin_1', 'iso-8859-1', 'iso8859-1', 'iso_8859_1', 'iso_8859-1', 'l1', 'cp819', '8859', 'latin'])

/** The `charset` parameter of a Content-Type, lower-cased, or undefined. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')
  return m ? m[1].toLowerCase() : undefined
}

/** The body's text in `charset` (UTF-8 when none, as upstream's WebOb). */
function decodeBody(raw: Buffer, charset: string | undefined): string {
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8') {
    try {
      return utf8.decode(raw)
    } catch {
      throw invalidBody(`Invalid JSON: ${utf8DecodeError(raw) ?? 'the body is not valid UTF-8'}`)
    }
  }
  if (LATIN1.has(charset)) return raw.toString('latin1')
  let decoder: InstanceType<typeof TextDecoder>
  try {
    decoder = new TextDecoder(charset, {fatal: true})
  } catch {
    throw invalidBody(`Invalid JSON: unknown charset "${charset.slice(0, 64)}"`)
  }
  try {
    return decoder.decode(raw)
  } catch {
    throw invalidBody(`Invalid JSON: the body is not valid ${decoder.encoding}`)
  }
}

/**
 * A body that is not a JSON object or array: upstream's validator then reads the request as
 * having no body at all, so its answer lists the reason and then the body as missing.
 */
export function invalidBody(description: string): HttpError {
  return invalidParameters([
    {location: 'body', name: '', description},
    {location: 'body', name: '', description: 'Required'},
  ])
}

/**
 * Parses a request body, decoded with the charset of its Content-Type; throws a 400 errno 107
 * "Invalid JSON: …" on anything unsafe, in upstream's words where upstream refuses it too
 * (json-errors.ts).
 */
export function parseJsonBody(raw: Buffer | string, charset?: string): unknown {
  const text = typeof raw === 'string' ? raw : decodeBody(raw, charset)
  const depth = maxNesting(text)
  if (depth > MAX_JSON_DEPTH) {
    throw invalidBody(`Invalid JSON: nesting deeper than ${MAX_JSON_DEPTH} levels`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw invalidBody(`Invalid JSON: ${rapidjsonError(text) ?? (error as Error).message}`)
  }
  // A value upstream's parser refuses too (a lone surrogate, a number past the largest double)
  // gets its message; one only we refuse (a NUL character: PostgreSQL's jsonb cannot hold it), ours.
  const problem = unsafeValue(value)
  if (problem) throw invalidBody(`Invalid JSON: ${rapidjsonError(text) ?? problem}`)
  return exactValue(text, value)
}

/** Deepest bracket nesting outside of strings; a linear scan with no recursion. */
export function maxNesting(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c /* \ */) i++
      else if (c === 0x22 /* " */) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++
      if (depth > max) max = depth
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--
  }
  return max
}

/** Why a parsed value cannot be stored, or null. Depth is already bounded by the caller. */
export function unsafeValue(value: unknown): string | null {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') {
      const p = unsafeString(v)
      if (p) return p
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'number out of range'
    } else if (Array.isArray(v)) {
      for (const item of v) stack.push(item)
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        const p = unsafeString(k)
        if (p) return p
        stack.push(item)
      }
    }
  }
  return null
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function unsafeString(s: string): string | null {
  if (s.includes('\u0000')) return 'Invalid character 0x00'
  if (LONE_SURROGATE.test(s)) return 'lone surrogate in string'
  return null
}

/**
 * upstream's native_value for querystring values: JSON-decode when it parses, else keep the raw
 * string. Numbers that overflow stay strings. Integers beyond 2^53 keep every digit (an exact
 * integer, see ../json.ts), as upstream's parser keeps them: `?v=12345678901234567890` finds them.
 */
export function nativeValue(raw: string): unknown {
  // JSON's own whitespace only, as rapidjson reads it: `\u00a01` stays the text it is.
  const trimmed = raw.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '')
  if (trimmed === '') return raw
  const first = trimmed[0]
  // Fast path: most values are plain words, which never parse as JSON.
  if (!/[-0-9"[{tfn]/.test(first)) return raw
  try {
    const v = JSON.parse(trimmed)
    if (typeof v === 'number' && !Number.isFinite(v)) return raw
    return exactValue(trimmed, v)
  } catch {
    return raw
  }
}

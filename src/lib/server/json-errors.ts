/**
 * Why a request body is not JSON, in upstream's words. Upstream Kinto decodes the body as UTF-8
 * with Python (its codec's message when that fails), then parses it with python-rapidjson, whose
 * message names the byte offset where RapidJSON's reader stopped and the reason
 * ("Parse error at offset 1: Missing a name for object member."). A client or a log search written
 * against upstream's answers sees the same text here.
 *
 * These run only once a body has been refused (JSON.parse threw, or a value cannot be stored), so
 * the request path never pays for them.
 */

/** RapidJSON's English messages (GetParseError_En) for the errors its reader can raise here. */
const MESSAGES = {
  documentEmpty: 'The document is empty.',
  rootNotSingular: 'The document root must not be followed by other values.',
  valueInvalid: 'Invalid value.',
  objectMissName: 'Missing a name for object member.',
  objectMissColon: 'Missing a colon after a name of object member.',
  objectMissCommaOrCurlyBracket: "Missing a comma or '}' after an object member.",
  arrayMissCommaOrSquareBracket: "Missing a comma or ']' after an array element.",
  stringUnicodeEscapeInvalidHex: 'Incorrect hex digit after \\u escape in string.',
  stringUnicodeSurrogateInvalid: 'The surrogate pair in string is invalid.',
  stringEscapeInvalid: 'Invalid escape character in string.',
  stringMissQuotationMark: 'Missing a closing quotation mark in string.',
  stringInvalidEncoding: 'Invalid encoding in string.',
  numberTooBig: 'Number too big to be stored in double.',
  numberMissFraction: 'Miss fraction part in number.',
  numberMissExponent: 'Miss exponent in number.',
} as const

/** Thrown inside the reader with the offset it stopped at. */
class Stop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/** The escapes a backslash may introduce, besides `u`. */
const SIMPLE_ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)))

const isDigit = (c: number) => c >= 0x30 && c <= 0x39
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * python-rapidjson's message for a body that its reader (RapidJSON, default flags: no NaN, no
 * comments, no trailing commas) refuses, or null when it parses. The input ends at its first NUL
 * byte, as the C string RapidJSON reads does.
 */
export function rapidjsonError(text: string): string | null {
  const bytes = Buffer.from(text, 'utf8')
  const end = bytes.indexOf(0) === -1 ? bytes.length : bytes.indexOf(0)
  let pos = 0
  const peek = () => (pos < end ? bytes[pos] : 0)
  const consume = (c: number) => {
    if (peek() !== c) return false
    pos++
    return true
  }
  const skipSpace = () => {
    while (isSpace(peek())) pos++
  }
  const stop = (offset: number, message: string): never => {
    throw new Stop(offset, message)
  }

  const hex4 = (escapeOffset: number): number => {
    let codepoint = 0
    for (let i = 0; i < 4; i++) {
      const c = peek()
      if (!isHex(c)) stop(escapeOffset, MESSAGES.stringUnicodeEscapeInvalidHex)
      codepoint = codepoint * 16 + Number.parseInt(String.fromCharCode(c), 16)
      pos++
    }
    return codepoint
  }

  const string = () => {
    pos++ // the opening quote
    for (;;) {
      const c = peek()
      if (c === 0x5c) {
        const escapeOffset = pos
        pos++
        const e = peek()
        if (SIMPLE_ESCAPES.has(e)) pos++
        else if (e === 0x75 /* u */) {
          pos++
          const codepoint = hex4(escapeOffset)
          if (codepoint >= 0xd800 && codepoint <= 0xdfff) {
            if (codepoint > 0xdbff) stop(escapeOffset, MESSAGES.stringUnicodeSurrogateInvalid)
            if (!consume(0x5c) || !consume(0x75)) stop(escapeOffset, MESSAGES.stringUnicodeSurrogateInvalid)
            const low = hex4(escapeOffset)
            if (low < 0xdc00 || low > 0xdfff) stop(escapeOffset, MESSAGES.stringUnicodeSurrogateInvalid)
          }
        } else stop(escapeOffset, MESSAGES.stringEscapeInvalid)
      } else if (c === 0x22) {
        pos++
        return
      } else if (c < 0x20) {
        stop(pos, c === 0 ? MESSAGES.stringMissQuotationMark : MESSAGES.stringInvalidEncoding)
      } else pos++
    }
  }

  const literal = (word: string) => {
    pos++ // its first letter, already seen
    for (let i = 1; i < word.length; i++) if (!consume(word.charCodeAt(i))) stop(pos, MESSAGES.valueInvalid)
  }

  const number = () => {
    const start = pos
    consume(0x2d /* - */)
    if (peek() === 0x30) pos++
    else if (peek() >= 0x31 && peek() <= 0x39) while (isDigit(peek())) pos++
    else stop(pos, MESSAGES.valueInvalid)
    let fractionDigits = 0
    if (consume(0x2e /* . */)) {
      if (!isDigit(peek())) stop(pos, MESSAGES.numberMissFraction)
      while (isDigit(peek())) {
        pos++
        fractionDigits++
      }
    }
    if (consume(0x65 /* e */) || consume(0x45 /* E */)) {
      let negative = false
      if (!consume(0x2b /* + */)) negative = consume(0x2d)
      if (!isDigit(peek())) stop(pos, MESSAGES.numberMissExponent)
      // RapidJSON stops on a positive exponent past 308 plus the fraction's digits (it counts
      // only the digits it uses; either way a number past that is too big, at the same offset).
      const maxExponent = 308 + fractionDigits
      let exponent = 0
      while (isDigit(peek())) {
        exponent = Math.min(exponent * 10 + (peek() - 0x30), 1e9)
        pos++
        if (!negative && exponent > maxExponent) stop(start, MESSAGES.numberTooBig)
      }
    }
    // What is left to refuse is a value past the largest double.
    if (!Number.isFinite(Number(bytes.subarray(start, pos).toString('latin1')))) stop(start, MESSAGES.numberTooBig)
  }

  // Recursive as RapidJSON's reader: callers bound the nesting first (MAX_JSON_DEPTH).
  const value = () => {
    const c = peek()
    if (c === 0x6e) literal('null')
    else if (c === 0x74) literal('true')
    else if (c === 0x66) literal('false')
    else if (c === 0x22) string()
    else if (c === 0x7b) object()
    else if (c === 0x5b) array()
    else number()
  }

  const object = () => {
    pos++
    skipSpace()
    if (consume(0x7d)) return
    for (;;) {
      if (peek() !== 0x22) stop(pos, MESSAGES.objectMissName)
      string()
      skipSpace()
      if (!consume(0x3a /* : */)) stop(pos, MESSAGES.objectMissColon)
      skipSpace()
      value()
      skipSpace()
      if (consume(0x2c)) skipSpace()
      else if (consume(0x7d)) return
      else stop(pos, MESSAGES.objectMissCommaOrCurlyBracket)
    }
  }

  const array = () => {
    pos++
    skipSpace()
    if (consume(0x5d)) return
    for (;;) {
      value()
      skipSpace()
      if (consume(0x2c)) skipSpace()
      else if (consume(0x5d)) return
      else stop(pos, MESSAGES.arrayMissCommaOrSquareBracket)
    }
  }

  try {
    skipSpace()
    if (peek() === 0) stop(pos, MESSAGES.documentEmpty)
    value()
    skipSpace()
    if (peek() !== 0) stop(pos, MESSAGES.rootNotSingular)
    return null
  } catch (error) {
    if (error instanceof Stop) return `Parse error at offset ${error.offset}: ${error.message}`
    throw error
  }
}

/**
 * Python's message for bytes that are not UTF-8 (`bytes.decode('utf-8')`, CPython's decoder: where
 * it stopped and why), or null when they are.
 */
export function utf8DecodeError(bytes: Uint8Array): string | null {
  const isContinuation = (b: number | undefined) => b !== undefined && b >= 0x80 && b <= 0xbf
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]
    if (b < 0x80) {
      i++
      continue
    }
    // How many bytes of the sequence are valid (its length when all are), or 'start'.
    let problem: 'start' | 'end' | number | null = null
    let length = 0
    if (b < 0xc2 || b > 0xf4) problem = 'start'
    else {
      length = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4
      // The second byte's range is narrower after E0, ED, F0 and F4 (no overlong form, no
      // surrogate, nothing past U+10FFFF).
      const second = bytes[i + 1]
      const secondOk =
        isContinuation(second) &&
        !(b === 0xe0 && second! < 0xa0) &&
        !(b === 0xed && second! >= 0xa0) &&
        !(b === 0xf0 && second! < 0x90) &&
        !(b === 0xf4 && second! >= 0x90)
      for (let k = 1; k < length; k++) {
        if (i + k >= bytes.length) {
          problem = 'end'
          break
        }
        if (!(k === 1 ? secondOk : isContinuation(bytes[i + k]))) {
          problem = k
          break
        }
      }
    }
    if (problem === null) {
      i += length
      continue
    }
    if (problem === 'start') return codecMessage(bytes, i, i + 1, 'invalid start byte')
    if (problem === 'end') return codecMessage(bytes, i, bytes.length, 'unexpected end of data')
    return codecMessage(bytes, i, i + problem, 'invalid continuation byte')
  }
  return null
}

function codecMessage(bytes: Uint8Array, start: number, end: number, reason: string): string {
  if (end - start === 1) return `'utf-8' codec can't decode byte 0x${bytes[start].toString(16).padStart(2, '0')} in position ${start}: ${reason}`
  return `'utf-8' codec can't decode bytes in position ${start}-${end - 1}: ${reason}`
}

/**
 * A body that is not JSON, answered in upstream's words: Python's UTF-8 codec message, or
 * python-rapidjson's "Parse error at offset N: …" (RapidJSON's reader: the byte offset where it
 * stopped), then a second detail "Required" (upstream's validator then reads the request as having
 * no body). Expected answers are those of upstream Kinto 26.3.1 run side by side with these bodies;
 * the two marked "RapidJSON's current reader" follow the reader python-rapidjson releases bundle
 * (a control character is an encoding error, a lone low surrogate escape an invalid pair), where
 * an older system build of RapidJSON words them otherwise.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {rapidjsonError, utf8DecodeError} from '../../src/lib/server/json-errors.js'
import {pythonRepr} from '../../src/lib/server/py-repr.js'
import {ALICE, BOB, client, memoryApp} from './helpers.js'

const app = memoryApp()
afterAll(() => app.close())
const req = client(app)
beforeAll(async () => {
  expect((await req('PUT', '/v1/buckets/b')).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b/collections/c')).status).toBe(201)
})

/** [body, upstream's message after "Invalid JSON: "] */
const SYNTAX: Array<[string | Buffer, string]> = [
  ['   ', 'Parse error at offset 3: The document is empty.'],
  ['{', 'Parse error at offset 1: Missing a name for object member.'],
  ['{bad', 'Parse error at offset 1: Missing a name for object member.'],
  ["{'a':1}", 'Parse error at offset 1: Missing a name for object member.'],
  ['{"a"', 'Parse error at offset 4: Missing a colon after a name of object member.'],
  ['{"a" 1}', 'Parse error at offset 5: Missing a colon after a name of object member.'],
  ['{"a":', 'Parse error at offset 5: Invalid value.'],
  ['{"a":1', "Parse error at offset 6: Missing a comma or '}' after an object member."],
  ['{"a":1,', 'Parse error at offset 7: Missing a name for object member.'],
  ['{"a":1,}', 'Parse error at offset 7: Missing a name for object member.'],
  ['{"a":1}}', 'Parse error at offset 7: The document root must not be followed by other values.'],
  ['{"a":tru}', 'Parse error at offset 8: Invalid value.'],
  ['[', 'Parse error at offset 1: Invalid value.'],
  ['[1,', 'Parse error at offset 3: Invalid value.'],
  ['[1,]', 'Parse error at offset 3: Invalid value.'],
  ['[1 2]', "Parse error at offset 3: Missing a comma or ']' after an array element."],
  ['[1]]', 'Parse error at offset 3: The document root must not be followed by other values.'],
  ['nul', 'Parse error at offset 3: Invalid value.'],
  ['x', 'Parse error at offset 0: Invalid value.'],
  ['{"data":{}} {}', 'Parse error at offset 12: The document root must not be followed by other values.'],
  ['"abc', 'Parse error at offset 4: Missing a closing quotation mark in string.'],
  ['"a\\qb"', 'Parse error at offset 2: Invalid escape character in string.'],
  ['"\\u12G4"', 'Parse error at offset 1: Incorrect hex digit after \\u escape in string.'],
  ['"\\uD800"', 'Parse error at offset 1: The surrogate pair in string is invalid.'],
  ['"\\uD800\\u0041"', 'Parse error at offset 1: The surrogate pair in string is invalid.'],
  // RapidJSON's current reader:
  ['"\\uDC00"', 'Parse error at offset 1: The surrogate pair in string is invalid.'],
  ['"a\u0001b"', 'Parse error at offset 2: Invalid encoding in string.'],
  ['1.', 'Parse error at offset 2: Miss fraction part in number.'],
  ['1.e5', 'Parse error at offset 2: Miss fraction part in number.'],
  ['1e', 'Parse error at offset 2: Miss exponent in number.'],
  ['-a', 'Parse error at offset 1: Invalid value.'],
  ['01', 'Parse error at offset 1: The document root must not be followed by other values.'],
  ['{"data":{"a":1e400}}', 'Parse error at offset 13: Number too big to be stored in double.'],
  ['{"data":{"a":NaN}}', 'Parse error at offset 13: Invalid value.'],
  ['{"data":{"a":-Infinity}}', 'Parse error at offset 14: Invalid value.'],
  // Offsets count bytes (é is two), lines do not matter.
  ['{"data":{"é":"é"}, "x": @}', 'Parse error at offset 26: Invalid value.'],
  ['\t\n{"a"\n:\n@}', 'Parse error at offset 9: Invalid value.'],
  // A byte order mark is kept by Python's decoder, and is no JSON.
  [Buffer.from('\uFEFF{"data":{}}'), 'Parse error at offset 0: Invalid value.'],
  [Buffer.from([0x7b, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3a, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x7d]), "'utf-8' codec can't decode byte 0xff in position 14: invalid start byte"],
]

describe('a body that is not JSON: upstream\'s message, and "Required"', () => {
  test.each(SYNTAX.map(([body, message]) => [typeof body === 'string' ? body : `bytes ${body.toString('hex')}`, body, message]))(
    '%s',
    async (_name, body, message) => {
      const res = await req('POST', '/v1/buckets/b/collections/c/records', {raw: body})
      expect(res.status).toBe(400)
      expect(res.body).toEqual({
        code: 400,
        errno: 107,
        error: 'Invalid parameters',
        message: `Invalid JSON: ${message}`,
        details: [
          {location: 'body', name: '', description: `Invalid JSON: ${message}`},
          {location: 'body', name: '', description: 'Required'},
        ],
      })
    },
  )

  test('a JSON scalar: "Should be a JSON object or an array", then "Required"; a batch the same', async () => {
    for (const [path, body] of [
      ['/v1/buckets/b2', 'true'],
      ['/v1/buckets/b2', 'null'],
      ['/v1/batch', '5'],
    ]) {
      const res = await req(path === '/v1/batch' ? 'POST' : 'PUT', path, {raw: body})
      expect(res.body, `${path} ${body}`).toMatchObject({
        errno: 107,
        message: 'Should be a JSON object or an array',
        details: [
          {location: 'body', name: '', description: 'Should be a JSON object or an array'},
          {location: 'body', name: '', description: 'Required'},
        ],
      })
    }
    const batch = await req('POST', '/v1/batch', {raw: '{bad'})
    expect(batch.body).toMatchObject({message: 'Invalid JSON: Parse error at offset 1: Missing a name for object member.'})
  })

  test('what only this server refuses keeps its own words (a NUL character cannot be stored in jsonb)', async () => {
    const res = await req('POST', '/v1/buckets/b/collections/c/records', {raw: '{"data": {"a": "\\u0000"}}'})
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({message: 'Invalid JSON: Invalid character 0x00'})
  })
})

describe('a GET, HEAD or DELETE with a JSON body it cannot read: 400, one detail (upstream reads every body)', () => {
  const PARSE_ERROR = 'Invalid JSON: Parse error at offset 1: Missing a name for object member.'
  test.each([
    ['GET', '/v1/buckets/b/collections/c/records'],
    ['GET', '/v1/buckets/b'],
    ['DELETE', '/v1/buckets/b/collections/c/records'],
    ['HEAD', '/v1/buckets/b/collections/c/records'],
  ])('%s %s', async (method, path) => {
    const res = await req(method, path, {raw: '{'})
    expect(res.status).toBe(400)
    // Nothing is required of such a body: no second detail "Required".
    if (method !== 'HEAD') expect(res.body).toEqual({code: 400, errno: 107, error: 'Invalid parameters', message: PARSE_ERROR, details: [{location: 'body', name: '', description: PARSE_ERROR}]})
    expect((await req('GET', '/v1/buckets/b/collections/c')).status).toBe(200)
  })

  test('a scalar is refused, a JSON object or array is not read, a body of another type is not read', async () => {
    const scalar = await req('GET', '/v1/buckets/b', {raw: '12'})
    expect(scalar.body).toMatchObject({message: 'Should be a JSON object or an array', details: [{location: 'body', name: '', description: 'Should be a JSON object or an array'}]})
    expect(scalar.body.details).toHaveLength(1)
    for (const raw of ['{"data": {"x": 1}}', '[1]']) expect((await req('GET', '/v1/buckets/b', {raw})).status, raw).toBe(200)
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'foo']) {
      const res = await req('DELETE', '/v1/buckets/b/collections/c/records', {raw: '{', headers: {'content-type': type}})
      expect(res.status, type).toBe(200)
    }
    // No Content-Type at all: read as JSON, as on a write.
    const untyped = await app.inject({method: 'GET', url: '/v1/buckets/b', headers: {authorization: ALICE}, payload: '{'})
    expect(untyped.statusCode).toBe(400)
  })

  test('the permission is checked first: a caller who may not read gets its 401/403, not the 400', async () => {
    expect((await req('GET', '/v1/buckets/b', {raw: '{', auth: null})).status).toBe(401)
    expect((await req('DELETE', '/v1/buckets/b', {raw: '{', auth: BOB})).status).toBe(403)
  })
})

describe('the readers themselves', () => {
  test('rapidjsonError: null for what parses, the NUL byte ends the input as in a C string', () => {
    expect(rapidjsonError('{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\ud83d\\ude00"]}')).toBeNull()
    expect(rapidjsonError(' [] ')).toBeNull()
    expect(rapidjsonError('{"a":1}\u0000 trailing')).toBeNull()
    expect(rapidjsonError('"ab\u0000"')).toBe('Parse error at offset 3: Missing a closing quotation mark in string.')
    expect(rapidjsonError('1.5e308')).toBeNull()
    expect(rapidjsonError('17976931348623159e292')).toBe('Parse error at offset 0: Number too big to be stored in double.')
    expect(rapidjsonError('[0.000001e310]')).toBeNull()
  })

  test("utf8DecodeError: CPython's reasons and positions", () => {
    const b = (...x: number[]) => Uint8Array.from(x)
    expect(utf8DecodeError(Buffer.from('héllo ✓ 😀'))).toBeNull()
    expect(utf8DecodeError(b(0x61, 0x80))).toBe("'utf-8' codec can't decode byte 0x80 in position 1: invalid start byte")
    expect(utf8DecodeError(b(0xc0, 0x80))).toBe("'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte")
    expect(utf8DecodeError(b(0xed, 0xa0, 0x80))).toBe("'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte")
    expect(utf8DecodeError(b(0xe2, 0x9c, 0x41))).toBe("'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte")
    expect(utf8DecodeError(b(0x61, 0xe2, 0x9c))).toBe("'utf-8' codec can't decode bytes in position 1-2: unexpected end of data")
    expect(utf8DecodeError(b(0x61, 0xf0))).toBe("'utf-8' codec can't decode byte 0xf0 in position 1: unexpected end of data")
    expect(utf8DecodeError(b(0xf4, 0x90, 0x80, 0x80))).toBe("'utf-8' codec can't decode byte 0xf4 in position 0: invalid continuation byte")
  })

  test("pythonRepr of a str: Python's quotes and escapes", () => {
    expect(pythonRepr('a\nb\tc\rd')).toBe("'a\\nb\\tc\\rd'")
    expect(pythonRepr("it's")).toBe('"it\'s"')
    expect(pythonRepr('both \' and "')).toBe("'both \\' and \"'")
    expect(pythonRepr('back\\slash')).toBe("'back\\\\slash'")
    expect(pythonRepr('\u007f\u00a0\u00ad zero\u200bwidth é😀')).toBe("'\\x7f\\xa0\\xad zero\\u200bwidth é😀'")
  })
})

import {describe, expect, test} from 'vitest'

import {EXACT_INTEGER, exactIntegerText, parseJson, stringifyJson, stringifyJsonOrBytes} from '../../src/lib/json.js'

describe('the JSON codec keeps integers exact', () => {
  test('integers beyond 2^53 round-trip with every digit, others are plain numbers', () => {
    const text = '{"a":12345678901234567890,"b":[-98765432109876543210,1.5,3,9007199254740991],"c":"12345678901234567890"}'
    const value = parseJson(text) as {a: unknown; b: unknown[]; c: unknown}
    expect(exactIntegerText(value.a)).toBe('12345678901234567890')
    expect(value.b.slice(1)).toEqual([1.5, 3, 9007199254740991])
    expect(value.c).toBe('12345678901234567890')
    expect(stringifyJson(value)).toBe(text)
  })

  test('the first integers beyond 2^53 (16 digits) are exact; 15-digit runs take the plain path', () => {
    const text = '[9007199254740993,-9007199254740993,"x",123456789012345]'
    const value = parseJson(text) as unknown[]
    expect(exactIntegerText(value[0])).toBe('9007199254740993')
    expect(exactIntegerText(value[1])).toBe('-9007199254740993')
    expect(value[3]).toBe(123456789012345)
    expect(stringifyJson(value)).toBe(text)
  })

  test('floats stay doubles (as upstream parses them), even with many digits', () => {
    // eslint-disable-next-line no-loss-of-precision -- the nearest double is what is expected
    expect(parseJson('{"x": 1.2345678901234567890}')).toEqual({x: 1.2345678901234568})
    expect(parseJson('[1e400000000000000000]')).toEqual([Infinity])
  })

  test('texts without a long digit run take the plain path', () => {
    expect(parseJson('{"a": 1}')).toEqual({a: 1})
  })

  test('a repeated key: the last one wins (as JSON.parse and upstream), and integers keep every digit', () => {
    const dup = parseJson('{"a": 1, "a": 12345678901234567890, "b": {"c": -98765432109876543210, "c": 2}, "s": "12345678901234567890", "e": 1.5e300}') as Record<string, unknown>
    expect(exactIntegerText(dup.a)).toBe('12345678901234567890')
    expect(dup.b).toEqual({c: 2})
    expect(dup.s).toBe('12345678901234567890')
    expect(dup.e).toBe(1.5e300)
    expect(stringifyJson(parseJson('{"k": 1, "k": 2, "big": [12345678901234567890, "\\\\"]}'))).toBe('{"k":2,"big":[12345678901234567890,"\\\\"]}')
  })

  test('a string that merely looks like the marker is not rewritten', () => {
    const text = stringifyJson({s: '\\u0000n:12'})
    expect(JSON.parse(text)).toEqual({s: '\\u0000n:12'})
    expect(EXACT_INTEGER.startsWith('\u0000')).toBe(true)
  })
})

describe('JSON longer than one string can be', () => {
  // The limit is lowered so that a few bytes stand for the 512 MB of a V8 string.
  const page = {data: [{id: 'a', blob: 'é'.repeat(15), n: parseJson('12345678901234567890'), skip: undefined}, {id: 'b', f: () => 1}, [undefined, null]], more: false, gone: undefined}

  test('is written as bytes, part by part, equal to the text it would be', () => {
    const bytes = stringifyJsonOrBytes(page, 24)
    expect(Buffer.isBuffer(bytes)).toBe(true)
    expect((bytes as Buffer).toString('utf8')).toBe(stringifyJson(page))
    expect((bytes as Buffer).toString('utf8')).toContain('"n":12345678901234567890')
  })

  test('under the limit it is the plain text; a single string past it is still an error', () => {
    expect(stringifyJsonOrBytes(page)).toBe(stringifyJson(page))
    expect(stringifyJsonOrBytes(undefined)).toBeUndefined()
    expect(() => stringifyJsonOrBytes({s: 'x'.repeat(50)}, 20)).toThrow(RangeError)
  })
})

/**
 * The patterns of JSON schemas: Python's reading of them, and the matching thread the server
 * waits for (schema-regex.ts).
 */
import {describe, expect, test} from 'vitest'

import {validateAgainstSchema} from '../../src/lib/server/jsonschema.js'
import {PatternSyntaxError, pythonPattern, repetitions, schemaRegExp} from '../../src/lib/server/schema-regex.js'

describe('pythonPattern', () => {
  test.each([
    ['^\\w+$', '^[\\p{L}\\p{N}_]+(?=\\n?$)', ''],
    ['[\\d\\-]', '[\\p{Nd}\\-]', ''],
    ['a\\_b\\ c', 'a\\u{5f}b\\u{20}c', ''],
    ['[]x]', '[\\]x]', ''],
    ['x{,3}y{2,}{x}', 'x{0,3}y{2,}\\{x\\}', ''],
    ['(?P<n>.)(?P=n)', '(?<n>[^\\n])\\k<n>', ''],
    ['(?ms)^.$', '^.$', 'ms'],
  ])('%s → %s', (source, js, flags) => {
    expect(pythonPattern(source)).toEqual({source: js, flags})
  })
})

// Read as Python's `re` reads them: comments, verbose mode, a `]` outside a set.
test.each([
  ['(?#note)x', 'xxy', true],
  ['(?#note)x', 'aa', false],
  ['x(?#a)y', 'xy', true],
  ['[[:alpha:]]', 'a]', true],
  ['[[:alpha:]]', 'a', false],
  ['a]', 'a]', true],
  ['(?x) a b # c', 'ab', true],
  ['(?x)a b', 'a b', false],
  ['(?x)[ ]', ' ', true],
  ['(?x)a\\ b', 'a b', true],
  ['(?x)a#x\nb', 'ab', true],
  ['(?x)a[#]b', 'a#b', true],
  ['(?x)a\\#b', 'a#b', true],
  ['(?x)a{2} b', 'aab', true],
])('%j searched in %j: %s (Python)', (pattern, value, found) => {
  expect(schemaRegExp(pattern, 'u').test(value)).toBe(found)
})

test.each(['(?<n>a)', '(?P<n>a)\\k<n>'])('%s is no Python pattern', (pattern) => {
  expect(() => schemaRegExp(pattern, 'u')).toThrow(PatternSyntaxError)
})

// The repetitions that bound a pattern's backtracking (it then runs in the server's thread for
// short values), or undefined when nothing simple bounds it (it always runs in the matching thread).
test.each([
  ['^abc$', 0],
  ['^[a-z]+$', 1],
  ['^\\d{4}-\\d{2}*?x?', 4],
  ['^[\\p{L}+*]+\\u{2a}\\+$', 1],
  ['(?:ab)*', undefined],
  ['(a+)+$', undefined],
  ['a|b', undefined],
  ['(a)\\1', undefined],
  ['(?<n>a)\\k<n>', undefined],
])('repetitions(%s) = %s', (source, count) => {
  expect(repetitions(source)).toBe(count)
})

describe('the matching thread', () => {
  // Each match is a round trip to the thread: one wrong answer in thousands is a record refused
  // for nothing (a wait that ended before the answer was written did that).
  test('gives every answer, many times over', () => {
    const schema = {type: 'object', properties: {a: {type: 'string', pattern: '^[a-z]+$'}, b: {type: 'string', pattern: '^\\d{4}-\\d{2}$'}}}
    let refused = 0
    for (let i = 0; i < 30_000; i++) {
      try {
        validateAgainstSchema({a: 'abc', b: '2020-01', n: i}, schema, [])
      } catch {
        refused++
      }
    }
    expect(refused).toBe(0)
    expect(schemaRegExp('^x', 'u').test('yx')).toBe(false)
  }, 60_000)
})

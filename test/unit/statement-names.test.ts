import {describe, expect, test} from 'vitest'

import {StatementNames} from '../../src/lib/db/statement-names.js'

describe('StatementNames: one name per statement text, bounded', () => {
  test('the same text keeps its name; another text gets another name, with its prefix', () => {
    const names = new StatementNames(4)
    const a = names.of('kinto_list_', 'SELECT 1')
    expect(a).toBe('kinto_list_0')
    expect(names.of('kinto_list_', 'SELECT 1')).toBe(a)
    expect(names.of('kinto_prefetch_page_', 'SELECT 2')).toBe('kinto_prefetch_page_1')
  })

  test('past the bound, new texts run unnamed and named texts keep their names', () => {
    const names = new StatementNames(2)
    expect(names.of('p', 'a')).toBe('p0')
    expect(names.of('p', 'b')).toBe('p1')
    expect(names.of('p', 'c')).toBeUndefined()
    expect(names.of('p', 'a')).toBe('p0')
    expect(names.of('p', 'c')).toBeUndefined()
  })
})

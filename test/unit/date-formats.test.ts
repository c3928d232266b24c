/** httpDate() and isoNow(): the Last-Modified of every answer and the time of every summary, written by hand, must be what Date writes. */
import {describe, expect, test} from 'vitest'

import {parseDateSetting} from '../../src/lib/config/dates.js'
import {httpDate} from '../../src/lib/server/headers.js'
import {isoNow} from '../../src/lib/time-text.js'

const reference = (seconds: number) => new Date(seconds * 1000).toUTCString()

describe('httpDate', () => {
  test('edges: the epoch, day and year boundaries, before 1970, beyond year 9999', () => {
    for (const s of [0, 1, 59, 60, 3599, 3600, 86_399, 86_400, 86_401, -1, -86_400, -86_401, 951_782_399, 951_782_400, 1_796_482_849, 253_402_300_799, 253_402_300_800]) {
      expect(httpDate(s), String(s)).toBe(reference(s))
    }
  })

  test('random seconds, in order and shuffled (the day kept from one call to the next)', () => {
    let seed = 42
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
    const near = Array.from({length: 2000}, () => 1_796_400_000 + Math.floor(random() * 3 * 86_400))
    const far = Array.from({length: 2000}, () => Math.floor(random() * 4_000_000_000) - 1_000_000_000)
    for (const s of [...near, ...near.slice().sort((a, b) => a - b), ...far]) expect(httpDate(s)).toBe(reference(s))
  })
})

describe('isoNow (the request summary time)', () => {
  test('is Date#toISOString for the same instant, edges and random ones', () => {
    let seed = 7
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
    const instants = [0, 1, 9, 10, 99, 100, 999, 1000, -1, -999, -1001, 1_796_482_849_372, 253_402_300_799_999, 253_402_300_800_000]
    for (let i = 0; i < 3000; i++) instants.push(1_796_400_000_000 + Math.floor(random() * 5_000_000))
    for (const ms of instants) expect(isoNow(ms), String(ms)).toBe(new Date(ms).toISOString())
  })
})

describe('parseDateSetting (the eos date)', () => {
  test('an ISO day is local midnight; a time, and a month in words, are read too', () => {
    expect(parseDateSetting(' 2030-01-31 ')?.getTime()).toBe(new Date(2030, 0, 31).getTime())
    expect(parseDateSetting('2030-01-31T12:00:00Z')?.toISOString()).toBe('2030-01-31T12:00:00.000Z')
    expect(parseDateSetting('2030-01-31 12:00')?.getTime()).toBe(new Date(2030, 0, 31, 12).getTime())
    expect(parseDateSetting('Jan 31 2030')?.getTime()).toBe(new Date(2030, 0, 31).getTime())
    expect(parseDateSetting('2028-02-29')?.getDate()).toBe(29)
  })

  test("what JavaScript's parser takes for a date but no operator writes for one is no date", () => {
    for (const value of ['0', '1', '-1', '1.5', '12', '2030', '20300131', '12/31/30', '2030-02-30', '2029-02-29', '2030-13-01', '2030-01-31x', 'yes', 'off', '']) {
      expect(parseDateSetting(value), value).toBeNull()
    }
  })
})

import {describe, expect, it} from 'vitest'

import {canPrompt, colorEnabled, isCI, richProgress} from '../../src/lib/interactive.js'

const tty = {isTTY: true}
const pipe = {isTTY: false}

describe('when we may prompt, animate and colour', () => {
  it('reads CI as set unless empty, 0 or false', () => {
    expect(isCI({CI: 'true'})).toBe(true)
    expect(isCI({CI: '1'})).toBe(true)
    expect(isCI({CI: 'False'})).toBe(false)
    expect(isCI({CI: '0'})).toBe(false)
    expect(isCI({CI: ''})).toBe(false)
    expect(isCI({})).toBe(false)
  })

  it('prompts only on two TTYs outside CI', () => {
    expect(canPrompt({}, tty, tty)).toBe(true)
    expect(canPrompt({CI: 'true'}, tty, tty)).toBe(false)
    expect(canPrompt({}, pipe, tty)).toBe(false)
    expect(canPrompt({}, tty, pipe)).toBe(false)
  })

  it('animates progress only on terminals, never in CI or on TERM=dumb', () => {
    expect(richProgress({}, [tty, tty])).toBe(true)
    expect(richProgress({CI: 'true'}, [tty, tty])).toBe(false)
    expect(richProgress({TERM: 'dumb'}, [tty, tty])).toBe(false)
    expect(richProgress({}, [tty, pipe])).toBe(false)
  })

  it('colours only a terminal, and never with NO_COLOR or TERM=dumb', () => {
    expect(colorEnabled({}, tty)).toBe(true)
    expect(colorEnabled({NO_COLOR: '1'}, tty)).toBe(false)
    expect(colorEnabled({TERM: 'dumb'}, tty)).toBe(false)
    expect(colorEnabled({}, pipe)).toBe(false)
  })
})

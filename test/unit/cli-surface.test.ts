/**
 * The CLI surface is a contract: every command's args and flags (names, types, env twins, defaults)
 * are compared to test/fixtures/cli-surface.json, and README's command table to the commands. A
 * renamed flag must be a visible, deliberate change: run `npm run surface`.
 */
import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {cliSurface, readmeFile, renderReadme, surfaceFile} from '../../scripts/cli-surface.mjs'

describe('CLI surface', () => {
  it('matches the recorded snapshot of commands, args and flags', async () => {
    const surface = await cliSurface()
    const recorded = JSON.parse(readFileSync(surfaceFile, 'utf8'))
    expect(surface).toEqual(recorded)
  })

  it('README lists every command', async () => {
    const surface = await cliSurface()
    const readme = readFileSync(readmeFile, 'utf8')
    expect(renderReadme(readme, surface)).toBe(readme)
  })

  it('every command takes --ini (env KINTO_INI) and --json, except the three that cannot', async () => {
    // `version` and `help` read no config; `start` serves until stopped and prints no result, `help` prints help.
    const surface = await cliSurface()
    for (const c of surface) {
      if (c.id === 'help') continue
      if (c.id !== 'version') expect(c.flags.ini?.env, `${c.id} --ini`).toBe('KINTO_INI')
      if (c.id !== 'start') expect(c.flags.json?.type, `${c.id} --json`).toBe('boolean')
    }
  })
})

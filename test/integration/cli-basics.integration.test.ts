import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

describe('kinto CLI basics', () => {
  it('prints the version with `version` and `--version`', async () => {
    const pkg = (await import('../../package.json', {with: {type: 'json'}})).default as {version: string}
    const a = await runCli(['version'])
    expect(a.code).toBe(0)
    expect(a.stdout.trim()).toBe(pkg.version)
    const b = await runCli(['--version'])
    expect(b.code).toBe(0)
    expect(b.stdout).toContain(`kinto-ops/${pkg.version}`)
  })

  it('refuses an unknown command with exit 2 and a hint, no stack trace', async () => {
    const r = await runCli(['versio'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown command "versio"')
    expect(r.stderr).toContain('kinto version')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('refuses an unknown flag with exit 2 and a hint', async () => {
    const r = await runCli(['version', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Nonexistent flag: --bogus')
    expect(r.stderr).toContain('kinto version --help')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

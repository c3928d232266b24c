import {spawn} from 'node:child_process'
import {closeSync, existsSync, openSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {cliBin, runCli} from '../helpers/cli.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('cli-basics')

/** Runs kinto with its stdout on a full disk (/dev/full): every write fails with ENOSPC. */
function runToFullDisk(args: string[]): Promise<{code: number | null; stderr: string}> {
  const full = openSync('/dev/full', 'w')
  const child = spawn(process.execPath, [cliBin, ...args], {env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', full, 'pipe']})
  closeSync(full)
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stderr})))
}

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

  it.skipIf(!existsSync('/dev/full'))(`an output that cannot be written (a full disk) is one line on stderr and exit 1, no stack trace${existsSync('/dev/full') ? '' : ' (SKIPPED: no /dev/full here)'}`, async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.userid_hmac_secret = abc\n')
    for (const args of [['version'], ['status', '--ini', ini, '--json'], ['deploy', 'nginx', '--ini', ini, '--server-name', 'kinto.example.com'], ['migrate', '--ini', path.join(dir, 'none.ini'), '--json']]) {
      const r = await runToFullDisk(args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1)
      expect(r.stderr, args.join(' ')).toContain('Error: the output could not be written (no space left on the device).')
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /)
    }
  })
})

/**
 * The in-process CLI helper leaves the test's process as it found it, and gives a command its stdin.
 * That it answers what the subprocess answers: integration/cli-in-process.integration.test.ts.
 */
import {writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {runCliInProcess} from '../helpers/cli-in-process.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('cli-in-process')

describe('runCliInProcess', () => {
  it('puts the process back after a run, failed or not', async () => {
    const before = {argv: process.argv, exitCode: process.exitCode, cwd: process.cwd(), env: {...process.env}, write: process.stdout.write, console: globalThis.console, stdin: process.stdin}
    const options = {cwd: os.tmpdir(), env: {KINTO_IN_PROCESS_PROBE: 'set'}}
    const failed = await runCliInProcess(['migrat', '--json'], options)
    expect(failed.code).toBe(2)
    expect(JSON.parse(failed.stdout).error.code).toBe('KINTO_USAGE')
    const shown = await runCliInProcess(['help', 'deploy', 'nginx'], options)
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('EXIT CODES')
    expect(process.argv).toBe(before.argv)
    expect(process.exitCode).toBe(before.exitCode)
    expect(process.cwd()).toBe(before.cwd)
    expect(process.env).toEqual(before.env)
    expect(process.stdout.write).toBe(before.write)
    expect(globalThis.console).toBe(before.console)
    expect(process.stdin).toBe(before.stdin)
  })

  it('gives the command its input on stdin, then closes it', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    const lines = ['[app:main]', 'kinto.includes = kinto.plugins.accounts']
    for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:data`)
    writeFileSync(ini, `${lines.join('\n')}\n`)
    const args = ['create-user', '-u', 'bob', '--password-stdin', '--ini', ini, '--json']
    const none = await runCliInProcess(args)
    expect(none.code).toBe(2)
    expect(JSON.parse(none.stdout).error.code).toBe('KINTO_PASSWORD_EMPTY')
    // the password read, the command goes on to the database (no schema there)
    const given = await runCliInProcess(args, {input: 'a-password\n'})
    expect(given.code).toBe(1)
    expect(JSON.parse(given.stdout).error.code).toBe('KINTO_SCHEMA_MISSING')
  })
})

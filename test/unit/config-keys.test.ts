/** Typos in [app:main]: the nearest known key is named; a key holding a space is an error for `kinto check`, a warning at start. */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {runCliInProcess as runCli} from '../helpers/cli-in-process.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('config-keys')

function ini(text: string): string {
  const file = path.join(tmp(), 'kinto.ini')
  writeFileSync(file, text)
  return file
}

describe('keys Kinto would not read as meant', () => {
  it('an unknown key close to a known one names it; a key with a space says the = is missing', () => {
    const file = ini('[app:main]\nkinto.batch_max_request = 10\nkinto.bucket_create_principals account:admin\nkinto.some_plugin_setting = 1\n')
    const config = loadConfig(file, {env: {}})
    expect(config.keyProblems).toEqual([
      {error: false, message: `${file}, line 2, key 'kinto.batch_max_request': Kinto knows no such setting, so it ignores this one; did you mean 'kinto.batch_max_requests'?`},
      {
        error: true,
        message: `${file}, line 3, key 'kinto.bucket_create_principals account': the key holds a space, so Kinto reads it as a key named 'kinto.bucket_create_principals account' and leaves 'kinto.bucket_create_principals' at its default; is the '=' after 'kinto.bucket_create_principals' missing?`,
      },
    ])
    expect(config.warnings).toEqual(config.keyProblems.map((p) => p.message))
  })

  it('kinto check: the space is an error (exit 1), the typo a warning', async () => {
    const file = ini('[app:main]\nkinto.batch_max_request = 10\nkinto.bucket_create_principals account:admin\n')
    const r = await runCli(['check', '--ini', file, '--no-db', '--json'])
    expect(r.code).toBe(1)
    const findings = (JSON.parse(r.stdout) as {findings: Array<{id: string; level: string; message: string}>}).findings.filter((f) => f.id === 'config-warning')
    expect(findings.map((f) => f.level)).toEqual(['warning', 'error'])
    expect(findings[0].message).toContain("did you mean 'kinto.batch_max_requests'")
  }, 60_000)
})

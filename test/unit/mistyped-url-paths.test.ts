/**
 * A database URL given where a file is expected (`--ini postgresql://user:password@…`, a URL as the
 * backup to restore, KINTO_INI set to the storage URL) is a path that does not exist: the message
 * saying so shows it with the password masked, as any mistyped URL.
 */
import {describe, expect, it} from 'vitest'

import {decodeBackup} from '../../src/lib/backup/format.js'
import {checkIni} from '../../src/lib/check/index.js'
import {readIniFile} from '../../src/lib/config/ini.js'
import {kintoErrorOf} from '../helpers/errors.js'

const PASSWORD = 'Pth-3kW8-qV5z'
const URL = `postgresql://kinto:${PASSWORD}@db.internal/kinto`

describe('a URL given as a file path', () => {
  it('as the ini: Config file … does not exist, password masked (message and hint)', () => {
    const err = kintoErrorOf(() => readIniFile(URL))
    expect(err.code).toBe('KINTO_CONFIG_MISSING')
    expect(err.message).toMatch(/^Config file .*postgresql:\/kinto:\*\*\*@db\.internal\/kinto does not exist\.$/)
    expect(`${err.message} ${err.hint}`).not.toContain(PASSWORD)
  })

  it('as the ini of kinto check: the report names it masked', async () => {
    const report = await checkIni(URL, {db: false})
    expect(report.target).toEqual({kind: 'ini', path: expect.stringMatching(/kinto:\*\*\*@db\.internal\/kinto$/)})
    expect(JSON.stringify(report)).not.toContain(PASSWORD)
  })

  it('as the backup to read: … does not exist, password masked', async () => {
    const err = await decodeBackup(`kinto:${PASSWORD}@db.internal/kinto`).then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err?.message).toBe('kinto:***@db.internal/kinto does not exist.')
  })
})

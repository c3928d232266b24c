import {chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {editIniText, setIniValue, setIniValues} from '../../src/lib/config/edit.js'
import {readIniFile} from '../../src/lib/config/ini.js'
import {KintoError} from '../../src/lib/errors.js'
import {repoRoot} from '../helpers/cli.js'

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'ini')

function copyFixture(name: string, mode = 0o640): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-edit-'))
  const file = path.join(dir, name)
  copyFileSync(path.join(fixtures, name), file)
  chmodSync(file, mode)
  return file
}

/** `after` must be `before` with lines [start, start+deleteCount) (0-based) replaced by `added`, nothing else. */
function expectSplice(before: string, after: string, start: number, deleteCount: number, added: string[]): void {
  const expected = before.split('\n')
  expected.splice(start, deleteCount, ...added)
  expect(after).toBe(expected.join('\n'))
}

describe('lossless ini edits', () => {
  it('changes one key and keeps every other byte and the file mode', () => {
    const file = copyFixture('kinto-tpl-rendered.ini', 0o640)
    const before = readFileSync(file, 'utf8')
    const r = setIniValue(file, 'app:main', 'kinto.storage_url', 'postgresql://kinto:pw@db/kinto')
    expect(r).toEqual({
      section: 'app:main',
      key: 'kinto.storage_url',
      previous: 'postgresql://postgres:postgres@localhost/postgres',
      value: 'postgresql://kinto:pw@db/kinto',
      changed: true,
      line: 31,
    })
    const after = readFileSync(file, 'utf8')
    expectSplice(before, after, 30, 1, ['kinto.storage_url = postgresql://kinto:pw@db/kinto'])
    expect(statSync(file).mode & 0o777).toBe(0o640)
    // No temporary file left behind.
    expect(readdirSync(path.dirname(file))).toEqual(['kinto-tpl-rendered.ini'])
  })

  it.runIf(process.getuid?.() === 0)(`keeps the owner and group of the file it replaces (root editing a server user's ini)${process.getuid?.() === 0 ? '' : ' (SKIPPED: needs root to give the file another owner)'}`, () => {
    const file = copyFixture('kinto-tpl-rendered.ini', 0o600)
    chownSync(file, 65534, 65534)
    setIniValue(file, 'app:main', 'kinto.readonly', 'true')
    const st = statSync(file)
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o600])
  })

  it('puts the file back as it was when the written file fails its check', () => {
    const file = copyFixture('kinto-tpl-rendered.ini', 0o640)
    const before = readFileSync(file, 'utf8')
    let seen = ''
    expect(() =>
      setIniValues(file, [{section: 'app:main', key: 'kinto.backoff', value: '1e17'}], (written) => {
        seen = readFileSync(written, 'utf8')
        throw new Error('does not load')
      }),
    ).toThrow('does not load')
    expect(seen).toContain('kinto.backoff = 1e17')
    expect(readFileSync(file, 'utf8')).toBe(before)
    expect(statSync(file).mode & 0o777).toBe(0o640)
    expect(readdirSync(path.dirname(file))).toEqual(['kinto-tpl-rendered.ini'])
  })

  it('matches `readonly` when asked for `kinto.readonly` (and keeps the form written)', () => {
    const text = '[app:main]\nuse = egg:kinto\nreadonly=false\n# end\n'
    const {text: out, results} = editIniText(text, [{section: 'app:main', key: 'kinto.readonly', value: 'true'}])
    expect(out).toBe('[app:main]\nuse = egg:kinto\nreadonly=true\n# end\n')
    expect(results[0]).toMatchObject({key: 'readonly', previous: 'false', value: 'true', changed: true, line: 3})
  })

  it('adds a new key at the end of its section, before the comments and sections that follow', () => {
    const file = copyFixture('kinto-tpl-rendered.ini')
    const before = readFileSync(file, 'utf8')
    const r = setIniValue(file, 'app:main', 'kinto.readonly', 'true')
    expect(r).toMatchObject({previous: null, value: 'true', changed: true, line: 59})
    // After the last entry (kinto.bucket_create_principals, line 58), before "# Listeners…".
    expectSplice(before, readFileSync(file, 'utf8'), 58, 0, ['kinto.readonly = true'])
  })

  it('removes a key (a continued one too) and nothing else', () => {
    const file = copyFixture('kinto-tpl-rendered.ini')
    const before = readFileSync(file, 'utf8')
    const r = setIniValue(file, 'app:main', 'kinto.includes', null)
    expect(r).toMatchObject({key: 'kinto.includes', previous: 'kinto.plugins.default_bucket\nkinto.plugins.admin\nkinto.plugins.accounts', value: null, changed: true, line: null})
    expectSplice(before, readFileSync(file, 'utf8'), 22, 3, [])
    expect(readIniFile(file).ownEntry('app:main', 'kinto.includes')).toBeUndefined()
    // Removing what is not there changes nothing and does not write.
    const mtime = statSync(file).mtimeMs
    expect(setIniValue(file, 'app:main', 'kinto.includes', null)).toMatchObject({previous: null, changed: false})
    expect(statSync(file).mtimeMs).toBe(mtime)
  })

  it('writes multi-line values as continuation lines, aligned like the original', () => {
    const file = copyFixture('kinto-tpl-rendered.ini')
    const before = readFileSync(file, 'utf8')
    setIniValue(file, 'app:main', 'kinto.includes', 'kinto.plugins.default_bucket\nkinto.plugins.history')
    expectSplice(before, readFileSync(file, 'utf8'), 22, 3, [
      'kinto.includes = kinto.plugins.default_bucket',
      '                 kinto.plugins.history',
    ])
    expect(readIniFile(file).get('app:main', 'kinto.includes')).toBe('kinto.plugins.default_bucket\nkinto.plugins.history')
  })

  it('keeps CRLF line endings, for changed and added lines too', () => {
    const file = copyFixture('crlf.ini')
    const before = readFileSync(file, 'utf8')
    setIniValues(file, [
      {section: 'app:main', key: 'kinto.readonly', value: 'true'},
      {section: 'app:main', key: 'kinto.backoff', value: '60'},
      {section: 'server:main', key: 'host', value: '0.0.0.0'},
    ])
    const after = readFileSync(file, 'utf8')
    expect(after).toBe(
      before
        .replace('kinto.readonly = false\r\n', 'kinto.readonly = true\r\nkinto.backoff = 60\r\n')
        .replace('port = %(http_port)s\r\n', 'port = %(http_port)s\r\nhost = 0.0.0.0\r\n'),
    )
    expect(after.replace(/\r\n/g, '')).not.toContain('\n')
  })

  it('keeps a missing trailing newline missing (change, add, remove, new section)', () => {
    const file = copyFixture('no-trailing-newline.ini')
    const before = readFileSync(file, 'utf8')
    expect(before.endsWith('\n')).toBe(false)
    setIniValue(file, 'app:main', 'kinto.readonly', 'true')
    expect(readFileSync(file, 'utf8')).toBe(before.replace('kinto.readonly = false', 'kinto.readonly = true'))
    setIniValue(file, 'app:main', 'kinto.paginate_by', '50')
    expect(readFileSync(file, 'utf8')).toBe(before.replace('kinto.readonly = false', 'kinto.readonly = true\nkinto.paginate_by = 50'))
    setIniValue(file, 'app:main', 'kinto.paginate_by', null)
    expect(readFileSync(file, 'utf8')).toBe(before.replace('kinto.readonly = false', 'kinto.readonly = true'))
    setIniValue(file, 'server:main', 'port', '9000')
    expect(readFileSync(file, 'utf8')).toBe(before.replace('kinto.readonly = false', 'kinto.readonly = true') + '\n\n[server:main]\nport = 9000')
  })

  it('round-trips: set then restore gives the original bytes', () => {
    for (const name of ['kinto-tpl-rendered.ini', 'production.ini', 'continuation.ini', 'crlf.ini', 'no-trailing-newline.ini']) {
      const original = readFileSync(path.join(fixtures, name), 'utf8')
      const {text: changed, results} = editIniText(original, [{section: 'app:main', key: 'kinto.storage_backend', value: 'kinto.core.storage.memory'}])
      const previous = results[0].previous
      const {text: restored} = editIniText(changed, [{section: 'app:main', key: 'kinto.storage_backend', value: previous}])
      expect(restored, name).toBe(original)
    }
  })

  it('keeps a key spelled with `:` and its spacing', () => {
    const {text} = editIniText('[app:main]\nkinto.cache_backend:   kinto.core.cache.memory\n', [
      {section: 'app:main', key: 'kinto.cache_backend', value: 'kinto.core.cache.postgresql'},
    ])
    expect(text).toBe('[app:main]\nkinto.cache_backend:   kinto.core.cache.postgresql\n')
    const {text: empty} = editIniText('[app:main]\nkinto.paginate_by =\n', [{section: 'app:main', key: 'kinto.paginate_by', value: '10'}])
    expect(empty).toBe('[app:main]\nkinto.paginate_by = 10\n')
  })

  it('edits the target of a symbolic link, keeping the link', () => {
    const file = copyFixture('no-trailing-newline.ini', 0o600)
    const link = path.join(path.dirname(file), 'link.ini')
    symlinkSync(file, link)
    setIniValue(link, 'app:main', 'kinto.readonly', 'true')
    expect(readFileSync(file, 'utf8')).toContain('kinto.readonly = true')
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('refuses values that would not read back the same, and never writes them', () => {
    const file = copyFixture('no-trailing-newline.ini')
    const before = readFileSync(file, 'utf8')
    const bad: Array<[string, string, string]> = [
      ['kinto.storage_url', 'postgresql://u:50%off@h/db', "a '%' must be written %% (or be a %(name)s reference)."],
      ['kinto.includes', 'a\n# b', "a continuation line cannot start with '#' or ';' (it would be read as a comment)."],
      ['bad=key', 'x', "cannot be written as an ini key; a key is one line without '=' or ':', and does not start with '[', '#' or ';'."],
    ]
    for (const [key, value, problem] of bad) {
      let error: unknown
      try {
        setIniValue(file, 'app:main', key, value)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(KintoError)
      expect((error as KintoError).message).toBe(`${file}, key '${key}': ${problem}`)
    }
    expect(readFileSync(file, 'utf8')).toBe(before)
  })

  it('a missing file is KINTO_CONFIG_MISSING', () => {
    const missing = path.join(os.tmpdir(), 'kinto-edit-missing', 'kinto.ini')
    expect(() => setIniValue(missing, 'app:main', 'kinto.readonly', 'true')).toThrow(/does not exist/)
  })

  it('creates a section that does not exist, at the end of the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-edit-'))
    const file = path.join(dir, 'k.ini')
    writeFileSync(file, '[app:main]\nuse = egg:kinto\n')
    setIniValue(file, 'server:main', 'port', '%(http_port)s')
    expect(readFileSync(file, 'utf8')).toBe('[app:main]\nuse = egg:kinto\n\n[server:main]\nport = %(http_port)s\n')
  })
})

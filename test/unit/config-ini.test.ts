import {spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseIni, readIniFile} from '../../src/lib/config/ini.js'
import {KintoError} from '../../src/lib/errors.js'
import {repoRoot} from '../helpers/cli.js'
import {kintoErrorOf} from '../helpers/errors.js'
import {tempFiles} from '../helpers/tmp.js'

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'ini')
const fixture = (name: string) => path.join(fixtures, name)
const FIXTURES = ['kinto-tpl-rendered.ini', 'production.ini', 'continuation.ini', 'interpolation.ini', 'crlf.ini', 'no-trailing-newline.ini']

const tmpFile = tempFiles('ini')
const errorOf = kintoErrorOf

describe('ini reader: configparser rules as PasteDeploy sets them up', () => {
  it('reads the layout of upstream kinto init output: continuation with an inner comment, logging sections', () => {
    const doc = readIniFile(fixture('kinto-tpl-rendered.ini'))
    expect(doc.sectionNames()).toEqual([
      'server:main',
      'app:main',
      'loggers',
      'handlers',
      'formatters',
      'logger_root',
      'logger_kinto',
      'handler_console',
      'formatter_color',
      'formatter_json',
    ])
    expect(doc.get('app:main', 'kinto.includes')).toBe('kinto.plugins.default_bucket\nkinto.plugins.admin\nkinto.plugins.accounts')
    expect(doc.get('server:main', 'port', {vars: {http_port: '8888'}})).toBe('8888')
    expect(doc.get('handler_console', 'args')).toBe('(sys.stderr,)')
    const includes = doc.ownEntry('app:main', 'kinto.includes')!
    expect([includes.line, includes.endLine]).toEqual([23, 25])
  })

  it('follows the continuation and comment rules (indent, blank lines kept inside a value, no inline comments)', () => {
    const doc = readIniFile(fixture('continuation.ini'))
    expect(doc.get('app:main', 'multiauth.policies')).toBe('\naccount\nbasicauth')
    expect(doc.get('app:main', 'kinto.includes')).toBe('kinto.plugins.default_bucket\nkinto.plugins.admin\n\nkinto.plugins.accounts')
    expect(doc.get('app:main', 'use')).toBe('egg:kinto')
    expect(doc.get('app:main', 'kinto.cache_backend')).toBe('kinto.core.cache.memory')
    expect(doc.get('app:main', 'kinto.readonly')).toBe('true')
    expect(doc.get('app:main', 'kinto.cors_origins')).toBe('* ; not a comment: configparser has no inline comments')
    // An indented line under a setting continues it, even if it looks like a setting itself.
    expect(doc.get('app:main', 'kinto.bucket_create_principals')).toBe('system.Authenticated # kept too\nkinto.batch_max_requests = 10')
    expect(doc.ownEntry('app:main', 'kinto.batch_max_requests')).toBeUndefined()
  })

  it('interpolates %(name)s from the section, then [DEFAULT], with %(here)s and %%', () => {
    const file = fixture('interpolation.ini')
    const doc = readIniFile(file)
    // The section's own dbname wins over [DEFAULT]'s, also inside a value taken from [DEFAULT].
    expect(doc.get('app:main', 'kinto.storage_url')).toBe('postgresql://kinto:secret@db.internal/kinto_prod')
    expect(doc.get('app:main', 'kinto.permission_url')).toBe('postgresql://kinto:secret@db.internal/kinto_prod')
    expect(doc.get('app:main', 'kinto.cache_url')).toBe(`pglite:${fixtures}/data`)
    expect(doc.get('app:main', 'kinto.project_name')).toBe('100% kinto')
    expect(doc.get('app:main', 'kinto.version_json_path')).toBe(`${fixtures}/version.json`)
    // [DEFAULT] values are visible in every section.
    expect(doc.get('server:main', 'dbhost')).toBe('db.internal')
    expect(doc.get('app:main', 'kinto.storage_url', {raw: true})).toBe('%(dsn)s')
    expect(doc.get('server:main', '__file__')).toBe(file)
  })

  it('keeps key case (PasteDeploy sets optionxform = str) and reads CRLF files', () => {
    const doc = parseIni('[app:main]\nKinto.Readonly = true\nkinto.readonly = false\n')
    expect(doc.get('app:main', 'Kinto.Readonly')).toBe('true')
    expect(doc.get('app:main', 'kinto.readonly')).toBe('false')
    const crlf = readIniFile(fixture('crlf.ini'))
    expect(crlf.get('app:main', 'kinto.includes')).toBe('kinto.plugins.default_bucket\nkinto.plugins.admin')
    expect(crlf.get('app:main', 'kinto.readonly')).toBe('false')
  })

  it('gives the text back byte for byte', () => {
    for (const name of FIXTURES) {
      const text = readFileSync(fixture(name), 'utf8')
      expect(parseIni(text).toString()).toBe(text)
    }
    const bom = '\uFEFF[app:main]\r\na = 1'
    expect(parseIni(bom).toString()).toBe(bom)
    expect(parseIni(bom).get('app:main', 'a')).toBe('1')
  })

  it('reads logging sections raw, so %(asctime)s of a formatter is not an error', () => {
    const doc = readIniFile(fixture('production.ini'))
    expect(doc.get('formatter_generic', 'format', {raw: true})).toBe('%(asctime)s,%(msecs)03d %(levelname)-5.5s [%(name)s] %(message)s')
    expect(doc.get('app:main', 'fxa-oauth.cache_ttl_seconds')).toBe('3600')
  })
})

describe('ini reader: one clear error per problem, with file, line and key', () => {
  it('a missing file says so and how to create one', () => {
    const missing = path.join(os.tmpdir(), 'no-such-folder-kinto', 'kinto.ini')
    const err = errorOf(() => readIniFile(missing))
    expect(err.code).toBe('KINTO_CONFIG_MISSING')
    expect(err.message).toBe(`Config file ${missing} does not exist.`)
    expect(err.hint).toContain(`kinto init --ini ${missing}`)
  })

  it('the command in the hint runs as printed: a path with a space or a quote is quoted for the shell', () => {
    const missing = path.join(os.tmpdir(), "no such folder kinto", "bob's kinto.ini")
    const err = errorOf(() => readIniFile(missing))
    expect(err.hint).toBe(`Run \`kinto init --ini '${missing.replaceAll("'", "'\\''")}'\` to create one, or point --ini (or KINTO_INI) at an existing file.`)
  })

  it('an ini in a folder whose path holds a \'%\': said as such (it blamed key \'here\', which no edit can fix)', () => {
    const file = '/srv/100%/kinto.ini'
    const err = errorOf(() => parseIni('[app:main]\nkinto.storage_url = pglite:%(here)s/data\n', {path: file}).items('app:main'))
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toBe(
      "/srv/100%/kinto.ini: its folder /srv/100% holds a '%', which the ini reader (configparser, as Kinto reads it) takes for the start of a reference when it expands %(here)s; move the ini to a folder whose path has no '%'.",
    )
  })

  it('a folder given as the ini', () => {
    const err = errorOf(() => readIniFile(os.tmpdir()))
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toBe(`${os.tmpdir()}: this is a folder; --ini takes the path of an ini file.`)
  })

  it('a device given as the ini is refused, not read forever (/dev/zero never ends)', () => {
    const err = errorOf(() => readIniFile('/dev/zero'))
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toBe('/dev/zero: this is a device, not a file; --ini takes the path of an ini file.')
  })

  const cases: Array<[string, string, string]> = [
    [
      'duplicate section',
      '[app:main]\na = 1\n\n[app:main]\nb = 2\n',
      'line 4: section [app:main] appears a second time (first at line 1); a section may appear only once, merge the two.',
    ],
    [
      'duplicate key',
      '[app:main]\nkinto.storage_url = a\n# x\nkinto.storage_url = b\n',
      "line 4, key 'kinto.storage_url': set a second time in [app:main] (first at line 2); a key may appear only once per section.",
    ],
    [
      'a line that is not key/value',
      '[app:main]\nuse = egg:kinto\nkinto.readonly true\n',
      `line 3: "kinto.readonly true" is not a setting; expected 'key = value' or 'key: value', a [section] header, a line indented under a setting to continue its value, or a comment line starting with # or ;.`,
    ],
    [
      'an empty key',
      '[app:main]\n= value\n',
      `line 2: "= value" is not a setting; expected 'key = value' or 'key: value', a [section] header, a line indented under a setting to continue its value, or a comment line starting with # or ;.`,
    ],
    [
      'a setting before any section',
      '# comment\nkinto.readonly = true\n[app:main]\n',
      'line 2: "kinto.readonly = true" comes before any [section] header; a Kinto ini starts with a section such as [server:main] or [app:main].',
    ],
  ]
  for (const [what, text, message] of cases) {
    it(what, () => {
      const file = tmpFile('bad.ini', text)
      const err = errorOf(() => readIniFile(file))
      expect(err.code).toBe('KINTO_CONFIG_INVALID')
      expect(err.message).toBe(`${file}, ${message}`)
    })
  }

  it('bad interpolation: unknown name, lone %, malformed reference, a loop', () => {
    const file = tmpFile(
      'interp.ini',
      '[DEFAULT]\nloop = %(loop)s\n[app:main]\na = %(nope)s\nb = 50% off\nc = %(unclosed\nd = %(loop)s\n',
    )
    const doc = readIniFile(file)
    expect(errorOf(() => doc.get('app:main', 'a')).message).toBe(
      `${file}, line 4, key 'a': %(nope)s refers to 'nope', which is not set in [app:main] or [DEFAULT]; define it there, or write %% for a literal '%'.`,
    )
    expect(errorOf(() => doc.get('app:main', 'b')).message).toBe(
      `${file}, line 5, key 'b': a '%' must be followed by '%' or '(name)s', found "% off"; write %% for a literal '%'.`,
    )
    expect(errorOf(() => doc.get('app:main', 'c')).message).toBe(
      `${file}, line 6, key 'c': bad reference "%(unclosed": a '%' starts a reference written %(name)s; write %% for a literal '%'.`,
    )
    expect(errorOf(() => doc.get('app:main', 'd')).message).toBe(
      `${file}, line 7, key 'd': %(name)s references are nested more than 10 levels deep (a reference loop?).`,
    )
  })

  it('a bad line or a bad % shows no secret: the line and key are named, the secret part is not quoted', () => {
    const cases: Array<[string, string]> = [
      // the '=' forgotten after a secret's name
      ['[app:main]\nkinto.userid_hmac_secret s3cr3t-hmac\n', `line 2: "kinto.userid_hmac_secret ***" is not a setting;`],
      // a URL with its password, before the first section
      ['kinto.storage_url = postgresql://kinto:s3cr3t-pw@db/kinto\n[app:main]\n', `line 1: "kinto.storage_url = postgresql://kinto:***@db/kinto" comes before`],
      // the value of a secret that went on the next line, not indented: it may be the secret itself
      ['[app:main]\nkinto.userid_hmac_secret =\ns3cr3t-hmac\n', `line 3: the line after kinto.userid_hmac_secret (not shown: it may hold the secret) is not a setting;`],
      ['kinto.userid_hmac_secret = s3cr3t-hmac\n[app:main]\n', `line 1: "kinto.userid_hmac_secret = ***" comes before any [section] header;`],
    ]
    for (const [text, start] of cases) {
      const file = tmpFile('secret.ini', text)
      const err = errorOf(() => readIniFile(file))
      expect(err.message).not.toContain('s3cr3t')
      expect(err.message.startsWith(`${file}, ${start}`), err.message).toBe(true)
    }
    const doc = readIniFile(
      tmpFile('interp-secret.ini', '[app:main]\nkinto.storage_url = postgresql://kinto:p%zzs3cr3t@db/kinto\nkinto.userid_hmac_secret = ab%(s3cr3t\nkinto.sentry_dsn = https://s3cr3t%key@o1.ingest.sentry.io/1\n'),
    )
    const url = errorOf(() => doc.get('app:main', 'kinto.storage_url')).message
    expect(url).toContain(`line 2, key 'kinto.storage_url': a '%' must be followed by '%' or '(name)s', found one in "postgresql://kinto:***@db/kinto" (its password is not shown)`)
    expect(errorOf(() => doc.get('app:main', 'kinto.userid_hmac_secret')).message).toContain(
      `line 3, key 'kinto.userid_hmac_secret': bad reference (the value is a secret; not shown): a '%' starts a reference`,
    )
    expect(errorOf(() => doc.get('app:main', 'kinto.sentry_dsn')).message).toContain(
      `line 4, key 'kinto.sentry_dsn': a '%' must be followed by '%' or '(name)s' (the value is a secret; not shown)`,
    )
    for (const key of ['kinto.storage_url', 'kinto.userid_hmac_secret', 'kinto.sentry_dsn']) {
      expect(errorOf(() => doc.get('app:main', key)).message).not.toContain('s3cr3t')
    }
  })

  it('non-UTF-8 bytes', () => {
    const file = tmpFile('latin1.ini', '')
    writeFileSync(file, Buffer.from([0x5b, 0x61, 0x5d, 0x0a, 0x78, 0x3d, 0xe9, 0x0a]))
    expect(errorOf(() => readIniFile(file)).message).toBe(`${file}: the file is not UTF-8 text; save it as UTF-8.`)
  })
})

// Python's configparser, set up as PasteDeploy does, is the reference: same sections, same raw
// values, same interpolated values, and it fails where we fail.
const PY_DUMP = String.raw`
import configparser, json, os, sys
out = {}
for f in sys.argv[1:]:
    p = configparser.ConfigParser(defaults={'here': os.path.dirname(os.path.abspath(f)), '__file__': os.path.abspath(f)})
    p.optionxform = str
    try:
        with open(f, encoding='utf-8') as fh:
            p.read_file(fh)
    except Exception as e:
        out[f] = {'error': type(e).__name__}
        continue
    p._defaults.setdefault('http_port', '8888')
    raw = {s: dict(p._sections[s]) for s in p.sections()}
    app = {}
    for s in ('app:main', 'server:main'):
        if p.has_section(s):
            try:
                app[s] = dict(p.items(s))
            except Exception as e:
                app[s] = {'error': type(e).__name__}
    out[f] = {'sections': p.sections(), 'defaults': {k: v for k, v in p._defaults.items() if k not in ('here', '__file__', 'http_port')}, 'raw': raw, 'expanded': app}
print(json.dumps(out))
`
const python = spawnSync('python3', ['-c', 'import configparser'], {encoding: 'utf8'}).status === 0

describe.skipIf(!python)(`ini reader agrees with Python configparser${python ? '' : ' (SKIPPED: no python3 with configparser)'}`, () => {
  it('on every fixture and on tricky inputs', () => {
    const extra: Record<string, string> = {
      'tabs-and-colons.ini': '[a]\nx:1\n\ty = 2\n[b]\nk : v : w\nurl = http://h:80/p?q=1\n',
      'blank-then-indent.ini': '[a]\nx = 1\n\n\n   more\n\ny = 2\n  \n',
      'default-twice.ini': '[DEFAULT]\na = 1\n[s]\nb = %(a)s\n[DEFAULT]\nc = 3\n',
      'header-trailing.ini': '[s] trailing text\nk = v\n[t]]\nk = w\n',
      'empty-values.ini': '[app:main]\nk =\nj:\nl = \n    \n    x\n',
      'bad-dup-default.ini': '[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n',
      'bad-no-header.ini': 'a = 1\n',
      'bad-line.ini': '[s]\njust words\n',
      'bad-interp.ini': '[app:main]\nk = 5%\n',
    }
    const files = FIXTURES.map(fixture)
    for (const [name, text] of Object.entries(extra)) files.push(tmpFile(name, text))
    const py = spawnSync('python3', ['-c', PY_DUMP, ...files], {encoding: 'utf8'})
    expect(py.status, py.stderr).toBe(0)
    const expected = JSON.parse(py.stdout) as Record<string, Record<string, unknown>>
    for (const f of files) {
      const want = expected[f]
      let doc
      try {
        doc = readIniFile(f)
      } catch (error) {
        expect(want.error, `${f}: we failed (${(error as Error).message}), Python did not`).toBeDefined()
        continue
      }
      expect(want.error, `${f}: Python failed, we did not`).toBeUndefined()
      expect(doc.sectionNames(), f).toEqual(want.sections)
      expect(Object.fromEntries(doc.defaults.entries.map((e) => [e.key, e.value])), f).toEqual(want.defaults)
      const raw = Object.fromEntries(doc.sections.map((s) => [s.name, Object.fromEntries(s.entries.map((e) => [e.key, e.value]))]))
      expect(raw, f).toEqual(want.raw)
      for (const [section, items] of Object.entries(want.expanded as Record<string, Record<string, string>>)) {
        if ('error' in items) {
          expect(() => doc.items(section, {vars: {http_port: '8888'}}), `${f} [${section}]`).toThrow(KintoError)
        } else {
          expect(doc.items(section, {vars: {http_port: '8888'}}), `${f} [${section}]`).toEqual(items)
        }
      }
    }
  })
})

/** Snippet rendering: the template engine, value checks, options from the ini, output and drift. */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {
  DeployValueError,
  apacheOptionsFrom,
  deliver,
  nginxOptionsFrom,
  renderApache,
  renderAppWsgi,
  renderNginx,
  renderUwsgi,
  unifiedDiff,
  uwsgiOptionsFrom,
} from '../../src/lib/deploy/index.js'
import type {ApacheFlags, DeployConfig, NginxFlags, UwsgiFlags} from '../../src/lib/deploy/options.js'
import {renderTemplate} from '../../src/lib/deploy/template.js'
import {parseUpstream} from '../../src/lib/deploy/upstream.js'
import {ExitCode, KintoError} from '../../src/lib/errors.js'
import {kintoErrorOf} from '../helpers/errors.js'

function config(overrides: Partial<DeployConfig> = {}): DeployConfig {
  return {
    path: '/srv/kinto/config/kinto.ini',
    dir: '/srv/kinto/config',
    settings: {http_host: 'kinto.example.com'},
    server: {host: '127.0.0.1', port: 8888},
    ...overrides,
  }
}

const thrown = kintoErrorOf

describe('template engine', () => {
  it('substitutes, repeats, inverts and drops standalone tag lines', () => {
    const source = 'a {{x}}\n{{#list}}\n- {{.}}\n{{/list}}\n{{^none}}\nempty\n{{/none}}\n{{! note }}\n{{#flag}}\n{{x}} again\n{{/flag}}\nend\n'
    expect(renderTemplate(source, {x: 'X', list: ['1', '2'], none: [], flag: true})).toBe('a X\n- 1\n- 2\nempty\nX again\nend\n')
    expect(renderTemplate(source, {x: 3, list: [], none: ['y'], flag: false})).toBe('a 3\nend\n')
  })

  it('throws on a missing value or an unbalanced section (template bugs)', () => {
    expect(() => renderTemplate('{{nope}}', {})).toThrow(/no value for {{nope}}/)
    expect(() => renderTemplate('{{#a}}x', {a: true})).toThrow(/never closed/)
    expect(() => renderTemplate('{{#a}}x{{/b}}', {a: true})).toThrow(/closes/)
  })
})

describe('values that would break a file are refused with a clear error', () => {
  const cases: [string, string][] = [
    ['kinto.example.com;', "';'"],
    ['kinto.example.com}', 'a brace'],
    ['kinto{', 'a brace'],
    ['kinto.example.com\nlisten 81', 'a line break'],
    ['kinto example', 'white space'],
    ['kin"to', 'a quote'],
    ['$host', "'$'"],
    ['kinto#x', "'#'"],
  ]
  it.each(cases)('server name %j (%s)', (name, problem) => {
    const error = thrown(() => renderNginx(nginxOptionsFrom(config(), {'server-name': [name]})))
    expect(error.code).toBe('KINTO_DEPLOY_INVALID_VALUE')
    expect(error.exit).toBe(ExitCode.USAGE)
    expect(error.message).toContain('(from --server-name)')
    expect(error.message).toContain(problem)
    expect(error.message).not.toContain('\n')
    expect(error.hint).toMatch(/host name/)
  })

  it('names the ini key when the bad value comes from the ini, and exits 1', () => {
    const error = thrown(() => renderNginx(nginxOptionsFrom(config({settings: {http_host: 'evil.com; include /etc/passwd'}}), {})))
    expect(error).toBeInstanceOf(DeployValueError)
    expect(error.message).toContain('kinto.http_host in /srv/kinto/config/kinto.ini')
    expect(error.exit).toBe(ExitCode.FAILED)
  })

  it.each<[NginxFlags, RegExp]>([
    [{allow: ['127.0.0.1; allow all']}, /allowed address/],
    [{allow: ['10.0.0.0/33']}, /prefix is out of range/],
    [{allow: ['example.com']}, /not an IP address/],
    [{upstream: 'http://127.0.0.1:99999'}, /port number/],
    [{upstream: 'unix:relative.sock'}, /absolute path/],
    [{upstream: 'unix:/run/a b.sock'}, /white space/],
    [{upstream: 'ftp://x:1'}, /upstream/],
    [{listen: '80 default_server'}, /listen address/],
    [{'max-body-size': '10 m'}, /body size/],
    [{'max-body-size': '3g'}, /between/],
    [{cache: true, 'cache-path': '/var/cache/{x}'}, /cache path/],
  ])('nginx flags %j', (flags, message) => {
    const error = thrown(() => renderNginx(nginxOptionsFrom(config(), flags)))
    expect(error.message).toMatch(message)
    expect(error.exit).toBe(ExitCode.USAGE)
  })

  it.each<[UwsgiFlags, RegExp]>([
    [{uid: 'kinto;rm'}, /uid/],
    [{gid: 'a b'}, /gid/],
    [{socket: 'http://127.0.0.1:3031'}, /its own protocol/],
    [{socket: 'unix:/run/k.sock', 'socket-mode': '999'}, /octal/],
    [{'wsgi-file': 'app.wsgi'}, /absolute path/],
    [{virtualenv: '/srv/%d/venv'}, /'%'/],
    [{processes: 0}, /number of processes/],
    [{plugin: 'python3\nmaster = false'}, /plugin/],
  ])('uwsgi flags %j', (flags, message) => {
    expect(thrown(() => renderUwsgi(uwsgiOptionsFrom(config(), flags))).message).toMatch(message)
  })

  it.each<[ApacheFlags, RegExp]>([
    [{'server-name': ['*.example.com']}, /ServerName/],
    [{'server-name': ['_']}, /ServerName/],
    [{upstream: 'uwsgi://127.0.0.1:3031'}, /talks HTTP/],
    [{mode: 'wsgi', 'python-path': '/srv/kinto lib'}, /python path/],
  ])('apache flags %j', (flags, message) => {
    expect(thrown(() => renderApache(apacheOptionsFrom(config(), flags))).message).toMatch(message)
  })

  it('refuses flags of the other Apache mode', () => {
    const error = thrown(() => apacheOptionsFrom(config(), {mode: 'proxy', virtualenv: '/srv/venv'}))
    expect(error.exit).toBe(ExitCode.USAGE)
    expect(error.message).toBe('--virtualenv does not apply to --mode proxy.')
    expect(thrown(() => apacheOptionsFrom(config(), {mode: 'wsgi', upstream: 'http://127.0.0.1:1'})).message).toMatch(/--upstream does not apply/)
  })
})

describe('upstream spellings', () => {
  it.each([
    ['http://127.0.0.1:8888', {protocol: 'http', kind: 'tcp', host: '127.0.0.1', port: 8888}],
    ['127.0.0.1:8888/', {protocol: 'http', kind: 'tcp', host: '127.0.0.1', port: 8888}],
    ['http://[::1]:8888', {protocol: 'http', kind: 'tcp', host: '::1', port: 8888}],
    ['kinto.internal:80', {protocol: 'http', kind: 'tcp', host: 'kinto.internal', port: 80}],
    ['unix:/run/kinto/kinto.sock', {protocol: 'http', kind: 'unix', path: '/run/kinto/kinto.sock'}],
    ['uwsgi://127.0.0.1:3031', {protocol: 'uwsgi', kind: 'tcp', host: '127.0.0.1', port: 3031}],
    ['uwsgi+unix:/run/uwsgi/kinto.sock', {protocol: 'uwsgi', kind: 'unix', path: '/run/uwsgi/kinto.sock'}],
  ])('%s', (spec, expected) => {
    expect(parseUpstream(spec)).toEqual(expected)
  })
})

describe('nginx server block', () => {
  it('takes the public host and the runtime address from the ini', () => {
    const text = renderNginx(nginxOptionsFrom(config({settings: {http_host: 'kinto.example.com:8443'}, server: {host: '0.0.0.0', port: 9999}}), {}))
    expect(text).toContain('server_name kinto.example.com;')
    expect(text).toContain('server 127.0.0.1:9999;')
    expect(text).toContain('proxy_pass http://kinto_backend;')
    expect(text).toContain('client_max_body_size 75m;')
    expect(text).toMatch(/location ~ \^\/v\[0-9\]\+\/__ \{\n        allow 127\.0\.0\.1;\n        allow ::1;\n        deny all;/)
    expect(text).not.toContain('proxy_cache')
    expect(text).not.toContain('uwsgi')
  })

  it('uses the unix socket of the ini', () => {
    const text = renderNginx(nginxOptionsFrom(config({server: {host: '127.0.0.1', port: 8888, unixSocket: 'run/kinto.sock'}}), {}))
    expect(text).toContain('server unix:/srv/kinto/config/run/kinto.sock;')
  })

  it('talks uwsgi with --uwsgi or a uwsgi upstream', () => {
    const text = renderNginx(nginxOptionsFrom(config(), {uwsgi: true}))
    expect(text).toContain('uwsgi_pass kinto_backend;')
    expect(text).toContain('include uwsgi_params;')
    expect(text).not.toContain('proxy_')
    expect(text).not.toContain('keepalive')
  })

  it('--cache adds the zone and a key with scheme, method, host and the whole URI; authenticated requests bypass it', () => {
    const text = renderNginx(nginxOptionsFrom(config(), {cache: true}))
    expect(text).toMatch(/^proxy_cache_path \/var\/cache\/nginx\/kinto .*keys_zone=kinto_cache:/m)
    expect(text).toContain('proxy_cache_key "$scheme$request_method$host$request_uri";')
    expect(text).toContain('proxy_cache_bypass $http_authorization;')
    expect(text).toContain('proxy_no_cache $http_authorization;')
    expect(text).not.toContain('proxy_ignore_headers')
    expect(text).not.toContain('proxy_cache_valid')
    expect(text).toMatch(/location \/ \{\n        proxy_cache kinto_cache;/)
  })

  it('is deterministic and free of the generation time or machine', () => {
    const a = renderNginx(nginxOptionsFrom(config(), {cache: true, allow: ['10.0.0.0/8', '10.0.0.0/8']}))
    const b = renderNginx(nginxOptionsFrom(config(), {cache: true, allow: ['10.0.0.0/8']}))
    expect(a).toBe(b)
    expect(a).not.toMatch(/\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d/)
    expect(a).not.toContain(os.hostname())
  })
})

describe('uwsgi section and app.wsgi', () => {
  it('has the production settings, the ini path and the socket from the ini', () => {
    const text = renderUwsgi(uwsgiOptionsFrom(config({server: {host: '0.0.0.0', port: 8888}}), {virtualenv: '/srv/kinto/.venv'}))
    for (const line of [
      '[uwsgi]',
      'plugin = python3',
      'wsgi-file = /srv/kinto/config/app.wsgi',
      'virtualenv = /srv/kinto/.venv',
      'env = KINTO_INI=/srv/kinto/config/kinto.ini',
      'socket = 127.0.0.1:8888',
      'uid = kinto',
      'gid = kinto',
      'processes = 3',
      'master = true',
      'harakiri = 120',
      'lazy-apps = true',
      'buffer-size = 65535',
      'post-buffering = 65535',
    ]) {
      expect(text.split('\n')).toContain(line)
    }
    expect(text).not.toContain('chmod-socket')
  })

  it('sets the socket mode for a unix socket', () => {
    const text = renderUwsgi(uwsgiOptionsFrom(config({server: {host: '127.0.0.1', port: 1, unixSocket: '/run/k.sock', unixSocketMode: '0660'}}), {}))
    expect(text).toContain('socket = /run/k.sock\nchmod-socket = 660\n')
    expect(renderUwsgi(uwsgiOptionsFrom(config(), {socket: 'unix:/run/u.sock'}))).toContain('chmod-socket = 666')
  })

  it('app.wsgi falls back to the ini it was generated from', () => {
    const text = renderAppWsgi({iniPath: '/srv/kinto/config/kinto.ini', command: 'uwsgi'})
    expect(text).toContain('os.environ.get("KINTO_INI") or "/srv/kinto/config/kinto.ini"')
    expect(text).toContain('from kinto import main')
    expect(text).toMatch(/^application = main\(/m)
  })
})

describe('Apache virtual host', () => {
  it('proxy mode: mod_proxy to the runtime, private URLs restricted', () => {
    const text = renderApache(apacheOptionsFrom(config(), {'server-name': ['kinto.example.com', 'kinto.example.org'], allow: ['10.1.2.3']}))
    expect(text).toContain('<VirtualHost *:80>')
    expect(text).toContain('ServerName kinto.example.com\n    ServerAlias kinto.example.org\n')
    expect(text).toContain('ProxyPass "/" "http://127.0.0.1:8888/"')
    expect(text).toContain('ProxyPreserveHost On')
    expect(text).toContain('LimitRequestBody 78643200')
    expect(text).toContain('<LocationMatch "^/v[0-9]+/__">\n        Require ip 10.1.2.3\n')
  })

  it('proxy mode over a unix socket; an empty allow list denies everyone', () => {
    const text = renderApache(apacheOptionsFrom(config(), {upstream: 'unix:/run/kinto.sock', allow: ['none']}))
    expect(text).toContain('ProxyPass "/" "unix:/run/kinto.sock|http://localhost/"')
    expect(text).toContain('Require all denied')
  })

  it('wsgi mode: WSGIScriptAlias, WSGIPythonPath, SetEnv KINTO_INI and the Directory block', () => {
    const text = renderApache(apacheOptionsFrom(config(), {mode: 'wsgi', 'wsgi-file': '/var/www/kinto/app.wsgi'}))
    expect(text).toContain('WSGIPythonPath "/var/www/kinto"')
    expect(text).toContain('SetEnv KINTO_INI "/srv/kinto/config/kinto.ini"')
    expect(text).toContain('WSGIScriptAlias / "/var/www/kinto/app.wsgi"')
    expect(text).toContain('<Directory "/var/www/kinto">\n        <Files "app.wsgi">\n            Require all granted')
    expect(text).toContain('WSGIPassAuthorization On')
    expect(text).not.toContain('WSGIPythonHome')
  })
})

describe('output: print, write without overwriting, check for drift', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, {recursive: true, force: true})
    dir = undefined
  })
  const base = {label: 'nginx configuration', command: 'kinto deploy nginx'}

  it('writes a new file, refuses to replace it without force, replaces it with force', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-deploy-out-'))
    const file = path.join(dir, 'kinto.conf')
    expect(await deliver({...base, content: 'one\n', output: file})).toEqual({action: 'write', file, replaced: false})
    expect(readFileSync(file, 'utf8')).toBe('one\n')
    expect(statSync(file).mode & 0o777).toBe(0o644)
    const error = await deliver({...base, content: 'two\n', output: file}).then(
      () => undefined,
      (e: KintoError) => e,
    )
    expect(error?.code).toBe('KINTO_DEPLOY_OUTPUT_EXISTS')
    expect(error?.exit).toBe(ExitCode.USAGE)
    expect(error?.hint).toContain('--force')
    expect(readFileSync(file, 'utf8')).toBe('one\n')
    expect(await deliver({...base, content: 'two\n', output: file, force: true})).toEqual({action: 'write', file, replaced: true})
    expect(readFileSync(file, 'utf8')).toBe('two\n')
  })

  it('check: up to date, different (with a diff), missing', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-deploy-out-'))
    const file = path.join(dir, 'kinto.conf')
    writeFileSync(file, 'a\nb\nc\n')
    expect(await deliver({...base, content: 'a\nb\nc\n', check: file})).toEqual({action: 'check', file, upToDate: true, missing: false, diff: ''})
    const differs = await deliver({...base, content: 'a\nB\nc\n', check: file})
    expect(differs).toMatchObject({action: 'check', upToDate: false, missing: false})
    expect(differs.action === 'check' && differs.diff).toBe(`--- ${file}\n+++ generated\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n`)
    const missing = await deliver({...base, content: 'x\n', check: path.join(dir, 'nope.conf')})
    expect(missing).toMatchObject({action: 'check', upToDate: false, missing: true})
  })

  it('refuses a missing folder with a clear error', async () => {
    const error = await deliver({...base, content: 'x', output: '/nonexistent-kinto-dir/kinto.conf'}).catch((e: KintoError) => e)
    expect((error as KintoError).message).toBe('Cannot write /nonexistent-kinto-dir/kinto.conf: the folder /nonexistent-kinto-dir does not exist.')
  })

  it('a folder it may not write in: said in words, not node\'s message naming the temporary file', async () => {
    // sysfs refuses new files, even to root
    const error = await deliver({...base, content: 'x', output: '/sys/kernel/kinto.conf'}).catch((e: KintoError) => e)
    expect(error).toMatchObject({code: 'KINTO_DEPLOY_OUTPUT_FAILED', message: expect.stringMatching(/^Cannot write the .* to \/sys\/kernel\/kinto\.conf: permission denied; nothing was written\.$/)})
  })

  it('a file where a folder is expected, or a folder to --check: said in words (was node\'s "EISDIR: illegal operation…")', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-deploy-out-'))
    const file = path.join(dir, 'a-file')
    writeFileSync(file, 'x\n')
    const write = await deliver({...base, content: 'x', output: path.join(file, 'kinto.conf')}).catch((e: KintoError) => e)
    expect((write as KintoError).message).toBe(`Cannot write ${path.join(file, 'kinto.conf')}: ${file} is a file, not a folder.`)
    for (const [target, reason] of [
      [dir, 'it is a folder'],
      [path.join(file, 'kinto.conf'), 'a folder on its path is a file'],
    ]) {
      const error = await deliver({...base, content: 'x', check: target}).catch((e: KintoError) => e)
      expect(error).toMatchObject({code: 'KINTO_DEPLOY_CHECK_UNREADABLE', message: `Cannot read ${target}: ${reason}.`})
    }
  })
})

describe('unifiedDiff', () => {
  it('keeps hunks apart when the changes are far from each other', () => {
    const a = Array.from({length: 20}, (_, i) => `line ${i}`)
    const b = [...a]
    b[1] = 'changed 1'
    b[18] = 'changed 18'
    const diff = unifiedDiff(`${a.join('\n')}\n`, `${b.join('\n')}\n`, 'old', 'new')
    expect(diff.match(/^@@/gm)).toHaveLength(2)
    expect(diff).toContain('@@ -1,5 +1,5 @@\n line 0\n-line 1\n+changed 1\n line 2\n')
    expect(diff).toContain('@@ -16,5 +16,5 @@\n line 15\n line 16\n line 17\n-line 18\n+changed 18\n line 19\n')
  })

  it('is a patch `patch` applies, a missing final newline included', (ctx) => {
    if (spawnSync('patch', ['--version']).status !== 0) {
      return ctx.skip('SKIPPED: no `patch` program')
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-diff-'))
    try {
      const before = 'server {\n  listen 80;\n}'
      const after = 'server {\n  listen 8080;\n}\n'
      const file = path.join(dir, 'kinto.conf')
      writeFileSync(file, before)
      const diff = unifiedDiff(before, after, file, 'generated')
      expect(diff).toContain('\\ No newline at end of file')
      const r = spawnSync('patch', [file], {input: diff})
      expect(r.status, String(r.stderr) + String(r.stdout)).toBe(0)
      expect(readFileSync(file, 'utf8')).toBe(after)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

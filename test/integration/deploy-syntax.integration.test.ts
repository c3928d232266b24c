/**
 * Every generated snippet, for each option combination, is accepted by the real server:
 * `nginx -t`, `apache2ctl -t` (with the modules it needs) and uwsgi's strict parsing.
 * Each group is SKIPPED (with the reason) when the binary is not installed.
 */
import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {apacheOptionsFrom, nginxOptionsFrom, renderApache, renderAppWsgi, renderNginx, renderUwsgi, uwsgiOptionsFrom} from '../../src/lib/deploy/index.js'
import type {DeployConfig} from '../../src/lib/deploy/options.js'
import {
  APACHE_PROXY_MODULES,
  APACHE_WSGI_MODULES,
  apacheTest,
  missing,
  nginxTest,
  stopAll,
  tempDir,
  tools,
  uwsgiParse,
} from '../helpers/deploy-servers.js'

afterAll(stopAll)

function config(overrides: Partial<DeployConfig> = {}): DeployConfig {
  return {
    path: '/srv/kinto/config/kinto.ini',
    dir: '/srv/kinto/config',
    settings: {http_host: 'kinto.example.com'},
    server: {host: '0.0.0.0', port: 8888},
    ...overrides,
  }
}

function cartesian<T extends Record<string, unknown[]>>(axes: T): {[K in keyof T]: T[K][number]}[] {
  let out: Record<string, unknown>[] = [{}]
  for (const [key, values] of Object.entries(axes)) out = out.flatMap((o) => values.map((v) => ({...o, [key]: v})))
  return out as {[K in keyof T]: T[K][number]}[]
}

describe.skipIf(missing('nginx'))(`nginx -t accepts every generated server block ${missing('nginx')}`, () => {
  const cacheDir = tempDir('nginx-cache')
  const combos = cartesian({
    upstream: [undefined, 'unix:/run/kinto/kinto.sock', 'uwsgi', 'uwsgi+unix:/run/uwsgi/kinto.sock', 'http://[::1]:8889'],
    cache: [false, true],
    names: [undefined, ['kinto.example.com', '*.kinto.example.com', '.example.org']],
    access: [{}, {allow: ['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8'], listen: '127.0.0.1:8080', 'max-body-size': '512k'}],
  })

  it.each(combos.map((c) => [JSON.stringify(c), c] as const))('%s', (_label, c) => {
    const snippet = renderNginx(
      nginxOptionsFrom(config({settings: c.names ? {} : {http_host: 'kinto.example.com:443'}}), {
        upstream: c.upstream === 'uwsgi' ? undefined : c.upstream,
        uwsgi: c.upstream === 'uwsgi',
        cache: c.cache,
        'cache-path': c.cache ? path.join(cacheDir, 'zone') : undefined,
        'server-name': c.names,
        ...c.access,
      }),
    )
    expect(snippet).toContain(c.upstream?.startsWith('uwsgi') ? 'uwsgi_pass kinto_backend;' : 'proxy_pass http://kinto_backend;')
    expect(snippet.includes('_cache_path')).toBe(c.cache)
    const result = nginxTest(snippet)
    expect(result.output).toBe('')
    expect(result.code).toBe(0)
  })

  it('the harness does fail on a broken block (a server name with a semicolon)', () => {
    const good = renderNginx(nginxOptionsFrom(config(), {}))
    const broken = good.replace('server_name kinto.example.com;', 'server_name kinto.example.com; }')
    expect(broken).not.toBe(good)
    const result = nginxTest(broken)
    expect(result.code).not.toBe(0)
    expect(result.output).toMatch(/emerg/)
  })
})

describe.skipIf(missing('apache2ctl', 'modProxyHttp'))(`apache2ctl -t accepts every generated mod_proxy virtual host ${missing('apache2ctl', 'modProxyHttp')}`, () => {
  const combos = cartesian({
    upstream: [undefined, 'unix:/run/kinto/kinto.sock', 'http://[::1]:8889'],
    names: [undefined, [], ['kinto.example.com', 'kinto.example.org', '*.kinto.example.com']],
    access: [{}, {allow: ['10.0.0.0/8', '::1'], listen: '127.0.0.1:18080', 'max-body-size': '2g'}, {allow: ['none'], listen: '8080'}],
  })

  it.each(combos.map((c) => [JSON.stringify(c), c] as const))('%s', (_label, c) => {
    const snippet = renderApache(
      apacheOptionsFrom(config({settings: c.names === undefined ? {http_host: 'kinto.example.com'} : {}}), {
        mode: 'proxy',
        upstream: c.upstream,
        'server-name': c.names,
        ...c.access,
      }),
    )
    expect(snippet).toContain('ProxyPass "/"')
    const result = apacheTest(snippet, APACHE_PROXY_MODULES)
    expect(result.output).toMatch(/Syntax OK/)
    expect(result.code).toBe(0)
  })

  it('the harness does fail when a needed module is missing', () => {
    const snippet = renderApache(apacheOptionsFrom(config(), {}))
    const result = apacheTest(snippet, APACHE_PROXY_MODULES.filter((m) => m !== 'headers'))
    expect(result.code).not.toBe(0)
    expect(result.output).toMatch(/RequestHeader/)
  })
})

describe.skipIf(missing('apache2ctl', 'modWsgi'))(`apache2ctl -t accepts every generated mod_wsgi virtual host ${missing('apache2ctl', 'modWsgi')}`, () => {
  const combos = cartesian({
    venv: [undefined, '/srv/kinto/.venv'],
    pythonPath: [undefined, '/srv/kinto/lib'],
    wsgiFile: [undefined, '/var/www/kinto/app.wsgi'],
    names: [undefined, ['kinto.example.com', 'www.kinto.example.com']],
  })

  it.each(combos.map((c) => [JSON.stringify(c), c] as const))('%s', (_label, c) => {
    const snippet = renderApache(
      apacheOptionsFrom(config(), {mode: 'wsgi', virtualenv: c.venv, 'python-path': c.pythonPath, 'wsgi-file': c.wsgiFile, 'server-name': c.names}),
    )
    expect(snippet).toContain('WSGIScriptAlias / ')
    expect(snippet).toContain('SetEnv KINTO_INI "/srv/kinto/config/kinto.ini"')
    const result = apacheTest(snippet, APACHE_WSGI_MODULES)
    expect(result.output).toMatch(/Syntax OK/)
    expect(result.code).toBe(0)
  })
})

describe.skipIf(missing('uwsgi', 'uwsgiPython'))(`uwsgi parses every generated [uwsgi] section ${missing('uwsgi', 'uwsgiPython')}`, () => {
  const combos = cartesian({
    socket: [undefined, 'unix:/run/uwsgi/kinto.sock', 'uwsgi+unix:/run/uwsgi/kinto.sock', '127.0.0.1:3031'],
    ini: [{}, {server: {host: '127.0.0.1', port: 8888, unixSocket: 'run/kinto.sock', unixSocketMode: '0660'}}],
    extra: [{}, {virtualenv: '/srv/kinto/.venv', uid: 'www-data', gid: 'www-data', processes: 8, harakiri: 30, 'buffer-size': 32768, 'socket-mode': '600'}],
  })

  it.each(combos.map((c) => [JSON.stringify(c), c] as const))('%s', (_label, c) => {
    const options = uwsgiOptionsFrom(config(c.ini), {socket: c.socket, ...c.extra})
    const section = renderUwsgi(options)
    const expectedSocket = (c.socket ?? (c.ini.server ? 'unix:/srv/kinto/config/run/kinto.sock' : '127.0.0.1:8888')).replace(/^(uwsgi\+)?unix:/, '')
    const result = uwsgiParse(section, 'socket')
    expect(result.code, result.output).toBe(0)
    expect(result.output).not.toMatch(/strict-mode|unknown|WARNING/i)
    expect(result.stdout.trim()).toBe(expectedSocket)
    const wsgi = uwsgiParse(section, 'wsgi-file')
    expect(wsgi.stdout.trim()).toBe('/srv/kinto/config/app.wsgi')
  })

  it('the harness does fail on an option uwsgi does not know', () => {
    const section = renderUwsgi(uwsgiOptionsFrom(config(), {})).replace('lazy-apps = true', 'lazy-apps = true\nlazy-apes = true')
    const result = uwsgiParse(section)
    expect(result.code).not.toBe(0)
    expect(result.output).toMatch(/unknown config directive: lazy-apes/)
  })
})

describe.skipIf(missing('python3'))(`app.wsgi is valid Python ${missing('python3')}`, () => {
  it.each([['uwsgi'], ['apache']] as const)('for %s', (command) => {
    const dir = tempDir('wsgi')
    const file = path.join(dir, 'app.wsgi')
    writeFileSync(file, renderAppWsgi({iniPath: '/srv/kinto/config/kinto.ini', command}))
    const r = spawnSync(tools.python3!, ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', file], {encoding: 'utf8'})
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
})

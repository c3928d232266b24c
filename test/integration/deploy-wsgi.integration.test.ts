/**
 * The WSGI paths end to end, with the real servers: `kinto deploy uwsgi` (section + app.wsgi)
 * run by real uwsgi with `kinto deploy nginx --uwsgi --cache` in front of it, and
 * `kinto deploy apache --mode wsgi` (+ app.wsgi) run by real Apache mod_wsgi. Upstream Kinto is not
 * installed here, so a stand-in `kinto` Python package provides `main(global_config, **settings)`
 * and echoes what it received; that proves the ini reaches the app, the headers pass through,
 * the private URLs are refused from 127.0.0.2 and the cache keys on the whole URI.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {
  APACHE_WSGI_MODULES,
  freePort,
  httpRequest,
  missing,
  readLog,
  startApache,
  startNginx,
  startProcess,
  stopAll,
  tempDir,
  tools,
  waitForPort,
} from '../helpers/deploy-servers.js'
import {memoryIniText} from '../helpers/kinto-server.js'

afterAll(stopAll)

const STUB = `import itertools
import json
import logging
import os

counter = itertools.count(1)


def main(global_config, **settings):
    logging.getLogger("kinto").info("stand-in kinto loaded from %s", global_config["__file__"])

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        host = environ.get("HTTP_HOST", "")
        body = json.dumps({
            "global_config": global_config,
            "settings": settings,
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "method": environ["REQUEST_METHOD"],
            "host": host,
            "kinto_ini": os.environ.get("KINTO_INI"),
            "environ_kinto_ini": environ.get("KINTO_INI"),
            "authorization": environ.get("HTTP_AUTHORIZATION"),
            "served": next(counter),
        }).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("ETag", '"1700000000000"'),
            ("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("Next-Page", "http://%s%s?_token=abc" % (host, path)),
            ("Access-Control-Allow-Origin", "*"),
        ]
        if "/cacheable" in path:
            headers.append(("Cache-Control", "max-age=60"))
        else:
            headers.append(("Cache-Control", "no-cache, no-store"))
        start_response("200 OK", headers)
        return [body]

    return app
`

/** Logging sections that show the stand-in's INFO line in the server's output. */
const LOGGING = [
  '[loggers]',
  'keys = root',
  '[handlers]',
  'keys = console',
  '[formatters]',
  'keys = generic',
  '[logger_root]',
  'level = INFO',
  'handlers = console',
  '[handler_console]',
  'class = StreamHandler',
  'args = (sys.stderr,)',
  'formatter = generic',
  '[formatter_generic]',
  'format = %(levelname)s [%(name)s] %(message)s',
]

function writeIni(dir: string, port: number): string {
  const file = path.join(dir, 'kinto.ini')
  const app = ['kinto.http_host = kinto.example.test', 'kinto.storage_url = %(here)s/data']
  writeFileSync(file, memoryIniText(['host = 127.0.0.1', `port = ${port}`], app, LOGGING))
  return file
}

describe.skipIf(missing('nginx', 'uwsgi', 'uwsgiPython'))(`nginx (uwsgi_pass, --cache) in front of uwsgi running app.wsgi ${missing('nginx', 'uwsgi', 'uwsgiPython')}`, () => {
  let base = ''
  let uwsgiOutput: () => string = () => ''
  let nginxErrors = ''
  let ini = ''

  beforeAll(async () => {
    const dir = tempDir('wsgi-e2e')
    const [uwsgiPort, nginxPort] = [await freePort(), await freePort()]
    mkdirSync(path.join(dir, 'py', 'kinto'), {recursive: true})
    writeFileSync(path.join(dir, 'py', 'kinto', '__init__.py'), STUB)
    ini = writeIni(dir, uwsgiPort)

    const root = process.getuid?.() === 0
    const section = path.join(dir, 'uwsgi.ini')
    const gen = await runCli(['deploy', 'uwsgi', '--ini', ini, '--processes', '1', '--uid', root ? 'nobody' : 'root', '--gid', root ? 'nogroup' : 'root', '--output', section])
    expect(gen.code, gen.stderr).toBe(0)
    const app = await runCli(['deploy', 'uwsgi', '--ini', ini, '--app-wsgi', '--output', path.join(dir, 'app.wsgi')])
    expect(app.code, app.stderr).toBe(0)
    const nginxConf = await runCli([
      'deploy', 'nginx', '--ini', ini, '--uwsgi', '--listen', `127.0.0.1:${nginxPort}`, '--allow', '127.0.0.1', '--cache-path', path.join(dir, 'cache'),
    ])
    expect(nginxConf.code, nginxConf.stderr).toBe(0)

    // KINTO_INI unset: app.wsgi must find the ini through the section's `env =` line.
    const env = {PYTHONPATH: path.join(dir, 'py'), KINTO_INI: ''}
    const uwsgi = startProcess(tools.uwsgi!, ['--ini', section], {cwd: dir, env})
    uwsgiOutput = uwsgi.output
    await waitForPort(uwsgiPort, 20_000, () => `uwsgi: ${uwsgi.output()}`)
    const nginx = await startNginx(nginxConf.stdout, nginxPort)
    nginxErrors = nginx.setup.errorLog
    base = `http://127.0.0.1:${nginxPort}`
  }, 60_000)

  it('the ini reaches the app: settings, %(here)s, KINTO_INI, and its logging config', async () => {
    const r = await httpRequest(`${base}/v1/`, {headers: {Host: `kinto.example.test:8443`}})
    expect(r.status, `${r.body} ${readLog(nginxErrors)}`).toBe(200)
    const body = JSON.parse(r.body)
    expect(body.settings['kinto.http_host']).toBe('kinto.example.test')
    expect(body.settings['kinto.storage_url']).toBe(`${path.dirname(ini)}/data`)
    expect(body.settings).not.toHaveProperty('here')
    expect(body.global_config).toEqual({__file__: ini, here: path.dirname(ini)})
    expect(body.kinto_ini).toBe(ini)
    expect(body.path).toBe('/v1/')
    expect(uwsgiOutput()).toContain(`INFO [kinto] stand-in kinto loaded from ${ini}`)
  })

  it('passes ETag, Last-Modified, Next-Page and CORS headers; OPTIONS reaches the app', async () => {
    const r = await httpRequest(`${base}/v1/buckets/b/collections/c/records?_limit=1`, {headers: {Origin: 'https://app.example'}})
    expect(r.status).toBe(200)
    expect(r.headers.etag).toBe('"1700000000000"')
    expect(r.headers['last-modified']).toBe('Tue, 14 Nov 2023 22:13:20 GMT')
    expect(r.headers['next-page']).toMatch(/\?_token=abc$/)
    expect(r.headers['access-control-allow-origin']).toBe('*')
    const options = await httpRequest(`${base}/v1/buckets`, {method: 'OPTIONS', headers: {Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET'}})
    expect(options.status).toBe(200)
    expect(JSON.parse(options.body).method).toBe('OPTIONS')
  })

  it('private URLs: answered to 127.0.0.1, refused to 127.0.0.2', async () => {
    const allowed = await httpRequest(`${base}/v1/__heartbeat__`)
    expect(allowed.status).toBe(200)
    expect(JSON.parse(allowed.body).path).toBe('/v1/__heartbeat__')
    for (const p of ['/v1/__heartbeat__', '/v1/__lbheartbeat__', '/v1/__version__', '/v1/__flush__', '/v1//__heartbeat__', '/v1/%5F%5Fheartbeat__']) {
      const refused = await httpRequest(`${base}${p}`, {localAddress: '127.0.0.2'})
      expect(refused.status, p).toBe(403)
    }
    const open = await httpRequest(`${base}/v1/`, {localAddress: '127.0.0.2'})
    expect(open.status).toBe(200)
  })

  it('--cache: a repeated GET is a hit, another _limit is not; authenticated requests bypass it', async () => {
    const url = `${base}/v1/buckets/b/collections/cacheable/records`
    const first = await httpRequest(`${url}?_limit=1`)
    const second = await httpRequest(`${url}?_limit=1`)
    const other = await httpRequest(`${url}?_limit=2`)
    const authed = await httpRequest(`${url}?_limit=1`, {headers: {Authorization: 'Basic dG9rZW46c2VjcmV0'}})
    expect(first.headers['x-cache-status']).toBe('MISS')
    expect(second.headers['x-cache-status']).toBe('HIT')
    expect(JSON.parse(second.body).served).toBe(JSON.parse(first.body).served)
    expect(other.headers['x-cache-status']).toBe('MISS')
    expect(JSON.parse(other.body).query).toBe('_limit=2')
    expect(authed.headers['x-cache-status']).toBe('BYPASS')
    expect(JSON.parse(authed.body).served).toBeGreaterThan(JSON.parse(other.body).served)
    // Kinto says no-store: never cached.
    const a = await httpRequest(`${base}/v1/buckets/b/collections/private/records`)
    const b = await httpRequest(`${base}/v1/buckets/b/collections/private/records`)
    expect(b.headers['x-cache-status']).toBe('MISS')
    expect(JSON.parse(b.body).served).toBeGreaterThan(JSON.parse(a.body).served)
  })
})

describe.skipIf(missing('apache2', 'modWsgi'))(`Apache mod_wsgi running app.wsgi (kinto deploy apache --mode wsgi) ${missing('apache2', 'modWsgi')}`, () => {
  let base = ''
  let ini = ''
  let errorLog = ''

  beforeAll(async () => {
    const dir = tempDir('modwsgi-e2e')
    const port = await freePort()
    // WSGIPythonPath defaults to the folder of app.wsgi: the stand-in package goes there.
    mkdirSync(path.join(dir, 'kinto'))
    writeFileSync(path.join(dir, 'kinto', '__init__.py'), STUB)
    ini = writeIni(dir, port)
    const app = await runCli(['deploy', 'apache', '--ini', ini, '--mode', 'wsgi', '--app-wsgi', '--output', path.join(dir, 'app.wsgi')])
    expect(app.code, app.stderr).toBe(0)
    const conf = await runCli(['deploy', 'apache', '--ini', ini, '--mode', 'wsgi', '--listen', `127.0.0.1:${port}`, '--allow', '127.0.0.1'])
    expect(conf.code, conf.stderr).toBe(0)
    const apache = await startApache(conf.stdout, APACHE_WSGI_MODULES, port)
    errorLog = apache.setup.errorLog
    base = `http://127.0.0.1:${port}`
  }, 60_000)

  it('serves the app with the ini, SetEnv KINTO_INI and the Authorization header', async () => {
    const r = await httpRequest(`${base}/v1/buckets?_limit=3`, {headers: {Authorization: 'Basic dG9rZW46c2VjcmV0'}})
    expect(r.status, `${r.body} ${readLog(errorLog)}`).toBe(200)
    const body = JSON.parse(r.body)
    expect(body.settings['kinto.http_host']).toBe('kinto.example.test')
    expect(body.global_config).toEqual({__file__: ini, here: path.dirname(ini)})
    expect(body.environ_kinto_ini).toBe(ini)
    expect(body.authorization).toBe('Basic dG9rZW46c2VjcmV0')
    expect(body.path).toBe('/v1/buckets')
    expect(body.query).toBe('_limit=3')
    expect(r.headers.etag).toBe('"1700000000000"')
    expect(r.headers['next-page']).toMatch(/\?_token=abc$/)
  })

  it('private URLs: answered to 127.0.0.1, refused to 127.0.0.2', async () => {
    expect((await httpRequest(`${base}/v1/__heartbeat__`)).status).toBe(200)
    expect((await httpRequest(`${base}/v1/__heartbeat__`, {localAddress: '127.0.0.2'})).status).toBe(403)
    expect((await httpRequest(`${base}/v1/`, {localAddress: '127.0.0.2'})).status).toBe(200)
  })
})

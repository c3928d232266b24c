/**
 * kinto.plugins.admin over HTTP (inject): the console bundled by `npm run build` (dist/admin) and
 * an operator's build named by kinto.admin_assets_path (test/fixtures/admin-build): redirect,
 * index.html never cached and carrying the server's auth methods, files with their content types
 * and cache lifetimes, ETags, no way out of the folder, the `admin` capability and its version,
 * clear startup errors for a wrong folder. The console itself is driven in a real browser by
 * test/integration/admin-console.integration.test.ts.
 */
import {cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import type {FastifyInstance} from 'fastify'
import {afterEach, describe, expect, test} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {KintoError} from '../../src/lib/errors.js'
import {createApp} from '../../src/lib/server/app.js'
import {BUNDLED_ADMIN_DIR, findAdminBuild} from '../../src/lib/admin-console.js'
import {adminPlugin, contentTypeOf, isHashedName, makeAdminPlugin} from '../../src/lib/server/plugins/admin.js'
import {registerPlugin} from '../../src/lib/server/plugins/index.js'
import {repoRoot} from '../helpers/cli.js'
import {tempFolders} from '../helpers/tmp.js'
import {ALICE, client} from './helpers.js'
import {capturingLogger} from './plugins-helpers.js'

const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'admin-build')
const newFolder = tempFolders('admin-build')
const ADMIN = {'kinto.includes': 'kinto.plugins.admin'}

const apps: FastifyInstance[] = []
function setup(raw: Record<string, string>, baseDir?: string) {
  const captured = capturingLogger()
  const settings = buildSettings({'kinto.userid_hmac_secret': 'admin-tests', ...raw}, {})
  const backends = createBackends(settings)
  const app = createApp({settings, backends, logger: captured.logger, baseDir})
  app.addHook('onClose', async () => backends.close())
  apps.push(app)
  return {app, req: client(app, null), ...captured}
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

describe('the bundled console (dist/admin, made by npm run build)', () => {
  test('was built from the installed kinto-admin release', () => {
    expect(existsSync(path.join(BUNDLED_ADMIN_DIR, 'index.html')), 'run `npm run build` first').toBe(true)
    const installed = JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', 'kinto-admin', 'package.json'), 'utf8')).version
    expect(readFileSync(path.join(BUNDLED_ADMIN_DIR, 'VERSION'), 'utf8').trim()).toBe(installed)
  })

  test('/v1/admin redirects (307) to /v1/admin/, query dropped as upstream', async () => {
    const {req} = setup(ADMIN)
    const r = await req('GET', '/v1/admin?x=1')
    expect(r.status).toBe(307)
    expect(r.headers.location).toBe('http://localhost/v1/admin/')
  })

  test('/v1/admin/ is the page: HTML, not cached, upstream CSP, the server policies in it, no warning', async () => {
    const {req, warnings} = setup({...ADMIN, 'multiauth.policies': 'account basicauth', 'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy', 'kinto.includes': 'kinto.plugins.admin kinto.plugins.accounts'})
    expect(warnings.filter((w) => w.includes('admin'))).toEqual([])
    const r = await req('GET', '/v1/admin/')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(r.headers['cache-control']).toBe('no-cache')
    expect(r.headers['content-security-policy']).toContain("default-src 'self'")
    expect(r.headers['content-security-policy']).toContain("script-src 'self' 'unsafe-inline' 'unsafe-eval'")
    expect(r.raw).toContain('<div id="root"></div>')
    const settings = /<script id="kinto-server-settings" type="application\/json">(.*?)<\/script>/.exec(r.raw)
    expect(JSON.parse(settings![1])).toEqual({authMethods: ['account', 'basicauth']})
    // The same page under its name, and the same bytes again.
    const named = await req('GET', '/v1/admin/index.html')
    expect(named.raw).toBe(r.raw)
    expect(named.headers.etag).toBe(r.headers.etag)
  })

  test('no multiauth.policies: the page says basicauth, the runtime default', async () => {
    const {req} = setup(ADMIN)
    expect((await req('GET', '/v1/admin/')).raw).toContain('{"authMethods":["basicauth"]}')
  })

  test('every file the page names is served with its type and a one-year cache', async () => {
    const {req} = setup(ADMIN)
    const page = (await req('GET', '/v1/admin/')).raw
    const assets = [...page.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1])
    // Its icon (the logo: no request for a missing /favicon.ico), stylesheet and script.
    expect(assets.map((a) => path.extname(a))).toEqual(['.png', '.css', '.js'])
    const types: Record<string, string> = {'.png': 'image/png', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8'}
    for (const asset of assets) {
      const r = await req('GET', `/v1/admin/${asset}`)
      expect(r.status, asset).toBe(200)
      expect(r.headers['content-type']).toBe(types[path.extname(asset)])
      expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      const size = readFileSync(path.join(BUNDLED_ADMIN_DIR, asset)).length
      expect(Number(r.headers['content-length'])).toBe(size)
      if (!asset.endsWith('.png')) expect(Buffer.byteLength(r.raw)).toBe(size)
    }
    // The files the stylesheet refers to (logo, icons) too.
    const images = readdirSync(path.join(BUNDLED_ADMIN_DIR, 'assets')).filter((f) => /\.(png|svg)$/.test(f))
    expect(images.length).toBeGreaterThan(0)
    for (const image of images) {
      const r = await req('GET', `/v1/admin/assets/${image}`)
      expect(r.status).toBe(200)
      expect(r.headers['content-type']).toBe(image.endsWith('.png') ? 'image/png' : 'image/svg+xml')
    }
  })

  test('the capability admin carries the kinto-admin version; /v1/permissions is on', async () => {
    const {req} = setup(ADMIN)
    const hello = await req('GET', '/v1/')
    expect(hello.body.capabilities.admin).toEqual({
      description: 'Serves the admin console.',
      url: 'https://github.com/Kinto/kinto-admin/',
      version: readFileSync(path.join(BUNDLED_ADMIN_DIR, 'VERSION'), 'utf8').trim(),
    })
    expect(hello.body.capabilities).toHaveProperty('permissions_endpoint')
    expect((await req('GET', '/v1/permissions', {auth: ALICE})).status).toBe(200)
  })

  test('without the plugin nothing is served', async () => {
    const {req} = setup({})
    for (const p of ['/v1/admin', '/v1/admin/index.html']) expect((await req('GET', p)).status, p).toBe(404)
    expect((await req('GET', '/v1/')).body.capabilities).not.toHaveProperty('admin')
  })
})

describe('kinto.admin_assets_path: an operator build', () => {
  test('its index, files and VERSION are served instead (page untouched, as upstream)', async () => {
    const {req} = setup({...ADMIN, 'kinto.admin_assets_path': FIXTURE})
    const hello = await req('GET', '/v1/')
    expect(hello.body.capabilities.admin.version).toBe('42.0.0')
    const page = await req('GET', '/v1/admin/')
    expect(page.raw).toBe(readFileSync(path.join(FIXTURE, 'index.html'), 'utf8'))
    expect(page.headers['cache-control']).toBe('no-cache')
    const js = await req('GET', '/v1/admin/assets/app-B7xQ2kLm.js')
    expect(js.raw).toContain('dataset.loaded')
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    const css = await req('GET', '/v1/admin/assets/app-3f9a1c7e.css')
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8')
    const txt = await req('GET', '/v1/admin/notes.txt')
    expect(txt.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(txt.headers['cache-control']).toBe('public, max-age=3600')
    // The bundled build's files are not reachable through it.
    const bundledScript = readdirSync(path.join(BUNDLED_ADMIN_DIR, 'assets')).find((f) => f.endsWith('.js'))!
    expect((await req('GET', `/v1/admin/assets/${bundledScript}`)).status).toBe(404)
  })

  test('a new build put in the folder while serving: its page is served, not the old one naming files now gone', async () => {
    const dir = newFolder()
    cpSync(FIXTURE, dir, {recursive: true})
    const {req} = setup({...ADMIN, 'kinto.admin_assets_path': dir})
    const old = await req('GET', '/v1/admin/')
    expect(old.raw).toContain('assets/app-B7xQ2kLm.js')
    // The operator deploys the next release: other hashed names, the old files removed.
    writeFileSync(path.join(dir, 'assets', 'app-Q9wE3rTy.js'), 'document.body.dataset.loaded = "2"\n')
    writeFileSync(path.join(dir, 'index.html'), old.raw.replace('assets/app-B7xQ2kLm.js', 'assets/app-Q9wE3rTy.js').replace('mine!', 'mine, again!'))
    rmSync(path.join(dir, 'assets', 'app-B7xQ2kLm.js'))
    const page = await req('GET', '/v1/admin/', {headers: {'if-none-match': String(old.headers.etag)}})
    expect(page.status).toBe(200)
    expect(page.raw).toContain('assets/app-Q9wE3rTy.js')
    expect(page.headers.etag).not.toBe(old.headers.etag)
    expect((await req('GET', '/v1/admin/assets/app-Q9wE3rTy.js')).status).toBe(200)
    expect((await req('GET', '/v1/admin/index.html')).raw).toBe(page.raw)
  })

  test('a relative path is found from the ini folder', async () => {
    const {req} = setup({...ADMIN, 'kinto.admin_assets_path': 'admin-build'}, path.dirname(FIXTURE))
    expect((await req('GET', '/v1/admin/')).raw).toContain('mine!')
  })

  test('ETag and If-None-Match: 304 without a body; HEAD: headers only', async () => {
    const {req} = setup({...ADMIN, 'kinto.admin_assets_path': FIXTURE})
    for (const p of ['/v1/admin/', '/v1/admin/assets/app-B7xQ2kLm.js']) {
      const first = await req('GET', p)
      const etag = String(first.headers.etag)
      expect(etag).toMatch(/^"[\w-]+"$/)
      const again = await req('GET', p, {headers: {'if-none-match': etag}})
      expect(again.status).toBe(304)
      expect(again.raw).toBe('')
      expect((await req('GET', p, {headers: {'if-none-match': '"other"'}})).status).toBe(200)
      const head = await req('HEAD', p)
      expect(head.status).toBe(200)
      expect(head.raw).toBe('')
      expect(head.headers['content-type']).toBe(first.headers['content-type'])
    }
  })

  test('nothing outside the folder, no hidden file, no folder listing: 404', async () => {
    const {req} = setup({...ADMIN, 'kinto.admin_assets_path': FIXTURE})
    for (const p of [
      '/v1/admin/.secret',
      '/v1/admin/%2e%2e/README.md',
      '/v1/admin/assets/%2e%2e/%2e%2e/README.md',
      '/v1/admin/assets/..%2f..%2fREADME.md',
      '/v1/admin/assets/..%5c..%5cREADME.md',
      '/v1/admin/assets',
      '/v1/admin/assets/',
      '/v1/admin/missing.js',
    ]) {
      const r = await req('GET', p)
      expect(r.status, p).toBe(404)
      expect(r.body.errno, p).toBe(111)
      expect(r.raw).not.toContain('hidden')
    }
  })

  test('a folder that does not exist, or lacks index.html or VERSION, stops the start with a clear error', () => {
    const cases: Array<[string, RegExp]> = [
      [path.join(FIXTURE, 'nope'), /no such folder/],
      [path.join(FIXTURE, 'assets'), /index\.html is missing/],
    ]
    for (const [dir, message] of cases) {
      let error: unknown
      try {
        setup({...ADMIN, 'kinto.admin_assets_path': dir})
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(KintoError)
      expect((error as KintoError).code).toBe('KINTO_ADMIN_ASSETS')
      expect((error as KintoError).message).toMatch(message)
      expect((error as KintoError).hint).toContain('VERSION')
    }
  })
})

describe('no build (sources never built) and no kinto.admin_assets_path', () => {
  test('one startup warning saying how to build it; /v1/admin/ answers 404 saying so; /v1/permissions still on', async () => {
    registerPlugin(makeAdminPlugin(path.join(FIXTURE, 'nope')))
    try {
      const {req, warnings} = setup(ADMIN)
      expect(warnings).toEqual([expect.stringContaining('run `npm run build` in kinto-ops')])
      for (const p of ['/v1/admin/', '/v1/admin/assets/main.js']) {
        const r = await req('GET', p)
        expect(r.status, p).toBe(404)
        expect(r.body.message).toContain('The Kinto Admin console has not been built')
      }
      expect((await req('GET', '/v1/admin')).status).toBe(307)
      const hello = await req('GET', '/v1/')
      expect(hello.body.capabilities).not.toHaveProperty('admin')
      expect(hello.body.capabilities).toHaveProperty('permissions_endpoint')
    } finally {
      registerPlugin(adminPlugin)
    }
  })
})

describe('helpers', () => {
  test('no bundled build (sources never built) and no setting: nothing to serve', () => {
    expect(findAdminBuild({}, undefined, path.join(FIXTURE, 'nope'))).toBeNull()
    expect(findAdminBuild({}, undefined, FIXTURE)).toEqual({dir: FIXTURE, version: '42.0.0', bundled: true})
  })

  test('content hashes in names: esbuild, webpack and vite styles; plain names are not', () => {
    for (const name of ['main-PFHQUTYB.js', 'main.8f3a2c1d.chunk.js', 'index-Bx1_aZ9k.css', 'main.084b55b8.css.map', 'logo-JQ5Q4EZA.png']) {
      expect(isHashedName(name), name).toBe(true)
    }
    for (const name of ['index.html', 'exclamation-triangle.svg', 'favicon.png', 'VERSION', 'main.js', 'help-contents.txt']) {
      expect(isHashedName(name), name).toBe(false)
    }
  })

  test('content types', () => {
    expect(contentTypeOf('a.woff2')).toBe('font/woff2')
    expect(contentTypeOf('a.JSON')).toBe('application/json')
    expect(contentTypeOf('a.unknown')).toBe('application/octet-stream')
  })
})

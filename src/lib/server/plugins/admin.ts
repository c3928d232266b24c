/**
 * kinto.plugins.admin: the Kinto Admin web console at /v1/admin/, as upstream's plugin serves it.
 * - The build: the `kinto-admin` npm package bundled into dist/admin/ at `npm run build`
 *   (scripts/kinto-admin/build.mjs), or the folder named by `kinto.admin_assets_path` (another
 *   build, e.g. an operator's newer release: index.html, VERSION and its files).
 * - /v1/admin → 307 to /v1/admin/; /v1/admin/ (and /v1/admin/index.html) → index.html, never
 *   cached by clients or proxies, with upstream's Content-Security-Policy; any other path → that
 *   file of the build, with its content type, cached for a year when its name carries a content
 *   hash (an hour otherwise), with an ETag answered by 304.
 * - The capability `admin` with the build's VERSION.
 * - Our own build gets the server's `multiauth.policies` in index.html, so the login form opens on
 *   the server's authentication method (the page finds the server URL from its own address).
 * - As upstream, including the plugin turns on GET /v1/permissions (see index.ts), which the app
 *   uses. Without a build (sources never built), /v1/admin/ answers a 404 saying how to make one.
 */
import {createHash} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import {type AdminBuild, BUNDLED_ADMIN_DIR, findAdminBuild} from '../../admin-console.js'
import {asList} from '../../config/settings.js'
import type {RequestContext} from '../context.js'
import {ERRNO, HttpError, notFound} from '../errors.js'
import {urlOrigin} from '../headers.js'
import type {ViewDef} from '../router.js'
import type {Capability, Runtime} from '../runtime.js'
import {RawBody, type ViewResult} from '../types.js'
import type {KintoPlugin, PluginApi} from './index.js'

/** Where our index.html takes the server's settings (scripts/kinto-admin/index.html). */
const SETTINGS_MARK = '<!--kinto:server-settings-->'

/** Upstream's policy for the console page: its own scripts and styles, data from this origin. */
export const ADMIN_CSP = "default-src 'self'; img-src data: *; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
const LONG_CACHE = 'public, max-age=31536000, immutable'
const SHORT_CACHE = 'public, max-age=3600'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.eot': 'application/vnd.ms-fontobject',
}

export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream'
}

/**
 * A file name with a content hash (`main-PFHQUTYB.js`, `main.8f3a2c1d.chunk.js`, `index-Bx1_aZ9k.css`):
 * 8 or more letters, digits or `_` after a `-` or `.`, at least one of them a digit or a capital.
 */
export function isHashedName(file: string): boolean {
  return /[.-](?=[A-Za-z0-9_]*[A-Z0-9])[A-Za-z0-9_]{8,}(\.[A-Za-z0-9]+)+$/.test(path.basename(file))
}

function etagOf(bytes: Buffer): string {
  return `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`
}

function notModified(ctx: RequestContext, etag: string): boolean {
  const header = ctx.req.headers['if-none-match']
  return header !== undefined && header.split(',').some((t) => t.trim() === etag || t.trim() === '*')
}

function fileResult(ctx: RequestContext, bytes: Buffer, etag: string, headers: Record<string, string>): ViewResult {
  const all = {...headers, ETag: etag}
  if (notModified(ctx, etag)) return {status: 304, headers: all}
  return {body: new RawBody(bytes), headers: all}
}

/**
 * The `multiauth.policies` the page is told about (basicauth when none is configured, as the
 * runtime does); an OpenID provider (hello's `openid` capability) as the login form names it,
 * `openid-<provider>`, so that a server signing in with OpenID first opens the form on it.
 */
function pageSettings(settings: Record<string, unknown>, capabilities: Record<string, Capability>): {authMethods: string[]} {
  const policies = asList(settings, 'multiauth.policies')
  const providers = capabilities.openid?.providers
  const openid = new Set(Array.isArray(providers) ? providers.map((p: {name?: unknown}) => p?.name).filter((n): n is string => typeof n === 'string') : [])
  return {authMethods: (policies.length ? policies : ['basicauth']).map((p) => (openid.has(p) ? `openid-${p}` : p))}
}

/** JSON inside a <script> element: no `<` can close it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c')
}

function adminViews(build: AdminBuild, runtime: Runtime): {home: ViewDef; files: ViewDef} {
  const indexFile = path.join(build.dir, 'index.html')
  // index.html is read again only when the file changes (upstream reads it once: a build replaced
  // while serving, whose files have other hashed names, gave a page naming files gone); our build
  // gets the server's settings.
  let page: {mtimeMs: number; size: number; bytes: Buffer; etag: string} | undefined
  const index = async (ctx: RequestContext): Promise<ViewResult> => {
    const info = await stat(indexFile).catch(() => null)
    if (!info?.isFile()) throw notFound()
    if (!page || page.mtimeMs !== info.mtimeMs || page.size !== info.size) {
      let html = await readFile(indexFile, 'utf8')
      if (build.bundled) {
        const pageData = pageSettings(runtime.settings, runtime.capabilities)
        html = html.replace(SETTINGS_MARK, `<script id="kinto-server-settings" type="application/json">${scriptJson(pageData)}</script>`)
      }
      const bytes = Buffer.from(html)
      page = {mtimeMs: info.mtimeMs, size: info.size, bytes, etag: etagOf(bytes)}
    }
    return fileResult(ctx, page.bytes, page.etag, {
      'Content-Type': CONTENT_TYPES['.html'],
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': ADMIN_CSP,
    })
  }
  const read = new Map<string, {mtimeMs: number; size: number; bytes: Buffer; etag: string}>()
  const files: ViewDef = {
    method: 'GET',
    permission: 'public',
    async handler(ctx) {
      const subpath = ctx.params.subpath ?? ''
      if (subpath === 'index.html') return index(ctx)
      const parts = subpath.split('/')
      // Hidden files (the build stamp) and anything leaving the folder are not part of the app.
      if (parts.some((p) => p === '' || p.startsWith('.') || p.includes('\\'))) throw notFound()
      const file = path.join(build.dir, ...parts)
      const info = await stat(file).catch(() => null)
      if (!info?.isFile()) throw notFound()
      // Read and hashed once per version of the file (a build is a few MB); the ETag comes from
      // the bytes, so it stays right when a build is replaced.
      let entry = read.get(file)
      if (!entry || entry.mtimeMs !== info.mtimeMs || entry.size !== info.size) {
        const bytes = await readFile(file)
        entry = {mtimeMs: info.mtimeMs, size: info.size, bytes, etag: etagOf(bytes)}
        read.set(file, entry)
      }
      return fileResult(ctx, entry.bytes, entry.etag, {
        'Content-Type': contentTypeOf(file),
        'Cache-Control': isHashedName(file) ? LONG_CACHE : SHORT_CACHE,
      })
    },
  }
  return {home: {...files, handler: index}, files}
}

/** Upstream: /v1/admin → 307 /v1/admin/ (made absolute by its web framework, webob). */
const redirectToSlash: ViewDef = {
  method: 'GET',
  permission: 'public',
  async handler(ctx) {
    return {status: 307, headers: {Location: `${urlOrigin(ctx.req)}${ctx.req.rawPath}/`}}
  },
}

export const ADMIN_NOT_BUILT =
  'The Kinto Admin console has not been built: run `npm run build` in kinto-ops (it bundles the kinto-admin package into dist/admin), or set kinto.admin_assets_path to a Kinto Admin build.'

/** The plugin, serving the bundled console from `bundledDir` (another folder in tests). */
export function makeAdminPlugin(bundledDir = BUNDLED_ADMIN_DIR): KintoPlugin {
  return {
    name: 'kinto.plugins.admin',
    includeme: (api) => includeAdmin(api, findAdminBuild(api.runtime.settings, api.baseDir, bundledDir)),
  }
}

export const adminPlugin = makeAdminPlugin()

function includeAdmin(api: PluginApi, build: AdminBuild | null): void {
  const {runtime} = api
  const redirect = new Map([['GET', redirectToSlash]])
  if (!build) {
    runtime.logger.warn({plugin: 'kinto.plugins.admin'}, `${ADMIN_NOT_BUILT} /v1/admin/ answers 404 until then.`)
    const notBuilt: ViewDef = {
      method: 'GET',
      permission: 'public',
      async handler() {
        throw new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, message: ADMIN_NOT_BUILT})
      },
    }
    api.addService({name: 'admin_redirect', pattern: '/admin', views: redirect, noTransaction: true, openapi: false})
    api.addService({name: 'catchall_static', pattern: '/admin/{subpath*}', views: new Map([['GET', notBuilt]]), noTransaction: true, openapi: false})
    return
  }
  runtime.addCapability('admin', {
    description: 'Serves the admin console.',
    url: 'https://github.com/Kinto/kinto-admin/',
    version: build.version,
  })
  const {home, files} = adminViews(build, runtime)
  api.addService({name: 'admin_redirect', pattern: '/admin', views: redirect, noTransaction: true, openapi: false})
  api.addService({name: 'admin_home', pattern: '/admin/', views: new Map([['GET', home]]), noTransaction: true, openapi: false})
  api.addService({name: 'catchall_static', pattern: '/admin/{subpath*}', views: new Map([['GET', files]]), noTransaction: true, openapi: false})
}

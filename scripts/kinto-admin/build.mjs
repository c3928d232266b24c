#!/usr/bin/env node
// Part of `npm run build`: bundles the Kinto Admin console (the `kinto-admin` npm package, a
// React library) with esbuild into dist/admin/, which kinto.plugins.admin serves at /v1/admin/
// with no network at run time (src/lib/server/plugins/admin.ts). The output is the layout of
// upstream's admin build: index.html, VERSION (the kinto-admin release, the `admin` capability's
// version) and hashed assets below assets/. Kept when its stamp names the same inputs.
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..', '..')
const outDir = path.join(root, 'dist', 'admin')
const require = createRequire(import.meta.url)

function fail(message) {
  console.error(`dist/admin: ${message}`)
  process.exit(1)
}

let esbuild
let adminPackageFile
try {
  esbuild = await import('esbuild')
  adminPackageFile = require.resolve('kinto-admin/package.json')
} catch {
  fail('esbuild and kinto-admin (devDependencies) are needed to build the admin console: run npm install first.')
}
const adminVersion = JSON.parse(readFileSync(adminPackageFile, 'utf8')).version

const inputs = ['entry.js', 'server.js', 'build.mjs', 'index.html', 'breadcrumbs.css'].map((f) => readFileSync(path.join(here, f)))
const stamp = createHash('sha256').update(`kinto-admin ${adminVersion} esbuild ${esbuild.version}\n`)
for (const input of inputs) stamp.update(input)
const stampValue = stamp.digest('hex')
const stampFile = path.join(outDir, '.build-stamp')
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stampValue && existsSync(path.join(outDir, 'index.html'))) {
  console.log(`dist/admin: current (kinto-admin ${adminVersion})`)
  process.exit(0)
}

/** The package's stylesheets use webpack's `~package/file` form for files of other packages. */
const tildeImports = {
  name: 'tilde-imports',
  setup(build) {
    build.onResolve({filter: /^~/}, (args) => build.resolve(args.path.slice(1), {kind: args.kind, resolveDir: args.resolveDir}))
  },
}

/**
 * Files the published package imports but does not contain, each with the stand-in we ship; any
 * other missing file fails the build.
 */
const STAND_INS = new Map([['lib/components/Breadcrumbs/style.css', path.join(here, 'breadcrumbs.css')]])
const adminRoot = path.dirname(adminPackageFile)
const missingFiles = {
  name: 'kinto-admin-missing-files',
  setup(build) {
    build.onResolve({filter: /^\.\.?\//}, (args) => {
      const target = path.resolve(args.resolveDir, args.path)
      const inPackage = path.relative(adminRoot, target).split(path.sep).join('/')
      const standIn = STAND_INS.get(inPackage)
      return standIn && !existsSync(target) ? {path: standIn} : undefined
    })
  },
}

/**
 * Fixes to the published package's code, each replacing one exact text that must be found once
 * (a new release without it fails the build, to be looked at again):
 * - after an OpenID sign-in, 1.31.1 remembers the server with the auth type `openid`, which is
 *   not one of the login form's choices (`openid-<provider>`): once signed out, the form had no
 *   method chosen and its button did nothing. Later kinto-admin releases remember the full type.
 */
const SOURCE_FIXES = new Map([
  ['lib/sagas/session.js', [['serversActions.addServer(serverInfo.url, authType)', 'serversActions.addServer(serverInfo.url, fullAuthType)']]],
])
const sourceFixes = {
  name: 'kinto-admin-source-fixes',
  setup(build) {
    build.onLoad({filter: /[\\/]kinto-admin[\\/]lib[\\/].*\.js$/}, (args) => {
      const fixes = SOURCE_FIXES.get(path.relative(adminRoot, args.path).split(path.sep).join('/'))
      if (!fixes) return undefined
      let text = readFileSync(args.path, 'utf8')
      for (const [from, to] of fixes) {
        if (text.split(from).length !== 2) fail(`${args.path} does not hold \`${from}\` once: check the fix in scripts/kinto-admin/build.mjs against this kinto-admin release.`)
        text = text.replace(from, to)
      }
      return {contents: text, loader: 'jsx'}
    })
  },
}

const started = Date.now()
rmSync(outDir, {recursive: true, force: true})
mkdirSync(outDir, {recursive: true})
const result = await esbuild.build({
  entryPoints: {main: path.join(here, 'entry.js')},
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2019'],
  outdir: path.join(outDir, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: {'.js': 'jsx', '.png': 'file', '.svg': 'file', '.gif': 'file', '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file'},
  define: {
    'process.env.NODE_ENV': '"production"',
    'process.env.REACT_APP_VERSION': JSON.stringify(adminVersion),
    'process.env.KINTO_ADMIN_VERSION': JSON.stringify(adminVersion),
    global: 'window',
  },
  plugins: [tildeImports, missingFiles, sourceFixes],
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
}).catch(() => fail('esbuild could not bundle kinto-admin (errors above).'))

const outputs = Object.keys(result.metafile.outputs).map((f) => path.relative(outDir, path.resolve(root, f)).split(path.sep).join('/'))
const script = outputs.find((f) => /^assets\/main-[^/]+\.js$/.test(f))
const style = outputs.find((f) => /^assets\/main-[^/]+\.css$/.test(f))
if (!script || !style) fail(`esbuild produced no main script or stylesheet (${outputs.join(', ')}).`)
// The Kinto logo (which the stylesheet uses) is the page's icon: without one, browsers ask for
// /favicon.ico, a 404 and an error in the console at every load.
const icon = outputs.find((f) => /^assets\/logo-[^/]+\.png$/.test(f))
if (!icon) fail(`esbuild produced no logo for the page's icon (${outputs.join(', ')}).`)
const page = readFileSync(path.join(here, 'index.html'), 'utf8').replaceAll('{{script}}', script).replaceAll('{{style}}', style).replaceAll('{{icon}}', icon)
writeFileSync(path.join(outDir, 'index.html'), page)
writeFileSync(path.join(outDir, 'VERSION'), `${adminVersion}\n`)
writeFileSync(stampFile, stampValue)
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0)
console.log(`dist/admin: kinto-admin ${adminVersion} bundled (${outputs.length} files, ${(bytes / 1048576).toFixed(1)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)`)

/**
 * kinto-ops as an operator gets it: the tree packed by `npm pack` (its build included), the tarball
 * installed with `npm install --omit=dev` into an empty prefix (no devDependencies, no src/, test/ or
 * scripts/ beside it), then a short smoke from the installed bin: --version, init, migrate and start
 * on the embedded engine, an authenticated write and read, the admin console, stop. What only an
 * installed package can get wrong: a file left out of package.json "files", a devDependency imported
 * at run time, a path resolved from the repository.
 *
 * The tree is packed from a copy (the build writes dist/ there, not under the other tests' feet; the
 * admin console and PGlite template of the tree's dist/ come along, so their stamps spare the build
 * redoing them), with NODE_ENV=development and a compiled command whose source is gone planted in
 * its dist/: the package must not depend on either.
 * The install prefers npm's cache (--prefer-offline); when it cannot reach the packages it needs,
 * the tests are SKIPPED with npm's reason, any other install failure fails them.
 */
import {execFile, type ChildProcess} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'
import {freePort, httpRequest, startProcess, stopAll, stopProcess, tempDir, waitFor} from '../helpers/deploy-servers.js'

const run = promisify(execFile)

/** What no build reads: not copied. dist/ is, with what a build left (its admin console and template spare the build redoing them). */
const NOT_COPIED = new Set(['node_modules', '.git', 'test', 'bench', 'config', 'kinto-data', 'coverage', '.tmp'])
/** A command compiled by an earlier build whose source is gone: the build must drop it. */
const STALE_COMMAND = 'dist/commands/zz-removed-command.js'
/** An install that gives no result in this time is taken as one that cannot reach the registry. */
const INSTALL_TIMEOUT_MS = 180_000
/** npm's words for a registry it could not reach (or a package missing from the cache offline). */
const UNREACHABLE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENOTCACHED)\b|network request|request to \S+ failed/

/**
 * The environment of npm and of the installed kinto: the npm configuration (npm_config_*: a
 * registry mirror, the cache) kept, none of the test run's other npm_* or KINTO_* variables.
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (/^npm_config_/i.test(k) || !/^(npm_|kinto_)/i.test(k)) env[k] = v
  return {...env, NO_COLOR: '1', CI: 'true', ...extra}
}

interface Installed {
  /** The installed `kinto` (node_modules/.bin/kinto of the prefix). */
  bin: string
  /** The installed package's folder. */
  root: string
  version: string
}

let installed: Installed | undefined
let skipReason = ''

/** Packs a copy of the tree (npm pack runs the build: `prepare`) and gives the tarball's path. */
async function pack(): Promise<string> {
  const copy = tempDir('pack-tree')
  cpSync(repoRoot, copy, {recursive: true, filter: (src) => path.dirname(src) !== repoRoot || !NOT_COPIED.has(path.basename(src))})
  mkdirSync(path.join(copy, 'dist', 'commands'), {recursive: true})
  writeFileSync(path.join(copy, STALE_COMMAND), "import {Command} from '@oclif/core'\nexport default class Removed extends Command {\n  async run() {}\n}\n")
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'))
  const out = tempDir('pack-out')
  // NODE_ENV=development, as in many a developer's shell: the build must not depend on it.
  await run('npm', ['pack', '--pack-destination', out], {cwd: copy, env: cleanEnv({NODE_ENV: 'development'}), maxBuffer: 64 * 1024 * 1024})
  const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'))
  expect(tarballs).toHaveLength(1)
  return path.join(out, tarballs[0]!)
}

beforeAll(async () => {
  const tarball = await pack()
  const prefix = tempDir('pack-install')
  // One quick retry per request: a registry that cannot be reached costs seconds, not minutes.
  const fetchOptions = ['--fetch-retries=1', '--fetch-retry-mintimeout=1000', '--fetch-retry-maxtimeout=3000', '--fetch-timeout=20000']
  try {
    await run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', ...fetchOptions, '--prefix', prefix, tarball], {
      cwd: prefix,
      env: cleanEnv(),
      maxBuffer: 64 * 1024 * 1024,
      timeout: INSTALL_TIMEOUT_MS,
    })
  } catch (error) {
    const output = `${(error as {stderr?: string}).stderr ?? ''}${(error as Error).message}`
    const unreachable = (error as {killed?: boolean}).killed ? `no result in ${INSTALL_TIMEOUT_MS / 1000} s` : UNREACHABLE.exec(output)?.[0]
    if (!unreachable) throw new Error(`npm install of the packed tarball failed:\n${output}`, {cause: error})
    skipReason = `SKIPPED: npm install could not reach the packages it needs (${unreachable}); the packed package was not tried`
    return
  }
  const root = path.join(prefix, 'node_modules', 'kinto-ops')
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {version: string}
  installed = {bin: path.join(prefix, 'node_modules', '.bin', 'kinto'), root, version: pkg.version}
}, 300_000)

afterAll(() => stopAll())

/** Runs the installed `kinto ARGS` in `cwd`, stdin given then closed. */
async function kinto(args: string[], cwd: string, input = '', env: NodeJS.ProcessEnv = {}): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = execFile(installed!.bin, args, {cwd, env: cleanEnv(env), timeout: 60_000}, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error)
      else resolve({code: error ? (error.code as number) : 0, stdout, stderr})
    })
    child.stdin!.end(input)
  })
}

describe('the packed package, installed with --omit=dev', () => {
  it('runs from its bin: --version, and a command, with no word about TypeScript under NODE_ENV=development', async (ctx) => {
    if (!installed) return ctx.skip(skipReason)
    const r = await kinto(['--version'], path.dirname(installed.bin))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`kinto-ops/${installed.version}`)
    const help = await kinto(['init', '--help'], path.dirname(installed.bin), '', {NODE_ENV: 'development'})
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toContain('kinto init')
    expect(help.stderr).toBe('')
    // the command compiled before its source was removed: neither shipped nor listed
    expect(existsSync(path.join(installed.root, STALE_COMMAND))).toBe(false)
    expect(Object.keys((JSON.parse(readFileSync(path.join(installed.root, 'oclif.manifest.json'), 'utf8')) as {commands: object}).commands)).not.toContain('zz-removed-command')
  })

  it('ships a PGlite template made by the PGlite the install resolves (else every new embedded database runs initdb)', (ctx) => {
    if (!installed) return ctx.skip(skipReason)
    const stamp = JSON.parse(readFileSync(path.join(installed.root, 'dist', 'pglite-template.tar.gz.json'), 'utf8')) as {pglite: string}
    const prefix = path.dirname(path.dirname(installed.root))
    const engine = JSON.parse(readFileSync(path.join(prefix, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8')) as {version: string}
    expect(stamp.pglite).toBe(engine.version)
  })

  it('init, migrate and start on the embedded engine; an authenticated write and read; the admin console; stop', async (ctx) => {
    if (!installed) return ctx.skip(skipReason)
    const dir = tempDir('pack-smoke')
    for (const [args, input] of [
      [['init', '--backend', 'embedded', '--yes'], ''],
      [['migrate'], ''],
      [['create-user', '--username', 'admin', '--password-stdin'], 'installed-pass-1234\n'],
    ] as const) {
      const r = await kinto([...args], dir, input)
      expect(r.code, `kinto ${args.join(' ')}: ${r.stderr}`).toBe(0)
    }

    const port = await freePort()
    const server = startProcess(installed.bin, ['start', '--port', String(port)], {cwd: dir, env: cleanEnv()})
    const base = `http://127.0.0.1:${port}`
    await waitFor(async () => (await httpRequest(`${base}/v1/__heartbeat__`)).status === 200, 30_000, () => `kinto start did not answer its heartbeat:\n${server.output()}`)

    const auth = {Authorization: `Basic ${Buffer.from('admin:installed-pass-1234').toString('base64')}`, 'Content-Type': 'application/json'}
    const put = (url: string, body: unknown) => httpRequest(`${base}${url}`, {method: 'PUT', headers: auth, body: JSON.stringify(body)})
    expect((await put('/v1/buckets/ops', {})).status).toBe(201)
    expect((await put('/v1/buckets/ops/collections/notes', {})).status).toBe(201)
    const written = await put('/v1/buckets/ops/collections/notes/records/first', {data: {text: 'from the installed package'}})
    expect(written.status, written.body).toBe(201)
    const read = await httpRequest(`${base}/v1/buckets/ops/collections/notes/records/first`, {headers: auth})
    expect(read.status).toBe(200)
    expect(JSON.parse(read.body).data).toMatchObject({id: 'first', text: 'from the installed package'})

    const page = await httpRequest(`${base}/v1/admin/`)
    expect(page.status, page.body).toBe(200)
    expect(page.body).toContain('<div id="root">')
    const script = /src="(assets\/[^"]+\.js)"/.exec(page.body)?.[1]
    expect(script, page.body).toBeDefined()
    const asset = await httpRequest(`${base}/v1/admin/${script}`)
    expect(asset.status).toBe(200)
    expect(asset.headers['content-type']).toMatch(/javascript/)
    expect(asset.body.length).toBeGreaterThan(10_000)

    const exited = new Promise<number | null>((resolve) => (server.child as ChildProcess).once('exit', (code) => resolve(code)))
    await stopProcess(server.child)
    expect(await exited, server.output()).toBe(0)
  })
})

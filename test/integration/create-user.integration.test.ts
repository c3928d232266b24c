/**
 * `kinto create-user` as a real process, and the path a new user follows:
 * `kinto init --yes && kinto migrate && kinto create-user -u admin && kinto start` serves the
 * template's plugins (default bucket, admin, accounts) and the admin logs in. Also: upstream's
 * exit codes (51 readonly, 52 no accounts plugin), usage errors without a terminal, an embedded
 * folder held by a running server (the work runs in it, through its control socket), and
 * PostgreSQL when KINTO_TEST_DATABASE_URL is set.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, test} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createBackends} from '../../src/lib/backends.js'
import {basicAuth, iniText} from '../client/helpers.js'
import {cliBin, runCli} from '../helpers/cli.js'
import {createServerDatabase, realServerUrl, serverSkip} from '../helpers/db.js'
import {spawnStart} from '../helpers/ops-servers.js'

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-create-user-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

async function get(url: string, auth?: string, init: RequestInit = {}) {
  const headers: Record<string, string> = {...(init.headers as Record<string, string>)}
  if (auth) headers.Authorization = auth
  if (init.body) headers['Content-Type'] = 'application/json'
  const res = await fetch(url, {...init, headers})
  const text = await res.text()
  return {status: res.status, body: text ? JSON.parse(text) : undefined}
}

describe('a new deployment: init, migrate, create-user, start', () => {
  test('the template serves its plugins and the admin created by create-user is an administrator', async () => {
    const dir = tempDir()
    expect((await runCli(['init', '--yes'], {cwd: dir})).code).toBe(0)
    expect((await runCli(['migrate'], {cwd: dir})).code).toBe(0)
    const created = await runCli(['create-user', '-u', 'admin', '--password-stdin'], {cwd: dir, input: 's3cret-admin\n'})
    expect(created.code, created.stderr).toBe(0)
    expect(created.stderr).toContain("Creating user 'admin'")
    expect(created.stdout).toMatch(/^Account 'admin' created: user id account:admin, in embedded database in .*kinto-data\.\n$/)
    expect(created.stdout + created.stderr).not.toContain('s3cret-admin')

    const server = await spawnStart(['--port', '0'], {}, dir)
    const url = server.url.replace(/\/$/, '')
    try {
      const admin = basicAuth('admin', 's3cret-admin')
      const hello = await get(`${url}/`, admin)
      expect(hello.body.user.id).toBe('account:admin')
      // The template includes the admin console (served from the build), as upstream's.
      expect(Object.keys(hello.body.capabilities).sort()).toEqual(['accounts', 'admin', 'default_bucket', 'permissions_endpoint'])
      // bucket_create_principals = account:admin in the template.
      expect((await get(`${url}/buckets/team`, admin, {method: 'PUT', body: '{}'})).status).toBe(201)
      // Anyone may create an account (account_create_principals = system.Everyone)…
      expect((await get(`${url}/accounts/bob`, undefined, {method: 'PUT', body: JSON.stringify({data: {password: 'bob-pw'}})})).status).toBe(201)
      const bob = basicAuth('bob', 'bob-pw')
      // …that may not create buckets, but has its default bucket.
      expect((await get(`${url}/buckets/bobs`, bob, {method: 'PUT', body: '{}'})).status).toBe(403)
      expect((await get(`${url}/buckets/default/collections/notes/records`, bob, {method: 'POST', body: '{"data":{}}'})).status).toBe(201)
      // The admin reaches bob's account (account_write_principals = account:admin).
      expect((await get(`${url}/accounts/bob`, admin)).body.data.id).toBe('bob')
      expect((await get(`${url}/accounts/admin`, bob)).status).toBe(403)
      const page = await fetch(`${url}/admin/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toMatch(/^<!doctype html>/i)
      // While the server holds the embedded folder, create-user runs in it (its control socket),
      // and the account works at once on that server.
      const live = await runCli(['create-user', '-u', 'carol', '--generate-password', '--json'], {cwd: dir})
      expect(live.code, live.stderr).toBe(0)
      const carol = JSON.parse(live.stdout)
      expect(carol).toMatchObject({username: 'carol', userId: 'account:carol', created: true})
      expect((await get(`${url}/`, basicAuth('carol', carol.password))).body.user.id).toBe('account:carol')
    } finally {
      server.child.kill('SIGTERM')
      expect((await server.exit).code).toBe(0)
    }

    // Run again: the password is replaced, and the stored hash is upstream's form.
    const again = await runCli(['create-user', '-u', 'admin', '--generate-password', '--json'], {cwd: dir})
    expect(again.code, again.stderr).toBe(0)
    const result = JSON.parse(again.stdout)
    expect(result).toMatchObject({username: 'admin', userId: 'account:admin', created: false, administrator: true})
    expect(result.password).toMatch(/^[A-Za-z0-9_-]{24}$/)
    const config = loadConfig(path.join(dir, 'config', 'kinto.ini'), {env: {}})
    const registry = new DatabaseRegistry(config.dir)
    const backends = createBackends(config.settings, {registry, baseDir: config.dir})
    try {
      const stored = await backends.storage.get('account', 'admin', 'admin')
      expect(stored.password).toMatch(/^\$2b\$12\$/)
      expect((await backends.permission.getObjectPermissions('/accounts/admin')).write).toEqual(new Set(['account:admin']))
    } finally {
      await backends.close()
      await registry.closeAll()
    }
  }, 240_000)
})

describe('refusals', () => {
  function ini(settings: Record<string, string>): string {
    const dir = tempDir()
    const file = path.join(dir, 'kinto.ini')
    writeFileSync(file, iniText(settings))
    return file
  }
  const ACCOUNTS = {
    'kinto.includes': 'kinto.plugins.accounts',
    'multiauth.policies': 'account',
    'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
    'kinto.storage_backend': 'kinto.core.storage.postgresql',
    'kinto.storage_url': 'pglite:data',
    'kinto.permission_backend': 'kinto.core.permission.postgresql',
    'kinto.permission_url': 'pglite:data',
  }

  test.each([
    ['readonly → 51 (upstream)', {...ACCOUNTS, 'kinto.readonly': 'true'}, 51, /kinto.readonly is true/],
    ['no accounts plugin → 52 (upstream)', {...ACCOUNTS, 'kinto.includes': 'kinto.plugins.default_bucket'}, 52, /kinto.plugins.accounts is not in kinto.includes/],
    ['memory storage → 1', {...ACCOUNTS, 'kinto.storage_backend': 'kinto.core.storage.memory'}, 1, /would vanish/],
  ])('%s', async (_name, settings, code, message) => {
    const file = ini(settings)
    const r = await runCli(['create-user', '--ini', file, '-u', 'admin', '--password-stdin'], {input: 'pw\n'})
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).toMatch(/Hint: /)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  test.each([
    [['-u', 'admin'], /Missing --password-stdin or --generate-password/],
    [['--generate-password'], /Missing --username NAME/],
    [['-u', 'bad name', '--generate-password'], /'bad name' is not a valid username/],
    [['-u', 'admin', '-p', 'secret'], /not taken on the command line/],
    [['-u', 'admin', '--password-stdin', '--generate-password'], /cannot also be provided|--generate-password/],
  ])('usage errors exit 2 without asking: %j', async (args, message) => {
    const file = ini(ACCOUNTS)
    const r = await runCli(['create-user', '--ini', file, ...args])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  test('an empty password on stdin is refused', async () => {
    const r = await runCli(['create-user', '--ini', ini(ACCOUNTS), '-u', 'admin', '--password-stdin'], {input: '\n'})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no password/)
  })

  test('--password-stdin reads the first line without waiting for the end of stdin; input with no line break is bounded', async () => {
    // stdin stays open (a pipe whose writer goes on): it used to wait for its end, forever.
    const run = (write: (stdin: NodeJS.WritableStream) => void) =>
      new Promise<{code: number | null; stdout: string; stderr: string}>((resolve, reject) => {
        const child = spawn(process.execPath, [cliBin, 'create-user', '--ini', ini(ACCOUNTS), '-u', 'admin', '--password-stdin', '--json'], {
          env: {...process.env, NO_COLOR: '1'},
          stdio: ['pipe', 'pipe', 'pipe'],
        })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.stderr.on('data', (d) => (stderr += d))
        child.stdin.on('error', () => {})
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        child.on('error', reject)
        child.on('close', (code) => {
          clearTimeout(timer)
          resolve({code, stdout, stderr})
        })
        write(child.stdin)
      })
    // a first line (too long for bcrypt: refused before any database) and no end of input
    const line = await run((stdin) => stdin.write(`${'x'.repeat(80)}\nmore`))
    expect(line.code, line.stderr).toBe(2)
    expect(JSON.parse(line.stdout).error.message).toMatch(/longer than 72 bytes/)
    // 100 KiB and no line break, no end of input
    const endless = await run((stdin) => stdin.write('y'.repeat(100 * 1024)))
    expect(endless.code, endless.stderr).toBe(2)
    expect(JSON.parse(endless.stdout).error.message).toBe(
      '--password-stdin: stdin holds more than 64 KiB before its first line break, which is no password.',
    )
  }, 90_000)

  test('a password longer than bcrypt reads (72 bytes) is refused, before the database is opened', async () => {
    // No schema is installed: the refusal comes first. Upstream's bcrypt (pyca 5) fails with a
    // traceback; older versions stored a hash of the first 72 bytes only.
    const r = await runCli(['create-user', '--ini', ini(ACCOUNTS), '-u', 'admin', '--password-stdin'], {input: `${'ü'.repeat(36)}!\n`})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/longer than 72 bytes/)
    expect(r.stderr).not.toMatch(/kinto migrate/)
  })

  test('a schema that is not installed says to run kinto migrate', async () => {
    const r = await runCli(['create-user', '--ini', ini(ACCOUNTS), '-u', 'admin', '--password-stdin'], {input: 'pw\n'})
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/kinto migrate/)
  })
})

describe('a shared login cache that cannot be reached', () => {
  test('the account is written, and the operator is told the old password may work until the cache entry expires', async () => {
    const dir = tempDir()
    // Port 1: nothing listens, the connection is refused at once. The URL's password must not show.
    const init = await runCli(['init', '--yes', '--cache-backend', 'redis', '--cache-url', 'redis://:cache-s3cret@127.0.0.1:1/0'], {cwd: dir})
    expect(init.code, init.stderr).toBe(0)
    expect((await runCli(['migrate'], {cwd: dir})).code).toBe(0)
    const text = await runCli(['create-user', '-u', 'admin', '--password-stdin'], {cwd: dir, input: 'first-pw\n'})
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^Account 'admin' created/)
    expect(text.stderr).toMatch(/Warning: The login cache could not be cleared \(.*127\.0\.0\.1:1.*\): a server that verified the old password in the last 30 s/)
    const json = await runCli(['create-user', '-u', 'admin', '--password-stdin', '--json'], {cwd: dir, input: 'second-pw\n'})
    expect(json.code, json.stderr).toBe(0)
    const result = JSON.parse(json.stdout)
    expect(result).toMatchObject({created: false})
    expect(result.warnings).toHaveLength(1)
    expect(result.warnings[0]).toMatch(/kinto\.account_cache_ttl_seconds/)
    expect(text.stdout + text.stderr + json.stdout + json.stderr).not.toContain('cache-s3cret')
  }, 120_000)
})

describe.skipIf(!realServerUrl)(`on PostgreSQL${serverSkip}`, () => {
  test('creates the account in the server database; a second run replaces the password', async () => {
    const db = await createServerDatabase(realServerUrl!)
    try {
      const registry = new DatabaseRegistry()
      await ensureSchema(registry.get(db.url), ['storage', 'permission', 'cache'])
      await registry.closeAll()
      const dir = tempDir()
      const file = path.join(dir, 'kinto.ini')
      const settings: Record<string, string> = {
        'kinto.includes': 'kinto.plugins.accounts',
        'multiauth.policies': 'account',
        'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
        'kinto.account_write_principals': 'account:admin',
      }
      for (const b of ['storage', 'permission', 'cache']) {
        settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
        settings[`kinto.${b}_url`] = db.url
      }
      writeFileSync(file, iniText(settings))
      const first = await runCli(['create-user', '--ini', file, '-u', 'admin', '--password-stdin', '--json'], {input: 'one\n'})
      expect(first.code, first.stderr).toBe(0)
      expect(JSON.parse(first.stdout)).toMatchObject({created: true, administrator: true})
      const second = await runCli(['create-user', '--ini', file, '-u', 'admin', '--password-stdin', '--json'], {input: 'two\n'})
      expect(JSON.parse(second.stdout)).toMatchObject({created: false})
      // The password read from stdin is never echoed; the database is shown without credentials.
      expect(JSON.parse(first.stdout)).not.toHaveProperty('password')
      expect(JSON.parse(first.stdout).database).not.toMatch(/postgres@/)
      const {verifyPassword} = await import('../../src/lib/accounts/index.js')
      const reg = new DatabaseRegistry()
      const config = loadConfig(file, {env: {}})
      const backends = createBackends(config.settings, {registry: reg})
      try {
        const stored = await backends.storage.get('account', 'admin', 'admin')
        expect(await verifyPassword('two', stored.password)).toBe(true)
        expect(await verifyPassword('one', stored.password)).toBe(false)
      } finally {
        await backends.close()
        await reg.closeAll()
      }
    } finally {
      await db.drop()
    }
  }, 120_000)
})



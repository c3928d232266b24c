/**
 * The embedded engine without downtime: while `kinto start` serves an embedded folder, the
 * maintenance commands send their work through the server's control socket and answer as they do
 * on a stopped folder (same JSON, same exit codes); only the socket's owner may use it; and
 * `pglite:memory:` is served by `start --migrate`.
 */
import {spawn} from 'node:child_process'
import {chmodSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, test} from 'vitest'

import {listRuns} from '../../src/lib/runs/registry.js'
import {runCli} from '../helpers/cli.js'
import {opsIni, spawnStart, type OpsIni} from '../helpers/ops-servers.js'
import {tempFolders} from '../helpers/tmp.js'

const inis: OpsIni[] = []
afterAll(async () => {
  for (const i of inis) await i.cleanup()
})
const tmp = tempFolders('ops-control')

const ACCOUNTS = {
  'kinto.includes': 'kinto.plugins.accounts',
  'multiauth.policies': 'account',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  'kinto.account_create_principals': 'system.Everyone',
}

describe('maintenance commands against a serving embedded folder', () => {
  test('flush-cache, purge-deleted, create-user, db status, check, migrate --check and migrate work through the control socket', async () => {
    const i = await opsIni('pglite', ACCOUNTS)
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    const served: Record<string, unknown> = {}
    try {
      const entry = listRuns(i.ini).find((e) => e.pid === server.pid)!
      expect(entry.control).toMatch(new RegExp(`${server.pid}\\.sock$`))
      expect(statSync(entry.control!).mode & 0o777).toBe(0o600)
      expect(path.dirname(entry.control!)).toBe(path.join(i.dir, '.kinto-run'))

      // a tombstone to purge, written over HTTP while the server runs
      const auth = {authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}`, 'content-type': 'application/json'}
      expect((await fetch(`${server.url}accounts/alice`, {method: 'PUT', headers: auth, body: JSON.stringify({data: {password: 'alice-password'}})})).status).toBe(201)
      expect((await fetch(`${server.url}buckets/b`, {method: 'PUT', headers: auth})).status).toBe(201)
      expect((await fetch(`${server.url}buckets/b/collections/c`, {method: 'PUT', headers: auth})).status).toBe(201)
      for (const id of ['r1', 'r2', 'r3']) {
        expect((await fetch(`${server.url}buckets/b/collections/c/records/${id}`, {method: 'PUT', headers: auth, body: '{"data": {}}'})).status).toBe(201)
        expect((await fetch(`${server.url}buckets/b/collections/c/records/${id}`, {method: 'DELETE', headers: auth})).status).toBe(200)
      }

      const flush = await runCli(['flush-cache', '--ini', i.ini])
      expect(flush.code, flush.stderr).toBe(0)
      expect(flush.stdout).toContain('Cache has been cleared')
      const purge = await runCli(['purge-deleted', 'record', '1', '--ini', i.ini, '--json'])
      expect(purge.code, purge.stderr).toBe(0)
      expect(JSON.parse(purge.stdout)).toMatchObject({deleted: {record: 2}, total: 2, maxRetained: 1})
      const user = await runCli(['create-user', '-u', 'bob', '--password-stdin', '--ini', i.ini, '--json'], {input: 'bob-password\n'})
      expect(user.code, user.stderr).toBe(0)
      expect(JSON.parse(user.stdout)).toMatchObject({username: 'bob', created: true})
      // the account works at once on the running server
      const bob = {authorization: `Basic ${Buffer.from('bob:bob-password').toString('base64')}`}
      expect(((await (await fetch(server.url, {headers: bob})).json()) as {user?: {id: string}}).user?.id).toBe('account:bob')

      const status = await runCli(['db', 'status', '--ini', i.ini, '--json'])
      expect(status.code, status.stderr).toBe(0)
      served.status = JSON.parse(status.stdout)
      const check = await runCli(['check', '--ini', i.ini, '--json'])
      const findings = (JSON.parse(check.stdout) as {findings: Array<{id: string; level: string}>}).findings
      expect(findings.find((f) => f.id === 'db-connect')).toMatchObject({level: 'ok'})
      const pending = await runCli(['migrate', '--check', '--ini', i.ini, '--json'])
      expect(pending.code, pending.stderr).toBe(0)
      served.check = JSON.parse(pending.stdout)
      const apply = await runCli(['migrate', '--ini', i.ini])
      expect(apply.code, apply.stderr).toBe(0)
      expect(apply.stdout).toContain('storage: up to date')
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
    expect(readdirSync(path.join(i.dir, '.kinto-run'))).toEqual([])
    // the same answers as on the stopped folder
    expect(JSON.parse((await runCli(['db', 'status', '--ini', i.ini, '--json'])).stdout)).toEqual(served.status)
    expect(JSON.parse((await runCli(['migrate', '--check', '--ini', i.ini, '--json'])).stdout)).toEqual(served.check)
  }, 300_000)

  test('only the owner of the server process may use its control socket', async (ctx) => {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      // Without root we cannot run a client as another user; the socket's mode (0600) is checked above.
      return ctx.skip('SKIPPED: needs root to run a client as another user')
    }
    const i = await opsIni('pglite')
    inis.push(i)
    // Let another user reach the folder: only the socket's own mode keeps it out.
    chmodSync(i.dir, 0o755)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    try {
      const socket = listRuns(i.ini).find((e) => e.pid === server.pid)!.control!
      const probe = `require('node:net').createConnection(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`
      const other = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', probe], {uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe']})
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.on('error', reject)
        child.on('close', () => resolve(out.trim()))
      })
      expect(other).toBe('EACCES')
      // the owner can
      expect((await runCli(['db', 'status', '--ini', i.ini])).code).toBe(0)
    } finally {
      await server.stop()
    }
  }, 180_000)
})

describe('a serving embedded folder whose server is stopped (SIGSTOP, Ctrl-Z)', () => {
  test('the commands say so within seconds (they waited 10 minutes); once it goes on, they work', async () => {
    const i = await opsIni('pglite', ACCOUNTS)
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    try {
      process.kill(server.pid!, 'SIGSTOP')
      try {
        for (const args of [['db', 'status'], ['backup', '-o', path.join(i.dir, 'b.ndjson.gz')]]) {
          const started = Date.now()
          const r = await runCli([...args, '--ini', i.ini, '--json'], {timeoutMs: 60_000})
          expect(r.code, r.stdout + r.stderr).toBe(1)
          expect(JSON.parse(r.stdout).error).toEqual({
            code: 'KINTO_CONTROL_FAILED',
            message: `The server holding the embedded folder (pid ${server.pid}) is stopped (SIGSTOP, or Ctrl-Z in its terminal), so it cannot answer.`,
            hint: `Let it go on (kill -CONT ${server.pid}, or fg in its terminal), then run this again.`,
          })
          expect(Date.now() - started).toBeLessThan(30_000)
        }
        expect(readdirSync(i.dir).filter((f) => f.startsWith('b.ndjson.gz'))).toEqual([])
      } finally {
        process.kill(server.pid!, 'SIGCONT')
      }
      const again = await runCli(['db', 'status', '--ini', i.ini, '--json'])
      expect(again.code, again.stderr).toBe(0)
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
  }, 180_000)
})

describe('pglite:memory:', () => {
  test('`kinto start --migrate` serves an in-memory embedded database (migrated on the connection it serves from)', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    const lines = ['[app:main]', 'kinto.userid_hmac_secret = memory-tests', 'kinto.bucket_create_principals = system.Everyone']
    for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:memory:`)
    writeFileSync(ini, `${lines.join('\n')}\n`)
    const server = await spawnStart(['--ini', ini, '--port', '0', '--migrate'])
    try {
      expect((await fetch(`${server.url}__heartbeat__`)).status).toBe(200)
      const auth = {authorization: `Basic ${Buffer.from('a:b').toString('base64')}`}
      expect((await fetch(`${server.url}buckets/mem`, {method: 'PUT', headers: auth})).status).toBe(201)
      expect((await fetch(`${server.url}buckets/mem`, {headers: auth})).status).toBe(200)
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
  }, 180_000)

  test('the commands say what they can do on it (nothing): migrate skips it, --check passes, flush-cache and purge-deleted say why; start without --migrate names the flag', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    const lines = ['[app:main]', 'kinto.userid_hmac_secret = memory-tests']
    for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:memory:`)
    writeFileSync(ini, `${lines.join('\n')}\n`)
    const skipped = 'in-memory embedded database: it starts empty in each process; `kinto start --migrate` installs the schema in the server'
    // Each migrated a database of its own that ended with it, and --check always said "pending" (3).
    for (const mode of [[], ['--check'], ['--dry-run']]) {
      const r = await runCli(['migrate', ...mode, '--ini', ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      const out = JSON.parse(r.stdout)
      expect(out.pending).toBe(false)
      expect(out.backends.map((b: {skipped?: string}) => b.skipped)).toEqual([skipped, skipped, skipped])
    }
    // db status read its own empty database and said "not installed, pending" without a word on why.
    const status = await runCli(['db', 'status', '--ini', ini, '--json'])
    expect(status.code, status.stderr).toBe(0)
    for (const b of JSON.parse(status.stdout).backends) {
      expect(b.notes[0]).toBe('in-memory embedded database: this command opened a new, empty one of its own; each process (a server) has its own, which kinto start --migrate installs')
    }
    // They said "Run `kinto migrate` first", which cannot help.
    const flushed = await runCli(['flush-cache', '--ini', ini, '--json'])
    expect(flushed.code, flushed.stderr).toBe(0)
    expect(JSON.parse(flushed.stdout)).toMatchObject({flushed: false, note: expect.stringContaining('in-memory embedded cache (pglite:memory:) lives inside each server process')})
    const purged = await runCli(['purge-deleted', 'record', '1', '--ini', ini, '--json'])
    expect(purged.code, purged.stderr).toBe(0)
    expect(JSON.parse(purged.stdout)).toMatchObject({total: 0, note: expect.stringContaining('in-memory embedded storage (pglite:memory:) lives inside each server process')})
    const started = await runCli(['start', '--ini', ini, '--port', '0'])
    expect(started.code).toBe(1)
    expect(started.stderr).toContain(`Hint: An in-memory embedded database (pglite:memory:) starts empty: serve it with \`kinto start --migrate --ini ${ini}\`.`)
  }, 180_000)
})

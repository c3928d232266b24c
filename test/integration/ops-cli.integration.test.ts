/**
 * The ops commands as subprocesses, without a load: lossless toggle edits and their JSON, usage
 * errors (exit 2), an ini that does not load (left untouched), status and wait-ready, flush-cache
 * and purge-deleted on every kind of backend, and the embedded database held by a running server.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'
import {afterAll, describe, expect, test} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {startServer} from '../../src/lib/server/start.js'
import {iniText} from '../client/helpers.js'
import {runCli} from '../helpers/cli.js'
import {createPgliteDatabase, dbKind} from '../helpers/db.js'
import {opsIni, spawnStart, type OpsIni} from '../helpers/ops-servers.js'

const inis: OpsIni[] = []
const tmp: string[] = []
afterAll(async () => {
  for (const i of inis) await i.cleanup()
  for (const d of tmp) rmSync(d, {recursive: true, force: true})
})

const ORIGINAL = `# Production settings
[app:main]
use = egg:kinto
; the backoff is set during upgrades
kinto.userid_hmac_secret = s3cret
kinto.readonly = false   
kinto.paginate_by = 50

[server:main]
use = egg:waitress#main
port = %(http_port)s
`

function iniFile(text = ORIGINAL): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-cli-'))
  tmp.push(dir)
  const file = path.join(dir, 'kinto.ini')
  writeFileSync(file, text)
  return file
}

describe('toggle commands edit the ini losslessly', () => {
  test('backoff with --for and --percentage, then off: only the toggle lines change', async () => {
    const ini = iniFile()
    const on = await runCli(['backoff', '60', '--percentage', '20', '--for', '2h', '--ini', ini, '--json'])
    expect(on.code, on.stderr).toBe(0)
    const result = JSON.parse(on.stdout)
    expect(result).toMatchObject({toggle: 'backoff', state: 'on', seconds: 60, percentage: 20, overriddenBy: []})
    expect(result.reload).toMatchObject({requested: true, servers: [], ok: true})
    const until = Date.parse(result.until)
    expect(until - Date.now()).toBeGreaterThan(7100_000)
    expect(until - Date.now()).toBeLessThan(7300_000)
    expect(result.changes.map((c: {key: string}) => c.key)).toEqual(['kinto.backoff', 'kinto.backoff_percentage', 'kinto.backoff_expires'])
    const text = readFileSync(ini, 'utf8')
    expect(text).toBe(
      ORIGINAL.replace('kinto.paginate_by = 50\n', `kinto.paginate_by = 50\nkinto.backoff = 60\nkinto.backoff_percentage = 20\nkinto.backoff_expires = ${result.until}\n`),
    )
    expect(loadConfig(ini, {env: {}}).settings).toMatchObject({backoff: 60, backoff_percentage: 20})

    const off = await runCli(['backoff', 'off', '--ini', ini])
    expect(off.code, off.stderr).toBe(0)
    expect(off.stdout).toMatch(/kinto\.backoff removed \(was 60\)/)
    expect(off.stdout).toMatch(/No running server uses this ini/)
    expect(readFileSync(ini, 'utf8')).toBe(ORIGINAL)
  }, 60_000)

  test('readonly keeps its line (as false) when turned off; maintenance adds and removes its keys', async () => {
    const ini = iniFile()
    expect((await runCli(['readonly', 'on', '--ini', ini])).code).toBe(0)
    expect(readFileSync(ini, 'utf8')).toBe(ORIGINAL.replace('kinto.readonly = false   ', 'kinto.readonly = true'))
    expect((await runCli(['readonly', 'off', '--ini', ini])).code).toBe(0)
    expect(readFileSync(ini, 'utf8')).toBe(ORIGINAL.replace('kinto.readonly = false   ', 'kinto.readonly = false'))
    const m = await runCli(['maintenance', 'on', '--for', '15m', '--ini', ini, '--json'])
    expect(m.code, m.stderr).toBe(0)
    expect(readFileSync(ini, 'utf8')).toMatch(/kinto\.maintenance = true\nkinto\.maintenance_expires = \d{4}-\d\d-\d\dT[\d:]+Z\n/)
    expect((await runCli(['maintenance', 'off', '--ini', ini])).code).toBe(0)
    expect(readFileSync(ini, 'utf8')).toBe(ORIGINAL.replace('kinto.readonly = false   ', 'kinto.readonly = false'))
  }, 60_000)

  test('usage errors exit 2 and change nothing; an ini that does not load exits 1 untouched', async () => {
    const ini = iniFile()
    for (const args of [
      ['backoff', 'soon'],
      ['backoff', '0'],
      ['backoff', 'off', '--for', '1h'],
      ['backoff', '10', '--for', 'tomorrow'],
      ['backoff', '10', '--percentage', '101'],
      ['readonly', 'maybe'],
      ['maintenance', 'off', '--for', '1h'],
      // Beyond 100 years: numbers lose digits, dates cannot be written.
      ['backoff', '99999999999999999'],
      ['backoff', '10', '--for', '99999999999999999h'],
      ['readonly', 'on', '--for', '300000000d'],
    ]) {
      const r = await runCli([...args, '--ini', ini])
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/^Error: /)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
    expect(readFileSync(ini, 'utf8')).toBe(ORIGINAL)
    const broken = iniFile(ORIGINAL.replace('kinto.paginate_by = 50', 'kinto.paginate_by = many'))
    const r = await runCli(['backoff', '10', '--ini', broken])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/paginate_by/)
    expect(readFileSync(broken, 'utf8')).toBe(ORIGINAL.replace('kinto.paginate_by = 50', 'kinto.paginate_by = many'))
  }, 120_000)
})

describe('status and wait-ready', () => {
  test('status shows the ini toggles; an unreachable --url exits 1; wait-ready times out with what it saw', async () => {
    const ini = iniFile()
    await runCli(['backoff', '30', '--for', '1h', '--ini', ini])
    const s = await runCli(['status', '--ini', ini, '--json'])
    expect(s.code, s.stderr).toBe(0)
    const status = JSON.parse(s.stdout)
    expect(status.configured.backoff).toMatchObject({set: true, active: true, seconds: 30, expired: false})
    expect(status.configured.readonly).toMatchObject({set: false, active: false})
    expect(status.servers).toEqual([])
    const down = await runCli(['status', '--ini', ini, '--url', 'http://127.0.0.1:9/v1/', '--timeout', '2'])
    expect(down.code).toBe(1)
    expect(down.stdout).toMatch(/unreachable: connection refused/)
    const wait = await runCli(['wait-ready', '--url', 'http://127.0.0.1:9', '--timeout', '1'])
    expect(wait.code).toBe(1)
    expect(wait.stderr).toMatch(/http:\/\/127\.0\.0\.1:9\/v1\/ was not ready after 1(\.\d)? s \(\d+ attempts?; last: connection refused\)/)
    const bad = await runCli(['wait-ready', '--url', 'ftp://x'])
    expect(bad.code).toBe(2)
  }, 60_000)

  test('wait-ready and status against a running server (found through the run registry)', async () => {
    const i = await opsIni('memory')
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    try {
      const w = await runCli(['wait-ready', '--ini', i.ini, '--json'])
      expect(w.code, w.stderr).toBe(0)
      expect(JSON.parse(w.stdout)).toMatchObject({url: server.url, ready: true, heartbeat: {storage: true, permission: true, cache: true}})
      const s = await runCli(['status', '--ini', i.ini, '--url', server.url, '--json'])
      expect(s.code, s.stderr).toBe(0)
      const status = JSON.parse(s.stdout)
      expect(status.servers).toEqual([
        expect.objectContaining({pid: server.pid, role: 'server', url: server.url, current: true, needRestart: [], backoff: null, readonly: false, maintenance: false}),
      ])
      expect(status.remote).toMatchObject({reachable: true, healthy: true, readonly: false, maintenance: false, backoff: null})
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
  }, 90_000)
})

describe('two operators at once', () => {
  test('concurrent toggles on one ini: no edit is lost, each is reported as taken by the running server', async () => {
    const i = await opsIni('memory')
    inis.push(i)
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    try {
      for (let round = 0; round < 3; round++) {
        const on = round % 2 === 0
        const runs = await Promise.all([
          runCli(['backoff', on ? String(10 + round) : 'off', '--ini', i.ini, '--json']),
          runCli(['readonly', on ? 'on' : 'off', '--ini', i.ini, '--json']),
          runCli(['maintenance', on ? 'on' : 'off', '--ini', i.ini, '--json']),
        ])
        for (const r of runs) {
          expect(r.code, r.stdout + r.stderr).toBe(0)
          expect(JSON.parse(r.stdout).reload.servers).toEqual([expect.objectContaining({pid: server.pid, outcome: 'reloaded'})])
        }
        const text = readFileSync(i.ini, 'utf8')
        expect(text.includes(`kinto.backoff = ${10 + round}`)).toBe(on)
        expect(text.includes('kinto.readonly = true')).toBe(on)
        expect(text.includes('kinto.maintenance = true')).toBe(on)
      }
    } finally {
      await server.stop()
    }
  }, 120_000)
})

describe('flush-cache and purge-deleted', () => {
  test('memory backends: nothing reachable from here, said so, exit 0', async () => {
    const i = await opsIni('memory')
    inis.push(i)
    const f = await runCli(['flush-cache', '--ini', i.ini])
    expect(f.code, f.stderr).toBe(0)
    expect(f.stdout).toMatch(/Nothing flushed: the memory cache lives inside each server process/)
    const p = await runCli(['purge-deleted', 'record', '10', '--ini', i.ini, '--json'])
    expect(p.code, p.stderr).toBe(0)
    expect(JSON.parse(p.stdout)).toMatchObject({total: 0, note: expect.stringMatching(/memory storage/)})
    expect((await runCli(['purge-deleted', 'record', '--ini', i.ini])).code).toBe(2)
    expect((await runCli(['purge-deleted', 'record', 'many', '--ini', i.ini])).code).toBe(2)
  }, 60_000)

  test(`${dbKind}: flush-cache empties the cache; purge-deleted keeps the newest N tombstones per list`, async () => {
    const i = await opsIni(dbKind === 'postgresql' ? 'postgresql' : 'pglite')
    inis.push(i)
    // Tombstones: 5 in one collection, 2 in another (through the API, in process).
    const server = await startServer(loadConfig(i.ini, {env: {}}), {port: 0, logger: pino({level: 'silent'})})
    const auth = {Authorization: 'Basic ' + Buffer.from('u:p').toString('base64'), 'Content-Type': 'application/json'}
    const call = (method: string, p: string) => fetch(`${server.url}${p.slice(1)}`, {method, headers: auth, body: method === 'DELETE' ? undefined : '{}'})
    await call('PUT', '/buckets/b')
    for (const [c, n] of [['c1', 5], ['c2', 2]] as const) {
      await call('PUT', `/buckets/b/collections/${c}`)
      for (let k = 0; k < n; k++) {
        await call('PUT', `/buckets/b/collections/${c}/records/r${k}`)
        await call('DELETE', `/buckets/b/collections/${c}/records/r${k}`)
      }
    }
    await server.app.kinto.backends.cache.set('some-key', 'value', 3600)
    await server.close()

    const f = await runCli(['flush-cache', '--ini', i.ini])
    expect(f.code, f.stderr).toBe(0)
    expect(f.stdout).toMatch(/Cache has been cleared/)
    // a number the database cannot compare was an unexpected failure (out of range for bigint)
    const huge = await runCli(['purge-deleted', 'record', '100000000000000000000', '--ini', i.ini, '--json'])
    expect(huge.code, huge.stdout).toBe(2)
    expect(JSON.parse(huge.stdout).error.message).toBe('max-retained: 100000000000000000000 is too large (at most 9007199254740991).')
    const p = await runCli(['purge-deleted', 'record', 'group', '1', '--ini', i.ini, '--json'])
    expect(p.code, p.stderr).toBe(0)
    expect(JSON.parse(p.stdout)).toMatchObject({deleted: {record: 5, group: 0}, total: 5, maxRetained: 1})

    const registry = new DatabaseRegistry(i.dir)
    try {
      const db = registry.get(i.db!.url)
      const tombs = await db.query<{parent_id: string; n: number}>(
        `SELECT parent_id, COUNT(*)::int AS n FROM objects WHERE deleted AND resource_name = 'record' GROUP BY parent_id ORDER BY parent_id`,
      )
      expect(tombs.rows).toEqual([
        {parent_id: '/buckets/b/collections/c1', n: 1},
        {parent_id: '/buckets/b/collections/c2', n: 1},
      ])
      expect((await db.query<{n: number}>('SELECT COUNT(*)::int AS n FROM cache')).rows[0].n).toBe(0)
    } finally {
      await registry.closeAll()
    }
  }, 120_000)

  test('an embedded database held by a running server without a control channel: migrate, flush-cache and db status fail at once naming its pid (exit 4)', async () => {
    const i = await opsIni('pglite')
    inis.push(i)
    // No run registry (its folder cannot be made: the ini is a file), so no control socket to send the work to.
    const env = {KINTO_RUN_DIR: path.join(i.ini, 'runs')}
    const server = await spawnStart(['--ini', i.ini, '--port', '0'], env)
    try {
      for (const args of [['migrate'], ['migrate', '--check'], ['flush-cache'], ['db', 'status']]) {
        // Refused at once: a command still running after 15 s is killed (code null).
        const r = await runCli([...args, '--ini', i.ini], {env, timeoutMs: 15_000})
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(4)
        expect(r.stderr + r.stdout).toContain(`is open in a running server (process ${server.pid}, kinto start on ${i.ini})`)
      }
      const s = await runCli(['status', '--ini', i.ini, '--json'], {env})
      expect(JSON.parse(s.stdout).embedded).toEqual([{folder: expect.any(String), heldBy: {pid: server.pid, command: 'kinto start'}}])
      // a second server on the same folder refuses to start, naming the first
      const second = await runCli(['start', '--ini', i.ini, '--port', '0'], {env})
      expect(second.code).toBe(4)
      expect(second.stderr).toContain(`process ${server.pid}`)
      expect(second.stderr).toContain('Error: The embedded database in ')
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
    // once it stopped, the folder is free again
    const m = await runCli(['migrate', '--check', '--ini', i.ini])
    expect(m.code, m.stderr).toBe(0)
  }, 180_000)

  test('kinto start --migrate installs the schema of an empty embedded database, then serves it', async () => {
    const db = createPgliteDatabase()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-cli-'))
    tmp.push(dir)
    inis.push({dir, ini: '', db, cleanup: () => db.drop()})
    const file = path.join(dir, 'kinto.ini')
    const settings: Record<string, string> = {}
    for (const b of ['storage', 'permission', 'cache']) {
      settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
      settings[`kinto.${b}_url`] = db.url
    }
    writeFileSync(file, iniText(settings))
    const server = await spawnStart(['--ini', file, '--port', '0', '--migrate'])
    try {
      const hb = await fetch(`${server.url}__heartbeat__`)
      expect(await hb.json()).toEqual({storage: true, permission: true, cache: true})
      const put = await fetch(`${server.url}buckets/b`, {method: 'PUT', headers: {Authorization: 'Basic ' + Buffer.from('u:p').toString('base64'), 'Content-Type': 'application/json'}, body: '{}'})
      expect(put.status).toBe(201)
      expect(server.output()).toMatch(/Migrated the storage schema .* to version 26/)
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
  }, 120_000)
})

/**
 * Read-only mode over a role made by `kinto db grant-readonly` (real PostgreSQL only: PGlite has
 * one role): reads work, including a list never written (upstream answers 503 there because it
 * stores a timestamp on read), writes are answered as upstream (405 errno 115), the heartbeat is
 * 200 (the cache still writes: granted), and nothing in the logs is a database permission error.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import pino from 'pino'
import {afterAll, describe, expect, test} from 'vitest'

import {loadConfig} from '../../src/lib/config/index.js'
import {startServer} from '../../src/lib/server/start.js'
import {backendSettings, iniText} from '../client/helpers.js'
import {runCli} from '../helpers/cli.js'
import {realServerUrl, serverSkip, type TestDatabase} from '../helpers/db.js'
import {spawnStart, type Started} from '../helpers/ops-servers.js'

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function admin(sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({connectionString: realServerUrl})
  await c.connect()
  try {
    return await c.query(sql)
  } finally {
    await c.end()
  }
}

async function put2(base: string, p: string, auth: string): Promise<number> {
  const res = await fetch(`${base}${p}`, {method: 'PUT', headers: {Authorization: auth, 'Content-Type': 'application/json'}, body: '{}'})
  await res.arrayBuffer()
  return res.status
}

describe.skipIf(!realServerUrl)(`readonly over a read-only role (PostgreSQL)${serverSkip}`, () => {
  test('reads served (lists never written too), writes 405 errno 115, heartbeat 200, no permission error logged', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-ro-'))
    cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
    const {settings, db} = await backendSettings('postgresql')
    const database = db as TestDatabase
    const role = `kinto_ro_${randomBytes(4).toString('hex')}`
    cleanups.push(() => admin(`DROP ROLE IF EXISTS ${role}`))
    cleanups.push(() => database.drop())

    // Data written through a writable server.
    const writable = path.join(dir, 'writable.ini')
    writeFileSync(writable, iniText({'kinto.userid_hmac_secret': 'ro-tests', ...settings}))
    const w = await startServer(loadConfig(writable, {env: {}}), {port: 0, logger: pino({level: 'silent'})})
    const auth = 'Basic ' + Buffer.from('reader:pw').toString('base64')
    const put = (p: string, body = '{}') => fetch(`${w.url}${p}`, {method: 'PUT', headers: {Authorization: auth, 'Content-Type': 'application/json'}, body})
    expect((await put('buckets/b', JSON.stringify({permissions: {read: ['system.Everyone']}}))).status).toBe(201)
    expect((await put('buckets/b/collections/c')).status).toBe(201)
    expect((await put('buckets/b/collections/never-listed')).status).toBe(201)
    expect((await put('buckets/b/collections/c/records/r1', JSON.stringify({data: {n: 1}}))).status).toBe(201)
    await w.close()

    const grant = await runCli(['db', 'grant-readonly', '--ini', writable, '--role', role, '--password-stdin', '--admin-url', realServerUrl!], {input: 'ro-password\n'})
    expect(grant.code, grant.stderr).toBe(0)

    const roUrl = new URL(database.url)
    roUrl.username = role
    roUrl.password = 'ro-password'
    const readonly = path.join(dir, 'readonly.ini')
    const roSettings: Record<string, string> = {'kinto.userid_hmac_secret': 'ro-tests', 'kinto.readonly': 'true'}
    for (const b of ['storage', 'permission', 'cache']) {
      roSettings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
      roSettings[`kinto.${b}_url`] = roUrl.toString()
    }
    writeFileSync(readonly, iniText(roSettings))
    const server: Started = await spawnStart(['--ini', readonly, '--port', '0'])
    let logged = ''
    try {
      const get = async (p: string, who: string | null = auth) => {
        const res = await fetch(`${server.url}${p}`, {headers: who ? {Authorization: who} : {}})
        return {status: res.status, body: (await res.json()) as any}
      }
      const hello = await get('')
      expect(hello.body.settings.readonly).toBe(true)
      expect((await get('buckets/b/collections/c/records')).body.data).toEqual([expect.objectContaining({id: 'r1', n: 1})])
      const never = await get('buckets/b/collections/never-listed/records')
      expect(never).toEqual({status: 200, body: {data: []}})
      expect((await get('buckets/b/collections/never-listed/records')).status).toBe(200)
      expect((await get('buckets/b/collections', null)).status).toBe(200)
      expect((await get('buckets')).status).toBe(200)
      const hb = await get('__heartbeat__', null)
      expect(hb).toEqual({status: 200, body: {storage: true, permission: true, cache: true}})

      for (const [method, p] of [
        ['PUT', 'buckets/b/collections/c/records/r2'],
        ['DELETE', 'buckets/b/collections/c/records/r1'],
        ['POST', 'batch'],
        ['PATCH', 'buckets/b'],
      ]) {
        const res = await fetch(`${server.url}${p}`, {method, headers: {Authorization: auth, 'Content-Type': 'application/json'}, body: method === 'DELETE' ? undefined : '{}'})
        expect(res.status, `${method} ${p}`).toBe(405)
        expect(((await res.json()) as {errno: number}).errno).toBe(115)
      }
      // nothing was written by the reads
      const c = new pg.Client({connectionString: database.url})
      await c.connect()
      try {
        const ts = await c.query(`SELECT COUNT(*)::int AS n FROM timestamps WHERE parent_id = '/buckets/b/collections/never-listed'`)
        expect(ts.rows[0].n).toBe(0)
      } finally {
        await c.end()
      }

      const status = await runCli(['status', '--ini', readonly, '--url', server.url, '--json'])
      expect(status.code, status.stderr).toBe(0)
      expect(JSON.parse(status.stdout).remote).toMatchObject({readonly: true, maintenance: false, healthy: true})
      logged = server.output()

      // The role really cannot write: with readonly switched off live, a write fails in the database.
      const off = await runCli(['readonly', 'off', '--ini', readonly])
      expect(off.code, off.stderr).toBe(0)
      const denied = await put2(server.url, 'buckets/b/collections/c/records/r3', auth)
      expect(denied).toBe(503)
    } finally {
      expect((await server.stop()).code).toBe(0)
    }
    expect(logged).not.toMatch(/permission denied|42501|must be owner|insufficient privilege/i)
    expect(logged).not.toMatch(/"level":50|ERROR/)
    expect(server.output()).toMatch(/permission denied/i)
    expect(server.output()).not.toContain('ro-password')
  }, 180_000)
})

/**
 * `kinto start` behind PgBouncer, as docs/scaling.md advises past a few hundred connections.
 * PgBouncer accepts only the startup parameters it tracks (client_encoding, DateStyle, TimeZone,
 * standard_conforming_strings, application_name) and refuses a connection that sends another, such
 * as statement_timeout: the runtime must still connect, and its statement timeout still hold (in
 * session pooling, where a session's settings stay with it).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {chownSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {iniText} from '../client/helpers.js'
import {findBinary, waitForPort} from '../helpers/deploy-servers.js'
import {AUTH} from '../helpers/fault-load.js'
import {clusterUnavailable, createCluster, freePort, type PgCluster} from '../helpers/pg-cluster.js'
import {spawnStart, type Started} from '../helpers/ops-servers.js'

const pgbouncer = findBinary('pgbouncer')
const skip = clusterUnavailable() ?? (pgbouncer ? null : 'pgbouncer is not installed (Debian package pgbouncer)')

const asRoot = process.getuid?.() === 0

/** A private PgBouncer in front of the cluster's database `kinto` (refuses to run as root: runs as postgres). */
async function startPgbouncer(cluster: PgCluster, mode: 'session' | 'transaction'): Promise<{port: number; stop(): Promise<void>}> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pgbouncer-'))
  const port = await freePort()
  writeFileSync(path.join(dir, 'users.txt'), '"kinto" ""\n')
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `kinto = host=127.0.0.1 port=${cluster.port} dbname=kinto`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      'max_client_conn = 200',
      'default_pool_size = 20',
      '',
    ].join('\n'),
  )
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    for (const f of ['', 'users.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), uid, gid)
  }
  const args = [path.join(dir, 'pgbouncer.ini')]
  const child: ChildProcess = asRoot ? spawn('runuser', ['-u', 'postgres', '--', pgbouncer!, ...args]) : spawn(pgbouncer!, args)
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  await waitForPort(port, 10_000, () => `pgbouncer: ${output}`)
  return {
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        // runuser passes the signal on to pgbouncer.
        child.kill('SIGTERM')
        await gone
      }
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

describe.skipIf(skip !== null).each(['session', 'transaction'] as const)(`kinto start behind PgBouncer (%s pooling)${skip ? ` (SKIPPED: ${skip})` : ''}`, (mode) => {
  let cluster: PgCluster
  let bouncer: Awaited<ReturnType<typeof startPgbouncer>>
  let server: Started
  let dir: string
  beforeAll(async () => {
    cluster = await createCluster()
    await cluster.sql('CREATE ROLE kinto LOGIN')
    await cluster.sql(`CREATE DATABASE kinto OWNER kinto ENCODING 'UTF8' TEMPLATE template0`)
    await cluster.sql(`ALTER DATABASE kinto SET TIMEZONE TO 'UTC'`)
    const registry = new DatabaseRegistry()
    try {
      await ensureSchema(registry.get(`postgresql://kinto@127.0.0.1:${cluster.port}/kinto`), ['storage', 'permission', 'cache'])
    } finally {
      await registry.closeAll()
    }
    bouncer = await startPgbouncer(cluster, mode)
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-pgbouncer-ini-'))
    const settings: Record<string, string> = {'kinto.userid_hmac_secret': 'pgbouncer-tests', 'multiauth.policies': 'basicauth'}
    for (const b of ['storage', 'permission', 'cache']) {
      settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
      settings[`kinto.${b}_url`] = `postgresql://kinto@127.0.0.1:${bouncer.port}/kinto`
      // The statement timeout is what PgBouncer refused as a startup parameter. The connect
      // timeout is long, so that the driver's own bound (statement + connect) cannot pass for it.
      settings[`kinto.${b}_statement_timeout`] = '2'
      settings[`kinto.${b}_connect_timeout`] = '20'
    }
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, iniText(settings))
    server = await spawnStart(['--ini', ini, '--port', '0'])
  }, 120_000)
  afterAll(async () => {
    await server?.stop().catch(() => {})
    await bouncer?.stop().catch(() => {})
    await cluster?.destroy()
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  const call = (method: string, p: string, body?: unknown) =>
    fetch(server.url + p, {method, headers: {Authorization: AUTH, 'Content-Type': 'application/json'}, body: body ? JSON.stringify(body) : undefined})

  it('serves reads and writes', async () => {
    expect((await call('PUT', 'buckets/b', {})).status).toBe(201)
    expect((await call('PUT', 'buckets/b/collections/c', {})).status).toBe(201)
    for (let i = 0; i < 5; i++) expect((await call('PUT', `buckets/b/collections/c/records/r${i}`, {data: {i}})).status).toBe(201)
    const list = await call('GET', 'buckets/b/collections/c/records')
    expect(list.status).toBe(200)
    expect(((await list.json()) as {data: unknown[]}).data).toHaveLength(5)
    expect((await fetch(server.url + '__heartbeat__')).status).toBe(200)
  })

  // In transaction pooling a session's settings stay on whichever server connection ran them.
  if (mode === 'session') {
    it('a statement stuck on a lock is cancelled at the statement timeout', async () => {
      const locker = new pg.Client({connectionString: cluster.url('kinto')})
      await locker.connect()
      try {
        await locker.query('BEGIN')
        await locker.query('LOCK TABLE objects IN ACCESS EXCLUSIVE MODE')
        const t0 = Date.now()
        const res = await call('PUT', 'buckets/b/collections/c/records/stuck', {data: {}})
        const took = Date.now() - t0
        expect(res.status).toBe(503)
        expect(((await res.json()) as {errno: number}).errno).toBe(201)
        // PostgreSQL cancelled it (2 s), not the driver giving up on the connection (22 s).
        expect(took).toBeLessThan(12_000)
      } finally {
        await locker.query('ROLLBACK').catch(() => {})
        await locker.end()
      }
      expect((await call('PUT', 'buckets/b/collections/c/records/after', {data: {}})).status).toBe(201)
    })
  }
})

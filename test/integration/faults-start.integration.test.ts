/**
 * `kinto start` while its PostgreSQL is down (a private cluster, test/helpers/pg-cluster.ts): it
 * refuses to start (exit 1, the database named), unless --serve-unreachable, with which it serves
 * 503 errno 201 until the database answers, then serves it, as upstream Kinto starts (one server,
 * and workers); with --migrate too, it migrates the database once it answers, and serves it then.
 */
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AUTH, until} from '../helpers/fault-load.js'
import {spawnStart} from '../helpers/ops-servers.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {createRig, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

async function answer(url: string, init: RequestInit = {}): Promise<{status: number; body: Record<string, unknown>}> {
  const res = await fetch(url, {...init, headers: {Authorization: AUTH, 'Content-Type': 'application/json'}})
  return {status: res.status, body: (await res.json()) as Record<string, unknown>}
}

describe.skipIf(skip !== null)(`kinto start with its PostgreSQL down${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  beforeAll(async () => {
    rig = await createRig()
    await rig.cluster.stop('fast')
  }, 120_000)
  afterAll(async () => rig?.destroy())

  it('refuses to start by default: exit 1, the database named', async () => {
    const error = await rig.start().then(
      () => null,
      (err: Error) => err,
    )
    expect(error?.message).toMatch(/kinto start exited \(1\) before serving/)
    expect(error?.message).toMatch(new RegExp(`Cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${rig.cluster.port}, database kinto`))
    rig.server = undefined
  }, 60_000)

  for (const workers of [1, 2]) {
    it(`--serve-unreachable${workers > 1 ? ' --workers 2' : ''}: 503 errno 201 while it is down, then served once it is up`, async () => {
      await rig.cluster.stop('fast').catch(() => {})
      const server = await rig.start(['--serve-unreachable', '--workers', String(workers)])
      try {
        expect(server.output()).toMatch(/Serving without checking the schema: .*127\.0\.0\.1/)
        const base = server.url.replace(/\/$/, '')
        const down = await answer(`${base}/buckets/started-${workers}`, {method: 'PUT', body: '{}'})
        expect(down.status).toBe(503)
        expect(down.body.errno).toBe(201)
        expect((await fetch(`${base}/__heartbeat__`)).status).toBe(503)
        expect((await fetch(`${base}/__lbheartbeat__`)).status).toBe(200)

        await rig.cluster.start()
        // Each worker's pool reconnects on its next request: wait until every one answered.
        expect(await until(async () => (await fetch(`${base}/__heartbeat__`)).status === 200, 30_000, 200)).toBe(true)
        const up = await answer(`${base}/buckets/started-${workers}`, {method: 'PUT', body: '{}'})
        expect(up.status).toBe(201)
        expect((await answer(`${base}/buckets/started-${workers}`)).status).toBe(200)
      } finally {
        expect((await server.stop()).code).toBe(0)
        rig.server = undefined
      }
    }, 120_000)
  }

  for (const workers of [1, 2]) {
    it(`--migrate --serve-unreachable${workers > 1 ? ' --workers 2' : ''}: 503 while it is down, migrated and served once it is up`, async () => {
      // A database without any schema: only the deferred migration can make the PUT below succeed.
      const database = `fresh${workers}`
      await rig.cluster.start().catch(() => {})
      await rig.cluster.sql(`CREATE DATABASE ${database} OWNER kinto ENCODING 'UTF8' TEMPLATE template0`)
      const ini = path.join(rig.dir, `${database}.ini`)
      writeFileSync(ini, readFileSync(rig.ini, 'utf8').replaceAll(`:${rig.cluster.port}/kinto`, `:${rig.cluster.port}/${database}`))
      await rig.cluster.stop('fast')
      const server = await spawnStart(['--ini', ini, '--port', '0', '--migrate', '--serve-unreachable', '--workers', String(workers)])
      try {
        expect(server.output()).toMatch(/Serving without migrating: Cannot connect to PostgreSQL at 127\.0\.0\.1/)
        const base = server.url.replace(/\/$/, '')
        const down = await answer(`${base}/buckets/down`, {method: 'PUT', body: '{}'})
        expect(down.status).toBe(503)
        expect(down.body.errno).toBe(201)

        await rig.cluster.start()
        // Until the schema is migrated every write is a 503, never another failure; then served.
        const statuses: number[] = []
        const served = await until(
          async () => {
            const r = await answer(`${base}/buckets/up-${statuses.length}`, {method: 'PUT', body: '{}'})
            statuses.push(r.status)
            return r.status !== 503
          },
          60_000,
          200,
        )
        expect(served).toBe(true)
        expect(statuses.slice(0, -1).every((s) => s === 503)).toBe(true)
        expect(statuses.at(-1)).toBe(201)
        expect(server.output()).toMatch(/Migrated the storage schema of .* to version \d+/)
        expect(server.output()).toMatch(/its schemas are migrated: serving it/)
        const tables = await rig.cluster.sql<{n: number}>(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('objects', 'access_control_entries', 'cache')`, [], database)
        expect(tables[0].n).toBe(3)
      } finally {
        expect((await server.stop()).code).toBe(0)
      }
    }, 120_000)
  }
})

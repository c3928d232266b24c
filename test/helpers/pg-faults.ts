/**
 * One `kinto start` on a private PostgreSQL cluster, for the fault tests: the runtime connects as a
 * non-superuser role (`kinto`, owner of the database) so that the test's superuser sessions keep
 * the reserved slots, optionally through a TCP proxy; plus the checks every fault test makes.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'vitest'

import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {iniText} from '../client/helpers.js'
import {figures, type FaultFigures, type Load, type Sample} from './fault-load.js'
import {spawnStart, type Started} from './ops-servers.js'
import {createCluster, type ClusterOptions, type PgCluster} from './pg-cluster.js'
import {startProxy, type TcpProxy} from './tcp-proxy.js'

/** Short timeouts so that the faults play out in seconds. */
export const FAULT_SETTINGS = {
  connectTimeout: 2,
  statementTimeout: 3,
}

export interface FaultRig {
  cluster: PgCluster
  proxy?: TcpProxy
  /** The database URL through the proxy when there is one (as role kinto), else the direct one. */
  url: string
  dir: string
  ini: string
  server?: Started
  start(args?: string[]): Promise<Started>
  destroy(): Promise<void>
}

export interface RigOptions {
  /** Reach the database through a TCP proxy: every backend (true) or only those listed. */
  proxy?: boolean | Array<'storage' | 'permission' | 'cache'>
  cluster?: ClusterOptions
  settings?: Record<string, string>
}

export async function createRig(options: RigOptions = {}): Promise<FaultRig> {
  const cluster = await createCluster(options.cluster)
  await cluster.sql('CREATE ROLE kinto LOGIN')
  await cluster.sql(`CREATE DATABASE kinto OWNER kinto ENCODING 'UTF8' TEMPLATE template0`)
  await cluster.sql(`ALTER DATABASE kinto SET TIMEZONE TO 'UTC'`)
  const direct = `postgresql://kinto@127.0.0.1:${cluster.port}/kinto`
  const registry = new DatabaseRegistry()
  try {
    await ensureSchema(registry.get(direct), ['storage', 'permission', 'cache'])
  } finally {
    await registry.closeAll()
  }
  const proxy = options.proxy ? await startProxy(cluster.port) : undefined
  const url = proxy ? `postgresql://kinto@127.0.0.1:${proxy.port}/kinto` : direct
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-faults-'))
  const ini = path.join(dir, 'kinto.ini')
  const settings: Record<string, string> = {'kinto.userid_hmac_secret': 'fault-tests'}
  for (const b of ['storage', 'permission', 'cache'] as const) {
    settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
    settings[`kinto.${b}_url`] = options.proxy === true || (Array.isArray(options.proxy) && options.proxy.includes(b)) ? url : direct
    settings[`kinto.${b}_pool_size`] = '5'
    settings[`kinto.${b}_connect_timeout`] = String(FAULT_SETTINGS.connectTimeout)
    settings[`kinto.${b}_statement_timeout`] = String(FAULT_SETTINGS.statementTimeout)
  }
  writeFileSync(ini, iniText({...settings, ...options.settings}))
  const rig: FaultRig = {
    cluster,
    proxy,
    url,
    dir,
    ini,
    async start(args = []) {
      rig.server = await spawnStart(['--ini', ini, '--port', '0', ...args])
      return rig.server
    },
    async destroy() {
      await rig.server?.stop().catch(() => {})
      await proxy?.close()
      await cluster.destroy()
      rmSync(dir, {recursive: true, force: true})
    },
  }
  return rig
}

/** Every acknowledged write of the load, read back from the database: the ones missing or different. */
export async function lostWrites(cluster: PgCluster, load: Load, bucket: string, collection: string): Promise<Sample[]> {
  const rows = await cluster.sql<{id: string; value: string}>(
    `SELECT id, data->>'value' AS value FROM objects WHERE parent_id = $1 AND resource_name = 'record' AND NOT deleted`,
    [`/buckets/${bucket}/collections/${collection}`],
    'kinto',
  )
  const stored = new Map(rows.map((r) => [r.id, Number(r.value)]))
  return load.acknowledged().filter((s) => stored.get(s.id!) !== s.value)
}

/** Half-written records: a record row without the write permission of its creator (one transaction writes both). */
export async function partialWrites(cluster: PgCluster, bucket: string, collection: string): Promise<string[]> {
  const parent = `/buckets/${bucket}/collections/${collection}`
  const rows = await cluster.sql<{id: string}>(
    `SELECT o.id FROM objects o
      WHERE o.parent_id = $1 AND o.resource_name = 'record' AND NOT o.deleted
        AND NOT EXISTS (SELECT 1 FROM access_control_entries a
                         WHERE a.object_id = $1 || '/records/' || o.id AND a.permission = 'write')`,
    [parent],
    'kinto',
  )
  return rows.map((r) => r.id)
}

export interface FaultCheck {
  /** Load time (ms) at which the fault started and at which the database accepted connections again. */
  faultAt: number
  upAt: number
  /** Whether the outage must have produced 503s (a fault the pool may absorb sets false). */
  expectUnavailable?: boolean
  /** The longest a request may take (ms). */
  maxRequestMs?: number
  /** Backend names the heartbeat must have reported down during the outage. */
  heartbeatDown?: string[]
}

/** The checks of every fault test; returns the figures for the report. */
export async function checkFault(rig: FaultRig, load: Load, bucket: string, collection: string, check: FaultCheck): Promise<FaultFigures> {
  const server = rig.server!
  const fig = figures(load, check.upAt)
  const api = load.samples.filter((s) => s.kind === 'write' || s.kind === 'read')
  // 1. Alive, and every answer is a success, a client error, or a 503 errno 201 with Retry-After.
  expect(server.child.exitCode, server.output().slice(-4000)).toBeNull()
  expect(server.child.signalCode).toBeNull()
  const odd = api.filter((s) => !(s.status >= 200 && s.status < 500) && !(s.status === 503 && s.errno === 201 && s.retryAfter))
  expect(odd, JSON.stringify(odd.slice(0, 3))).toEqual([])
  if (check.expectUnavailable !== false) {
    expect(fig.unavailable, 'some requests were refused with 503 errno 201 during the outage').toBeGreaterThan(0)
  }
  const unavailable = api.filter((s) => s.status === 503)
  expect(unavailable.every((s) => s.end >= check.faultAt - 100), 'no 503 before the fault').toBe(true)
  // 2. Heartbeats: __lbheartbeat__ always 200; __heartbeat__ names the backend that is down.
  const lb = load.samples.filter((s) => s.kind === 'lbheartbeat')
  expect(lb.length).toBeGreaterThan(0)
  expect(lb.filter((s) => s.status !== 200)).toEqual([])
  if (check.heartbeatDown) {
    const during = load.samples.filter((s) => s.kind === 'heartbeat' && s.start >= check.faultAt && s.start < check.upAt)
    // Some outages set in gradually (slots taken one by one): one probe must name them all down.
    const names = check.heartbeatDown
    const down = during.filter((s) => s.status === 503 && names.every((n) => (s.body as Record<string, boolean>)[n] === false))
    expect(down.length, `a __heartbeat__ 503 naming ${names.join(', ')} during the outage: ${JSON.stringify(during.map((s) => [s.status, s.body]))}`).toBeGreaterThan(0)
  }
  // 3. Recovery within 2 s of the database accepting connections: every write started later succeeded.
  const late = api.filter((s) => s.start >= check.upAt + 2000)
  expect(late.length).toBeGreaterThan(0)
  expect(late.filter((s) => s.status >= 500 || s.status === 0)).toEqual([])
  // (recoveryMs, the figure reported, includes that first request's own time on a busy machine.)
  expect(fig.recoveryMs).not.toBeNull()
  // 4. Bounded waits.
  expect(fig.longestMs).toBeLessThanOrEqual(check.maxRequestMs ?? (FAULT_SETTINGS.statementTimeout + FAULT_SETTINGS.connectTimeout) * 1000 + 3000)
  // 5. Nothing acknowledged lost, nothing half-written.
  expect(await lostWrites(rig.cluster, load, bucket, collection)).toEqual([])
  expect(await partialWrites(rig.cluster, bucket, collection)).toEqual([])
  return fig
}

/** Prints the figures of one fault (collected into docs/reliability.md). */
export function report(name: string, fig: FaultFigures): void {
  console.log(
    `FIGURES ${name}: recovery ${fig.recoveryMs} ms after the database accepted connections; ` +
      `${fig.failed}/${fig.requests} requests failed (${fig.unavailable} were 503 errno 201); ` +
      `${fig.acknowledgedWrites} acknowledged writes, 0 lost; longest request ${fig.longestMs} ms`,
  )
}

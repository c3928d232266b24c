/**
 * `kinto start` under PostgreSQL faults that are not restarts: every connection slot taken by
 * another client, a statement stuck on a lock until the statement timeout, and a TCP connection
 * that stops answering (a proxy blackholes it). A private cluster (test/helpers/pg-cluster.ts);
 * the runtime reaches it through test/helpers/tcp-proxy.ts. checkFault() asserts what every fault
 * test asserts (process alive, 503 errno 201 + Retry-After, heartbeat, recovery, no write lost).
 */
import {setTimeout as sleep} from 'node:timers/promises'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it, onTestFinished} from 'vitest'

import {startLoad} from '../helpers/fault-load.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {checkFault, createRig, FAULT_SETTINGS, report, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

describe.skipIf(skip !== null)(`PostgreSQL out of slots, stuck or unreachable${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  beforeAll(async () => {
    rig = await createRig({proxy: true, cluster: {conf: {max_connections: 20, superuser_reserved_connections: 3, authentication_timeout: "'5s'"}}})
    await rig.cluster.sql('CREATE ROLE hog LOGIN')
    await rig.start()
  }, 120_000)
  afterAll(async () => rig?.destroy())

  it('max_connections exhausted by another client', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'slots'})
    await sleep(1000)
    const faultAt = load.now()
    const hogs: pg.Client[] = []
    // Take every slot not reserved for superusers: the runtime's connections are terminated until
    // the other client holds them all. Meanwhile the proxy resets the runtime's connections, so
    // its reconnects cannot race the other client for each slot freed (under load they won one
    // of them every round, and the slots never filled: CI failed once that way); once they are
    // all taken, its connections reach PostgreSQL again and are refused there (53300).
    rig.proxy!.setMode('drop')
    const deadline = Date.now() + 15_000
    let full = false
    // The slots are given back whatever happens, so a failure here does not fail the next tests.
    onTestFinished(() => Promise.all(hogs.splice(0).map((c) => c.end().catch(() => {}))).then(() => undefined))
    onTestFinished(() => rig.proxy!.setMode('pass'))
    while (!full && Date.now() < deadline) {
      await rig.cluster.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'kinto'`)
      for (;;) {
        const c = new pg.Client({connectionString: `postgresql://hog@127.0.0.1:${rig.cluster.port}/postgres`})
        c.on('error', () => {})
        try {
          await c.connect()
          hogs.push(c)
        } catch (error) {
          expect((error as {code?: string}).code).toBe('53300')
          break
        }
      }
      const left = await rig.cluster.sql<{n: number}>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'kinto'`)
      full = left[0].n === 0
    }
    rig.proxy!.setMode('pass')
    expect(full).toBe(true)
    // What the runtime meets now: PostgreSQL itself refuses its role a connection.
    const probe = new pg.Client({connectionString: `postgresql://kinto@127.0.0.1:${rig.cluster.port}/kinto`})
    probe.on('error', () => {})
    await expect(probe.connect()).rejects.toMatchObject({code: '53300'})
    await sleep(3000)
    const hogCount = hogs.length
    await Promise.all(hogs.splice(0).map((c) => c.end().catch(() => {})))
    const upAt = load.now()
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'slots', {faultAt, upAt, heartbeatDown: ['storage']})
    report(`max_connections exhausted (${hogCount} connections of another client)`, fig)
  }, 60_000)

  it('a statement that waits on a lock held by another session until the statement timeout', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'locked'})
    await sleep(1000)
    const locker = new pg.Client({connectionString: rig.cluster.url('kinto')})
    locker.on('error', () => {})
    await locker.connect()
    const faultAt = load.now()
    await locker.query('BEGIN')
    await locker.query('LOCK TABLE objects IN ACCESS EXCLUSIVE MODE')
    // Long enough for every client (and a heartbeat probe) to wait on it and be cancelled.
    await sleep((FAULT_SETTINGS.statementTimeout * 2 + 1) * 1000)
    await locker.query('ROLLBACK')
    await locker.end()
    const upAt = load.now()
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'locked', {faultAt, upAt, heartbeatDown: ['storage']})
    // Cancelled by the server at the statement timeout, not waited on forever.
    const waited = load.samples.filter((s) => s.status === 503).map((s) => s.end - s.start)
    expect(Math.max(...waited)).toBeGreaterThanOrEqual(FAULT_SETTINGS.statementTimeout * 1000 - 200)
    report(`lock held past statement_timeout (${FAULT_SETTINGS.statementTimeout} s)`, fig)
  }, 60_000)

  it('a TCP connection that stops answering (blackholed) is given up on, then replaced', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'blackhole'})
    await sleep(1000)
    const faultAt = load.now()
    rig.proxy!.setMode('blackhole')
    await sleep(7000)
    rig.proxy!.setMode('pass')
    const upAt = load.now()
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'blackhole', {faultAt, upAt, heartbeatDown: ['storage']})
    report(`blackholed TCP (connect ${FAULT_SETTINGS.connectTimeout} s, statement ${FAULT_SETTINGS.statementTimeout} s)`, fig)
  }, 60_000)
})

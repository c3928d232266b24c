/**
 * `kinto start` survives its PostgreSQL going away (issue: the runtime survives its database and
 * cache going away): a fast and a crash restart, a stop of 10 s, and every connection of the
 * runtime terminated. A private cluster (test/helpers/pg-cluster.ts), never the shared server.
 * Each fault runs under a write+read load; checkFault() asserts: the process lives, 503 errno 201
 * with Retry-After during the outage, __heartbeat__ names the backend, __lbheartbeat__ stays 200,
 * recovery within 2 s, every acknowledged write present, no half-written record.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startLoad, until} from '../helpers/fault-load.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {checkFault, createRig, report, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

describe.skipIf(skip !== null)(`PostgreSQL restarts under load${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  beforeAll(async () => {
    rig = await createRig()
    await rig.start()
  }, 120_000)
  afterAll(async () => rig?.destroy())

  const BACKENDS = ['storage', 'permission', 'cache']

  for (const mode of ['fast', 'immediate'] as const) {
    it(`pg_ctl restart -m ${mode}`, async () => {
      const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: `restart-${mode}`})
      await sleep(1000)
      const faultAt = load.now()
      await rig.cluster.restart(mode)
      const upAt = load.now()
      await sleep(3000)
      await load.stop()
      const fig = await checkFault(rig, load, 'b', `restart-${mode}`, {faultAt, upAt, expectUnavailable: false})
      report(`pg_ctl restart -m ${mode}`, fig)
    })
  }

  it('stopped for 10 s, then started', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'stopped'})
    await sleep(1000)
    const faultAt = load.now()
    await rig.cluster.stop('fast')
    await sleep(10_000)
    await rig.cluster.start()
    const upAt = load.now()
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'stopped', {faultAt, upAt, heartbeatDown: BACKENDS, maxRequestMs: 2000})
    report('stopped 10 s', fig)
  }, 60_000)

  it('pg_terminate_backend of every connection of the runtime, idle and busy', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'terminate'})
    await sleep(1000)
    const faultAt = load.now()
    let killed = 0
    // A few rounds: connections opened again meanwhile are killed too, busy ones among them.
    for (let round = 0; round < 5; round++) {
      const rows = await rig.cluster.sql<{ok: boolean}>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE usename = 'kinto'`)
      killed += rows.length
      await sleep(100)
    }
    const upAt = load.now()
    expect(killed).toBeGreaterThan(0)
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'terminate', {faultAt, upAt, expectUnavailable: false})
    report(`pg_terminate_backend (${killed} connections)`, fig)
  })

  it('the heartbeat is 200 again once the database is back', async () => {
    expect(await until(async () => (await fetch(rig.server!.url + '__heartbeat__')).status === 200, 5000)).toBe(true)
  })
})

/**
 * Stopping `kinto start` while its database is blackholed: requests stuck on a connection that
 * stopped answering are cut at --shutdown-timeout, and the process exits then, not when the
 * driver would have given up on those connections (statement + connect timeout, minutes with
 * production settings).
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AUTH} from '../helpers/fault-load.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {createRig, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

describe.skipIf(skip !== null)(`SIGTERM while the database is blackholed${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  beforeAll(async () => {
    const settings: Record<string, string> = {}
    for (const b of ['storage', 'permission', 'cache']) {
      // The driver would give up on a silent connection after 60 s.
      settings[`kinto.${b}_statement_timeout`] = '30'
      settings[`kinto.${b}_connect_timeout`] = '30'
    }
    rig = await createRig({proxy: true, settings})
    await rig.start(['--shutdown-timeout', '1'])
  }, 120_000)
  afterAll(async () => rig?.destroy())

  it('exits soon after the shutdown deadline', async () => {
    const server = rig.server!
    const headers = {Authorization: AUTH, 'Content-Type': 'application/json'}
    expect((await fetch(server.url + 'buckets/b', {method: 'PUT', headers, body: '{}'})).status).toBe(201)
    rig.proxy!.setMode('blackhole')
    // Requests that are now stuck on their connections.
    const stuck = Array.from({length: 3}, (_, i) =>
      fetch(server.url + `buckets/b/collections/c${i}`, {method: 'PUT', headers, body: '{}'}).then(
        (res) => res.status,
        () => 0,
      ),
    )
    await sleep(1000)
    const t0 = Date.now()
    server.child.kill('SIGTERM')
    const status = await server.exit
    const took = Date.now() - t0
    expect(await Promise.all(stuck)).toEqual([0, 0, 0])
    // 1 s of deadline, then closing the pools is bounded too; far from the driver's 60 s.
    expect(took, server.output().slice(-2000)).toBeLessThan(15_000)
    expect(status.code).toBe(1)
    expect(server.output()).toMatch(/Shutdown deadline reached/)
  }, 120_000)
})

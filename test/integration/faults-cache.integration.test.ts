/**
 * The cache backend failing on its own (its database unreachable, reached through a proxy that
 * resets every connection) while storage and permission are fine: requests that do not need the
 * cache are unaffected, the heartbeat reports `cache: false`, and once the cache is reachable again
 * the heartbeat is 200 without a restart. (Network cache backends plug into the same mechanism:
 * docs/reliability.md.)
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {startLoad, until} from '../helpers/fault-load.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {createRig, lostWrites, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

describe.skipIf(skip !== null)(`the PostgreSQL cache unreachable, storage fine${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  beforeAll(async () => {
    rig = await createRig({proxy: ['cache']})
    await rig.start()
  }, 120_000)
  afterAll(async () => rig?.destroy())

  it('requests that do not need the cache are unaffected; the heartbeat names the cache', async () => {
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'c'})
    await sleep(1000)
    const faultAt = load.now()
    rig.proxy!.setMode('drop')
    const heartbeat = async () => {
      const res = await fetch(rig.server!.url + '__heartbeat__')
      return {status: res.status, body: (await res.json()) as Record<string, boolean>}
    }
    expect(await until(async () => (await heartbeat()).status === 503, 10_000)).toBe(true)
    expect((await heartbeat()).body).toEqual({storage: true, permission: true, cache: false})
    expect((await fetch(rig.server!.url + '__lbheartbeat__')).status).toBe(200)
    await sleep(2000)
    rig.proxy!.setMode('pass')
    const upAt = load.now()
    expect(await until(async () => (await heartbeat()).status === 200, 5000)).toBe(true)
    await sleep(500)
    await load.stop()
    expect(rig.server!.child.exitCode).toBeNull()
    const api = load.samples.filter((s) => (s.kind === 'write' || s.kind === 'read') && s.start >= faultAt && s.end <= upAt)
    expect(api.length).toBeGreaterThan(0)
    expect(api.filter((s) => s.status >= 300)).toEqual([])
    expect(await lostWrites(rig.cluster, load, 'b', 'c')).toEqual([])
    console.log(`FIGURES cache unreachable: ${api.length} API requests during the cache outage, all 2xx; heartbeat 503 {cache: false}`)
  }, 90_000)
})

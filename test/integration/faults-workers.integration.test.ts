/**
 * `kinto start --workers 2` on a private PostgreSQL cluster, under a write+read load: a database
 * restart kills no worker, and a worker killed by SIGKILL is replaced by the primary while the
 * other one keeps answering.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {listRuns} from '../../src/lib/runs/registry.js'
import {AUTH, startLoad, until} from '../helpers/fault-load.js'
import {clusterUnavailable} from '../helpers/pg-cluster.js'
import {checkFault, createRig, lostWrites, partialWrites, report, type FaultRig} from '../helpers/pg-faults.js'

const skip = clusterUnavailable()

describe.skipIf(skip !== null)(`workers under faults${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let rig: FaultRig
  // A worker counts once it listens (it registers before, with url null, while it starts).
  const workers = () => listRuns(rig.ini).filter((e) => e.role === 'worker' && e.url !== null)
  // Two listening workers, the killed one not among them: one reading of the registry, or the
  // killed worker (alive until the primary reaps it) counts in the first and is gone in the second,
  // and the replacement counts as listening before it does.
  const replaced = (pid: number) => {
    const now = workers()
    return now.length === 2 && !now.some((w) => w.pid === pid)
  }
  beforeAll(async () => {
    rig = await createRig()
    await rig.start(['--workers', '2'])
    expect(await until(() => workers().length === 2, 30_000)).toBe(true)
  }, 120_000)
  afterAll(async () => rig?.destroy())

  it('a PostgreSQL restart kills no worker', async () => {
    const before = workers().map((w) => w.pid).sort()
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'restart'})
    await sleep(1000)
    const faultAt = load.now()
    await rig.cluster.restart('fast')
    const upAt = load.now()
    await sleep(3000)
    await load.stop()
    const fig = await checkFault(rig, load, 'b', 'restart', {faultAt, upAt, expectUnavailable: false})
    expect(workers().map((w) => w.pid).sort()).toEqual(before)
    expect(rig.server!.output()).not.toMatch(/Worker \d+ exited/)
    report('pg_ctl restart -m fast, --workers 2', fig)
  })

  it('SIGKILL of a worker under load: the service keeps answering and the worker is replaced', async () => {
    const [victim, survivor] = workers()
    const load = await startLoad({url: rig.server!.url, bucket: 'b', collection: 'sigkill'})
    await sleep(1000)
    const killAt = load.now()
    process.kill(victim.pid, 'SIGKILL')
    expect(await until(() => replaced(victim.pid), 30_000)).toBe(true)
    const replacedAt = load.now()
    await sleep(2000)
    await load.stop()
    expect(rig.server!.child.exitCode).toBeNull()
    expect(rig.server!.output()).toMatch(new RegExp(`Worker ${victim.pid} exited \\(SIGKILL\\); starting another`))
    expect(workers().some((w) => w.pid === survivor.pid)).toBe(true)
    const api = load.samples.filter((s) => s.kind === 'write' || s.kind === 'read')
    // Only requests in flight on the killed process may fail (their connection is reset).
    const failed = api.filter((s) => !(s.status >= 200 && s.status < 300))
    expect(failed.every((s) => s.start <= killAt + 50 || s.status === 0)).toBe(true)
    expect(failed.length).toBeLessThanOrEqual(6)
    // The survivor answered while the new worker started.
    expect(api.some((s) => s.start > killAt && s.end < replacedAt && s.status < 300) || replacedAt - killAt < 500).toBe(true)
    expect(api.filter((s) => s.start > killAt + 1000).every((s) => s.status >= 200 && s.status < 300)).toBe(true)
    expect(await lostWrites(rig.cluster, load, 'b', 'sigkill')).toEqual([])
    expect(await partialWrites(rig.cluster, 'b', 'sigkill')).toEqual([])
    console.log(`FIGURES SIGKILL of a worker: ${failed.length}/${api.length} requests failed (connections of the killed worker); replaced in ${replacedAt - killAt} ms; ${load.acknowledged().length} acknowledged writes, 0 lost`)
  })

  it('a worker that dies while the database is down is replaced all the same; the service recovers', async () => {
    const [victim, survivor] = workers()
    await rig.cluster.stop('fast')
    try {
      process.kill(victim.pid, 'SIGKILL')
      // The replacement starts while the database is down: it serves (503 until the database is
      // back) instead of exiting on the schema check, again and again until the primary gives up.
      expect(await until(() => replaced(victim.pid), 30_000), rig.server!.output().slice(-2000)).toBe(true)
      await sleep(2000)
      expect(rig.server!.child.exitCode, rig.server!.output().slice(-2000)).toBeNull()
      expect(rig.server!.output()).not.toMatch(/keep exiting/)
      // Once per database (storage, permission and cache share it here).
      expect(rig.server!.output().match(/Serving without checking the schema/g), rig.server!.output().slice(-4000)).toHaveLength(1)
      const down = await fetch(rig.server!.url + 'buckets/b', {headers: {Authorization: AUTH}})
      expect(down.status).toBe(503)
      expect(((await down.json()) as {errno: number}).errno).toBe(201)
    } finally {
      await rig.cluster.start()
    }
    expect(workers().some((w) => w.pid === survivor.pid)).toBe(true)
    // Both workers answer once the database is back: every request of a series succeeds.
    await sleep(2500)
    for (let i = 0; i < 20; i++) {
      const res = await fetch(rig.server!.url + 'buckets/b', {headers: {Authorization: AUTH, Connection: 'close'}})
      expect(res.status).toBe(200)
    }
  })

  // Last: this one ends the deployment.
  it('replacements that cannot start say why before the primary gives up', async () => {
    // A newer release migrated the database meanwhile: a new worker refuses to serve it.
    await rig.cluster.sql("UPDATE metadata SET value = '999' WHERE name = 'storage_schema_version'", [], 'kinto')
    process.kill(workers()[0].pid, 'SIGKILL')
    const status = await rig.server!.exit
    expect(status.code).toBe(1)
    const output = rig.server!.output()
    expect(output).toMatch(/workers keep exiting/)
    expect(output).toMatch(/Worker \d+ exited \(1\): The storage schema of .* is newer \(999\)/)
  })
})

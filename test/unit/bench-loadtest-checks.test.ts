/**
 * The checks of bench/loadtest.js must be able to fail: each is fed a history with one planted
 * violation (and a clean one), the final-state check against a real runtime on memory backends.
 */
import type {AddressInfo} from 'node:net'

import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

// @ts-expect-error plain ESM script without types
import {Run, checkFinalState, checkOrdering, setup} from '../../bench/loadtest.js'
import {memoryApp} from '../server/helpers.js'

interface Write {
  collection: string
  id: string
  ts: number
  sent: number
  acked: number
  deleted: boolean
  data: Record<string, unknown> | null
}

function history(writes: Array<Partial<Write>>, reads: Array<{collection: string; sent: number; ts: number}> = []) {
  const run = new Run('http://127.0.0.1:1/v1', 'http://127.0.0.1:1')
  run.writes = writes.map((w, i) => ({collection: 'c', id: `r${i}`, deleted: false, data: null, ...w}))
  run.reads = reads
  return run
}

describe('loadtest ordering checks', () => {
  test('a clean history passes (overlapping writes may come in any order)', () => {
    const run = history([
      {ts: 10, sent: 0, acked: 5},
      {ts: 12, sent: 6, acked: 9},
      {ts: 11, sent: 7, acked: 8}, // overlaps the previous one: either order is fine
      {ts: 5, sent: 0, acked: 1, collection: 'other'},
    ], [{collection: 'c', sent: 10, ts: 12}])
    checkOrdering(run)
    expect(run.violations).toEqual([])
  })

  test('two acknowledged writes of one collection at the same timestamp', () => {
    const run = history([
      {ts: 10, sent: 0, acked: 5},
      {ts: 10, sent: 1, acked: 6},
    ])
    checkOrdering(run)
    expect(run.violations.map((v: {kind: string}) => v.kind)).toContain('duplicate timestamp')
  })

  test('a write sent after another was acknowledged, with an older timestamp', () => {
    const run = history([
      {ts: 20, sent: 0, acked: 5},
      {ts: 15, sent: 6, acked: 8},
    ])
    checkOrdering(run)
    expect(run.violations.map((v: {kind: string}) => v.kind)).toEqual(['timestamp order'])
  })

  test('a read showing a collection timestamp older than an acknowledged write', () => {
    const run = history([{ts: 20, sent: 0, acked: 5}], [{collection: 'c', sent: 6, ts: 19}])
    checkOrdering(run)
    expect(run.violations.map((v: {kind: string}) => v.kind)).toEqual(['stale collection timestamp'])
  })
})

describe('loadtest final-state check (runtime on memory backends)', () => {
  let app: FastifyInstance
  let origin: string
  beforeAll(async () => {
    app = memoryApp({'kinto.userid_hmac_secret': 'loadtest-checks'})
    await app.listen({host: '127.0.0.1', port: 0})
    origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  })
  afterAll(async () => app?.close())

  async function write(run: any, method: string, path: string, body?: unknown) {
    const r = await run.request('test', method, path, {body})
    expect(r.status).toBeLessThan(300)
    return r
  }

  test('acknowledged writes, updates and deletes found as acknowledged: no violation', async () => {
    const run = new Run(`${origin}/v1`, origin)
    await setup(run)
    const path = run.recordsPath('col0')
    const a = await write(run, 'POST', path, {data: {v: 1}})
    run.ack('col0', a.body.data, a.sent, a.acked)
    const b = await write(run, 'PATCH', `${path}/${a.body.data.id}`, {data: {v: 2}})
    run.ack('col0', b.body.data, b.sent, b.acked)
    const c = await write(run, 'POST', path, {data: {v: 3}})
    run.ack('col0', c.body.data, c.sent, c.acked)
    const d = await write(run, 'DELETE', `${path}/${c.body.data.id}`)
    run.ack('col0', d.body.data, d.sent, d.acked, true)
    checkOrdering(run)
    const checked = await checkFinalState(run)
    expect(run.violations).toEqual([])
    expect(checked).toBeGreaterThanOrEqual(2)
  })

  test('an acknowledged write the server does not have is reported', async () => {
    const run = new Run(`${origin}/v1`, origin)
    await setup(run)
    const path = run.recordsPath('col0')
    const a = await write(run, 'POST', path, {data: {v: 1}})
    run.ack('col0', a.body.data, a.sent, a.acked)
    // Planted: an update "acknowledged" with a newer timestamp and other data than stored.
    run.ack('col0', {...a.body.data, v: 99, last_modified: a.body.data.last_modified + 1000}, a.acked + 1, a.acked + 2)
    // Planted: a record acknowledged but never written.
    run.ack('col0', {id: 'never-written', last_modified: a.body.data.last_modified + 2000, v: 1}, a.acked + 3, a.acked + 4)
    await checkFinalState(run)
    const kinds = run.violations.map((v: {kind: string}) => v.kind)
    expect(kinds.filter((k: string) => k === 'lost write')).toHaveLength(2)
    expect(kinds).toContain('unreadable write')
  })
})

/**
 * The embedded engine (PGlite) under faults: `kill -9` of `kinto start` under a write load, five
 * times in a row, each restart opening the folder with no manual repair and every acknowledged
 * write there; and a full disk under the data folder (a small tmpfs, when this process may mount
 * one): writes refused with 503, reads served, writes accepted again once space is freed.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, describe, expect, it} from 'vitest'

import {PgliteClient} from '../../src/lib/db/pglite-driver.js'
import {iniText} from '../client/helpers.js'
import {AUTH, startLoad, type Sample} from '../helpers/fault-load.js'
import {spawnStart, type Started} from '../helpers/ops-servers.js'
import {tempFolders} from '../helpers/tmp.js'

const tempDir = tempFolders('faults-embedded')
const headers = {Authorization: AUTH, 'Content-Type': 'application/json'}

function pgliteIni(dir: string, dataDir: string): string {
  const settings: Record<string, string> = {'kinto.userid_hmac_secret': 'fault-tests'}
  for (const b of ['storage', 'permission', 'cache']) {
    settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
    settings[`kinto.${b}_url`] = `pglite:${dataDir}`
  }
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, iniText(settings))
  return ini
}

/** The records of a collection as the server returns them: id -> value. */
async function storedValues(url: string, bucket: string, collection: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}buckets/${bucket}/collections/${collection}/records`, {headers})
  expect(res.status).toBe(200)
  const body = (await res.json()) as {data: Array<{id: string; value: number}>}
  return new Map(body.data.map((r) => [r.id, r.value]))
}

describe('kill -9 of kinto start on an embedded database', () => {
  const servers: Started[] = []
  afterAll(async () => {
    for (const s of servers) await s.stop().catch(() => {})
  })

  it('five times in a row: the folder opens again (stale lock taken over) and every acknowledged write is there', async () => {
    const dir = tempDir()
    const ini = pgliteIni(dir, path.join(dir, 'data'))
    // One collection per round: nothing acknowledged in a round is overwritten by a later one.
    const acknowledged: Array<{collection: string; sample: Sample}> = []
    const lostSince = async (url: string) => {
      const lost: Sample[] = []
      for (const collection of new Set(acknowledged.map((a) => a.collection))) {
        const stored = await storedValues(url, 'b', collection)
        lost.push(...acknowledged.filter((a) => a.collection === collection && stored.get(a.sample.id!) !== a.sample.value).map((a) => a.sample))
      }
      return lost
    }
    for (let round = 1; round <= 5; round++) {
      const server = await spawnStart(['--ini', ini, '--port', '0', ...(round === 1 ? ['--migrate'] : [])])
      servers.push(server)
      expect(await lostSince(server.url), `round ${round}: acknowledged writes lost`).toEqual([])
      const collection = `round${round}`
      const load = await startLoad({url: server.url, bucket: 'b', collection, writers: 3, readers: 1, heartbeats: false})
      await sleep(2500)
      server.child.kill('SIGKILL')
      await server.exit
      await load.stop()
      const acked = load.acknowledged()
      expect(acked.length, `round ${round}: some writes were acknowledged before the kill`).toBeGreaterThan(0)
      acknowledged.push(...acked.map((sample) => ({collection, sample})))
    }
    const last = await spawnStart(['--ini', ini, '--port', '0'])
    servers.push(last)
    expect(await lostSince(last.url)).toEqual([])
    console.log(`FIGURES kill -9 x5 (embedded): ${acknowledged.length} acknowledged writes, 0 lost; every restart opened the folder without repair`)
    await last.stop()
  }, 420_000)
})

describe('an embedded engine that dies under the runtime', () => {
  it('is dropped and the folder opened again on the next statement, data kept', async () => {
    const client = new PgliteClient(path.join(tempDir(), 'data'))
    try {
      await client.exec('CREATE TABLE t (v int); INSERT INTO t VALUES (1)')
      // What an aborted wasm module leaves: a closed engine under the client.
      await (client as unknown as {db: {close(): Promise<void>}}).db.close()
      await expect(client.query('SELECT v FROM t')).rejects.toThrow(/closed/)
      expect((await client.query<{v: number}>('SELECT v FROM t')).rows).toEqual([{v: 1}])
    } finally {
      await client.close()
    }
  }, 120_000)
})

/** Why a tmpfs cannot be mounted here, or null. */
function tmpfsUnavailable(probe: string): string | null {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux'
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], {stdio: 'pipe'})
    execFileSync('umount', [probe], {stdio: 'pipe'})
    return null
  } catch (error) {
    return `mount -t tmpfs is not allowed here (${String((error as {stderr?: Buffer}).stderr ?? error).trim()})`
  }
}

const probeDir = tempDir()
const noTmpfs = tmpfsUnavailable(probeDir)

describe.skipIf(noTmpfs !== null)(`a full disk under the embedded data folder${noTmpfs ? ` (SKIPPED: ${noTmpfs})` : ''}`, () => {
  const mnt = path.join(probeDir, 'mnt')
  let server: Started | undefined
  afterAll(async () => {
    await server?.stop().catch(() => {})
    try {
      execFileSync('umount', ['-l', mnt], {stdio: 'ignore'})
    } catch {
      // not mounted
    }
  })

  it('writes get 503 (or 507), reads keep working, writes succeed again once space is freed', async () => {
    mkdirSync(mnt)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mnt])
    const ini = pgliteIni(probeDir, path.join(mnt, 'data'))
    server = await spawnStart(['--ini', ini, '--port', '0', '--migrate'])
    const put = async (p: string, data: unknown) => {
      const res = await fetch(server!.url + p, {method: 'PUT', headers, body: JSON.stringify({data})})
      return {status: res.status, body: (await res.json()) as {errno?: number}, retryAfter: res.headers.get('retry-after')}
    }
    for (const p of ['buckets/b', 'buckets/b/collections/c', 'buckets/b/collections/c/records/before']) expect((await put(p, {v: 1})).status).toBe(201)
    // Fill the file system.
    const filler = path.join(mnt, 'filler')
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=200'], {stdio: 'ignore'})
    } catch {
      // dd stops with ENOSPC: the point
    }
    const big = 'x'.repeat(200_000)
    const refused: number[] = []
    for (let i = 0; i < 8; i++) {
      const r = await put(`buckets/b/collections/c/records/full-${i}`, {big})
      if (r.status < 300) continue
      expect([503, 507]).toContain(r.status)
      expect(r.body.errno).toBe(201)
      refused.push(r.status)
    }
    expect(refused.length, 'writes refused while the disk is full').toBeGreaterThan(0)
    // Reads: an object, a list, a list never read before.
    expect((await fetch(server.url + 'buckets/b/collections/c/records/before', {headers})).status).toBe(200)
    expect((await fetch(server.url + 'buckets/b/collections/c/records', {headers})).status).toBe(200)
    expect((await fetch(server.url + 'buckets/b/collections', {headers})).status).toBe(200)
    expect(server.child.exitCode).toBeNull()
    rmSync(filler)
    const after = await put('buckets/b/collections/c/records/after', {v: 2})
    expect(after.status).toBe(201)
    const stored = await storedValues(server.url, 'b', 'c')
    expect(stored.has('before') && stored.has('after')).toBe(true)
    console.log(`FIGURES full disk (embedded): ${refused.length}/8 large writes refused with ${[...new Set(refused)].join('/')}; reads 200; writes accepted at once after space was freed`)
  }, 120_000)
})

/**
 * Two servers on one PostgreSQL database (separate processes' worth of pools): what one writes,
 * the other serves with the same timestamps and ETags. Needs a real PostgreSQL server
 * (KINTO_TEST_DATABASE_URL); PGlite is one process per folder.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {basicAuth, startTestServer, type TestServer} from '../client/helpers.js'
import {createServerDatabase, realServerUrl, serverSkip, type TestDatabase} from '../helpers/db.js'
import {KintoClient} from '../helpers/kinto-http.js'

describe.skipIf(!realServerUrl)(`two servers on one database${serverSkip}`, () => {
  let db: TestDatabase
  let a: TestServer
  let b: TestServer
  const auth = {Authorization: basicAuth('alice', 'pw')}

  beforeAll(async () => {
    db = await createServerDatabase(realServerUrl!)
    a = await startTestServer('postgresql', {}, db)
    b = await startTestServer('postgresql', {}, db)
  }, 120_000)
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await db?.drop()
  })

  async function get(server: TestServer, path: string) {
    const r = await fetch(`${server.remote}${path}`, {headers: auth})
    return {status: r.status, etag: r.headers.get('etag'), lastModified: r.headers.get('last-modified'), body: (await r.json()) as {data?: unknown}}
  }

  test('writes through one are read through the other, same timestamps and ETags', async () => {
    const viaA = new KintoClient(a.remote, {headers: auth})
    await viaA.createBucket('shared')
    await viaA.bucket('shared').createCollection('c')
    const {data: rec} = await viaA.bucket('shared').collection('c').createRecord({title: 'from A'})

    const fromA = await get(a, `/buckets/shared/collections/c/records/${rec.id}`)
    const fromB = await get(b, `/buckets/shared/collections/c/records/${rec.id}`)
    expect(fromB.status).toBe(200)
    expect(fromB.body).toEqual(fromA.body)
    expect(fromB.etag).toBe(`"${rec.last_modified}"`)
    expect(fromB.etag).toBe(fromA.etag)
    expect(fromB.lastModified).toBe(fromA.lastModified)

    const listA = await get(a, '/buckets/shared/collections/c/records')
    const listB = await get(b, '/buckets/shared/collections/c/records')
    expect(listB.etag).toBe(listA.etag)
    expect(listB.body).toEqual(listA.body)
  })

  test('deletes through one show as the same tombstones through the other', async () => {
    const viaB = new KintoClient(b.remote, {headers: auth})
    const col = viaB.bucket('shared').collection('c')
    const {data: rec} = await col.createRecord({n: 1})
    const {data: tomb} = await col.deleteRecord(rec.id)
    const sinceA = await get(a, `/buckets/shared/collections/c/records?_since=${rec.last_modified}`)
    expect(sinceA.body.data).toEqual([{id: rec.id, last_modified: tomb.last_modified, deleted: true}])
    expect(sinceA.etag).toBe(`"${tomb.last_modified}"`)
  })

  test('permissions and groups written through one apply on the other', async () => {
    const viaA = new KintoClient(a.remote, {headers: auth})
    const bob = new KintoClient(b.remote, {headers: {Authorization: basicAuth('bob', 'pw')}})
    const bobId = (await bob.fetchUser())!.id
    expect((await get(b, '/buckets/shared')).status).toBe(200)
    await viaA.bucket('shared').createGroup('team', [bobId])
    await viaA.bucket('shared').collection('c').setPermissions({read: ['/buckets/shared/groups/team']})
    const list = await bob.bucket('shared').collection('c').listRecords()
    expect(list.data.length).toBeGreaterThan(0)
  })

  test('concurrent writes through both servers never collide', async () => {
    const viaA = new KintoClient(a.remote, {headers: auth}).bucket('shared').collection('c')
    const viaB = new KintoClient(b.remote, {headers: auth}).bucket('shared').collection('c')
    const writes = []
    for (let i = 0; i < 20; i++) writes.push((i % 2 ? viaA : viaB).createRecord({i}))
    const results = await Promise.all(writes)
    const stamps = new Set(results.map((r) => r.data.last_modified))
    expect(stamps.size).toBe(20)
  })
})

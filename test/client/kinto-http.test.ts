/**
 * A running `kinto start` server driven by the official JavaScript client, kinto-http (its
 * published API only), on memory, the embedded engine (PGlite) and PostgreSQL (when
 * KINTO_TEST_DATABASE_URL is set).
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {failure, KintoClient, type KintoBatchClient} from '../helpers/kinto-http.js'
import {BACKEND_KINDS, basicAuth, startTestServer, type TestServer} from './helpers.js'

type Rec = {id: string; last_modified: number; title?: string; n?: number; [k: string]: unknown}

describe.each(BACKEND_KINDS)('kinto-http against kinto start (%s)', (kind) => {
  let srv: TestServer
  let alice: KintoClient
  let bob: KintoClient
  let anonymous: KintoClient

  beforeAll(async () => {
    srv = await startTestServer(kind)
    alice = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('alice', 'pw-a')}})
    bob = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('bob', 'pw-b')}})
    anonymous = new KintoClient(srv.remote)
  }, 120_000)
  afterAll(async () => srv?.close())

  test('server info, user and capabilities', async () => {
    const info = await alice.fetchServerInfo()
    expect(info.http_api_version).toBe('1.23')
    expect(info.url).toBe(`${srv.remote}/`)
    expect(info.user?.id).toMatch(/^basicauth:[0-9a-f]{64}$/)
    expect(await alice.fetchHTTPApiVersion()).toBe('1.23')
    expect((await alice.fetchServerSettings()).batch_max_requests).toBe(25)
    expect(await alice.fetchServerCapabilities()).toHaveProperty('basicauth')
  })

  test('buckets, collections and records: create, get, update, delete', async () => {
    await alice.createBucket('blog')
    const blog = alice.bucket('blog')
    await blog.createCollection('articles')
    const articles = blog.collection('articles')
    const {data: created} = await articles.createRecord({title: 'hello'})
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/)
    const {data: fetched} = await articles.getRecord(created.id)
    expect(fetched).toMatchObject({id: created.id, title: 'hello'})

    const {data: updated} = await articles.updateRecord({...(fetched as Rec), title: 'hello again'}, {safe: true, last_modified: (fetched as Rec).last_modified})
    expect((updated as Rec).title).toBe('hello again')
    // A stale last_modified is refused (412).
    const stale = await failure(articles.updateRecord({id: created.id, title: 'late'}, {safe: true, last_modified: (fetched as Rec).last_modified}))
    expect(stale.status).toBe(412)
    const {data: patched} = await articles.updateRecord({id: created.id, extra: 1}, {patch: true})
    expect(patched).toMatchObject({title: 'hello again', extra: 1})

    const {data: deleted} = await articles.deleteRecord(created.id)
    expect(deleted.deleted).toBe(true)
    expect((await failure(articles.getRecord(created.id))).status).toBe(404)
    const buckets = await alice.listBuckets()
    expect(buckets.data.map((b) => b.id)).toContain('blog')
    expect(((await alice.bucket('blog').getData()) as {id: string}).id).toBe('blog')
  })

  test('safe creation refuses to overwrite', async () => {
    await alice.createBucket('safe')
    const again = await failure(alice.createBucket('safe', {safe: true}))
    expect(again.status).toBe(412)
  })

  test('listRecords: filters, sorting, limit and pages, since, totals', async () => {
    await alice.createBucket('lists')
    await alice.bucket('lists').createCollection('items')
    const items = alice.bucket('lists').collection('items')
    const ids: string[] = []
    for (let n = 0; n < 12; n++) ids.push((await items.createRecord({n, parity: n % 2 ? 'odd' : 'even'})).data.id)

    const odd = await items.listRecords<Rec>({filters: {parity: 'odd'}, sort: 'n'})
    expect(odd.data.map((r) => r.n)).toEqual([1, 3, 5, 7, 9, 11])

    const page = await items.listRecords<Rec>({sort: 'n', limit: 5, pages: 1})
    expect(page.data.map((r) => r.n)).toEqual([0, 1, 2, 3, 4])
    expect(page.hasNextPage).toBe(true)
    const next = await page.next() // kinto-http accumulates the pages
    expect(next.data.map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])

    const all = await items.listRecords<Rec>({sort: '-n', limit: 5, pages: Infinity})
    expect(all.data).toHaveLength(12)
    expect(all.hasNextPage).toBe(false)
    expect(all.data[0].n).toBe(11)

    const gt = await items.listRecords<Rec>({filters: {gt_n: 9}})
    expect(gt.data.map((r) => r.n).sort()).toEqual([10, 11])
    expect(await items.getTotalRecords()).toBe(12)

    const timestamp = await items.getRecordsTimestamp()
    expect(timestamp).toMatch(/^"\d+"$/)
    await items.deleteRecord(ids[0])
    await items.createRecord({n: 99})
    const changes = await items.listRecords<Rec & {deleted?: boolean}>({since: String(timestamp)})
    expect(changes.data).toHaveLength(2)
    expect(changes.data.find((r) => r.deleted)?.id).toBe(ids[0])

    const fields = await items.listRecords<Rec>({fields: ['n'], filters: {n: 3}})
    expect(Object.keys(fields.data[0]).sort()).toEqual(['id', 'last_modified', 'n'])

    const removed = await items.deleteRecords({filters: {parity: 'even'}})
    expect(removed.data.length).toBe(5)
    expect(await items.getTotalRecords()).toBe(7) // 12 - n=0 + n=99 - 5 even
  })

  test('permissions: setPermissions, sharing, groups', async () => {
    const bobId = (await bob.fetchUser())!.id
    await alice.createBucket('shared')
    const shared = alice.bucket('shared')
    await shared.createCollection('docs')
    const {data: doc} = await shared.collection('docs').createRecord({secret: true})

    expect((await failure(bob.bucket('shared').collection('docs').getRecord(doc.id))).status).toBe(403)
    expect((await failure(anonymous.bucket('shared').collection('docs').getRecord(doc.id))).status).toBe(401)

    await shared.collection('docs').setPermissions({read: [bobId]})
    expect((await bob.bucket('shared').collection('docs').getRecord(doc.id)).data.id).toBe(doc.id)
    expect((await failure(bob.bucket('shared').collection('docs').createRecord({}))).status).toBe(403)
    const perms = await shared.collection('docs').getPermissions()
    expect(perms.read).toEqual([bobId])

    await shared.createGroup('editors', [bobId])
    await shared.collection('docs').addPermissions({write: ['/buckets/shared/groups/editors']})
    const {data: bobs} = await bob.bucket('shared').collection('docs').createRecord({by: 'bob'})
    expect(bobs.id).toBeTruthy()
    const group = await shared.getGroup('editors')
    expect(group.data.members).toEqual([bobId])
    await shared.collection('docs').removePermissions({write: ['/buckets/shared/groups/editors']})
    expect((await failure(bob.bucket('shared').collection('docs').createRecord({}))).status).toBe(403)
  })

  test('batch: many operations in one request', async () => {
    await alice.createBucket('batched')
    await alice.bucket('batched').createCollection('c')
    const responses = (await alice.bucket('batched').collection('c').batch((batch) => {
      for (let i = 0; i < 30; i++) void batch.createRecord({i})
    })) as Array<{status: number}>
    expect(responses).toHaveLength(30)
    expect(responses.every((r) => r.status === 201)).toBe(true)
    expect(await alice.bucket('batched').collection('c').getTotalRecords()).toBe(30)
    const aggregate = await alice.batch(
      (batch: KintoBatchClient) => {
        void batch.createBucket('batched', {safe: true})
        void batch.bucket('batched').createCollection('d')
      },
      {aggregate: true},
    )
    expect(aggregate).toMatchObject({published: [expect.anything()], conflicts: [expect.anything()]})
  })

  test('deleting a bucket removes what is inside', async () => {
    await alice.createBucket('gone')
    await alice.bucket('gone').createCollection('c')
    await alice.bucket('gone').collection('c').createRecord({})
    await alice.deleteBucket('gone')
    await alice.createBucket('gone')
    expect((await alice.bucket('gone').listCollections()).data).toEqual([])
  })
})

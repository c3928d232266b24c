/**
 * GET /v1/permissions in-process: every object the caller has a permission on,
 * with implied permissions, objects granted by `*_principals` settings, filters, sorting and
 * pagination; upstream's tests/test_views_permissions.py and the accounts plugin's scenarios.
 */
import bcrypt from 'bcryptjs'
import {afterAll, beforeEach, describe, expect, test, vi} from 'vitest'

import {ALICE, BOB, basic, client, postgresApp} from './helpers.js'
import {ACCOUNTS, pluginPrincipal, pluginSetup} from './plugins-helpers.js'

vi.mock('../../src/lib/accounts/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/lib/accounts/index.js')>()
  return {...original, hashPassword: (password: string) => bcrypt.hash(password, 4)}
})

const ENDPOINT = {'kinto.experimental_permissions_endpoint': 'true'}

const setup = pluginSetup(ENDPOINT)
const principal = pluginPrincipal

type Entry = {uri: string; resource_name: string; permissions: string[]; [k: string]: unknown}

describe('entries', () => {
  let req: ReturnType<typeof client>
  beforeEach(async () => {
    ;({req} = setup())
    await req('PUT', '/v1/buckets/beers', {body: {}})
    await req('PUT', '/v1/buckets/beers/groups/amateurs', {body: {data: {members: [principal('bob')]}}})
    await req('PUT', '/v1/buckets/beers/collections/barley', {body: {permissions: {read: ['/buckets/beers/groups/amateurs']}}})
    await req('PUT', '/v1/buckets/beers/collections/barley/records/r1', {body: {data: {}}})
  })
  const entries = async (auth = ALICE, query = ''): Promise<Entry[]> => (await req('GET', `/v1/permissions${query}`, {auth})).body.data

  test('the writer sees each object with the permissions it implies on it, sorted by uri descending', async () => {
    const list = await entries()
    expect(list.map((e) => e.uri)).toEqual([
      '/buckets/beers/groups/amateurs',
      '/buckets/beers/collections/barley/records/r1',
      '/buckets/beers/collections/barley',
      '/buckets/beers',
      '/',
    ])
    const bucket = list.find((e) => e.uri === '/buckets/beers')!
    expect(bucket).toEqual({
      uri: '/buckets/beers',
      resource_name: 'bucket',
      id: 'beers',
      bucket_id: 'beers',
      permissions: ['collection:create', 'group:create', 'read', 'read:attributes', 'write'],
    })
    expect(list.find((e) => e.resource_name === 'record')).toMatchObject({bucket_id: 'beers', collection_id: 'barley', record_id: 'r1', id: 'r1'})
    expect(list.find((e) => e.resource_name === 'collection')!.permissions).toEqual(['read', 'read:attributes', 'record:create', 'write'])
    // The default bucket_create_principals (system.Authenticated) shows as the root entry.
    expect(list.find((e) => e.uri === '/')).toEqual({uri: '/', resource_name: 'root', permissions: ['bucket:create']})
  })

  test('a group member sees what the group gives', async () => {
    const list = await entries(BOB)
    expect(list.map((e) => [e.uri, e.permissions])).toEqual([
      ['/buckets/beers/collections/barley', ['read', 'read:attributes']],
      ['/', ['bucket:create']],
    ])
  })

  test('anonymous callers see what system.Everyone has', async () => {
    await req('PATCH', '/v1/buckets/beers', {body: {permissions: {read: ['system.Everyone']}}})
    const list = await entries(null as unknown as string)
    expect(list.map((e) => e.uri)).toEqual(['/buckets/beers'])
  })

  test('filters, sorting, _fields, _limit with Next-Page, HEAD with Total-Objects, a stored ETag', async () => {
    expect((await entries(ALICE, '?resource_name=collection')).map((e) => e.uri)).toEqual(['/buckets/beers/collections/barley'])
    expect((await entries(ALICE, '?in_resource_name=bucket,record')).length).toBe(2)
    expect((await entries(ALICE, '?_sort=uri')).map((e) => e.uri)[0]).toBe('/')
    // kinto-http lists it sorted by id; the root entry has none: last ascending, as upstream
    // sorts a missing field (this test had it first).
    expect((await entries(ALICE, '?_sort=id')).map((e) => e.uri)).toEqual([
      '/buckets/beers/groups/amateurs',
      '/buckets/beers/collections/barley',
      '/buckets/beers',
      '/buckets/beers/collections/barley/records/r1',
      '/',
    ])
    // `permissions` is no field of upstream's schema: not a filter (this test filtered on it).
    expect((await req('GET', '/v1/permissions?contains_permissions=group:create')).status).toBe(400)
    // id and last_modified are always kept (upstream); entries have no timestamp.
    expect(Object.keys((await entries(ALICE, '?_fields=uri'))[0]).sort()).toEqual(['id', 'uri'])
    const page = await req('GET', '/v1/permissions?_limit=2')
    expect(page.body.data).toHaveLength(2)
    expect(page.headers.etag).toMatch(/^"\d{13}"$/)
    const next = await req('GET', String(page.headers['next-page']).replace(/^http:\/\/[^/]+/, ''))
    const rest = await req('GET', String(next.headers['next-page']).replace(/^http:\/\/[^/]+/, ''))
    const seen = [...page.body.data, ...next.body.data, ...rest.body.data].map((e: Entry) => e.uri)
    expect(new Set(seen).size).toBe(5)
    expect(rest.headers['next-page']).toBeUndefined()
    const head = await req('HEAD', '/v1/permissions')
    expect(head.headers['total-objects']).toBe('5')
    // Timestamps are no filter here (entries have none).
    expect((await entries(ALICE, '?_since=1')).length).toBe(5)
  })

  test('its ETag never changes, so it is no validator: never a 304 (the list changes with the ACLs)', async () => {
    const first = await req('GET', '/v1/permissions')
    const etag = String(first.headers.etag)
    await req('PUT', '/v1/buckets/beers/collections/wheat', {body: {}})
    // Upstream compares preconditions with its computed model's timestamp, 0 (an If-None-Match of
    // "0" is no header there): the stored ETag never matches.
    for (const value of [etag, '"0"']) {
      const again = await req('GET', '/v1/permissions', {headers: {'if-none-match': value}})
      expect(again.status, value).toBe(200)
      expect(again.body.data.map((e: Entry) => e.uri), value).toContain('/buckets/beers/collections/wheat')
    }
    const stale = await req('GET', '/v1/permissions', {headers: {'if-match': etag}})
    expect(stale.status).toBe(412)
    expect(stale.headers.etag).toBe('"0"')
  })

  test('a closed schema: unknown fields are a 400', async () => {
    const r = await req('GET', '/v1/permissions?movie=bourne')
    expect(r.status).toBe(400)
    expect(r.body.message).toBe("Unknown filter field 'movie'")
    expect((await req('GET', '/v1/permissions?_sort=movie')).status).toBe(400)
  })

  test('permissions_read_principals restricts who may list', async () => {
    const {req: closed} = setup({'kinto.permissions_read_principals': principal('alice')})
    expect((await closed('GET', '/v1/permissions', {auth: ALICE})).status).toBe(200)
    expect((await closed('GET', '/v1/permissions', {auth: BOB})).status).toBe(403)
    expect((await closed('GET', '/v1/permissions', {auth: null})).status).toBe(401)
  })
})

describe('permissions granted by settings', () => {
  test('bucket/collection/group principals settings list every such object, with their implied permissions', async () => {
    const {req} = setup({'kinto.bucket_write_principals': principal('bob'), 'kinto.collection_read_principals': principal('bob')})
    await req('PUT', '/v1/buckets/b1', {body: {}})
    await req('PUT', '/v1/buckets/b2', {body: {}})
    await req('PUT', '/v1/buckets/b2/collections/c1', {body: {}})
    const list = ((await req('GET', '/v1/permissions', {auth: BOB})).body.data as Entry[]).map((e) => [e.uri, e.permissions])
    expect(list).toEqual([
      ['/buckets/b2/collections/c1', ['read', 'read:attributes']],
      ['/buckets/b2', ['collection:create', 'group:create', 'read', 'read:attributes', 'write']],
      ['/buckets/b1', ['collection:create', 'group:create', 'read', 'read:attributes', 'write']],
      ['/', ['bucket:create']],
    ])
  })

  test('with accounts: account entries and account:create at the root (upstream order and shape)', async () => {
    const {req} = setup({...ACCOUNTS})
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}, auth: null})
    const auth = basic('alice', '123456')
    await req('PUT', '/v1/buckets/a', {body: {}, auth})
    await req('PUT', '/v1/buckets/a/collections/b', {body: {}, auth})
    await req('PUT', '/v1/buckets/a/collections/b/records/c', {body: {}, auth})
    const list = (await req('GET', '/v1/permissions', {auth})).body.data as Entry[]
    expect(list.map((e) => e.uri)).toEqual(['/buckets/a/collections/b/records/c', '/buckets/a/collections/b', '/buckets/a', '/accounts/alice', '/'])
    expect(list[3]).toEqual({account_id: 'alice', id: 'alice', permissions: ['read', 'write'], resource_name: 'account', uri: '/accounts/alice'})
    expect(list[4]).toEqual({permissions: ['account:create', 'bucket:create'], resource_name: 'root', uri: '/'})
    const anonymous = (await req('GET', '/v1/permissions', {auth: null})).body.data as Entry[]
    expect(anonymous).toEqual([{permissions: ['account:create'], resource_name: 'root', uri: '/'}])
  })
})

describe('on the postgresql backends (PGlite here, the server in CI)', () => {
  let pg: Awaited<ReturnType<typeof postgresApp>>
  afterAll(async () => pg?.close())

  test('the same entries from the postgresql permission backend', async () => {
    pg = await postgresApp({...ENDPOINT, 'kinto.userid_hmac_secret': 'plugin-tests'})
    const req = client(pg.app)
    await req('PUT', '/v1/buckets/b', {body: {permissions: {read: [principal('bob')]}}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    const response = await req('GET', '/v1/permissions')
    expect(response.status, JSON.stringify(response.body)).toBe(200)
    const alice = response.body.data as Entry[]
    expect(alice.map((e) => e.uri)).toEqual(['/buckets/b/collections/c', '/buckets/b', '/'])
    const bob = (await req('GET', '/v1/permissions', {auth: BOB})).body.data as Entry[]
    expect(bob.map((e) => [e.uri, e.permissions])).toEqual([
      ['/buckets/b', ['read', 'read:attributes']],
      ['/', ['bucket:create']],
    ])
  }, 60_000)
})

/**
 * The plugins (accounts, default bucket, history, permissions, schema) on a running `kinto start`, through the official kinto-http client and
 * through raw HTTP (undici's fetch), on memory, the embedded engine (PGlite) and PostgreSQL (when
 * KINTO_TEST_DATABASE_URL is set): batch, accounts, default bucket, history, flush, /permissions,
 * schema validation; and an account and a history written by one server read back by the next one
 * on the same database.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {executeJson, failure, KintoClient} from '../helpers/kinto-http.js'
import {BACKEND_KINDS, basicAuth, startTestServer, type TestServer} from './helpers.js'

const PLUGINS: Record<string, string> = {
  'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.history kinto.plugins.accounts kinto.plugins.flush',
  'kinto.flush_endpoint_enabled': 'true',
  'kinto.experimental_permissions_endpoint': 'true',
  'kinto.experimental_collection_schema_validation': 'true',
  'multiauth.policies': 'account basicauth',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  'kinto.account_create_principals': 'system.Everyone',
  'kinto.account_write_principals': 'account:admin',
  'kinto.account_read_principals': 'account:admin',
}

type Json = Record<string, any>

/** Raw HTTP against the server: status, headers and parsed JSON. */
function http(remote: string) {
  return async (method: string, path: string, options: {body?: unknown; auth?: string | null} = {}) => {
    const headers: Record<string, string> = {}
    if (options.auth) headers.Authorization = options.auth
    if (options.body !== undefined) headers['Content-Type'] = 'application/json'
    const res = await fetch(path.startsWith('http') ? path : `${remote}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      redirect: 'manual',
    })
    const text = await res.text()
    return {status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json}
  }
}

describe.each(BACKEND_KINDS)('plugins on kinto start (%s)', (kind) => {
  let srv: TestServer
  let raw: ReturnType<typeof http>
  let alice: KintoClient
  let bobBasic: KintoClient
  const ALICE = basicAuth('alice', 'pw-alice-1')

  beforeAll(async () => {
    srv = await startTestServer(kind, PLUGINS)
    raw = http(srv.remote)
    expect((await raw('PUT', '/accounts/alice', {body: {data: {password: 'pw-alice-1'}}})).status).toBe(201)
    alice = new KintoClient(srv.remote, {headers: {Authorization: ALICE}})
    bobBasic = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('bob', 'anything')}})
  }, 120_000)
  afterAll(async () => srv?.close())

  test('capabilities and user info', async () => {
    const capabilities = await alice.fetchServerCapabilities()
    expect(Object.keys(capabilities).sort()).toEqual(
      ['accounts', 'basicauth', 'default_bucket', 'flush_endpoint', 'history', 'permissions_endpoint', 'schema'].sort(),
    )
    const user = await alice.fetchUser()
    expect(user?.id).toBe('account:alice')
    expect((user as Json).bucket).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect((await bobBasic.fetchUser())?.id).toMatch(/^basicauth:/)
  })

  test('accounts: create, log in, change the password, see only one\'s own, delete', async () => {
    expect((await raw('POST', '/accounts', {body: {data: {id: 'carol', password: 'first'}}})).status).toBe(201)
    const carol = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('carol', 'first')}})
    expect((await carol.fetchUser())?.id).toBe('account:carol')
    const mine = await executeJson<Json>(carol, {path: '/accounts', headers: {Authorization: basicAuth('carol', 'first')}})
    expect(mine.data.map((a: Json) => a.id)).toEqual(['carol'])
    expect((await failure(carol.execute({path: '/accounts/alice', headers: {Authorization: basicAuth('carol', 'first')}}))).status).toBe(403)
    await carol.execute({path: '/accounts/carol', method: 'PATCH', body: {data: {password: 'second'}}, headers: {Authorization: basicAuth('carol', 'first'), 'Content-Type': 'application/json'}})
    // The old password is no account any more: Basic Auth takes it, and it may not read carol.
    expect((await failure(carol.execute({path: '/accounts/carol', headers: {Authorization: basicAuth('carol', 'first')}}))).status).toBe(403)
    const again = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('carol', 'second')}})
    expect((await executeJson<Json>(again, {path: '/accounts/carol', headers: {Authorization: basicAuth('carol', 'second')}})).data.password).toMatch(/^\$2b\$12\$/)
    // A wrong password falls back to Basic Auth (multiauth.policies = account basicauth).
    expect((await raw('GET', '/', {auth: basicAuth('carol', 'first')})).body.user.id).toMatch(/^basicauth:/)
    await again.execute({path: '/accounts/carol', method: 'DELETE', headers: {Authorization: basicAuth('carol', 'second')}})
    expect((await raw('GET', '/', {auth: basicAuth('carol', 'second')})).body.user.id).toMatch(/^basicauth:/)
    expect((await raw('GET', '/accounts')).status).toBe(401)
  })

  test('accounts: an administrator manages the others', async () => {
    await raw('PUT', '/accounts/admin', {body: {data: {password: 'admin-pw'}}})
    const admin = basicAuth('admin', 'admin-pw')
    expect((await raw('PUT', '/accounts/dave', {body: {data: {password: 'dave-pw'}}, auth: admin})).status).toBe(201)
    const list = await raw('GET', '/accounts', {auth: admin})
    expect(list.body.data.map((a: Json) => a.id)).toEqual(expect.arrayContaining(['admin', 'alice', 'dave']))
    expect((await raw('GET', '/accounts/dave', {auth: basicAuth('dave', 'dave-pw')})).body.permissions).toEqual({write: ['account:dave']})
  })

  test('default bucket: implicit bucket and collection, the same data through the real id', async () => {
    const tasks = alice.bucket('default').collection('tasks')
    const {data: created} = await tasks.createRecord({title: 'write tests'})
    const list = await tasks.listRecords()
    expect(list.data.map((r) => r.id)).toEqual([created.id])
    const bucketId = ((await alice.fetchUser()) as Json).bucket
    const direct = await alice.bucket(bucketId).collection('tasks').getRecord(created.id)
    expect(direct.data).toMatchObject({title: 'write tests'})
    expect(((await alice.bucket('default').getData()) as Json).id).toBe(bucketId)
    // Raw HTTP: anonymous is refused, another user has another bucket.
    expect((await raw('GET', '/buckets/default')).status).toBe(401)
    const bobs = await raw('GET', '/buckets/default/collections/tasks/records', {auth: basicAuth('bob', 'anything')})
    expect(bobs.status).toBe(200)
    expect(bobs.body.data).toEqual([])
  })

  test('batch: kinto-http batches, max size, a failing sub-request among others', async () => {
    await alice.createBucket('batched')
    await alice.bucket('batched').createCollection('c')
    const responses = (await alice.bucket('batched').collection('c').batch((b) => {
      for (let i = 0; i < 3; i++) void b.createRecord({i})
      void b.updateRecord({id: 'missing', x: 1}, {safe: true, last_modified: 1})
    })) as Array<{status: number}>
    expect(responses.map((r) => r.status)).toEqual([201, 201, 201, 412])
    expect(await alice.bucket('batched').collection('c').getTotalRecords()).toBe(3)
    const max = (await alice.fetchServerSettings()).batch_max_requests as number
    const tooMany = await raw('POST', '/batch', {auth: ALICE, body: {requests: Array.from({length: max + 1}, () => ({path: '/'}))}})
    expect(tooMany.status).toBe(400)
    expect(tooMany.body.message).toBe(`Number of requests is limited to ${max}`)
    const recursive = await raw('POST', '/batch', {auth: ALICE, body: {requests: [{method: 'POST', path: '/batch'}]}})
    expect(recursive.status).toBe(400)
  })

  test('history: entries for the changes, filters and pages, gone with the bucket', async () => {
    await alice.createBucket('journal')
    const bucket = alice.bucket('journal')
    await bucket.createCollection('notes')
    await bucket.collection('notes').createRecord({id: 'n1', text: 'a'})
    await bucket.collection('notes').updateRecord({id: 'n1', text: 'b'})
    const history = await bucket.listHistory()
    expect(history.data.map((e) => [e.resource_name, e.action])).toEqual([
      ['record', 'update'],
      ['record', 'create'],
      ['collection', 'create'],
      ['bucket', 'create'],
    ])
    expect(history.data[0]).toMatchObject({uri: '/buckets/journal/collections/notes/records/n1', user_id: 'account:alice', target: {data: {text: 'b'}}})
    const records = await bucket.listHistory({filters: {resource_name: 'record'}, limit: 1})
    expect(records.data).toHaveLength(1)
    expect(records.hasNextPage).toBe(true)
    expect((await records.next()).data).toHaveLength(1)
    const unknown = await raw('GET', '/buckets/journal/history?movie=bourne', {auth: ALICE})
    expect(unknown.status).toBe(400)
    await alice.deleteBucket('journal')
    await alice.createBucket('journal')
    expect((await alice.bucket('journal').listHistory()).data.map((e) => e.action)).toEqual(['create'])
  })

  test('/permissions lists what the user may do', async () => {
    await alice.createBucket('perms')
    await alice.bucket('perms').createCollection('c')
    const permissions = await alice.listPermissions()
    const bucket = permissions.data.find((e) => e.uri === '/buckets/perms')
    expect(bucket).toMatchObject({resource_name: 'bucket', bucket_id: 'perms'})
    expect(bucket!.permissions).toEqual(expect.arrayContaining(['write', 'read', 'collection:create']))
    expect(permissions.data.find((e) => e.uri === '/accounts/alice')?.permissions).toEqual(['read', 'write'])
    const filtered = await raw('GET', '/permissions?resource_name=collection&bucket_id=perms', {auth: ALICE})
    expect(filtered.body.data.map((e: Json) => e.uri)).toEqual(['/buckets/perms/collections/c'])
  })

  test('schema validation: invalid records are 400 errno 107 with upstream\'s message', async () => {
    await alice.createBucket('typed')
    await alice.bucket('typed').createCollection('c', {data: {schema: {type: 'object', properties: {n: {type: 'integer'}}, required: ['n']}}})
    const collection = alice.bucket('typed').collection('c')
    const missing = await failure(collection.createRecord({}))
    expect(missing).toMatchObject({status: 400, errno: 107, message: "'n' is a required property"})
    const wrong = await failure(collection.createRecord({n: 'x'}))
    expect(wrong.message).toBe("'x' is not of type 'integer'")
    const {data} = await collection.createRecord({n: 1})
    expect(typeof (data as Json).schema).toBe('number')
  })

  test('flush empties everything (last: it removes the other tests\' data)', async () => {
    const r = await raw('POST', '/__flush__')
    expect(r.status).toBe(202)
    expect(r.body).toEqual({})
    expect((await raw('GET', '/buckets/batched', {auth: ALICE})).status).not.toBe(200)
    expect((await raw('GET', '/', {auth: ALICE})).body.user.id).toMatch(/^basicauth:/)
  })
})

const PERSISTENT = BACKEND_KINDS.filter((k) => k !== 'memory')

describe.each(PERSISTENT)('an account and a history survive a restart (%s)', (kind) => {
  test('written by one server, read back by the next one on the same database', async () => {
    let first: TestServer | undefined = await startTestServer(kind, PLUGINS)
    const database = first.databaseUrl!
    let second: TestServer | undefined
    try {
      const raw1 = http(first.remote)
      expect((await raw1('PUT', '/accounts/erin', {body: {data: {password: 'erin-pw'}}})).status).toBe(201)
      const erin = basicAuth('erin', 'erin-pw')
      await raw1('PUT', '/buckets/diary', {auth: erin, body: {}})
      await raw1('PUT', '/buckets/diary/collections/days', {auth: erin, body: {}})
      await raw1('PUT', '/buckets/diary/collections/days/records/d1', {auth: erin, body: {data: {mood: 'good'}}})
      const before = (await raw1('GET', '/buckets/diary/history', {auth: erin})).body.data
      expect(before).toHaveLength(3)
      // Stop the first server but keep its database.
      await first.server.close()
      second = await startTestServer(kind, PLUGINS, {url: database, kind: kind === 'pglite' ? 'pglite' : 'postgresql', drop: async () => {}})
      const raw2 = http(second.remote)
      expect((await raw2('GET', '/', {auth: erin})).body.user.id).toBe('account:erin')
      expect((await raw2('GET', '/', {auth: basicAuth('erin', 'wrong')})).body.user.id).toMatch(/^basicauth:/)
      const after = (await raw2('GET', '/buckets/diary/history', {auth: erin})).body.data
      expect(after).toEqual(before)
      expect(after[0]).toMatchObject({resource_name: 'record', user_id: 'account:erin', target: {data: {mood: 'good'}}})
    } finally {
      await second?.close()
      await first?.close()
      first = undefined
    }
  }, 180_000)
})

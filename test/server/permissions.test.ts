/**
 * Authentication and permissions: 401 versus 403, inheritance from
 * parents, *_principals settings, shared lists, creation rights.
 */
import {createHmac} from 'node:crypto'

import {afterEach, describe, expect, test} from 'vitest'

import {ALICE, BOB, basic, client, memoryApp} from './helpers.js'

const apps: Array<ReturnType<typeof memoryApp>> = []
async function setup(raw: Record<string, string> = {}) {
  const app = memoryApp(raw)
  apps.push(app)
  const req = client(app)
  return {app, req}
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

const userId = (user: string, password = 'secret', secret = '') =>
  'basicauth:' + createHmac('sha256', secret).update(`${user}:${password}`).digest('hex')

describe('authentication', () => {
  test('anonymous on a protected object: 401 errno 104 with WWW-Authenticate', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    const r = await req('GET', '/v1/buckets/b', {auth: null})
    expect(r.status).toBe(401)
    expect(r.body).toEqual({code: 401, errno: 104, error: 'Unauthorized', message: 'Please authenticate yourself to use this endpoint.'})
    expect(r.headers['www-authenticate']).toBe('Basic realm="Realm"')
  })

  test("a page script's 401 has no Basic challenge (the browser would open its own sign-in dialog)", async () => {
    // fetch()/XHR from a page (the admin console signed in as Anonymous, or with an expired
    // session): Sec-Fetch-Dest: empty. A page opened in the browser keeps the challenge.
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    const script = await req('GET', '/v1/buckets/b', {auth: null, headers: {'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'cors'}})
    expect(script.status).toBe(401)
    expect(script.body).toMatchObject({errno: 104})
    expect(script.headers).not.toHaveProperty('www-authenticate')
    const page = await req('GET', '/v1/buckets/b', {auth: null, headers: {'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate'}})
    expect(page.headers['www-authenticate']).toBe('Basic realm="Realm"')
  })

  test('another user: 403 errno 121', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    const r = await req('GET', '/v1/buckets/b', {auth: BOB})
    expect(r.status).toBe(403)
    expect(r.body).toEqual({code: 403, errno: 121, error: 'Forbidden', message: 'This user cannot access this resource.'})
  })

  test('malformed or empty-user credentials are anonymous, never an error', async () => {
    const {req} = await setup()
    for (const auth of ['Basic !!!', 'Basic ' + Buffer.from(':pw').toString('base64'), 'Bearer xyz', 'Basic', 'Basic ' + Buffer.from('nocolon').toString('base64')]) {
      const r = await req('GET', '/v1/', {auth})
      expect(r.status, auth).toBe(200)
      expect(r.body, auth).not.toHaveProperty('user')
    }
  })

  test('the user id depends on userid_hmac_secret and the password', async () => {
    const {req} = await setup({'kinto.userid_hmac_secret': 'abc'})
    expect((await req('GET', '/v1/')).body.user.id).toBe(userId('alice', 'secret', 'abc'))
    expect((await req('GET', '/v1/', {auth: basic('alice', 'other')})).body.user.id).toBe(userId('alice', 'other', 'abc'))
  })
})

describe('creation rights', () => {
  test('by default authenticated users create buckets, anonymous cannot', async () => {
    const {req} = await setup()
    expect((await req('POST', '/v1/buckets', {body: {}, auth: null})).status).toBe(401)
    expect((await req('PUT', '/v1/buckets/x', {body: {}, auth: null})).status).toBe(401)
    expect((await req('PUT', '/v1/buckets/x', {body: {}})).status).toBe(201)
  })

  test('bucket_create_principals restricts bucket creation', async () => {
    const {req} = await setup({'kinto.bucket_create_principals': userId('alice')})
    expect((await req('PUT', '/v1/buckets/a', {body: {}})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/bb', {body: {}, auth: BOB})).status).toBe(403)
  })

  test('collection:create and record:create on parents', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {permissions: {'collection:create': [userId('bob')]}}})
    expect((await req('PUT', '/v1/buckets/b/collections/bobs', {body: {}, auth: BOB})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/b/groups/g', {body: {}, auth: BOB})).status).toBe(403)
    await req('PUT', '/v1/buckets/b/collections/c', {body: {permissions: {'record:create': ['system.Authenticated']}}})
    const created = await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {}}, auth: BOB})
    expect(created.status).toBe(201)
    // Bob wrote his record: he may read and change it, not the others'.
    const id = created.body.data.id
    expect((await req('GET', `/v1/buckets/b/collections/c/records/${id}`, {auth: BOB})).status).toBe(200)
    const mine = await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {}}})
    expect((await req('GET', `/v1/buckets/b/collections/c/records/${mine.body.data.id}`, {auth: BOB})).status).toBe(403)
  })
})

describe('inheritance and shared lists', () => {
  test('bucket read grants collections and records; bucket write grants everything', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {}}})
    expect((await req('GET', '/v1/buckets/b/collections/c/records', {auth: BOB})).status).toBe(403)
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {read: [userId('bob')]}}})
    expect((await req('GET', '/v1/buckets/b/collections/c/records', {auth: BOB})).status).toBe(200)
    expect((await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {}}, auth: BOB})).status).toBe(403)
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {write: [userId('bob')]}}})
    expect((await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {}}, auth: BOB})).status).toBe(201)
    expect((await req('DELETE', '/v1/buckets/b/collections/c', {auth: BOB})).status).toBe(200)
  })

  test('lists show only shared objects; nobody lists buckets by default', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c/records/r1', {body: {data: {}}})
    await req('PUT', '/v1/buckets/b/collections/c/records/r2', {body: {data: {}, permissions: {read: [userId('bob')]}}})
    const list = await req('GET', '/v1/buckets/b/collections/c/records', {auth: BOB})
    expect(list.status).toBe(200)
    expect(list.body.data.map((r: {id: string}) => r.id)).toEqual(['r2'])
    const head = await req('HEAD', '/v1/buckets/b/collections/c/records', {auth: BOB})
    expect(head.headers['total-objects']).toBe('1')
    // Buckets: Bob can create some, so he gets a (possibly empty) list; anonymous gets 401.
    expect((await req('GET', '/v1/buckets', {auth: BOB})).body.data).toEqual([])
    expect((await req('GET', '/v1/buckets')).body.data.map((b: {id: string}) => b.id)).toEqual(['b'])
    expect((await req('GET', '/v1/buckets', {auth: null})).status).toBe(401)
  })

  test('writing a missing object with a readable parent gives 404, not 403', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {permissions: {read: [userId('bob')]}}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    const r = await req('DELETE', '/v1/buckets/b/collections/c/records/nope', {auth: BOB})
    expect(r.status).toBe(404)
    expect(r.body.errno).toBe(110)
    const p = await req('PATCH', '/v1/buckets/b/collections/nope', {body: {data: {}}, auth: BOB})
    expect(p.status).toBe(404)
  })

  test('*_principals settings bypass, keyed on the endpoint resource', async () => {
    const {req} = await setup({'kinto.bucket_read_principals': 'system.Everyone'})
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    expect((await req('GET', '/v1/buckets/b', {auth: null})).status).toBe(200)
    expect((await req('GET', '/v1/buckets', {auth: null})).body.data.map((b: {id: string}) => b.id)).toEqual(['b'])
    // bucket_read_principals does not open the collections.
    expect((await req('GET', '/v1/buckets/b/collections/c', {auth: null})).status).toBe(401)
    const other = await setup({'kinto.record_read_principals': 'system.Everyone'})
    await other.req('PUT', '/v1/buckets/b', {body: {}})
    await other.req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    expect((await other.req('GET', '/v1/buckets/b/collections/c/records', {auth: null})).status).toBe(200)
  })

  test('system.Everyone in an ACE opens an object to anonymous users', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {permissions: {read: ['system.Everyone']}}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    expect((await req('GET', '/v1/buckets/b/collections/c', {auth: null})).status).toBe(200)
    expect((await req('PUT', '/v1/buckets/b/collections/c', {body: {}, auth: null})).status).toBe(401)
  })

  test('a PUT on an existing object with If-None-Match: * needs the create permission', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {permissions: {write: [userId('bob')]}}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    const r = await req('PUT', '/v1/buckets/b/collections/c', {body: {}, headers: {'if-none-match': '*'}, auth: BOB})
    expect(r.status).toBe(412)
  })

  test('a 412 of If-None-Match: * shows the existing object only to who may read it', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {data: {note: 'bucket-private'}}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {permissions: {'record:create': [userId('bob')]}}})
    await req('PUT', '/v1/buckets/b/collections/c/records/secret', {body: {data: {pin: 1234}}})
    // record:create on the collection, no read on the record
    const r = await req('PUT', '/v1/buckets/b/collections/c/records/secret', {body: {data: {}}, headers: {'if-none-match': '*'}, auth: BOB})
    expect(r.status).toBe(412)
    expect(r.body).toMatchObject({code: 412, errno: 114, message: 'Resource was modified meanwhile'})
    expect(JSON.stringify(r.body)).not.toContain('1234')
    // bucket:create (every authenticated user by default), no read on the bucket
    const b = await req('PUT', '/v1/buckets/b', {body: {}, headers: {'if-none-match': '*'}, auth: BOB})
    expect(b.status).toBe(412)
    expect(JSON.stringify(b.body)).not.toContain('bucket-private')
    // a reader still gets it, as upstream
    const own = await req('PUT', '/v1/buckets/b/collections/c/records/secret', {body: {data: {}}, headers: {'if-none-match': '*'}})
    expect(own.status).toBe(412)
    expect(own.body.details.existing).toMatchObject({id: 'secret', pin: 1234})
  })

  test('a POST of an existing id needs read on it', async () => {
    const {req} = await setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {permissions: {'record:create': [userId('bob')]}}})
    await req('PUT', '/v1/buckets/b/collections/c/records/secret', {body: {data: {pin: 1}}})
    const r = await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {id: 'secret'}}, auth: BOB})
    expect(r.status).toBe(403)
    expect(JSON.stringify(r.body)).not.toContain('pin')
    expect((await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {id: 'secret'}}, auth: ALICE})).status).toBe(200)
  })
})

/**
 * Authentication and permissions: 401 versus 403, inheritance from
 * parents, *_principals settings, shared lists, creation rights.
 */
import {createHmac} from 'node:crypto'

import type {FastifyInstance} from 'fastify'
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest'

import {ALICE, BOB, basic, client, memoryApp, postgresApp} from './helpers.js'

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

  test('create rights from settings make no group or collection in a bucket that does not exist (404 errno 111)', async () => {
    const {req} = await setup({
      'kinto.group_create_principals': 'system.Authenticated',
      'kinto.collection_create_principals': 'system.Authenticated',
    })
    const group = await req('PUT', '/v1/buckets/typo/groups/admins', {body: {data: {members: [userId('bob')]}}, auth: BOB})
    expect(group.status).toBe(404)
    expect(group.body).toMatchObject({errno: 111, details: {id: 'typo', resource_name: 'bucket'}})
    expect((await req('POST', '/v1/buckets/typo/collections', {body: {data: {id: 'c'}}})).status).toBe(404)
    expect((await req('PUT', '/v1/buckets/typo/collections/c', {body: {}})).status).toBe(404)
    // The membership was not given either.
    expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals).not.toContain('/buckets/typo/groups/admins')
    await req('PUT', '/v1/buckets/typo', {body: {}})
    expect((await req('PUT', '/v1/buckets/typo/groups/admins', {body: {}, auth: BOB})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/typo/collections/c', {body: {}, auth: BOB})).status).toBe(201)
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

/**
 * Multi-step checks against upstream's authorization (kinto/authorization.py's inheritance tree,
 * kinto/core/authorization.py's permits, kinto/views/groups.py's principal updates), on the memory
 * backends and on PostgreSQL (PGlite here, the real server when KINTO_TEST_DATABASE_URL is set):
 * each test works in its own bucket of one app per backend.
 */
const CAROL = basic('carol')
let bucketSeq = 0

for (const backend of ['memory', 'postgresql'] as const) {
  describe(`upstream's permission model (${backend})`, () => {
    let app: FastifyInstance
    let close: () => Promise<void>
    let req: ReturnType<typeof client>
    let bob: string
    let carol: string
    beforeAll(async () => {
      if (backend === 'memory') {
        app = memoryApp()
        close = () => app.close()
      } else {
        ;({app, close} = await postgresApp())
      }
      req = client(app)
      bob = (await req('GET', '/v1/', {auth: BOB})).body.user.id
      carol = (await req('GET', '/v1/', {auth: CAROL})).body.user.id
    })
    afterAll(async () => close?.())
    const freshBucket = async (permissions: Record<string, string[]> = {}) => {
      const uri = `/v1/buckets/perm${++bucketSeq}`
      expect((await req('PUT', uri, {body: {permissions}})).status).toBe(201)
      return uri
    }
    const ids = (res: {body: {data: Array<{id: string}>}}) => res.body.data.map((o) => o.id)

    test('collection:create or group:create on a bucket reads the bucket (read:attributes), record:create reads the collection', async () => {
      const B = await freshBucket({'collection:create': [bob], 'group:create': [carol]})
      for (const auth of [BOB, CAROL]) {
        const bucket = await req('GET', B, {auth})
        expect(bucket.status).toBe(200)
        // Not a writer of the bucket: its ACL is not shown.
        expect(bucket.body.permissions).toEqual({})
        expect((await req('PATCH', B, {body: {data: {x: 1}}, auth})).status).toBe(403)
      }
      // A list needs read; without it, the create permission of that list gives an empty list.
      expect(await req('GET', `${B}/collections`, {auth: BOB})).toMatchObject({status: 200, body: {data: []}})
      expect((await req('GET', `${B}/groups`, {auth: BOB})).status).toBe(403)
      expect(await req('GET', `${B}/groups`, {auth: CAROL})).toMatchObject({status: 200, body: {data: []}})
      expect((await req('GET', `${B}/collections`, {auth: CAROL})).status).toBe(403)
      await req('PUT', `${B}/collections/c`, {body: {permissions: {'record:create': [bob]}}})
      await req('PUT', `${B}/collections/c/records/r`, {body: {data: {}}})
      expect((await req('GET', `${B}/collections/c`, {auth: BOB})).status).toBe(200)
      expect(await req('GET', `${B}/collections/c/records`, {auth: BOB})).toMatchObject({status: 200, body: {data: []}})
      expect((await req('GET', `${B}/collections/c/records/r`, {auth: BOB})).status).toBe(403)
    })

    test('a reader of some records lists, counts and pages only those; a deleted one leaves no tombstone for them', async () => {
      const B = await freshBucket()
      const R = `${B}/collections/c/records`
      await req('PUT', `${B}/collections/c`)
      for (const id of ['r1', 'r2', 'r3']) await req('PUT', `${R}/${id}`, {body: {data: {}, permissions: id === 'r3' ? {} : {read: [carol]}}})
      expect(ids(await req('GET', R, {auth: CAROL}))).toEqual(['r2', 'r1'])
      expect((await req('HEAD', R, {auth: CAROL})).headers['total-records']).toBe('2')
      const first = await req('GET', `${R}?_limit=1`, {auth: CAROL})
      expect(ids(first)).toEqual(['r2'])
      const next = await req('GET', String(first.headers['next-page']).replace(/^http:\/\/[^/]+/, ''), {auth: CAROL})
      expect(ids(next)).toEqual(['r1'])
      expect(next.headers['next-page']).toBeUndefined()
      const since = String((await req('GET', R, {auth: CAROL})).headers.etag).replaceAll('"', '')
      await req('DELETE', `${R}/r1`)
      await req('DELETE', `${R}/r3`)
      // Deleting r1 dropped its ACL: Carol sees no change; the owner sees both tombstones.
      expect((await req('GET', `${R}?_since=${since}`, {auth: CAROL})).body.data).toEqual([])
      expect(ids(await req('GET', `${R}?_since=${since}`))).toEqual(['r3', 'r1'])
      // A list DELETE needs write: a reader only is refused, a writer of one record deletes that one.
      expect((await req('DELETE', R, {auth: CAROL})).status).toBe(403)
      await req('PATCH', `${R}/r2`, {body: {permissions: {write: [bob]}}})
      expect(ids(await req('DELETE', R, {auth: BOB}))).toEqual(['r2'])
    })

    test('an _ in the ids of a shared list is no wildcard: a record shared in another bucket does not show', async () => {
      // Upstream's PostgreSQL backend matches the shared-list pattern with LIKE after re.escape, which
      // leaves _ a wildcard: there, Carol would list the lookalike bucket's record. We keep ids literal.
      const lookalike = `${await freshBucket()}x_y`
      const other = lookalike.replace('x_y', 'xay')
      for (const B of [lookalike, other]) {
        await req('PUT', B)
        await req('PUT', `${B}/collections/c_d`)
        await req('PUT', `${B}/collections/c_d/records/r`, {body: {data: {}, permissions: B === other ? {read: [carol]} : {}}})
      }
      expect(ids(await req('GET', `${other}/collections/c_d/records`, {auth: CAROL}))).toEqual(['r'])
      expect((await req('GET', `${lookalike}/collections/c_d/records`, {auth: CAROL})).status).toBe(403)
    })

    test('group membership changes apply on the next request, whatever the way the members change', async () => {
      const B = await freshBucket()
      await req('PUT', `${B}/collections/c`, {body: {permissions: {read: [`${B.slice(3)}/groups/g`]}}})
      const canRead = async (auth: string) => (await req('GET', `${B}/collections/c`, {auth})).status === 200
      const G = `${B}/groups/g`
      await req('PUT', G, {body: {data: {members: [bob]}}})
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([true, false])
      await req('PATCH', G, {raw: JSON.stringify([{op: 'add', path: '/data/members/-', value: carol}]), headers: {'content-type': 'application/json-patch+json'}})
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([true, true])
      await req('PATCH', G, {raw: JSON.stringify([{op: 'remove', path: '/data/members/0'}]), headers: {'content-type': 'application/json-patch+json'}})
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([false, true])
      await req('PATCH', G, {raw: JSON.stringify({data: {members: null}}), headers: {'content-type': 'application/merge-patch+json'}})
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([false, false])
      // A member listed twice and then once stays a member.
      await req('PATCH', G, {body: {data: {members: [carol, carol]}}})
      await req('PATCH', G, {body: {data: {members: [carol]}}})
      expect(await canRead(CAROL)).toBe(true)
      // A PUT without members empties the group.
      await req('PUT', G, {body: {data: {title: 'none'}}})
      expect(await canRead(CAROL)).toBe(false)
      // system.Authenticated as a member: every user, not anonymous.
      await req('PUT', G, {body: {data: {members: ['system.Authenticated']}}})
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([true, true])
      expect((await req('GET', `${B}/collections/c`, {auth: null})).status).toBe(401)
      expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals).toContain(G.slice(3))
      expect((await req('DELETE', G)).status).toBe(200)
      expect([await canRead(BOB), await canRead(CAROL)]).toEqual([false, false])
      expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals).not.toContain(G.slice(3))
    })

    test('deleting a bucket takes its groups from their members: a bucket made again under that name gives them nothing (docs/architecture.md, differences)', async () => {
      const B = await freshBucket()
      const group = `${B.slice(3)}/groups/g`
      await req('PUT', `${B}/groups/g`, {body: {data: {members: [carol, 'system.Authenticated']}}})
      await req('PUT', `${B}/groups/h`, {body: {data: {members: [carol]}}})
      expect((await req('GET', '/v1/', {auth: CAROL})).body.user.principals).toEqual(expect.arrayContaining([group, `${B.slice(3)}/groups/h`]))
      expect((await req('DELETE', B)).status).toBe(200)
      for (const auth of [CAROL, BOB]) {
        const principals = (await req('GET', '/v1/', {auth})).body.user.principals as string[]
        expect(principals.filter((p) => p.startsWith(`${B.slice(3)}/`))).toEqual([])
      }
      // The bucket made again, with an ACE naming the old group URI: no former member gets in.
      await req('PUT', B)
      await req('PUT', `${B}/collections/c`, {body: {permissions: {read: [group]}}})
      expect((await req('GET', `${B}/collections/c`, {auth: CAROL})).status).toBe(403)
      expect((await req('GET', `${B}/collections/c`, {auth: BOB})).status).toBe(403)
    })

    test("in a batch, the caller's groups are those it started with (upstream reads them once per batch)", async () => {
      const B = await freshBucket({'group:create': [carol]})
      await req('PUT', `${B}/collections/c`, {body: {permissions: {read: [`${B.slice(3)}/groups/g`]}}})
      const path = B.slice(3)
      const batch = await req('POST', '/v1/batch', {
        auth: CAROL,
        body: {
          requests: [
            {method: 'PUT', path: `${path}/groups/g`, body: {data: {members: [carol]}}},
            {method: 'GET', path: `${path}/collections/c`},
          ],
        },
      })
      expect(batch.body.responses.map((r: {status: number}) => r.status)).toEqual([201, 403])
      expect((await req('GET', `${B}/collections/c`, {auth: CAROL})).status).toBe(200)
    })

    test("a JSON Patch of one principal applies to that permission's principals: a group URI, a first collection:create (docs/architecture.md, differences)", async () => {
      const B = await freshBucket()
      await req('PUT', `${B}/groups/g`, {body: {data: {members: [carol]}}})
      const group = `${B.slice(3)}/groups/g`
      const JP = {'content-type': 'application/json-patch+json'}
      // As kinto-http's addPermissions sends them: `/permissions/<permission>/<principal>`.
      const ops = [
        {op: 'add', path: `/permissions/read/${group}`},
        {op: 'add', path: `/permissions/collection:create/${bob}`, value: bob},
      ]
      const patched = await req('PATCH', B, {raw: JSON.stringify(ops), headers: JP})
      expect(patched.status).toBe(200)
      expect(patched.body.permissions).toMatchObject({read: [group], 'collection:create': [bob]})
      expect((await req('GET', B, {auth: CAROL})).status).toBe(200)
      expect((await req('PUT', `${B}/collections/bobs`, {auth: BOB})).status).toBe(201)
      const removed = await req('PATCH', B, {raw: JSON.stringify([{op: 'remove', path: `/permissions/read/${group}`}]), headers: JP})
      expect(removed.body.permissions.read).toBeUndefined()
      expect((await req('GET', B, {auth: CAROL})).status).toBe(403)
    })

    test('JSON Patch operations on principals apply in their order: a later test or replace sees an earlier add or remove', async () => {
      const B = await freshBucket()
      const JP = {'content-type': 'application/json-patch+json'}
      const patch = (ops: unknown[]) => req('PATCH', B, {raw: JSON.stringify(ops), headers: JP})
      const added = await patch([
        {op: 'add', path: `/permissions/read/${bob}`},
        {op: 'test', path: `/permissions/read/${bob}`},
        {op: 'replace', path: `/permissions/read/${bob}`},
      ])
      expect(added.status).toBe(200)
      expect(added.body.permissions.read).toEqual([bob])
      const removed = await patch([{op: 'remove', path: `/permissions/read/${bob}`}, {op: 'replace', path: `/permissions/read/${bob}`}])
      expect(removed.status).toBe(400)
      expect(removed.body.message).toBe(`body: JSON Patch operation failed: can't replace a non-existent object '${bob}'`)
      const moved = await patch([{op: 'add', path: `/permissions/read/${carol}`}, {op: 'move', from: `/permissions/read/${carol}`, path: `/permissions/write/${carol}`}])
      expect(moved.status).toBe(200)
      expect(moved.body.permissions).toMatchObject({read: [bob], write: expect.arrayContaining([carol])})
      expect((await req('GET', B)).body.permissions.read).toEqual([bob])
    })

    test("a writer by inheritance who merge-patches or JSON-patches an object's permissions replaces its ACL (upstream starts from the ACL it shows them: none)", async () => {
      const B = await freshBucket({write: [carol]})
      const C = `${B}/collections/c`
      const acl = async () => (await req('GET', C)).body.permissions as Record<string, string[]>
      const alice = (await req('GET', '/v1/')).body.user.id
      await req('PUT', C, {body: {permissions: {read: ['x'], write: ['w']}}})
      // A direct writer merges into the ACL.
      await req('PATCH', C, {raw: JSON.stringify({permissions: {read: ['z']}}), headers: {'content-type': 'application/merge-patch+json'}})
      expect(await acl()).toEqual({read: ['z'], write: [alice, 'w'].sort()})
      // Carol writes through the bucket: the ACL shown to her is empty, and her change starts from it.
      const merged = await req('PATCH', C, {raw: JSON.stringify({permissions: {read: ['y']}}), headers: {'content-type': 'application/merge-patch+json'}, auth: CAROL})
      expect(merged.body.permissions).toEqual({read: ['y'], write: [carol]})
      await req('PUT', C, {body: {permissions: {read: ['x'], write: [alice, 'w']}}})
      const patched = await req('PATCH', C, {raw: JSON.stringify([{op: 'add', path: '/data/a', value: 1}]), headers: {'content-type': 'application/json-patch+json'}, auth: CAROL})
      expect(patched.body.permissions).toEqual({write: [carol]})
      // A plain PATCH of data keeps the ACL, and adds the writer.
      await req('PUT', C, {body: {permissions: {read: ['x'], write: [alice]}}})
      const plain = await req('PATCH', C, {body: {data: {b: 2}}, auth: CAROL})
      expect(plain.body.permissions).toEqual({read: ['x'], write: [alice, carol].sort()})
    })
  })
}

/**
 * DELETE /__user_data__/{principal} (upstream's kinto/views/admin.py), in-process on memory and on
 * the postgresql backends: what the principal alone may write is deleted (with the cascades and
 * the events a delete of each gives), the rest keeps everything but the principal's permissions,
 * and its group memberships go. Upstream's tests/test_views_admin.py scenario, rewritten.
 */
import {createHmac} from 'node:crypto'
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import type {ResourceEvent} from '../../src/lib/server/events.js'
import type {Runtime} from '../../src/lib/server/runtime.js'
import {outermost, parentUri} from '../../src/lib/server/user-data.js'
import {ObjectNotFoundError} from '../../src/lib/storage/types.js'
import {basicAuth, startTestServer} from '../client/helpers.js'
import {basic, client, memoryApp, postgresApp} from './helpers.js'

const SECRET = 'user-data-tests'
const principalOf = (user: string) => `basicauth:${createHmac('sha256', SECRET).update(`${user}:secret`).digest('hex')}`
const ADMIN = basic('admin')
const SAFE = basic('safe')
const DOOMED = basic('doomed')
const admin = principalOf('admin')
const safe = principalOf('safe')
const doomed = principalOf('doomed')
const SETTINGS = {
  'kinto.userid_hmac_secret': SECRET,
  'kinto.user-data_delete_principals': admin,
  'kinto.bucket_create_principals': 'system.Authenticated',
}

async function appOn(backend: 'memory' | 'postgresql', raw: Record<string, string>): Promise<{app: FastifyInstance; close: () => Promise<void>}> {
  if (backend === 'memory') {
    const app = memoryApp(raw)
    return {app, close: () => app.close()}
  }
  return postgresApp(raw)
}

describe('parentUri and outermost', () => {
  test('the parent is the URI without its last two parts; a root object has none', () => {
    expect(parentUri('/buckets/b/collections/c/records/r')).toBe('/buckets/b/collections/c')
    expect(parentUri('/buckets/b')).toBe('')
    expect(parentUri('/b')).toBe('')
  })
  test('what lies below another URI of the set is left out (its delete is that one’s cascade)', () => {
    const kept = outermost(['/buckets/b/collections/c/records/r', '/buckets/b', '/buckets/b2/collections/c', '/buckets/b/groups/g', '/buckets/b2/collections/c/records/r'])
    expect(kept.sort()).toEqual(['/buckets/b', '/buckets/b2/collections/c'])
  })
})

for (const backend of ['memory', 'postgresql'] as const) {
  describe(`DELETE /__user_data__/{principal} (${backend})`, () => {
    let app: FastifyInstance
    let close: () => Promise<void>
    let req: ReturnType<typeof client>
    let runtime: Runtime
    const events: ResourceEvent[] = []
    let first: {status: number; body: any}

    const gone = async (resourceName: string, parentId: string, id: string) => {
      try {
        await runtime.backends.storage.get(resourceName, parentId, id)
        return false
      } catch (err) {
        if (err instanceof ObjectNotFoundError) return true
        throw err
      }
    }
    const permissionsOf = async (uri: string) => {
      const perms = await runtime.backends.permission.getObjectPermissions(uri)
      return Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, [...v].sort()]))
    }
    const ok = async (method: string, path: string, auth: string, body: unknown = {}) => {
      const res = await req(method, `/v1${path}`, {auth, body})
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300)
    }

    beforeAll(async () => {
      ;({app, close} = await appOn(backend, SETTINGS))
      runtime = app.kinto as Runtime
      runtime.events.onChanged({}, (event) => void events.push(event))
      req = client(app, null)
      // Doomed's bucket, with a collection of its own and one that safe made while it could write there.
      await ok('PUT', '/buckets/doomed-b', DOOMED)
      await ok('PUT', '/buckets/doomed-b/collections/doomed-c', DOOMED)
      await ok('PATCH', '/buckets/doomed-b', DOOMED, {permissions: {write: [safe]}})
      await ok('PUT', '/buckets/doomed-b/collections/safe-c', SAFE)
      await ok('PATCH', '/buckets/doomed-b', DOOMED, {permissions: {write: []}})
      // Safe's bucket, where doomed could write: doomed's collection there, and doomed's record in safe's collection.
      await ok('PUT', '/buckets/safe-b', SAFE, {permissions: {write: [doomed]}})
      await ok('PUT', '/buckets/safe-b/collections/doomed-c', DOOMED)
      await ok('PUT', '/buckets/safe-b/collections/safe-c', SAFE)
      await ok('PATCH', '/buckets/safe-b/collections/safe-c', SAFE, {permissions: {write: [doomed]}})
      await ok('PUT', '/buckets/safe-b/collections/safe-c/records/doomed-r', DOOMED)
      await ok('PATCH', '/buckets/safe-b/collections/safe-c', SAFE, {permissions: {write: []}})
      await ok('PUT', '/buckets/safe-b/collections/safe-c/records/safe-r', SAFE, {permissions: {read: [doomed]}})
      // Written by both; a group with both.
      await ok('PUT', '/buckets/both', DOOMED, {permissions: {write: [doomed, safe]}})
      await ok('PUT', '/buckets/safe-b/groups/g', SAFE, {data: {members: [doomed, safe]}})
      events.length = 0
      first = await req('DELETE', `/v1/__user_data__/${doomed}`, {auth: ADMIN})
    })
    afterAll(async () => close?.())

    test('answers 200 with the principal', () => {
      expect(first.status).toBe(200)
      expect(first.body).toEqual({data: {principal: doomed}})
    })

    test('its bucket goes, with everything in it (safe’s collection there too)', async () => {
      expect(await gone('bucket', '', 'doomed-b')).toBe(true)
      expect(await gone('collection', '/buckets/doomed-b', 'doomed-c')).toBe(true)
      expect(await gone('collection', '/buckets/doomed-b', 'safe-c')).toBe(true)
      expect(await permissionsOf('/buckets/doomed-b/collections/doomed-c')).toEqual({})
      expect(await permissionsOf('/buckets/doomed-b/collections/safe-c')).toEqual({})
    })

    test('in the others’ buckets, what it alone writes goes and the rest stays', async () => {
      expect(await gone('bucket', '', 'safe-b')).toBe(false)
      expect(await gone('collection', '/buckets/safe-b', 'doomed-c')).toBe(true)
      expect(await gone('collection', '/buckets/safe-b', 'safe-c')).toBe(false)
      expect(await gone('record', '/buckets/safe-b/collections/safe-c', 'doomed-r')).toBe(true)
      expect(await gone('record', '/buckets/safe-b/collections/safe-c', 'safe-r')).toBe(false)
      expect(await gone('bucket', '', 'both')).toBe(false)
      // The deletes leave tombstones, as a delete does: syncing clients see them.
      const since = await req('GET', '/v1/buckets/safe-b/collections/safe-c/records?_since=0', {auth: SAFE})
      expect(since.body.data.find((r: {id: string}) => r.id === 'doomed-r')).toMatchObject({deleted: true})
    })

    test('what stays has lost its permissions, and nothing else', async () => {
      expect(await permissionsOf('/buckets/safe-b')).toEqual({write: [safe]})
      expect(await permissionsOf('/buckets/safe-b/collections/safe-c/records/safe-r')).toEqual({write: [safe]})
      expect(await permissionsOf('/buckets/both')).toEqual({write: [safe]})
    })

    test('it is no member of any group; the others keep theirs', async () => {
      expect([...(await runtime.backends.permission.getUserPrincipals(safe))]).toEqual(['/buckets/safe-b/groups/g'])
      expect([...(await runtime.backends.permission.getUserPrincipals(doomed))]).toEqual([])
    })

    test('one delete event per list, what lies below a deleted object folded into its delete', () => {
      const deletes = events.filter((e) => e.action === 'delete')
      const buckets = deletes.filter((e) => e.resourceName === 'bucket')
      expect(buckets).toHaveLength(1)
      expect(buckets[0].impacted.map((i) => i.old?.id)).toEqual(['doomed-b'])
      const collections = deletes.filter((e) => e.resourceName === 'collection')
      expect(collections).toHaveLength(1)
      expect(collections[0].payload).toMatchObject({bucket_id: 'safe-b', resource_name: 'collection', action: 'delete', user_id: admin})
      expect(collections[0].impacted.map((i) => i.old?.id)).toEqual(['doomed-c'])
      const records = deletes.filter((e) => e.resourceName === 'record')
      expect(records).toHaveLength(1)
      expect(records[0].payload).toMatchObject({bucket_id: 'safe-b', collection_id: 'safe-c'})
      expect(records[0].impacted.map((i) => i.old?.id)).toEqual(['doomed-r'])
      expect(records[0].impacted[0].new).toMatchObject({id: 'doomed-r', deleted: true})
    })

    test('a second delete is fine', async () => {
      const again = await req('DELETE', `/v1/__user_data__/${doomed}`, {auth: ADMIN})
      expect(again.status).toBe(200)
      expect(again.body).toEqual({data: {principal: doomed}})
    })

    test('only user-data_delete_principals may call it: 403 for others, 401 anonymous', async () => {
      const other = await req('DELETE', `/v1/__user_data__/${safe}`, {auth: DOOMED})
      expect(other.status).toBe(403)
      expect(other.body.errno).toBe(121)
      expect((await req('DELETE', `/v1/__user_data__/${safe}`)).status).toBe(401)
      expect(await gone('bucket', '', 'safe-b')).toBe(false)
    })

    test('no other method, on either URL (405)', async () => {
      for (const url of ['/v1/__user_data__', `/v1/__user_data__/${doomed}`]) {
        for (const method of ['GET', 'HEAD', 'PUT', 'PATCH', 'POST']) {
          expect((await req(method, url, {auth: ADMIN})).status, `${method} ${url}`).toBe(405)
        }
      }
      expect((await req('DELETE', '/v1/__user_data__', {auth: ADMIN})).status).toBe(405)
    })

    test('a batch refuses it, as every __…__ URL (a proxy keeps those private by path)', async () => {
      const batch = await req('POST', '/v1/batch', {auth: ADMIN, body: {requests: [{method: 'DELETE', path: `/__user_data__/${safe}`}]}})
      expect(batch.status).toBe(400)
      expect(await gone('bucket', '', 'safe-b')).toBe(false)
    })
  })
}

// On postgresql the login cache is the PostgreSQL one, shared by every process: the delete must
// empty it, where the memory cache reads the stored account again.
for (const backend of ['memory', 'postgresql'] as const) describe(`DELETE /__user_data__ with accounts and history (${backend})`, () => {
  let app: FastifyInstance
  let close: () => Promise<void>
  let req: ReturnType<typeof client>
  const EVE = basic('eve', 'eve-password')
  beforeAll(async () => {
    ;({app, close} = await appOn(backend, {
      ...SETTINGS,
      'kinto.includes': 'kinto.plugins.accounts kinto.plugins.history',
      'multiauth.policies': 'account basicauth',
      'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
      'kinto.account_create_principals': 'system.Everyone',
    }))
    req = client(app, null)
    expect((await req('PUT', '/v1/accounts/eve', {body: {data: {password: 'eve-password'}}})).status).toBe(201)
    expect((await req('GET', '/v1/', {auth: EVE})).body.user.id).toBe('account:eve')
    expect((await req('PUT', '/v1/buckets/shared', {auth: SAFE, body: {permissions: {write: ['account:eve']}}})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/shared/collections/c', {auth: SAFE})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/shared/collections/c/records/eve-r', {auth: EVE})).status).toBe(201)
    expect((await req('PUT', '/v1/buckets/eve-b', {auth: EVE})).status).toBe(201)
    expect((await req('DELETE', '/v1/__user_data__/account:eve', {auth: ADMIN})).status).toBe(200)
  })
  afterAll(async () => close?.())

  test('the account goes too (upstream keeps it, without its permissions): its password no longer logs in', async () => {
    // (basicauth, after the account policy, takes the credentials as any Basic ones)
    expect((await req('GET', '/v1/', {auth: EVE})).body.user.id).not.toBe('account:eve')
    expect(await (app.kinto as Runtime).backends.storage.get('account', 'eve', 'eve').catch((err) => err)).toBeInstanceOf(ObjectNotFoundError)
    // The name is free again.
    expect((await req('PUT', '/v1/accounts/eve', {body: {data: {password: 'new-password-1'}}})).status).toBe(201)
  })

  test('its own bucket and its record in the shared bucket are gone; the delete is in the shared bucket’s history, by the caller', async () => {
    expect((await req('GET', '/v1/buckets/eve-b', {auth: SAFE})).status).toBe(403)
    expect((await req('GET', '/v1/buckets/shared/collections/c/records/eve-r', {auth: SAFE})).status).toBe(404)
    const history = await req('GET', '/v1/buckets/shared/history?resource_name=record', {auth: SAFE})
    expect(history.status).toBe(200)
    expect(history.body.data[0]).toMatchObject({action: 'delete', uri: '/buckets/shared/collections/c/records/eve-r', user_id: admin, record_id: 'eve-r'})
  })
})

describe('DELETE /__user_data__/system.Everyone or system.Authenticated', () => {
  test('400: they are nobody’s user id, and every public or logged-in ACE would go with them', async () => {
    const app = memoryApp(SETTINGS)
    try {
      const req = client(app, null)
      expect((await req('PUT', '/v1/buckets/public', {auth: SAFE, body: {permissions: {read: ['system.Everyone', 'system.Authenticated']}}})).status).toBe(201)
      for (const principal of ['system.Everyone', 'system.Authenticated']) {
        const res = await req('DELETE', `/v1/__user_data__/${principal}`, {auth: ADMIN})
        expect(res.status, principal).toBe(400)
        expect(res.body).toMatchObject({errno: 107, details: [{location: 'path', name: 'principal'}]})
        // Not a way around the permission check: others still get their 403.
        expect((await req('DELETE', `/v1/__user_data__/${principal}`, {auth: DOOMED})).status).toBe(403)
      }
      const perms = await (app.kinto as Runtime).backends.permission.getObjectPermissions('/buckets/public')
      expect([...(perms.read ?? [])].sort()).toEqual(['system.Authenticated', 'system.Everyone'])
    } finally {
      await app.close()
    }
  })
})

describe('DELETE /__user_data__ in read-only mode', () => {
  test('405 errno 115, as every write', async () => {
    const app = memoryApp({...SETTINGS, 'kinto.readonly': 'true'})
    try {
      const res = await client(app, ADMIN)('DELETE', `/v1/__user_data__/${doomed}`)
      expect(res.status).toBe(405)
      expect(res.body.errno).toBe(115)
    } finally {
      await app.close()
    }
  })
})

describe('DELETE /__user_data__ with kinto_attachment', () => {
  test('the files of its records go, those below its bucket too; the others’ stay', async () => {
    const files = mkdtempSync(path.join(os.tmpdir(), 'user-data-files-'))
    const hmac = (u: string, p: string) => `basicauth:${createHmac('sha256', 'client-tests').update(`${u}:${p}`).digest('hex')}`
    const srv = await startTestServer('memory', {
      'kinto.includes': 'kinto_attachment',
      'kinto.bucket_create_principals': 'system.Authenticated',
      'kinto.user-data_delete_principals': hmac('admin', 'pw'),
      'kinto.attachment.base_path': files,
      'kinto.attachment.base_url': 'http://localhost/files/',
    })
    const listFiles = () => readdirSync(files, {recursive: true, withFileTypes: true}).filter((e) => e.isFile()).map((e) => e.name)
    try {
      const A = basicAuth('alice', 'pw')
      const B = basicAuth('bob', 'pw')
      const call = async (method: string, p: string, auth: string, body?: unknown) => {
        const init: RequestInit = {method, headers: {authorization: auth}}
        if (body instanceof FormData) init.body = body
        else if (body !== undefined) {
          init.body = JSON.stringify(body)
          init.headers = {authorization: auth, 'content-type': 'application/json'}
        }
        const res = await fetch(`${srv.remote}${p}`, init)
        return {status: res.status, body: await res.json().catch(() => null)}
      }
      const upload = async (p: string, auth: string) => {
        const fd = new FormData()
        fd.append('attachment', new Blob(['content']), 'f.txt')
        expect((await call('POST', `${p}/attachment`, auth, fd)).status, p).toBe(201)
      }
      expect((await call('PUT', '/buckets/alice', A, {permissions: {write: [hmac('bob', 'pw')]}})).status).toBe(201)
      expect((await call('PUT', '/buckets/alice/collections/c', A)).status).toBe(201)
      await upload('/buckets/alice/collections/c/records/alice-r', A)
      await upload('/buckets/alice/collections/c/records/bob-r', B)
      expect((await call('PUT', '/buckets/bob', B)).status).toBe(201)
      expect((await call('PUT', '/buckets/bob/collections/c', B)).status).toBe(201)
      await upload('/buckets/bob/collections/c/records/r', B)
      expect(listFiles()).toHaveLength(3)
      const res = await call('DELETE', `/__user_data__/${hmac('bob', 'pw')}`, basicAuth('admin', 'pw'))
      expect(res.status).toBe(200)
      expect(listFiles()).toHaveLength(1)
      const kept = await call('GET', '/buckets/alice/collections/c/records/alice-r', A)
      expect(listFiles()).toEqual([path.basename(new URL((kept.body as {data: {attachment: {location: string}}}).data.attachment.location).pathname)])
    } finally {
      await srv.close()
      rmSync(files, {recursive: true, force: true})
    }
  }, 60_000)
})

/**
 * kinto.plugins.default_bucket in-process: /buckets/default maps to the user's
 * personal bucket (id derived as upstream derives it), bucket and collection created implicitly
 * with their events, requests replayed on the real path. Upstream's
 * tests/plugins/test_default_bucket.py scenarios, rewritten.
 */
import {createHmac} from 'node:crypto'

import type {FastifyInstance} from 'fastify'
import {afterAll, describe, expect, test} from 'vitest'

import type {ResourceEvent} from '../../src/lib/server/events.js'
import {defaultBucketId} from '../../src/lib/server/plugins/default-bucket.js'
import {ALICE, BOB, basic, client, postgresApp} from './helpers.js'
import {pluginPrincipal, pluginSetup} from './plugins-helpers.js'

const setup = pluginSetup({'kinto.includes': 'kinto.plugins.default_bucket'})

/** The basicauth user id of ALICE under the test secret. */
const aliceId = () => pluginPrincipal('alice')

function recordEvents(app: FastifyInstance): ResourceEvent[] {
  const events: ResourceEvent[] = []
  app.kinto.events.onChanged({}, (event) => void events.push(event))
  return events
}

describe('the bucket id', () => {
  test('is HMAC-SHA256(default_bucket_hmac_secret, user id) cut to 32 hex digits, shaped as a UUID', async () => {
    const {req} = setup({'kinto.default_bucket_hmac_secret': 'bucket_id_salt'})
    const hex = createHmac('sha256', 'bucket_id_salt').update(aliceId()).digest('hex').slice(0, 32)
    const expected = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
    const bucket = await req('GET', '/v1/buckets/default')
    expect(bucket.status).toBe(200)
    expect(bucket.body.data.id).toBe(expected)
    expect(bucket.body.permissions.write).toEqual([aliceId()])
    expect((await req('GET', '/v1/')).body.user.bucket).toBe(expected)
  })

  test('matches upstream for a known input (upstream test vector: secret "bucket_id_salt", "input data")', () => {
    const id = defaultBucketId({default_bucket_hmac_secret: 'bucket_id_salt'}, 'input data')
    expect(id.replaceAll('-', '')).toMatch(/^70f09c2d07853887d6b72bc70517f963/)
  })

  test('the default (empty) default_bucket_hmac_secret is the key: userid_hmac_secret is no fallback', () => {
    // With the default (empty) default_bucket_hmac_secret, the userid_hmac_secret is not used.
    const id = defaultBucketId({default_bucket_hmac_secret: '', userid_hmac_secret: 'ignored'}, 'basicauth:x')
    const hex = createHmac('sha256', '').update('basicauth:x').digest('hex')
    expect(id.replaceAll('-', '')).toBe(hex.slice(0, 32))
  })

  test('anonymous → 401; each user has their own', async () => {
    const {req} = setup()
    const anonymous = await req('GET', '/v1/buckets/default', {auth: null})
    expect(anonymous.status).toBe(401)
    expect(anonymous.body.message).toBe('Please authenticate yourself to use this endpoint.')
    const created = await req('POST', '/v1/buckets/default/collections/tasks/records', {body: {data: {x: 1}}, auth: BOB})
    expect(created.status).toBe(201)
    const path = `/v1/buckets/default/collections/tasks/records/${created.body.data.id}`
    expect((await req('GET', path, {auth: BOB})).status).toBe(200)
    expect((await req('GET', path, {auth: ALICE})).status).toBe(404)
  })
})

describe('implicit creations', () => {
  test('GET on a collection creates bucket and collection, with their create events, once', async () => {
    const {app, req} = setup()
    const events = recordEvents(app)
    expect((await req('GET', '/v1/buckets/default/collections/articles')).status).toBe(200)
    const bucketId = (await req('GET', '/v1/')).body.user.bucket
    expect(events.map((e) => [e.resourceName, e.action])).toEqual([
      ['bucket', 'create'],
      ['collection', 'create'],
    ])
    expect(events[0].payload).toMatchObject({action: 'create', resource_name: 'bucket', bucket_id: bucketId, uri: `/buckets/${bucketId}`})
    expect(events[0].payload).not.toHaveProperty('subpath')
    expect(events[1].payload).toMatchObject({resource_name: 'collection', bucket_id: bucketId, collection_id: 'articles', uri: `/buckets/${bucketId}/collections/articles`})
    expect((await req('GET', '/v1/buckets/default/collections/articles')).status).toBe(200)
    expect(events).toHaveLength(2)
  })

  test('PUT of a record: bucket, collection and record events in that order, with the real ids', async () => {
    const {app, req} = setup()
    const events = recordEvents(app)
    const r = await req('PUT', '/v1/buckets/default/collections/articles/records/implicit', {body: {data: {implicit: 'creations'}}})
    expect(r.status).toBe(201)
    const bucketId = (await req('GET', '/v1/')).body.user.bucket
    expect(events.map((e) => e.resourceName)).toEqual(['bucket', 'collection', 'record'])
    expect(events[2].payload.uri).toBe(`/buckets/${bucketId}/collections/articles/records/implicit`)
  })

  test('PUT of a record whose path ends with the collection id creates the collection too', async () => {
    // Upstream skips the collection when the path ends with its id (meant for a PUT of the
    // collection itself), so this PUT finds no collection there: a 404.
    const {req} = setup()
    for (const path of ['/v1/buckets/default/collections/tasks/records/mytasks', '/v1/buckets/default/collections/c/records/c']) {
      const r = await req('PUT', path, {body: {data: {done: false}}})
      expect(r.status, path).toBe(201)
    }
    expect((await req('GET', '/v1/buckets/default/collections/tasks/records')).body.data.map((r: {id: string}) => r.id)).toEqual(['mytasks'])
  })

  test('explicit creation of the bucket and the collection still works (no implicit one first)', async () => {
    const {req} = setup()
    const bucket = await req('PUT', '/v1/buckets/default', {body: {permissions: {read: ['system.Everyone']}}})
    expect(bucket.status).toBe(201)
    expect(bucket.body.permissions.read).toContain('system.Everyone')
    const collection = await req('PUT', '/v1/buckets/default/collections/tasks', {body: {data: {synced: true}}})
    expect(collection.status).toBe(201)
    expect((await req('GET', '/v1/buckets/default/collections/tasks')).body.data.synced).toBe(true)
    expect((await req('PUT', '/v1/buckets/default', {auth: basic('bob')})).status).toBe(201)
  })

  test('data.id "default" in the body means the real id', async () => {
    const {req} = setup()
    const r = await req('PUT', '/v1/buckets/default', {body: {data: {id: 'default'}}})
    expect(r.status).toBe(201)
    expect(r.body.data.id).toBe((await req('GET', '/v1/')).body.user.bucket)
  })

  test('invalid collection ids are a 400', async () => {
    const {req} = setup()
    for (const path of ['/v1/buckets/default/collections/__files__/records', '/v1/buckets/default/collections/%E8%A6%8B/records']) {
      const r = await req('GET', path)
      expect(r.status).toBe(400)
      expect(r.body.message).toBe('path: Invalid collection id')
    }
  })

  test('a batch of 25 creations creates bucket and collection once', async () => {
    const {app, req} = setup()
    const events = recordEvents(app)
    const body = {requests: Array.from({length: 25}, () => ({method: 'POST', path: '/buckets/default/collections/tasks/records', body: {data: {}}}))}
    const r = await req('POST', '/v1/batch', {body})
    expect(r.body.responses.every((x: {status: number}) => x.status === 201)).toBe(true)
    expect(events.map((e) => [e.resourceName, e.impacted.length])).toEqual([
      ['bucket', 1],
      ['collection', 1],
      ['record', 25],
    ])
  })

  test('a batch deleting the bucket or a collection makes them again for the sub-requests after', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/default/collections/tasks/records/old', {body: {data: {}}})
    const r = await req('POST', '/v1/batch', {
      body: {
        requests: [
          {method: 'DELETE', path: '/buckets/default'},
          {method: 'PUT', path: '/buckets/default/collections/c/records/r', body: {data: {}}},
          {method: 'DELETE', path: '/buckets/default/collections/c'},
          {method: 'PUT', path: '/buckets/default/collections/c/records/r2', body: {data: {}}},
        ],
      },
    })
    expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([200, 201, 200, 201])
    // Read without the alias, which would make them itself.
    const bucket = `/v1/buckets/${(await req('GET', '/v1/')).body.user.bucket as string}`
    expect((await req('GET', bucket)).status).toBe(200)
    expect((await req('GET', `${bucket}/collections`)).body.data.map((c: {id: string}) => c.id)).toEqual(['c'])
    expect((await req('GET', `${bucket}/collections/c/records`)).body.data.map((x: {id: string}) => x.id)).toEqual(['r2'])
  })

  test("a record through the alias meets its existing collection's schema (upstream skips it there: architecture.md)", async () => {
    const {req} = setup({'kinto.experimental_collection_schema_validation': 'true'})
    expect((await req('PUT', '/v1/buckets/default/collections/t', {body: {data: {schema: {type: 'object', required: ['q']}}}})).status).toBe(201)
    const refused = await req('PUT', '/v1/buckets/default/collections/t/records/a', {body: {data: {}}})
    expect(refused.status).toBe(400)
    expect(refused.body.details).toEqual([{location: 'body', name: 'q', description: "'q' is a required property"}])
    const stored = await req('PUT', '/v1/buckets/default/collections/t/records/a', {body: {data: {q: 1}}})
    expect(stored.status).toBe(201)
    expect(typeof stored.body.data.schema).toBe('number')
  })

  test('a bucket id starting with default is an ordinary bucket', async () => {
    const {req} = setup()
    expect((await req('PUT', '/v1/buckets/default-1234', {body: {}})).body.data.id).toBe('default-1234')
    expect((await req('PUT', '/v1/buckets/default-1234/collections/default', {body: {}})).status).toBe(201)
  })
})

describe('the replayed request', () => {
  test('querystring kept (a bad _since is a 400); 405 and 304 pass through with CORS headers', async () => {
    const {req} = setup()
    expect((await req('GET', '/v1/buckets/default/collections/tasks/records?_since=invalid')).status).toBe(400)
    const notAllowed = await req('POST', '/v1/buckets/default/collections/tasks', {body: {}})
    expect(notAllowed.status).toBe(405)
    expect(notAllowed.body).toMatchObject({errno: 115, error: 'Method Not Allowed', message: 'Method not allowed on this endpoint.'})
    const created = await req('POST', '/v1/buckets/default/collections/tasks/records', {body: {data: {}}})
    const etag = `"${created.body.data.last_modified}"`
    const cached = await req('GET', '/v1/buckets/default/collections/tasks/records', {headers: {'If-None-Match': etag, Origin: 'http://localhost:8000'}})
    expect(cached.status).toBe(304)
    expect(cached.headers['access-control-allow-origin']).toBeDefined()
    expect(String(cached.headers['access-control-expose-headers'])).toContain('ETag')
    expect(cached.headers.etag).toBe(etag)
  })

  test('the headers exposed to browsers are those of the real path (upstream answers with the replayed response)', async () => {
    const {req} = setup()
    const hello = await req('GET', '/v1/')
    const real = `/v1/buckets/${hello.body.user.bucket as string}`
    const exposed = (res: {headers: Record<string, unknown>}) =>
      String(res.headers['access-control-expose-headers'] ?? '')
        .split(',')
        .map((h) => h.trim())
        .sort()
    const origin = {Origin: 'http://localhost:8000'}
    const cases: Array<[string, string, unknown]> = [
      ['PUT', '/collections/tasks/records/r1', {data: {a: 1}}],
      ['PATCH', '/collections/tasks/records/r1', {data: {a: 2}}],
      ['GET', '/collections/tasks/records', undefined],
      ['GET', '/collections/tasks/records/r1', undefined],
      ['GET', '/collections/tasks/records/missing', undefined],
      ['DELETE', '/collections/tasks/records/r1', undefined],
    ]
    for (const [method, sub, body] of cases) {
      const viaAlias = await req(method, `/v1/buckets/default${sub}`, {body, headers: origin})
      const viaReal = await req(method, `${real}${sub}`, {body, headers: origin})
      expect(exposed(viaAlias), `${method} ${sub}`).toEqual(exposed(viaReal))
    }
    // What the alias answers itself (an invalid collection id met by the implicit creation, a
    // path below it that nothing serves) exposes the default headers only, as upstream's errors.
    for (const sub of ['/collections/Bad%20Id', '/unknown']) {
      const own = await req('GET', `/v1/buckets/default${sub}`, {headers: origin})
      expect(own.status, sub).toBeGreaterThanOrEqual(400)
      expect(exposed(own), sub).toEqual(['Alert', 'Backoff', 'Content-Length', 'Content-Type', 'Retry-After'])
      // written as upstream's answers outside a service: in its order, without spaces
      expect(own.headers['access-control-expose-headers'], sub).toBe('Backoff,Retry-After,Alert,Content-Length,Content-Type')
    }
    // The record list exposes no Total-Records (a HEAD's): as upstream's record GET.
    expect(exposed(await req('GET', '/v1/buckets/default/collections/tasks/records'))).not.toContain('Total-Records')
  })

  test('a paginated DELETE through the alias follows its Next-Page token', async () => {
    const {req} = setup({'kinto.paginate_by': '2'})
    for (let i = 0; i < 3; i++) await req('POST', '/v1/buckets/default/collections/tasks/records', {body: {data: {i}}})
    const first = await req('DELETE', '/v1/buckets/default/collections/tasks/records')
    expect(first.body.data).toHaveLength(2)
    const next = String(first.headers['next-page']).replace(/^http:\/\/[^/]+/, '')
    expect(next).toContain('/v1/buckets/')
    const second = await req('DELETE', next.replace(/\/buckets\/[^/]+\//, '/buckets/default/'))
    expect(second.status).toBe(200)
    expect(second.body.data).toHaveLength(1)
  })

  test('preflight needs no authentication', async () => {
    const {req} = setup()
    const r = await req('OPTIONS', '/v1/buckets/default/collections/tasks/records', {
      auth: null,
      headers: {Origin: 'http://localhost:8000', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization,content-type'},
    })
    expect(r.status).toBe(200)
  })

  test.each([
    ['/v1/buckets/default/', '/v1/buckets/default'],
    ['/v1/buckets/default/collections/', '/v1/buckets/default/collections'],
    ['/v1/buckets/default/collections/foo/records/bar/', '/v1/buckets/default/collections/foo/records/bar'],
  ])('trailing slash: %s → 307 %s', async (path, location) => {
    const {req} = setup()
    const r = await req('GET', path)
    expect(r.status).toBe(307)
    expect(r.headers.location).toBe(`http://localhost${location}`)
  })

  test('trailing slash: the redirect answer has the body and headers of any other trailing-slash redirect', async () => {
    // Upstream's default bucket view lets the 404 of its replayed request reach kinto.core's
    // not-found view, which answers the one redirect page for every path.
    const {req} = setup()
    const html = await req('GET', '/v1/buckets/default/collections/', {headers: {Accept: 'text/html'}})
    expect(html.status).toBe(307)
    expect(html.headers['content-type']).toBe('text/html; charset=UTF-8')
    expect(html.raw).toContain('<h1>307 Temporary Redirect</h1>')
    expect(html.raw).toContain('The resource has been moved to /v1/buckets/default/collections; you should be redirected automatically.')
    expect(html.headers['access-control-expose-headers']).toBe('Backoff,Retry-After,Alert,Content-Length,Content-Type')
    const json = await req('GET', '/v1/buckets/default/?_limit=2', {headers: {Accept: 'application/json'}})
    expect(json.status).toBe(307)
    expect(json.headers.location).toBe('http://localhost/v1/buckets/default?_limit=2')
    expect(json.body).toEqual({
      code: '307 Temporary Redirect',
      title: 'Temporary Redirect',
      message: 'The resource has been moved to /v1/buckets/default?_limit=2; you should be redirected automatically.\n\n',
    })
    const other = await req('GET', '/v1/buckets/', {headers: {Accept: 'text/html'}})
    expect(html.raw.replace('/default/collections', '')).toBe(other.raw)
  })

  test('readonly: 405', async () => {
    const {req} = setup({'kinto.readonly': 'true'})
    expect((await req('GET', '/v1/buckets/default')).status).toBe(405)
  })

  test('hello shows the capability', async () => {
    const {req} = setup()
    expect((await req('GET', '/v1/')).body.capabilities).toHaveProperty('default_bucket')
    expect((await req('GET', '/v1/', {auth: null})).body.user).toBeUndefined()
  })
})

describe('on the postgresql backends (PGlite here, the server in CI)', () => {
  let pg: Awaited<ReturnType<typeof postgresApp>>
  afterAll(async () => pg?.close())

  test('GET creates in its own transaction; writes in the request transaction; a batch shares it', async () => {
    pg = await postgresApp({'kinto.includes': 'kinto.plugins.default_bucket', 'kinto.userid_hmac_secret': 'pg'})
    const req = client(pg.app)
    expect((await req('GET', '/v1/buckets/default/collections/c1')).status).toBe(200)
    expect((await req('POST', '/v1/buckets/default/collections/c2/records', {body: {data: {n: 1}}})).status).toBe(201)
    const batch = await req('POST', '/v1/batch', {
      body: {requests: [{method: 'PUT', path: '/buckets/default/collections/c3/records/r1', body: {data: {}}}, {path: '/buckets/default/collections'}]},
    })
    expect(batch.body.responses[0].status).toBe(201)
    expect(batch.body.responses[1].body.data.map((c: {id: string}) => c.id).sort()).toEqual(['c1', 'c2', 'c3'])
  }, 60_000)
})

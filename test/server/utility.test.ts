/**
 * Utility endpoints, redirects, 404s, common headers, CORS, readonly, backoff and end-of-service,
 * through app.inject on memory backends.
 */
import {afterEach, describe, expect, test} from 'vitest'

import {ALICE, client, memoryApp} from './helpers.js'
import {ACCEPTANCE_PLUGINS} from './plugins-helpers.js'

const apps: Array<ReturnType<typeof memoryApp>> = []
function setup(raw: Record<string, string> = {}) {
  const app = memoryApp(raw)
  apps.push(app)
  return {app, req: client(app)}
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

describe('hello', () => {
  test('anonymous hello has every field and no user', async () => {
    const {req} = setup()
    const r = await req('GET', '/v1/', {auth: null})
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({
      project_name: 'kinto',
      http_api_version: '1.23',
      project_docs: 'https://kinto.readthedocs.io/',
      url: 'http://localhost/v1/',
      config: null,
      settings: {batch_max_requests: 25, readonly: false, explicit_permissions: true},
      capabilities: {basicauth: {description: expect.any(String), url: expect.any(String)}},
    })
    expect(typeof r.body.project_version).toBe('string')
    expect(r.body).not.toHaveProperty('user')
    expect(r.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; ")
    expect(r.headers['x-content-type-options']).toBe('nosniff')
  })

  test('project_version and http_api_version show as written (1.0 is not 1, 1.10 is not 1.1)', async () => {
    const {req} = setup({'kinto.project_version': '1.0', 'kinto.http_api_version': '1.20'})
    const r = await req('GET', '/v1/', {auth: null})
    expect(r.body).toMatchObject({project_version: '1.0', http_api_version: '1.20'})
  })

  test('authenticated hello shows the HMAC user id and principals', async () => {
    const {req} = setup({'kinto.userid_hmac_secret': 'secret-key'})
    const r = await req('GET', '/v1/')
    const {createHmac} = await import('node:crypto')
    const id = 'basicauth:' + createHmac('sha256', 'secret-key').update('alice:secret').digest('hex')
    expect(r.body.user).toEqual({id, principals: [id, 'system.Everyone', 'system.Authenticated']})
  })

  test('url honours http_scheme and http_host', async () => {
    const {req} = setup({'kinto.http_scheme': 'https', 'kinto.http_host': 'kinto.example.com'})
    expect((await req('GET', '/v1/')).body.url).toBe('https://kinto.example.com/v1/')
  })

  test('readonly hello is cacheable and says readonly', async () => {
    const {req} = setup({'kinto.readonly': 'true'})
    const r = await req('GET', '/v1/', {auth: null})
    expect(r.body.settings.readonly).toBe(true)
    expect(r.headers['cache-control']).toBe('max-age=86400')
    expect(r.headers.expires).toBeTruthy()
  })

  test('readonly hello varies on Authorization: a kept anonymous hello is not a signed-in one', async () => {
    // A browser keeps the anonymous hello the admin console reads first; without Vary it answered
    // the sign-in's hello from that copy (no `user`), and signing in failed.
    const {req} = setup({'kinto.readonly': 'true'})
    const anonymous = await req('GET', '/v1/', {auth: null})
    const signedIn = await req('GET', '/v1/')
    expect(anonymous.headers.vary).toBe('Authorization')
    expect(signedIn.headers.vary).toBe('Authorization')
    expect(anonymous.body).not.toHaveProperty('user')
    expect(signedIn.body.user.id).toMatch(/^basicauth:/)
    // Not readonly: nothing is kept, nothing varies.
    expect((await setup().req('GET', '/v1/', {auth: null})).headers.vary).toBeUndefined()
  })

  test('HEAD on hello has no body', async () => {
    const {req} = setup()
    const r = await req('HEAD', '/v1/')
    expect(r.status).toBe(200)
    expect(r.raw).toBe('')
  })
})

describe('HEAD', () => {
  test('a HEAD answer carries the Content-Type and Content-Length of the GET answer', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    for (const url of ['/v1/', '/v1/buckets/b', '/v1/buckets', '/v1/__heartbeat__', '/v1/__api__']) {
      const get = await req('GET', url)
      const head = await req('HEAD', url)
      expect(head.status, url).toBe(get.status)
      expect(head.headers['content-type'], url).toBe(get.headers['content-type'])
      // a list's HEAD is a view of its own (upstream's plural_head: no page read), its length its own
      if (url !== '/v1/buckets') expect(head.headers['content-length'], url).toBe(get.headers['content-length'])
      expect(head.raw, url).toBe('')
    }
    // errors too
    const missing = await req('HEAD', '/v1/buckets/nope')
    expect(missing.status).toBe(403)
    expect(missing.headers['content-type']).toBe((await req('GET', '/v1/buckets/nope')).headers['content-type'])
  })
})

describe('heartbeats and version', () => {
  test('__heartbeat__ checks every backend', async () => {
    const {req} = setup()
    const r = await req('GET', '/v1/__heartbeat__', {auth: null})
    expect(r.status).toBe(200)
    expect(r.body).toEqual({storage: true, permission: true, cache: true})
  })

  test('__heartbeat__ is 503 when a backend fails', async () => {
    const {app, req} = setup()
    app.kinto.heartbeats.set('broken', async () => false)
    const r = await req('GET', '/v1/__heartbeat__', {auth: null})
    expect(r.status).toBe(503)
    expect(r.body.broken).toBe(false)
  })

  test('__heartbeat__ answers within heartbeat_timeout_seconds when a check hangs', async () => {
    const {app, req} = setup({'kinto.heartbeat_timeout_seconds': '0.2'})
    app.kinto.heartbeats.set('slow', () => new Promise(() => {}))
    // The check never settles: only the timeout can answer, within the test's 5 s bound.
    const r = await req('GET', '/v1/__heartbeat__', {auth: null})
    expect(r.status).toBe(503)
    expect(r.body.slow).toBe(false)
  }, 5000)

  test('__lbheartbeat__ and __version__', async () => {
    const {req} = setup()
    expect(await req('GET', '/v1/__lbheartbeat__', {auth: null})).toMatchObject({status: 200, body: {}})
    const v = await req('GET', '/v1/__version__', {auth: null})
    expect(v.status).toBe(200)
    expect(v.body).toHaveProperty('version')
  })

  test('/__api__: an OpenAPI 2.0 description of what this instance serves, public', async () => {
    const {req} = setup({http_scheme: 'https', includes: 'kinto.plugins.history'})
    const r = await req('GET', '/v1/__api__', {auth: null, headers: {host: 'kinto.example.com:8443'}})
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({swagger: '2.0', info: {title: 'kinto', version: '1.23'}, host: 'kinto.example.com:8443', basePath: '/v1', schemes: ['https']})
    expect(r.body.securityDefinitions).toEqual({basicauth: expect.objectContaining({type: 'basic'})})
    const paths = r.body.paths as Record<string, Record<string, {operationId: string; tags: string[]; parameters: Array<{name: string; in: string}>; security: unknown[]}>>
    // HEAD and OPTIONS are not described, as upstream (test/server/openapi.test.ts for the rest)
    expect(Object.keys(paths['/buckets/{id}']).sort()).toEqual(['delete', 'get', 'parameters', 'patch', 'put'])
    expect(Object.keys(paths['/buckets']).sort()).toEqual(['delete', 'get', 'post'])
    const record = paths['/buckets/{bucket_id}/collections/{collection_id}/records/{id}'] as unknown as Record<string, {operationId: string}> & {parameters: unknown[]}
    expect(record.parameters).toEqual([
      {name: 'bucket_id', in: 'path', required: true, type: 'string'},
      {name: 'collection_id', in: 'path', required: true, type: 'string'},
      {name: 'id', in: 'path', required: true, type: 'string'},
    ])
    expect(paths['/buckets/{bucket_id}/collections/{collection_id}/records/{id}'].put).toMatchObject({
      operationId: 'update_record',
      tags: ['Records'],
      parameters: expect.arrayContaining([{name: 'ObjectSchema', in: 'body', required: true, schema: expect.objectContaining({type: 'object'})}]),
      security: [{basicauth: []}],
    })
    expect(paths['/buckets'].get.operationId).toBe('get_buckets')
    expect(paths['/__heartbeat__'].get).toMatchObject({tags: ['Utilities'], security: []})
    // a plugin's endpoints are described too
    expect(paths['/buckets/{bucket_id}/history']?.get).toBeDefined()
    expect(paths['/__api__'].get.operationId).toBe('get_openapi_spec')
  })

  test('/contribute.json: the project and where to take part (upstream endpoint), public', async () => {
    const {req} = setup({project_docs: 'https://docs.example.com/'})
    const r = await req('GET', '/v1/contribute.json', {auth: null})
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({name: 'kinto', repository: {url: 'https://github.com/Kinto/kinto'}, participate: {docs: 'https://docs.example.com/'}})
    expect(typeof r.body.description).toBe('string')
    expect((await req('POST', '/v1/contribute.json', {body: {}})).status).toBe(405)
  })
})

describe('redirects and unknown URLs', () => {
  test('paths outside /v1 redirect to /v1 with the querystring', async () => {
    const {req} = setup()
    const r = await req('GET', '/buckets?a=1', {auth: null})
    expect(r.status).toBe(307)
    expect(r.headers.location).toBe('http://localhost/v1/buckets?a=1')
    expect((await req('GET', '/', {auth: null})).headers.location).toBe('http://localhost/v1/')
  })

  test('OPTIONS outside /v1 answers 200 for CORS', async () => {
    const {req} = setup()
    expect((await req('OPTIONS', '/buckets', {auth: null})).status).toBe(200)
  })

  test("OPTIONS outside /v1 is an empty answer typed as upstream's web framework types it (text/html), with the default exposed headers", async () => {
    const {req} = setup()
    for (const url of ['/buckets', '/']) {
      const r = await req('OPTIONS', url, {auth: null, headers: {origin: 'http://app.example', 'access-control-request-method': 'GET'}})
      expect(r.status, url).toBe(200)
      expect(r.raw, url).toBe('')
      expect(r.headers['content-type'], url).toBe('text/html; charset=UTF-8')
      expect(r.headers['content-length'], url).toBe('0')
      expect(r.headers['access-control-allow-origin'], url).toBe('*')
      expect(r.headers['access-control-expose-headers'], url).toBe('Backoff,Retry-After,Alert,Content-Length,Content-Type')
    }
  })

  test('trailing slashes redirect, /v1 goes to /v1/', async () => {
    const {req} = setup()
    const r = await req('GET', '/v1/buckets/?_limit=2', {auth: null})
    expect(r.status).toBe(307)
    expect(r.headers.location).toBe('http://localhost/v1/buckets?_limit=2')
    expect(r.headers['cache-control']).toBe('max-age=3600')
    const v1 = await req('GET', '/v1', {auth: null})
    expect(v1.status).toBe(307)
    expect(v1.headers.location).toBe('http://localhost/v1/')
  })

  test('a HEAD redirect tells the Content-Length of the body its GET gets, as every HEAD (and upstream)', async () => {
    const {req} = setup()
    for (const url of ['/v1', '/v1/buckets/', '/buckets', '/v1/buckets/default/']) {
      for (const accept of ['text/html', 'application/json', '']) {
        const get = await req('GET', url, {headers: {accept}})
        const head = await req('HEAD', url, {headers: {accept}})
        expect(head.status, `${url} ${accept}`).toBe(307)
        expect(head.raw, url).toBe('')
        expect(head.headers['content-length'], `${url} ${accept}`).toBe(String(Buffer.byteLength(get.raw)))
      }
    }
  })

  test('trailing slash redirect can be disabled', async () => {
    const {req} = setup({'kinto.trailing_slash_redirect_enabled': 'false'})
    const r = await req('GET', '/v1/buckets/', {auth: null})
    expect(r.status).toBe(404)
    expect(r.body.errno).toBe(111)
  })

  test('unknown routes: 404 errno 111; other versions: errno 116', async () => {
    const {req} = setup()
    expect((await req('GET', '/v1/nowhere/at/all')).body).toEqual({
      code: 404,
      errno: 111,
      error: 'Not Found',
      message: 'The resource you are looking for could not be found.',
    })
    const v2 = await req('GET', '/v2/buckets')
    expect(v2.status).toBe(404)
    expect(v2.body.errno).toBe(116)
  })

  test('methods an endpoint lacks: 405 errno 115', async () => {
    const {req} = setup()
    const r = await req('PUT', '/v1/buckets', {body: {}})
    expect(r.status).toBe(405)
    expect(r.body).toMatchObject({errno: 115, message: 'Method not allowed on this endpoint.'})
    // Allow lists what the endpoint answers, preflights included (upstream's cornice).
    expect(String(r.headers.allow).split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST'])
    const heartbeat = await req('DELETE', '/v1/__heartbeat__')
    expect(heartbeat.status).toBe(405)
    expect(heartbeat.headers.allow).toBe('GET, HEAD, OPTIONS')
  })

  test('a method no endpoint serves (PROPFIND) is routed as any other: Allow on a 405, 404 elsewhere, redirects kept', async () => {
    const {app} = setup()
    const send = (url: string) => app.inject({method: 'PROPFIND' as 'GET', url, headers: {authorization: ALICE}})
    const list = await send('/v1/buckets')
    expect(list.statusCode).toBe(405)
    expect(list.json().errno).toBe(115)
    expect(list.headers.allow).toBe('HEAD, GET, POST, DELETE, OPTIONS')
    expect((await send('/v1/__heartbeat__')).headers.allow).toBe('GET, HEAD, OPTIONS')
    const unknown = await send('/v1/nowhere')
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().errno).toBe(111)
    const outside = await send('/buckets')
    expect(outside.statusCode).toBe(307)
    expect(outside.headers.location).toBe('http://localhost/v1/buckets')
  })
})

describe('CORS', () => {
  test('preflight lists methods and headers', async () => {
    const {req} = setup()
    const r = await req('OPTIONS', '/v1/buckets/b/collections/c/records', {
      auth: null,
      headers: {origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'Authorization, If-Match'},
    })
    expect(r.status).toBe(200)
    expect(r.headers['access-control-allow-origin']).toBe('*')
    expect(String(r.headers['access-control-allow-methods']).split(',')).toEqual(expect.arrayContaining(['GET', 'POST', 'DELETE', 'HEAD']))
    expect(String(r.headers['access-control-allow-headers'])).toContain('If-Match')
    expect(r.headers['access-control-max-age']).toBe('3600')
  })

  test('preflight without Origin or method is a 400', async () => {
    const {req} = setup()
    const r = await req('OPTIONS', '/v1/buckets', {auth: null})
    expect(r.status).toBe(400)
    expect(r.body.errno).toBe(107)
  })

  test('exposed headers per endpoint', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/b', {body: {}})
    const list = await req('GET', '/v1/buckets', {headers: {origin: 'http://app.example'}})
    const exposed = String(list.headers['access-control-expose-headers'])
    for (const h of ['Next-Page', 'ETag', 'Last-Modified', 'Backoff', 'Retry-After', 'Alert', 'Content-Length']) expect(exposed).toContain(h)
    const head = await req('HEAD', '/v1/buckets', {headers: {origin: 'http://app.example'}})
    expect(String(head.headers['access-control-expose-headers'])).toContain('Total-Objects')
    const error = await req('GET', '/v1/buckets/nope', {auth: null, headers: {origin: 'http://app.example'}})
    expect(error.headers['access-control-allow-origin']).toBe('*')
  })

  test('cors_origins restricts origins', async () => {
    const {req} = setup({'kinto.cors_origins': 'https://*.example.com'})
    const ok = await req('GET', '/v1/', {headers: {origin: 'https://app.example.com'}})
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com')
    const no = await req('GET', '/v1/buckets', {headers: {origin: 'https://evil.test'}})
    expect(no.status).toBe(400)
    expect(no.headers['access-control-allow-origin']).toBeUndefined()
  })

  test('a list of origins (no `*`): every answer varies on Origin, so that a cache never gives one origin the answer of another', async () => {
    const {req} = setup({'kinto.cors_origins': 'https://a.example.com https://b.example.com', 'kinto.bucket_read_principals': 'system.Everyone', 'kinto.bucket_cache_expires_seconds': '60'})
    await req('PUT', '/v1/buckets/b', {body: {}})
    const a = await req('GET', '/v1/buckets/b', {auth: null, headers: {origin: 'https://a.example.com'}})
    expect(a.headers['access-control-allow-origin']).toBe('https://a.example.com')
    expect(a.headers['cache-control']).toBe('max-age=60')
    expect(String(a.headers.vary).split(/,\s*/).sort()).toEqual(['Authorization', 'Origin'])
    // the same URL without Origin (a cache may keep it and give it to a page of b.example.com)
    expect((await req('GET', '/v1/buckets/b', {auth: null})).headers.vary).toContain('Origin')
    for (const url of ['/v1/', '/v1/nowhere', '/buckets']) expect((await req('GET', url, {headers: {origin: 'https://b.example.com'}})).headers.vary, url).toContain('Origin')
    const preflight = await req('OPTIONS', '/v1/buckets', {auth: null, headers: {origin: 'https://b.example.com', 'access-control-request-method': 'GET'}})
    expect(preflight.headers.vary).toBe('Origin')
    // with `*` the answer is the same for every origin: nothing to vary on (as upstream)
    const any = setup()
    expect((await any.req('GET', '/v1/', {headers: {origin: 'https://a.example.com'}})).headers.vary).toBeUndefined()
  })

  test('an empty cors_origins turns CORS off, as upstream: no Origin refused, OPTIONS a 405, no CORS header', async () => {
    const {req} = setup({'kinto.cors_origins': ''})
    const origin = {origin: 'http://app.example'}
    // a page served from the server's own origin sends its Origin with every write
    const put = await req('PUT', '/v1/buckets/b', {body: {}, headers: origin})
    expect(put.status).toBe(201)
    expect(put.headers['access-control-allow-origin']).toBeUndefined()
    expect(put.headers['access-control-expose-headers']).toBeUndefined()
    expect(put.headers.vary).toBeUndefined()
    const batch = await req('POST', '/v1/batch', {body: {requests: [{method: 'GET', path: '/buckets/b', headers: {Origin: 'http://other.example'}}]}, headers: origin})
    expect(batch.status).toBe(200)
    expect(batch.body.responses[0].status).toBe(200)
    for (const url of ['/v1/', '/v1/buckets/b', '/v1/batch']) {
      const preflight = await req('OPTIONS', url, {auth: null, headers: {...origin, 'access-control-request-method': 'GET'}})
      expect(preflight.status, url).toBe(405)
      expect(preflight.headers.allow, url).not.toContain('OPTIONS')
      expect(preflight.headers['access-control-allow-methods'], url).toBeUndefined()
    }
    expect((await req('GET', '/v1/batch')).headers.allow).toBe('POST')
  })

  test("a preflight from a refused origin is refused for its origin alone, before its method (upstream's origin check runs first)", async () => {
    const {req} = setup({'kinto.cors_origins': 'https://*.example.com'})
    const r = await req('OPTIONS', '/v1/batch', {auth: null, headers: {origin: 'https://evil.test', 'access-control-request-method': 'GET'}})
    expect(r.status).toBe(400)
    expect(r.body.details).toEqual([{location: 'header', name: 'Origin', description: 'https://evil.test not allowed'}])
    const noMethod = await req('OPTIONS', '/v1/batch', {auth: null, headers: {origin: 'https://evil.test'}})
    expect(noMethod.body.details).toEqual([{location: 'header', name: 'Origin', description: 'https://evil.test not allowed'}])
  })

  test('a refused origin is checked once the resource is set up (as upstream): its 404 or 401 comes first, and the 400 lists the invalid parameters with it', async () => {
    const {req} = setup({...ACCEPTANCE_PLUGINS, 'kinto.cors_origins': 'https://*.example.com'})
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    const evil = {origin: 'https://evil.test'}
    const originIssue = {location: 'header', name: 'Origin', description: 'https://evil.test not allowed'}
    // a record below a collection that does not exist: the collection's 404
    for (const url of ['/v1/buckets/b/collections/missing/records', '/v1/buckets/b/collections/missing/records/r']) {
      const missing = await req('GET', url, {headers: evil})
      expect(missing.status, url).toBe(404)
      expect(missing.body).toMatchObject({errno: 111, details: {id: 'missing', resource_name: 'collection'}})
    }
    // an anonymous account list: "Cannot read accounts."
    for (const method of ['GET', 'DELETE']) {
      const accounts = await req(method, '/v1/accounts', {auth: null, headers: evil})
      expect(accounts.status, method).toBe(401)
      expect(accounts.body).toMatchObject({errno: 999, error: 'Cannot read accounts.'})
    }
    // the anonymous personal bucket: its 401 (the alias' own answer)
    const personal = await req('GET', '/v1/buckets/default/collections/x', {auth: null, headers: evil})
    expect(personal.status).toBe(401)
    expect(personal.body.errno).toBe(104)
    // upstream's CORS validator only notes the refusal: the request's other faults come with it
    const limit = await req('GET', '/v1/buckets/b/collections/c/records?_limit=x', {headers: evil})
    expect(limit.status).toBe(400)
    expect(limit.body.message).toBe('Origin in header: https://evil.test not allowed')
    expect(limit.body.details).toEqual([originIssue, {location: 'querystring', name: '_limit', description: '"x" is not a number'}])
    const body = await req('PUT', '/v1/buckets/b/collections/c/records/r', {body: {data: 3}, headers: evil})
    expect(body.body.details).toEqual([originIssue, {location: 'body', name: 'data', description: '"3" is not a mapping type: Does not implement dict-like functionality.'}])
    const json = await req('PUT', '/v1/buckets/b/collections/c/records/r', {raw: '{', headers: evil})
    expect(json.body.message).toBe('Invalid JSON: Parse error at offset 1: Missing a name for object member.')
    expect(json.body.details.at(-1)).toEqual(originIssue)
    // a valid request from a refused origin: the refusal alone, and nothing written
    const put = await req('PUT', '/v1/buckets/b/collections/c/records/r', {body: {data: {}}, headers: evil})
    expect(put.status).toBe(400)
    expect(put.body.details).toEqual([originIssue])
    expect((await req('GET', '/v1/buckets/b/collections/c/records/r')).status).toBe(404)
    // a batch: its body's schema too (not the checks its view makes after: the number of requests)
    const batch = await req('POST', '/v1/batch', {body: {requests: [{method: 'GET'}], x: 1}, headers: evil})
    expect(batch.status).toBe(400)
    expect(batch.body.message).toBe('Unrecognized keys in mapping: "{\'x\': 1}"')
    expect(batch.body.details).toContainEqual(originIssue)
    const path = await req('POST', '/v1/batch', {body: {requests: [{method: 'GET'}]}, headers: evil})
    expect(path.body.details).toEqual([originIssue, {location: 'body', name: 'requests.0.path', description: 'Required'}])
    const many = await req('POST', '/v1/batch', {body: {requests: Array.from({length: 30}, () => ({path: '/'}))}, headers: evil})
    expect(many.body.details).toEqual([originIssue])
  })
})

describe('readonly, backoff, end of service', () => {
  test('readonly refuses writes with 405 errno 115, batch included', async () => {
    const {req} = setup({'kinto.readonly': 'true'})
    for (const [m, u] of [
      ['PUT', '/v1/buckets/b'],
      ['POST', '/v1/buckets'],
      ['POST', '/v1/batch'],
      ['DELETE', '/v1/buckets'],
      ['PATCH', '/v1/nowhere'],
    ]) {
      const r = await req(m, u, {body: {}})
      expect(r.status, `${m} ${u}`).toBe(405)
      expect(r.body.errno).toBe(115)
    }
  })

  test('readonly serves lists that were never written', async () => {
    const {req} = setup({'kinto.readonly': 'true', 'kinto.bucket_read_principals': 'system.Everyone'})
    const r = await req('GET', '/v1/buckets', {auth: null})
    expect(r.status).toBe(200)
    expect(r.body.data).toEqual([])
    expect(r.headers.etag).toBe('"0"')
  })

  test('Backoff on every response', async () => {
    const {req} = setup({'kinto.backoff': '10'})
    expect((await req('GET', '/v1/')).headers.backoff).toBe('10')
    expect((await req('GET', '/v1/nowhere')).headers.backoff).toBe('10')
  })

  test('backoff_percentage 0 never sends it', async () => {
    const {req} = setup({'kinto.backoff': '10', 'kinto.backoff_percentage': '0'})
    expect((await req('GET', '/v1/')).headers.backoff).toBeUndefined()
  })

  test('backoff_percentage may have a fraction (12.5), as upstream takes float(backoff_percentage)', async () => {
    const {req} = setup({'kinto.backoff': '10', 'kinto.backoff_percentage': '12.5'})
    const sent: boolean[] = []
    for (let i = 0; i < 200; i++) sent.push((await req('GET', '/v1/__lbheartbeat__', {auth: null})).headers.backoff === '10')
    // 12.5 % of 200: none or all of them would take odds below one in 10^11
    expect(sent).toContain(true)
    expect(sent).toContain(false)
  })

  test('soft end of service: Alert; hard: 410 errno 202', async () => {
    const soft = setup({'kinto.eos': '2999-01-01', 'kinto.eos_message': 'Moving', 'kinto.eos_url': 'https://x.test'})
    const r = await soft.req('GET', '/v1/')
    expect(r.status).toBe(200)
    expect(JSON.parse(String(r.headers.alert))).toEqual({code: 'soft-eol', message: 'Moving', url: 'https://x.test'})
    expect(r.body.eos).toBe('2999-01-01')
    const hard = setup({'kinto.eos': '2000-01-01'})
    const g = await hard.req('GET', '/v1/buckets')
    expect(g.status).toBe(410)
    expect(g.body.errno).toBe(202)
    expect(JSON.parse(String(g.headers.alert)).code).toBe('hard-eol')
  })
})

describe('plugins', () => {
  test('unknown plugins are a startup error', () => {
    expect(() => memoryApp({'kinto.includes': 'kinto.plugins.nope'})).toThrow(/Unknown plugin 'kinto.plugins.nope'/)
    // Upstream plugins we do not carry are skipped with a warning (test/server/plugins-registry.test.ts).
    expect(() => memoryApp({'kinto.includes': 'kinto.plugins.quotas'})).not.toThrow()
  })

  test('unknown authentication policies are a startup error', () => {
    expect(() => memoryApp({'multiauth.policies': 'magic'})).toThrow(/no multiauth.policy.magic.use/)
  })

  test('flush plugin empties everything', async () => {
    const {req} = setup({'kinto.includes': 'kinto.plugins.flush', 'kinto.flush_endpoint_enabled': 'true'})
    await req('PUT', '/v1/buckets/b', {body: {}})
    expect((await req('GET', '/v1/')).body.capabilities.flush_endpoint).toBeDefined()
    const r = await req('POST', '/v1/__flush__', {auth: null})
    expect(r.status).toBe(202)
    expect((await req('GET', '/v1/buckets/b')).status).toBe(403)
  })

  test('a policy name other than basicauth gives its prefix', async () => {
    const {req} = setup({'multiauth.policies': 'mine', 'multiauth.policy.mine.use': 'kinto.core.authentication.BasicAuthAuthenticationPolicy'})
    expect((await req('GET', '/v1/', {auth: ALICE})).body.user.id).toMatch(/^mine:[0-9a-f]{64}$/)
  })
})

/**
 * POST /v1/batch: defaults, limits, one transaction, sub-request errors,
 * redirects, and the same behaviour on the postgresql backends.
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest'

import {client, memoryApp, postgresApp} from './helpers.js'

function suite(name: string, make: () => Promise<{app: FastifyInstance; close(): Promise<void>}>) {
  describe(name, () => {
    let env: {app: FastifyInstance; close(): Promise<void>}
    let req: ReturnType<typeof client>
    beforeAll(async () => {
      env = await make()
      req = client(env.app)
    }, 120_000)
    afterAll(async () => env?.close())

    test('defaults are merged; responses come in order with status, path, headers, body', async () => {
      const r = await req('POST', '/v1/batch', {
        body: {
          defaults: {method: 'PUT', body: {data: {kind: 'default'}}},
          requests: [
            {path: '/buckets/bb'},
            {path: '/buckets/bb/collections/cc'},
            {method: 'POST', path: '/buckets/bb/collections/cc/records', body: {data: {n: 1}}},
            {method: 'GET', path: '/buckets/bb/collections/cc/records?_sort=n'},
            {method: 'HEAD', path: '/v1/buckets/bb/collections/cc/records'},
          ],
        },
      })
      expect(r.status).toBe(200)
      const responses = r.body.responses
      expect(responses.map((x: {status: number}) => x.status)).toEqual([201, 201, 201, 200, 200])
      expect(responses[0].path).toBe('/v1/buckets/bb')
      expect(responses[0].body.data.kind).toBe('default')
      expect(responses[0].headers.ETag).toMatch(/^"\d+"$/)
      // defaults merge recursively without overriding: the body gets data.kind too.
      expect(responses[2].body.data).toMatchObject({n: 1, kind: 'default'})
      expect(responses[3].body.data).toHaveLength(1)
      expect(responses[4].body).toBe('')
      expect(responses[4].headers['Total-Objects']).toBe('1')
    })

    test('4xx sub-responses are recorded and the batch goes on', async () => {
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            {path: '/nowhere'},
            {method: 'PUT', path: '/buckets/bb/collections/cc/records/r1', body: {data: {a: 1}}},
            {path: '/buckets/bb/collections/missing/records'},
            {method: 'PUT', path: '/buckets/bb/collections/cc/records/r1', body: {data: {}}, headers: {'If-None-Match': '*'}},
          ],
        },
      })
      expect(r.status).toBe(200)
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([404, 201, 404, 412])
      expect(r.body.responses[0].body.errno).toBe(111)
      expect(r.body.responses[3].body.errno).toBe(114)
    })

    test('sub-requests follow redirects (trailing slash)', async () => {
      const r = await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/bb/'}]}})
      expect(r.body.responses[0]).toMatchObject({status: 200, path: '/v1/buckets/bb'})
    })

    test('sub-requests take their own headers (another user)', async () => {
      const other = 'Basic ' + Buffer.from('mallory:x').toString('base64')
      const r = await req('POST', '/v1/batch', {body: {requests: [{path: '/buckets/bb', headers: {Authorization: other}}]}})
      expect(r.body.responses[0].status).toBe(403)
    })

    test('a PATCH sub-request sent as merge-patch is merged as one (RFC 7396), as outside a batch', async () => {
      const R = '/buckets/mp/collections/c/records/merged'
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'PUT', path: '/buckets/mp'},
            {method: 'PUT', path: '/buckets/mp/collections/c'},
            {method: 'PUT', path: R, body: {data: {n: {x: 1}, gone: 1}}},
            {method: 'PATCH', path: R, headers: {'Content-Type': 'application/merge-patch+json'}, body: {data: {n: {y: 2}, gone: null}}},
            // Other sub-requests with a body are read as JSON whatever they say (upstream).
            {method: 'PUT', path: `${R}-2`, headers: {'Content-Type': 'application/merge-patch+json'}, body: {data: {}}},
          ],
        },
      })
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 201, 201, 200, 201])
      expect(r.body.responses[3].body.data).toEqual({n: {x: 1, y: 2}, id: 'merged', last_modified: r.body.responses[3].body.data.last_modified})
    })

    test('limits: batch_max_requests and no recursion', async () => {
      const many = await req('POST', '/v1/batch', {body: {requests: Array.from({length: 26}, () => ({path: '/'}))}})
      expect(many.status).toBe(400)
      expect(many.body.message).toBe('Number of requests is limited to 25')
      const rec = await req('POST', '/v1/batch', {body: {requests: [{path: '/batch', method: 'POST'}]}})
      expect(rec.status).toBe(400)
      expect(rec.body.message).toBe('requests in body: Recursive call on /batch endpoint is forbidden.')
    })

    test('a batch of creations emits one grouped event per list', async () => {
      const seen: number[] = []
      env.app.kinto.events.onChanged({resources: ['record'], actions: ['create']}, (event) => {
        seen.push(event.impacted.length)
      })
      await req('POST', '/v1/batch', {
        body: {defaults: {method: 'POST', path: '/buckets/bb/collections/cc/records'}, requests: [{body: {data: {}}}, {body: {data: {}}}, {body: {data: {}}}]},
      })
      expect(seen).toEqual([3])
    })

    test('a permission change mid-batch is seen by the sub-requests after it', async () => {
      // The batch answers a repeated permission check once (prefetch.ts batchBackends): a write
      // to an entry it read must make the next sub-request ask again.
      const bob = 'Basic ' + Buffer.from('bob:x').toString('base64')
      const bobId = (await req('GET', '/v1/', {auth: bob})).body.user.id as string
      expect((await req('PUT', '/v1/buckets/pm', {body: {}})).status).toBe(201)
      expect((await req('PUT', '/v1/buckets/pm/collections/c', {body: {permissions: {'record:create': [bobId]}}})).status).toBe(201)
      const post = (n: number) => ({method: 'POST', path: '/buckets/pm/collections/c/records', headers: {Authorization: bob}, body: {data: {n}}})
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            post(1),
            post(2),
            {method: 'PATCH', path: '/buckets/pm/collections/c', body: {permissions: {'record:create': []}}},
            post(3),
            {method: 'PATCH', path: '/buckets/pm', body: {permissions: {write: [bobId]}}},
            post(4),
            {method: 'PATCH', path: '/buckets/pm', body: {permissions: {write: []}}},
            post(5),
            {method: 'PUT', path: '/buckets/pm/collections/c', body: {permissions: {'record:create': [bobId]}}},
            post(6),
            // The collection goes with its entries (the batch still holds it as loaded: upstream's bound_data).
            {method: 'DELETE', path: '/buckets/pm/collections/c'},
            post(7),
          ],
        },
      })
      expect(r.status).toBe(200)
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 201, 200, 403, 200, 201, 200, 403, 200, 201, 200, 403])
      const created = r.body.responses.filter((x: {status: number}) => x.status === 201).map((x: {body: {data: {n: number; last_modified: number}}}) => x.body.data)
      expect(created.map((d: {n: number}) => d.n)).toEqual([1, 2, 4, 6])
    })

    test('a bucket or collection deleted then made again in one batch keeps what the batch put in it after', async () => {
      // kinto-http's "start afresh" batch: deleteBucket, createBucket, createCollection… The
      // cascade of a deletion reaches what was there when it was deleted, not what came after.
      await req('PUT', '/v1/buckets/again', {body: {}})
      await req('PUT', '/v1/buckets/again/collections/old', {body: {}})
      await req('PUT', '/v1/buckets/again/collections/old/records/gone', {body: {data: {}}})
      await req('PUT', '/v1/buckets/again/collections/kept', {body: {}})
      await req('PUT', '/v1/buckets/again/collections/kept/records/gone', {body: {data: {}}})
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'DELETE', path: '/buckets/again'},
            {method: 'PUT', path: '/buckets/again', body: {data: {n: 2}}},
            {method: 'PUT', path: '/buckets/again/collections/c', body: {}},
            {method: 'PUT', path: '/buckets/again/collections/c/records/r', body: {data: {v: 1}}},
            {method: 'PUT', path: '/buckets/again/collections/kept', body: {}},
            {method: 'PUT', path: '/buckets/again/collections/kept/records/r', body: {data: {v: 2}}},
            {method: 'DELETE', path: '/buckets/again/collections/kept'},
            {method: 'PUT', path: '/buckets/again/collections/kept', body: {}},
            {method: 'PUT', path: '/buckets/again/collections/kept/records/r2', body: {data: {v: 3}}},
          ],
        },
      })
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([200, 201, 201, 201, 201, 201, 200, 201, 201])
      const bucket = await req('GET', '/v1/buckets/again')
      expect(bucket.status).toBe(200)
      expect(bucket.body.data.n).toBe(2)
      expect((await req('GET', '/v1/buckets/again/collections?_sort=id')).body.data.map((c: {id: string}) => c.id)).toEqual(['c', 'kept'])
      expect((await req('GET', '/v1/buckets/again/collections/c/records/r')).body.data.v).toBe(1)
      expect((await req('GET', '/v1/buckets/again/collections/kept/records')).body.data.map((x: {id: string}) => x.id)).toEqual(['r2'])
      expect((await req('GET', '/v1/buckets/again/collections/old/records/gone')).status).toBe(404)
    })

    test('a record written after its collection was deleted in the same batch is a 404, not a record below nothing', async () => {
      await req('PUT', '/v1/buckets/gone', {body: {}})
      await req('PUT', '/v1/buckets/gone/collections/c', {body: {}})
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'PUT', path: '/buckets/gone/collections/c/records/r1', body: {data: {}}},
            {method: 'DELETE', path: '/buckets/gone/collections/c'},
            {method: 'PUT', path: '/buckets/gone/collections/c/records/r2', body: {data: {}}},
            {method: 'POST', path: '/buckets/gone/collections/c/records', body: {data: {}}},
          ],
        },
      })
      const answers = r.body.responses.map((x: {status: number; body: {errno?: number}}) => [x.status, x.body.errno])
      expect(answers).toEqual([[201, undefined], [200, undefined], [404, 111], [404, 111]])
      await req('PUT', '/v1/buckets/gone/collections/c', {body: {}})
      expect((await req('GET', '/v1/buckets/gone/collections/c/records')).body.data).toEqual([])
    })

    test('a group made, deleted and made again in one batch gives its members its principal', async () => {
      const carol = 'Basic ' + Buffer.from('carol:x').toString('base64')
      const carolId = (await req('GET', '/v1/', {auth: carol})).body.user.id as string
      await req('PUT', '/v1/buckets/gg', {body: {}})
      const group = {method: 'PUT', path: '/buckets/gg/groups/g', body: {data: {members: [carolId]}}}
      const r = await req('POST', '/v1/batch', {body: {requests: [group, {method: 'DELETE', path: '/buckets/gg/groups/g'}, group]}})
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 200, 201])
      expect((await req('GET', '/v1/', {auth: carol})).body.user.principals).toContain('/buckets/gg/groups/g')
    })

    test('DELETE pagination tokens work inside a batch', async () => {
      for (let i = 0; i < 3; i++) await req('POST', '/v1/buckets/bb/collections/cc/records', {body: {data: {del: true}}})
      const first = await req('DELETE', '/v1/buckets/bb/collections/cc/records?del=true&_limit=1')
      const next = String(first.headers['next-page']).replace(/^http:\/\/[^/]+\/v1/, '')
      const r = await req('POST', '/v1/batch', {body: {requests: [{method: 'DELETE', path: next}, {method: 'DELETE', path: next}]}})
      expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([200, 400])
    })
  })
}

suite('batch on memory backends', async () => {
  const app = memoryApp()
  return {app, close: () => app.close()}
})

suite('batch on postgresql backends', () => postgresApp())

describe('batch transactions', () => {
  let app: FastifyInstance
  afterEach(async () => app?.close())

  test('a 5xx in a sub-request fails the whole batch and rolls it back', async () => {
    app = memoryApp()
    const req = client(app)
    await req('PUT', '/v1/buckets/t', {body: {}})
    app.kinto.events.onChanged({resources: ['collection'], actions: ['create']}, (event) => {
      if (event.impacted.some((i) => i.new.id === 'boom')) throw new Error('listener exploded')
    })
    const r = await req('POST', '/v1/batch', {
      body: {requests: [{method: 'PUT', path: '/buckets/t/collections/ok', body: {}}, {method: 'PUT', path: '/buckets/t/collections/boom', body: {}}]},
    })
    expect(r.status).toBe(500)
    expect(r.body).toMatchObject({errno: 999, info: 'https://github.com/Kinto/kinto/issues/'})
    expect((await req('GET', '/v1/buckets/t/collections')).body.data).toEqual([])
  })
})

describe('integrity conflicts', () => {
  function cases(name: string, make: () => Promise<{app: FastifyInstance; close(): Promise<void>}>) {
    test(`${name}: a 409 sub-response (errno 122, Retry-After) rolls the batch back`, async () => {
      const env = await make()
      try {
        const req = client(env.app)
        await req('PUT', '/v1/buckets/i', {body: {}})
        await req('PUT', '/v1/buckets/i/collections/c', {body: {}})
        const a = await req('PUT', '/v1/buckets/i/collections/c/records/a', {body: {data: {last_modified: 1000}}})
        expect(a.body.data.last_modified).toBe(1000)
        await req('PUT', '/v1/buckets/i/collections/c/records/now', {body: {data: {}}})
        const direct = await req('PUT', '/v1/buckets/i/collections/c/records/x', {body: {data: {last_modified: 1000}}})
        expect(direct.status).toBe(409)
        expect(direct.body.errno).toBe(122)
        expect(direct.headers['retry-after']).toBe('3')
        const r = await req('POST', '/v1/batch', {
          body: {
            requests: [
              {method: 'PUT', path: '/buckets/i/collections/c/records/first', body: {data: {}}},
              {method: 'PUT', path: '/buckets/i/collections/c/records/clash', body: {data: {last_modified: 1000}}},
            ],
          },
        })
        expect(r.status).toBe(200)
        expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 409])
        expect((await req('GET', '/v1/buckets/i/collections/c/records/first')).status).toBe(404)

        // What comes after the conflict is not run (it would be rolled back with the rest, or
        // meet PostgreSQL's failed transaction): each answers the same 409 instead of a 2xx
        // for a write that is not kept.
        const after = await req('POST', '/v1/batch', {
          body: {
            requests: [
              {method: 'PUT', path: '/buckets/i/collections/c/records/first', body: {data: {}}},
              {method: 'PUT', path: '/buckets/i/collections/c/records/clash', body: {data: {last_modified: 1000}}},
              {method: 'PUT', path: '/buckets/i/collections/c/records/after', body: {data: {}}},
              {method: 'GET', path: '/buckets/i/collections/c/records/first'},
            ],
          },
        })
        expect(after.status).toBe(200)
        expect(after.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 409, 409, 409])
        expect(after.body.responses[2]).toMatchObject({path: '/v1/buckets/i/collections/c/records/after', headers: {'Retry-After': '3'}, body: {errno: 122}})
        expect(after.body.responses[3].path).toBe('/v1/buckets/i/collections/c/records/first')
        expect((await req('GET', '/v1/buckets/i/collections/c/records/after')).status).toBe(404)
      } finally {
        await env.close()
      }
    }, 60_000)
  }
  // The postgresql backends' unique (parent, resource, last_modified) index; the memory backend
  // keeps the same rule (upstream's memory backend accepts equal timestamps, and its pages can then
  // skip a record).
  cases('postgresql', () => postgresApp())
  cases('memory', async () => {
    const app = memoryApp()
    return {app, close: () => app.close()}
  })
})

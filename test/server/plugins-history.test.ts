/**
 * kinto.plugins.history in-process: entries for every change of a bucket and its
 * children with upstream's fields, filters (closed schema), sorting, pagination, deletion,
 * permissions, history.exclude_resources / exclude_user_ids / auto_trim_*, entries gone with their
 * bucket, and the snapshot endpoint. Upstream's tests/plugins/test_history.py scenarios, rewritten.
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeEach, describe, expect, test} from 'vitest'

import {ALICE, BOB, basic, client, postgresApp} from './helpers.js'
import {pluginPrincipal, pluginSetup} from './plugins-helpers.js'

const HISTORY = {'kinto.includes': 'kinto.plugins.history'}
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/

const setup = pluginSetup(HISTORY)
const principal = pluginPrincipal

type Entry = Record<string, any>

describe('entries', () => {
  let req: ReturnType<typeof client>
  let app: FastifyInstance
  beforeEach(async () => {
    ;({app, req} = setup())
    await req('PUT', '/v1/buckets/test', {body: {}})
    await req('PUT', '/v1/buckets/test/collections/col', {body: {}})
    await req('PUT', '/v1/buckets/test/groups/grp', {body: {data: {members: ['elle']}}})
    await req('PUT', '/v1/buckets/test/collections/col/records/rec', {body: {data: {foo: 42}}})
  })
  const list = async (query = ''): Promise<Entry[]> => (await req('GET', `/v1/buckets/test/history${query}`)).body.data

  test('one per change, newest first, with upstream fields (no timestamp; bucket_id on bucket entries only)', async () => {
    const entries = await list()
    expect(entries.map((e) => e.resource_name)).toEqual(['record', 'group', 'collection', 'bucket'])
    const [record, group, collection, bucket] = entries
    expect(bucket).toMatchObject({action: 'create', resource_name: 'bucket', bucket_id: 'test', uri: '/buckets/test', user_id: principal('alice')})
    expect(bucket.date).toMatch(DATE)
    expect(bucket).not.toHaveProperty('timestamp')
    expect(collection).toMatchObject({resource_name: 'collection', collection_id: 'col', uri: '/buckets/test/collections/col'})
    expect(collection).not.toHaveProperty('bucket_id')
    expect(group).toMatchObject({resource_name: 'group', group_id: 'grp', uri: '/buckets/test/groups/grp'})
    expect(record).toMatchObject({resource_name: 'record', collection_id: 'col', record_id: 'rec', uri: '/buckets/test/collections/col/records/rec'})
    expect(record.target.data).toMatchObject({id: 'rec', foo: 42})
    expect(record.target.permissions).toEqual({write: [principal('alice')]})
    expect(Object.keys(record).sort()).toEqual(
      ['action', 'collection_id', 'date', 'id', 'last_modified', 'record_id', 'resource_name', 'target', 'uri', 'user_id'].sort(),
    )
  })

  test('updates of attributes and permissions, deletions (target = tombstone)', async () => {
    await req('PATCH', '/v1/buckets/test', {body: {data: {foo: 'baz'}}})
    expect((await list())[0]).toMatchObject({action: 'update', resource_name: 'bucket', target: {data: {foo: 'baz'}}})
    await req('PATCH', '/v1/buckets/test/collections/col', {body: {permissions: {read: ['admins']}}})
    expect((await list())[0].target.permissions.read).toEqual(['admins'])
    await req('PATCH', '/v1/buckets/test/groups/grp', {body: {data: {members: ['lui']}}})
    expect((await list())[0].target.data.members).toEqual(['lui'])
    await req('DELETE', '/v1/buckets/test/collections/col/records/rec')
    expect((await list())[0]).toMatchObject({action: 'delete', target: {data: {deleted: true, id: 'rec'}}})
  })

  test('a plural delete gives one entry per object; deleting a collection does not list its records', async () => {
    await req('POST', '/v1/buckets/test/collections/col/records', {body: {data: {foo: 43}}})
    await req('DELETE', '/v1/buckets/test/collections/col/records')
    const deletions = (await list()).filter((e) => e.action === 'delete')
    expect(deletions).toHaveLength(2)
    await req('POST', '/v1/buckets/test/collections/col/records', {body: {data: {}}})
    await req('DELETE', '/v1/buckets/test/collections/col')
    expect((await list()).filter((e) => e.action === 'delete').map((e) => e.resource_name)).toEqual(['collection', 'record', 'record'])
  })

  test('creation through POST /buckets is tracked in the new bucket', async () => {
    await req('POST', '/v1/buckets', {body: {data: {id: 'posted'}}})
    const entries = (await req('GET', '/v1/buckets/posted/history')).body.data
    expect(entries).toEqual([expect.objectContaining({resource_name: 'bucket', bucket_id: 'posted', action: 'create', uri: '/buckets/posted'})])
  })

  test('deleting a bucket removes its entries (and their permissions); other buckets keep theirs', async () => {
    await req('PUT', '/v1/buckets/other', {body: {data: {a: 1}}})
    await req('DELETE', '/v1/buckets/test')
    expect(await app.kinto.backends.storage.list('history', '/buckets/test')).toEqual([])
    const left = await app.kinto.backends.permission.getAccessibleObjects([principal('alice')])
    expect([...left.keys()].filter((uri) => uri.startsWith('/buckets/test/'))).toEqual([])
    await req('DELETE', '/v1/buckets?a=1')
    expect(await app.kinto.backends.storage.list('history', '/buckets/other')).toEqual([])
  })

  test('a bucket deleted and made again in one batch: its history starts afresh', async () => {
    const r = await req('POST', '/v1/batch', {
      body: {
        requests: [
          {method: 'PATCH', path: '/buckets/test', body: {data: {before: true}}},
          {method: 'DELETE', path: '/buckets/test'},
          {method: 'PUT', path: '/buckets/test', body: {}},
          {method: 'PUT', path: '/buckets/test/collections/col', body: {}},
        ],
      },
    })
    expect(r.body.responses.map((x: Entry) => x.status)).toEqual([200, 200, 201, 201])
    expect((await list()).map((e) => `${e.action} ${e.uri}`)).toEqual(['create /buckets/test/collections/col', 'create /buckets/test'])
  })

  test('buckets made or changed in one batch: each entry in its own bucket, read by its own readers', async () => {
    await req('PUT', '/v1/buckets/other', {body: {permissions: {read: [principal('bob')]}}})
    const r = await req('POST', '/v1/batch', {
      body: {
        requests: [
          {method: 'PATCH', path: '/v1/buckets/other', body: {data: {secret: 1}}},
          {method: 'PATCH', path: '/v1/buckets/test', body: {data: {open: 1}}},
          {method: 'POST', path: '/v1/buckets', body: {data: {id: 'posted'}}},
        ],
      },
    })
    expect(r.body.responses.map((x: Entry) => x.status)).toEqual([200, 200, 201])
    const uris = async (bid: string, auth?: string) =>
      ((await req('GET', `/v1/buckets/${bid}/history?resource_name=bucket`, {auth})).body.data as Entry[]).map((e) => `${e.action} ${e.uri} ${e.bucket_id}`)
    expect(await uris('other')).toEqual(['update /buckets/other other', 'create /buckets/other other'])
    expect(await uris('test')).toEqual(['update /buckets/test test', 'create /buckets/test test'])
    expect(await uris('posted')).toEqual(['create /buckets/posted posted'])
    // A reader of "other" only reads about "other".
    expect(await uris('other', BOB)).toEqual(['update /buckets/other other', 'create /buckets/other other'])
    expect((await req('GET', '/v1/buckets/test/history', {auth: BOB})).status).toBe(403)
  })

  test('each entry of a batch names the user of its own sub-request', async () => {
    await req('PATCH', '/v1/buckets/test/collections/col', {body: {permissions: {'record:create': ['system.Authenticated']}}})
    await req('POST', '/v1/batch', {
      body: {
        requests: [
          {method: 'POST', path: '/buckets/test/collections/col/records', body: {data: {by: 'alice'}}},
          {method: 'POST', path: '/buckets/test/collections/col/records', body: {data: {by: 'bob'}}, headers: {Authorization: BOB}},
        ],
      },
    })
    const entries = (await req('GET', '/v1/buckets/test/history?action=create&resource_name=record&has_target.data.by=true')).body.data as Entry[]
    expect(entries.map((e) => [e.target.data.by, e.user_id])).toEqual([
      ['bob', principal('bob')],
      ['alice', principal('alice')],
    ])
  })

  test('only GET and DELETE on the list; no object endpoint', async () => {
    expect((await req('PUT', '/v1/buckets/test/history', {body: {}})).status).toBe(405)
    expect((await req('PATCH', '/v1/buckets/test/history', {body: {}})).status).toBe(405)
    const id = (await list())[0].id
    expect((await req('GET', `/v1/buckets/test/history/${id}`)).status).toBe(404)
    expect((await req('DELETE', `/v1/buckets/test/history/${id}`)).status).toBe(404)
  })
})

describe('filters, sorting, pagination, deletion', () => {
  let req: ReturnType<typeof client>
  beforeEach(async () => {
    ;({req} = setup())
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/0', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {}})
    await req('PUT', '/v1/buckets/0/collections/1', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid/records/rid', {body: {data: {foo: 42}}})
    await req('PUT', '/v1/buckets/0/collections/1/records/2', {body: {data: {foo: 0}}})
    await req('PATCH', '/v1/buckets/bid/collections/cid/records/rid', {body: {data: {foo: 'bar'}}})
    await req('DELETE', '/v1/buckets/bid/collections/cid/records/rid')
  })
  const count = async (path: string) => (await req('GET', path)).body.data.length

  test('by action, resource, uri, ids (numeric ids compared as strings), target fields', async () => {
    expect(await count('/v1/buckets/bid/history?action=delete')).toBe(1)
    expect(await count('/v1/buckets/bid/history?resource_name=bucket')).toBe(1)
    expect(await count('/v1/buckets/bid/history?uri=/buckets/bid/collections/cid/records/rid')).toBe(3)
    expect(await count('/v1/buckets/bid/history?bucket_id=bid')).toBe(1)
    expect(await count('/v1/buckets/bid/history?collection_id=cid')).toBe(4)
    expect(await count('/v1/buckets/0/history?bucket_id=0')).toBe(1)
    expect(await count('/v1/buckets/0/history?collection_id=1')).toBe(2)
    expect(await count('/v1/buckets/0/history?record_id=2')).toBe(1)
    expect(await count('/v1/buckets/bid/history?target.data.id=rid')).toBe(3)
  })

  test('group ids and ids that read as other JSON values are compared as the text sent (kinto-admin group history)', async () => {
    await req('PUT', '/v1/buckets/0/groups/123', {body: {}})
    await req('PUT', '/v1/buckets/0/groups/1e3', {body: {}})
    await req('PUT', '/v1/buckets/0/collections/1e3', {body: {}})
    await req('PUT', '/v1/buckets/0/collections/1e3/records/true', {body: {}})
    // kinto-admin's group history: ?group_id=<id>, which upstream decodes to the number 123.
    expect(await count('/v1/buckets/0/history?group_id=123')).toBe(1)
    expect(await count('/v1/buckets/0/history?group_id="123"')).toBe(1)
    expect(await count('/v1/buckets/0/history?group_id=1e3')).toBe(1)
    expect(await count('/v1/buckets/0/history?in_group_id=123,1e3')).toBe(2)
    expect(await count('/v1/buckets/0/history?in_group_id=123&in_group_id=1e3')).toBe(2)
    expect(await count('/v1/buckets/0/history?exclude_group_id=123&resource_name=group')).toBe(1)
    expect(await count('/v1/buckets/0/history?not_group_id=123&resource_name=group')).toBe(1)
    expect(await count('/v1/buckets/0/history?collection_id=1e3')).toBe(2)
    expect(await count('/v1/buckets/0/history?collection_id=1e3&record_id=true')).toBe(1)
  })

  test('a closed schema: unknown filter and sort fields are 400, unknown _fields too', async () => {
    const filter = await req('GET', '/v1/buckets/bid/history?movie=bourne')
    expect(filter.status).toBe(400)
    expect(filter.body.details).toEqual([{location: 'querystring', name: 'movie', description: "Unknown filter field 'movie'"}])
    expect((await req('GET', '/v1/buckets/bid/history?in_movie=a,b')).body.message).toBe("Unknown filter field 'in_movie'")
    // The field is checked before the value (upstream's _extract_filters): not "Invalid value for like_movie"
    expect((await req('GET', '/v1/buckets/bid/history?like_movie=5')).body.message).toBe("Unknown filter field 'like_movie'")
    expect((await req('GET', '/v1/buckets/bid/history?in_movie=[[1]]&in_id=5')).body.message).toBe("Unknown filter field 'in_movie'")
    expect((await req('GET', '/v1/buckets/bid/history?_sort=movie')).status).toBe(400)
    expect((await req('GET', '/v1/buckets/bid/history?_fields=movie')).status).toBe(400)
  })

  test('diff of two versions; _limit with Next-Page; _fields; sort by date', async () => {
    const two = (await req('GET', '/v1/buckets/bid/history?uri=/buckets/bid/collections/cid/records/rid&_limit=2&_sort=last_modified')).body.data
    expect(two[0].target.data.foo).toBe(42)
    expect(two[1].target.data.foo).toBe('bar')
    const page = await req('GET', '/v1/buckets/bid/history?_limit=2')
    expect(page.body.data).toHaveLength(2)
    expect(page.headers['next-page']).toBeDefined()
    const next = await req('GET', String(page.headers['next-page']).replace(/^http:\/\/[^/]+/, ''))
    expect(next.body.data).toHaveLength(2)
    expect(new Set([...page.body.data, ...next.body.data].map((e: Entry) => e.id)).size).toBe(4)
    const fields = (await req('GET', '/v1/buckets/bid/history?_fields=uri,action')).body.data[0]
    expect(Object.keys(fields).sort()).toEqual(['action', 'id', 'last_modified', 'uri'])
    const byDate = (await req('GET', '/v1/buckets/bid/history?_sort=date')).body.data
    expect(byDate[0].date < byDate[byDate.length - 1].date).toBe(true)
  })

  // Upstream dates each entry with datetime.now(), microseconds apart: the entries of one batch
  // (or plural DELETE) sort by date in the order they were written, not by the last_modified
  // tie-breaker (newest first), which a date to the millisecond left them to.
  test('the entries of one batch have distinct dates, in the order of the batch', async () => {
    const requests = Array.from({length: 8}, (_, i) => ({method: 'PUT', path: `/buckets/bid/collections/cid/records/b${i}`, body: {data: {}}}))
    expect((await req('POST', '/v1/batch', {body: {requests}})).status).toBe(200)
    const entries: Entry[] = (await req('GET', '/v1/buckets/bid/history?like_record_id=b*&_sort=date')).body.data
    expect(entries.map((e) => e.record_id)).toEqual(requests.map((_, i) => `b${i}`))
    expect(new Set(entries.map((e) => e.date)).size).toBe(8)
    const deleted: Entry[] = (await req('DELETE', '/v1/buckets/bid/collections/cid/records?like_id=b*&_sort=id')).body.data
    const byDate: Entry[] = (await req('GET', '/v1/buckets/bid/history?action=delete&_sort=date')).body.data
    expect(new Set(byDate.map((e) => e.date)).size).toBe(byDate.length)
    expect(byDate.map((e) => e.record_id).filter((id) => id?.startsWith('b'))).toEqual(deleted.map((o) => o.id))
  })

  test('DELETE empties it, or what _before selects', async () => {
    const before = Number(JSON.parse(String((await req('GET', '/v1/buckets/bid/history')).headers.etag)))
    await req('PUT', '/v1/buckets/bid/collections/cid2', {body: {}})
    expect((await req('DELETE', `/v1/buckets/bid/history?_before=${before}`)).status).toBe(200)
    expect(await count('/v1/buckets/bid/history')).toBe(2)
    await req('DELETE', '/v1/buckets/bid/history')
    expect(await count('/v1/buckets/bid/history')).toBe(0)
  })
})

describe('batches', () => {
  test('entries of a batch come in request order; each PATCH names its own record', async () => {
    const {req} = setup()
    await req('POST', '/v1/batch', {
      body: {
        defaults: {method: 'POST', path: '/buckets/bid/collections/cid/records'},
        requests: [
          {path: '/buckets/bid', method: 'PUT'},
          {path: '/buckets/bid/collections', body: {data: {id: 'cid'}}},
          {body: {data: {id: 'a', attr: 1}}},
          {body: {data: {id: 'b', attr: 2}}},
          {body: {data: {id: 'c', attr: 3}}},
        ],
      },
    })
    const entries = (await req('GET', '/v1/buckets/bid/history')).body.data as Entry[]
    expect(entries).toHaveLength(5)
    expect(entries[0].uri).toBe('/buckets/bid/collections/cid/records/c')
    expect(entries[3].uri).toBe('/buckets/bid/collections/cid')
    await req('POST', '/v1/batch', {
      body: {requests: ['a', 'b', 'c'].map((label) => ({method: 'PATCH', path: `/buckets/bid/collections/cid/records/${label}`, body: {data: {label}}}))},
    })
    for (const e of (await req('GET', '/v1/buckets/bid/history?resource_name=record')).body.data as Entry[]) {
      expect(e.record_id).toBe(e.target.data.id)
    }
  })
})

describe('permissions', () => {
  const alice = principal('alice')
  const bob = principal('bob')
  const julia = principal('julia')
  let req: ReturnType<typeof client>
  beforeEach(async () => {
    ;({req} = setup({'kinto.experimental_permissions_endpoint': 'true'}))
    const author = basic('author')
    await req('PUT', '/v1/buckets/author-only', {body: {}, auth: author})
    await req('PUT', '/v1/buckets/test', {body: {permissions: {read: [alice]}}, auth: author})
    await req('PUT', '/v1/buckets/test/groups/admins', {body: {data: {members: []}}, auth: author})
    await req('PUT', '/v1/buckets/test/collections/alice-julia', {body: {permissions: {read: [julia]}}, auth: author})
    await req('PUT', '/v1/buckets/test/collections/author-only', {body: {}, auth: author})
    await req('POST', '/v1/buckets/test/collections/alice-julia/records', {body: {permissions: {write: [bob, alice]}}, auth: author})
    await req('POST', '/v1/buckets/test/collections/alice-julia/records', {body: {permissions: {read: ['system.Authenticated']}}, auth: author})
  })
  const names = async (auth: string) => ((await req('GET', '/v1/buckets/test/history', {auth})).body.data as Entry[]).map((e) => e.resource_name)

  test('the author and bucket readers see everything; others are 403 on a bucket they cannot read', async () => {
    expect(await names(basic('author'))).toHaveLength(6)
    expect(await names(ALICE)).toHaveLength(6)
    expect((await req('GET', '/v1/buckets/author-only/history', {auth: ALICE})).status).toBe(403)
  })

  test('collection readers see that collection and its records; record writers their records', async () => {
    expect(await names(basic('julia'))).toEqual(['record', 'record', 'collection'])
    const bobs = (await req('GET', '/v1/buckets/test/history', {auth: BOB})).body.data as Entry[]
    expect(bobs.map((e) => e.resource_name)).toEqual(['record', 'record'])
    expect(bobs[0].target.permissions.read).toContain('system.Authenticated')
    expect(bobs[1].target.permissions.write).toContain(bob)
    expect(await names(basic('jack', ''))).toEqual(['record'])
  })

  test('history_read_principals opens it to anyone', async () => {
    const {req: open} = setup({'kinto.history_read_principals': 'system.Everyone'})
    await open('PUT', '/v1/buckets/test', {body: {}, auth: basic('author')})
    expect((await open('GET', '/v1/buckets/test/history', {auth: basic('tartan', 'pion')})).body.data).toHaveLength(1)
  })

  test('entries written after a permission is removed are not readable with it', async () => {
    const before = (await req('GET', '/v1/buckets/test/history', {auth: ALICE})).headers.etag
    await req('PATCH', '/v1/buckets/test', {body: {permissions: {read: []}}, auth: basic('author')})
    await req('PUT', '/v1/buckets/test/collections/new-one', {body: {}, auth: basic('author')})
    const after = await req('GET', '/v1/buckets/test/history', {auth: ALICE})
    expect(after.headers.etag).not.toBe(before)
  })

  test('entries do not show in /permissions', async () => {
    const entries = (await req('GET', '/v1/permissions', {auth: basic('author')})).body.data as Entry[]
    expect(entries.length).toBeGreaterThan(0)
    expect(entries.some((e) => e.resource_name === 'history' || String(e.uri).includes('/history/'))).toBe(false)
  })

  test('without explicit permissions, entries are read through the bucket', async () => {
    const {req: implicit} = setup({'kinto.explicit_permissions': 'false'})
    await implicit('PUT', '/v1/buckets/test', {body: {permissions: {write: ['system.Authenticated']}}})
    await implicit('PUT', '/v1/buckets/test/collections/test', {body: {permissions: {write: ['system.Authenticated']}}})
    await implicit('POST', '/v1/batch', {
      body: {requests: [{method: 'POST', path: '/buckets/test/collections/test/records', body: {data: {}}}, {method: 'POST', path: '/buckets/test/collections/test/records', body: {data: {}}}]},
    })
    const entries = (await implicit('GET', '/v1/buckets/test/history', {auth: BOB})).body.data as Entry[]
    // Both records of the batch are listed (upstream stops after the first one of an event).
    expect(entries.map((e) => [e.action, e.resource_name])).toEqual([
      ['create', 'record'],
      ['create', 'record'],
      ['create', 'collection'],
      ['create', 'bucket'],
    ])
  })
})

describe('settings', () => {
  test('capability, with excluded_resources as upstream shows them', async () => {
    const {req} = setup({
      'kinto.history.exclude_resources': '/buckets/a /buckets/b/collections/a /buckets/b/collections/a/records/1 /buckets/b/groups/a',
      'kinto.history.auto_trim_max_count': '5',
      'kinto.history.auto_trim_user_ids': 'basicauth:x',
    })
    expect((await req('GET', '/v1/')).body.capabilities.history).toEqual({
      description: 'Track changes on data.',
      url: 'http://kinto.readthedocs.io/en/latest/api/1.x/history.html',
      auto_trim_max_count: 5,
      auto_trim_user_ids: ['basicauth:x'],
      excluded_resources: [{bucket: 'a'}, {bucket: 'b', collection: 'a'}, {bucket: 'b', collection: 'a', record: '1'}, {bucket: 'b', group: 'a'}],
    })
  })

  test('history.exclude_resources: whole buckets, one collection, one object', async () => {
    const {req} = setup({'kinto.history.exclude_resources': '/buckets/a /buckets/b/collections/a /buckets/b/collections/a/records/1 /buckets/b/groups/a'})
    await req('PUT', '/v1/buckets/a', {body: {}})
    await req('PUT', '/v1/buckets/a/groups/admins', {body: {data: {members: []}}})
    await req('PUT', '/v1/buckets/b', {body: {}})
    await req('PUT', '/v1/buckets/b/groups/a', {body: {data: {members: []}}})
    await req('PUT', '/v1/buckets/b/collections/a', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/a/records/1', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/b', {body: {}})
    await req('PUT', '/v1/buckets/b/collections/b/records/1', {body: {}})
    expect((await req('GET', '/v1/buckets/a/history')).body.data).toHaveLength(0)
    expect((await req('GET', '/v1/buckets/b/history?collection_id=b')).body.data.length).toBeGreaterThan(0)
    expect((await req('GET', '/v1/buckets/b/history?collection_id=a')).body.data).toHaveLength(0)
    expect((await req('GET', '/v1/buckets/b/history?group_id=a')).body.data).toHaveLength(0)
  })

  test('an invalid excluded URI is a startup error', () => {
    expect(() => setup({'kinto.history.exclude_resources': '/buckets/a/collections'})).toThrow(/exclude_resources/)
  })

  test('history.exclude_user_ids', async () => {
    const joan = basic('joan')
    const {req} = setup({'kinto.history.exclude_user_ids': principal('joan')})
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {permissions: {write: ['system.Authenticated']}}})
    await req('POST', '/v1/buckets/bid/collections/cid/records', {body: {data: {}}})
    await req('POST', '/v1/buckets/bid/collections/cid/records', {body: {data: {}}, auth: joan})
    const entries = (await req('GET', '/v1/buckets/bid/history')).body.data as Entry[]
    expect(entries).toHaveLength(3)
    expect(new Set(entries.map((e) => e.user_id))).toEqual(new Set([principal('alice')]))
  })

  test('history.auto_trim_max_count keeps that many entries per resource type (and the ACEs of those only)', async () => {
    const {app, req} = setup({'kinto.history.auto_trim_max_count': '5', 'kinto.history.auto_trim_threshold': '0'})
    for (let i = 0; i < 10; i++) {
      await req('PUT', '/v1/buckets/bid', {body: {data: {i}}})
      await req('PUT', `/v1/buckets/bid/collections/cid-${i}`, {body: {}})
    }
    const byUri: Record<string, number> = {}
    for (const e of (await req('GET', '/v1/buckets/bid/history')).body.data as Entry[]) byUri[e.uri] = (byUri[e.uri] ?? 0) + 1
    expect(byUri).toEqual({
      '/buckets/bid': 5,
      '/buckets/bid/collections/cid-5': 1,
      '/buckets/bid/collections/cid-6': 1,
      '/buckets/bid/collections/cid-7': 1,
      '/buckets/bid/collections/cid-8': 1,
      '/buckets/bid/collections/cid-9': 1,
    })
    // A trimmed entry takes its read ACEs with it: the permission rows stay bounded as the entries.
    const readable = await app.kinto.backends.permission.getAccessibleObjects([principal('alice')])
    const aces = [...readable.keys()].filter((uri) => uri.startsWith('/buckets/bid/history/'))
    const ids = ((await req('GET', '/v1/buckets/bid/history')).body.data as Entry[]).map((e) => `/buckets/bid/history/${e.id}`)
    expect(aces.sort()).toEqual(ids.sort())
  })

  test('history.auto_trim_user_ids trims only those users', async () => {
    const joan = basic('joan')
    const {req} = setup({'kinto.history.auto_trim_user_ids': principal('joan'), 'kinto.history.auto_trim_max_count': '5', 'kinto.history.auto_trim_threshold': '0'})
    await req('PUT', '/v1/buckets/bid', {body: {permissions: {write: ['system.Authenticated']}}})
    for (let i = 0; i < 10; i++) await req('PUT', `/v1/buckets/bid/groups/g-${i}`, {body: {}})
    for (let i = 0; i < 10; i++) await req('PUT', `/v1/buckets/bid/groups/j-${i}`, {body: {}, auth: joan})
    expect((await req('GET', `/v1/buckets/bid/history?user_id=${principal('alice')}`)).body.data).toHaveLength(11)
    expect((await req('GET', `/v1/buckets/bid/history?user_id=${principal('joan')}`)).body.data).toHaveLength(5)
  })
})

describe('snapshot', () => {
  test('records as they were at a timestamp: updates rolled back, deletions restored, later creations left out', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {}})
    const a = (await req('PUT', '/v1/buckets/bid/collections/cid/records/a', {body: {data: {v: 1}}})).body.data
    await req('PUT', '/v1/buckets/bid/collections/cid/records/b', {body: {data: {v: 1}}})
    const gone = (await req('PUT', '/v1/buckets/bid/collections/cid/records/gone', {body: {data: {v: 1}}})).body.data
    const at = gone.last_modified
    await req('PATCH', '/v1/buckets/bid/collections/cid/records/a', {body: {data: {v: 2}}})
    await req('DELETE', '/v1/buckets/bid/collections/cid/records/gone')
    await req('PUT', '/v1/buckets/bid/collections/cid/records/later', {body: {data: {v: 1}}})
    const snap = await req('GET', `/v1/buckets/bid/snapshot/collections/cid@${at}`)
    expect(snap.status).toBe(200)
    expect(snap.body.data.map((r: Entry) => [r.id, r.v])).toEqual([
      ['gone', 1],
      ['b', 1],
      ['a', 1],
    ])
    expect(snap.body.data[2].last_modified).toBe(a.last_modified)
    const now = await req('GET', `/v1/buckets/bid/snapshot/collections/cid@${Date.now() + 1000}`)
    expect(now.body.data.map((r: Entry) => r.id).sort()).toEqual(['a', 'b', 'later'])
  })

  test('a record deleted before the timestamp and made again after it is not in the snapshot (upstream gives its tombstone)', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid/records/a', {body: {data: {v: 1}}})
    await req('PUT', '/v1/buckets/bid/collections/cid/records/b', {body: {data: {v: 1}}})
    const at = (await req('DELETE', '/v1/buckets/bid/collections/cid/records/a')).body.data.last_modified
    await req('PUT', '/v1/buckets/bid/collections/cid/records/a', {body: {data: {v: 2}}})
    const snap = await req('GET', `/v1/buckets/bid/snapshot/collections/cid@${at}`)
    expect(snap.body.data.map((r: Entry) => r.id)).toEqual(['b'])
  })

  test('bad timestamps are 400, other methods 405, readers only', async () => {
    const {req} = setup()
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {}})
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@abc')).status).toBe(400)
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@-1')).status).toBe(400)
    // As upstream's route ({collection_id}@{timestamp}, each one character or more): no timestamp, no route.
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@')).body.errno).toBe(111)
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/@1')).body.errno).toBe(111)
    expect((await req('PUT', '/v1/buckets/bid/snapshot/collections/cid@1', {body: {}})).status).toBe(405)
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@1', {auth: null})).status).toBe(401)
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@1', {auth: BOB})).status).toBe(403)
    await req('PATCH', '/v1/buckets/bid/collections/cid', {body: {permissions: {read: ['system.Everyone']}}})
    expect((await req('GET', '/v1/buckets/bid/snapshot/collections/cid@1', {auth: null})).status).toBe(200)
    // A plain service upstream (no Accept rule): JSON whatever the client asks for.
    const plain = await req('GET', '/v1/buckets/bid/snapshot/collections/cid@1', {headers: {accept: 'text/plain'}})
    expect(plain.status).toBe(200)
    expect(plain.body).toEqual({data: []})
  })
})

describe('with the default bucket', () => {
  test('implicit creations are listed, readable through the alias', async () => {
    const {req} = setup({'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.history'})
    const bucketId = (await req('GET', '/v1/')).body.user.bucket
    const record = (await req('POST', '/v1/buckets/default/collections/blah/records', {body: {data: {foo: 42}}})).body.data
    const entries = (await req('GET', '/v1/buckets/default/history')).body.data as Entry[]
    expect(entries.map((e) => e.resource_name)).toEqual(['record', 'collection', 'bucket'])
    expect(entries[2]).toMatchObject({bucket_id: bucketId, uri: `/buckets/${bucketId}`})
    expect(entries[2].target.permissions.write).toEqual([principal('alice')])
    expect(entries[1]).toMatchObject({collection_id: 'blah', uri: `/buckets/${bucketId}/collections/blah`})
    expect(entries[0]).toMatchObject({record_id: record.id, target: {data: {foo: 42}}})
    // GET creates too (in its own transaction), and the entries are written with it.
    await req('GET', '/v1/buckets/default/collections/other')
    expect((await req('GET', `/v1/buckets/${bucketId}/history`)).body.data).toHaveLength(4)
  })
})

describe('on the postgresql backends (PGlite here, the server in CI)', () => {
  let pg: Awaited<ReturnType<typeof postgresApp>>
  afterAll(async () => pg?.close())

  test('entries, filters, a rolled-back batch leaves none, bucket deletion removes them', async () => {
    pg = await postgresApp({...HISTORY, 'kinto.userid_hmac_secret': 'plugin-tests'})
    const req = client(pg.app)
    await req('PUT', '/v1/buckets/bid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid', {body: {}})
    await req('PUT', '/v1/buckets/bid/collections/cid/records/r1', {body: {data: {n: 1}}})
    expect((await req('GET', '/v1/buckets/bid/history?resource_name=record')).body.data).toHaveLength(1)
    // A 409 in a batch rolls the whole batch back: history entries included.
    const conflict = await req('POST', '/v1/batch', {
      body: {
        requests: [
          {method: 'PUT', path: '/buckets/bid/collections/cid/records/r2', body: {data: {n: 2}}},
          {method: 'PUT', path: '/buckets/bid/collections/cid/records/r3', body: {data: {n: 3, last_modified: 1}}},
          {method: 'PUT', path: '/buckets/bid/collections/cid/records/r4', body: {data: {n: 4, last_modified: 1}}},
        ],
      },
    })
    expect(conflict.body.responses.map((r: {status: number}) => r.status)).toEqual([201, 201, 409])
    expect((await req('GET', '/v1/buckets/bid/history')).body.data).toHaveLength(3)
    await req('DELETE', '/v1/buckets/bid')
    expect(await pg.app.kinto.backends.storage.list('history', '/buckets/bid')).toEqual([])
  }, 60_000)

  test('buckets of one batch: each entry in its own bucket (one INSERT per bucket)', async () => {
    const multi = await postgresApp({...HISTORY, 'kinto.userid_hmac_secret': 'plugin-tests', 'kinto.bucket_create_principals': 'system.Authenticated'})
    try {
      const req = client(multi.app)
      await req('PUT', '/v1/buckets/test', {body: {}})
      await req('PUT', '/v1/buckets/other', {body: {permissions: {read: [principal('bob')]}}})
      const r = await req('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'PATCH', path: '/buckets/other', body: {data: {secret: 1}}},
            {method: 'PATCH', path: '/buckets/test', body: {data: {open: 1}}},
            {method: 'POST', path: '/buckets', body: {data: {id: 'posted'}}},
          ],
        },
      })
      expect(r.body.responses.map((x: Entry) => x.status)).toEqual([200, 200, 201])
      const uris = async (bid: string, auth?: string) =>
        ((await req('GET', `/v1/buckets/${bid}/history?resource_name=bucket`, {auth})).body.data as Entry[]).map((e) => `${e.action} ${e.uri}`)
      expect(await uris('test')).toEqual(['update /buckets/test', 'create /buckets/test'])
      expect(await uris('posted')).toEqual(['create /buckets/posted'])
      expect(await uris('other', BOB)).toEqual(['update /buckets/other', 'create /buckets/other'])
      expect((await req('GET', '/v1/buckets/test/history', {auth: BOB})).status).toBe(403)
    } finally {
      await multi.close()
    }
  }, 60_000)

  test('auto-trim deletes the trimmed entries and their ACEs', async () => {
    const trimmed = await postgresApp({...HISTORY, 'kinto.userid_hmac_secret': 'plugin-tests', 'kinto.history.auto_trim_max_count': '2', 'kinto.history.auto_trim_threshold': '0'})
    try {
      const req = client(trimmed.app)
      await req('PUT', '/v1/buckets/tb', {body: {}})
      for (let i = 0; i < 5; i++) await req('PUT', `/v1/buckets/tb/collections/c${i}`, {body: {}})
      const entries = (await req('GET', '/v1/buckets/tb/history?resource_name=collection')).body.data as Entry[]
      expect(entries.map((e) => e.uri)).toEqual(['/buckets/tb/collections/c4', '/buckets/tb/collections/c3'])
      const readable = await trimmed.app.kinto.backends.permission.getAccessibleObjects([principal('alice')])
      const aces = [...readable.keys()].filter((uri) => uri.startsWith('/buckets/tb/history/'))
      const all = ((await req('GET', '/v1/buckets/tb/history')).body.data as Entry[]).map((e) => `/buckets/tb/history/${e.id}`)
      expect(aces.sort()).toEqual(all.sort())
    } finally {
      await trimmed.close()
    }
  }, 60_000)
})

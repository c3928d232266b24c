/**
 * Buckets, collections, groups and records through app.inject on memory backends: CRUD, PATCH
 * flavours, tombstones, lists (filters, sorting, pagination, _fields), concurrency control,
 * cache headers and cascades.
 */
import {afterEach, beforeEach, describe, expect, test} from 'vitest'

import {ALICE, BOB, client, memoryApp} from './helpers.js'

let app: ReturnType<typeof memoryApp>
let req: ReturnType<typeof client>
const R = '/v1/buckets/b/collections/c/records'

async function fresh(raw: Record<string, string> = {}) {
  if (app) await app.close()
  app = memoryApp(raw)
  req = client(app)
  expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
  expect((await req('PUT', '/v1/buckets/b/collections/c', {body: {}})).status).toBe(201)
}

beforeEach(async () => {
  await fresh()
})
afterEach(async () => {
  await app?.close()
})

async function create(data: Record<string, unknown>) {
  const r = await req('POST', R, {body: {data}})
  expect(r.status).toBe(201)
  return r.body.data as {id: string; last_modified: number; [k: string]: unknown}
}

describe('objects', () => {
  test('PUT creates (201) then replaces (200); the writer gets write permission', async () => {
    const r = await req('PUT', `${R}/rec1`, {body: {data: {a: 1}}})
    expect(r.status).toBe(201)
    expect(r.body.data).toMatchObject({id: 'rec1', a: 1})
    expect(r.body.permissions.write).toHaveLength(1)
    expect(r.headers.etag).toBe(`"${r.body.data.last_modified}"`)
    const again = await req('PUT', `${R}/rec1`, {body: {data: {b: 2}}})
    expect(again.status).toBe(200)
    expect(again.body.data).toEqual({id: 'rec1', b: 2, last_modified: again.body.data.last_modified})
    expect(again.body.data.last_modified).toBeGreaterThan(r.body.data.last_modified)
  })

  test('POST generates ids; an existing id answers 200 with the existing object', async () => {
    const created = await create({title: 'x'})
    expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const again = await req('POST', R, {body: {data: {id: created.id, title: 'y'}}})
    expect(again.status).toBe(200)
    expect(again.body.data.title).toBe('x')
    const bucket = await req('POST', '/v1/buckets', {body: {}})
    expect(bucket.status).toBe(201)
    expect(bucket.body.data.id).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_-]{7}$/)
  })

  test('invalid ids are 400 "Invalid object id"', async () => {
    for (const [m, u, body] of [
      ['PUT', '/v1/buckets/b%20x', {}],
      ['PUT', `${R}/_bad`, {}],
      ['POST', R, {data: {id: 'no spaces'}}],
      ['POST', R, {data: {id: 42}}],
      ['PUT', `/v1/buckets/${'a'.repeat(600)}`, {}],
    ] as const) {
      const r = await req(m, u, {body})
      expect(r.status, `${m} ${u}`).toBe(400)
      expect(r.body).toMatchObject({errno: 107, message: 'path: Invalid object id'})
    }
  })

  test('PUT with a different data.id is refused', async () => {
    const r = await req('PUT', `${R}/rec1`, {body: {data: {id: 'other'}}})
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({message: 'Object id does not match existing object', details: [{location: 'body', name: 'id'}]})
  })

  test('missing object: 404 errno 110 with details; missing collection: 404 errno 111', async () => {
    const r = await req('GET', `${R}/nope`)
    expect(r.status).toBe(404)
    expect(r.body).toEqual({code: 404, errno: 110, error: 'Not Found', details: {id: 'nope', resource_name: 'record'}})
    const c = await req('GET', '/v1/buckets/b/collections/missing/records')
    expect(c.status).toBe(404)
    expect(c.body).toMatchObject({errno: 111, details: {id: 'missing', resource_name: 'collection'}})
  })

  test('PATCH merges, merge-patch removes nulls, JSON-Patch applies operations', async () => {
    const rec = await create({a: 1, nested: {x: 1, y: 2}})
    const p1 = await req('PATCH', `${R}/${rec.id}`, {body: {data: {b: 2, nested: {x: 9}}}})
    expect(p1.status).toBe(200)
    expect(p1.body.data).toMatchObject({a: 1, b: 2, nested: {x: 9}})
    const p2 = await req('PATCH', `${R}/${rec.id}`, {
      raw: JSON.stringify({data: {a: null, nested: {y: 3}}}),
      headers: {'content-type': 'application/merge-patch+json'},
    })
    expect(p2.status).toBe(200)
    expect(p2.body.data).not.toHaveProperty('a')
    expect(p2.body.data.nested).toEqual({x: 9, y: 3})
    // A charset parameter changes nothing (upstream compares the whole header: a plain PATCH).
    const p2b = await req('PATCH', `${R}/${rec.id}`, {
      raw: JSON.stringify({data: {nested: {z: 4}}}),
      headers: {'content-type': 'application/merge-patch+json; charset=utf-8'},
    })
    expect(p2b.body.data.nested).toEqual({x: 9, y: 3, z: 4})
    const p3 = await req('PATCH', `${R}/${rec.id}`, {
      raw: JSON.stringify([
        {op: 'add', path: '/data/tags', value: ['t']},
        {op: 'remove', path: '/data/b'},
        {op: 'add', path: '/permissions/read/system.Everyone'},
      ]),
      headers: {'content-type': 'application/json-patch+json'},
    })
    expect(p3.status).toBe(200)
    expect(p3.body.data.tags).toEqual(['t'])
    expect(p3.body.data).not.toHaveProperty('b')
    expect(p3.body.permissions.read).toEqual(['system.Everyone'])
    const bad = await req('PATCH', `${R}/${rec.id}`, {
      raw: JSON.stringify([{op: 'remove', path: '/data/nope'}]),
      headers: {'content-type': 'application/json-patch+json'},
    })
    expect(bad.status).toBe(400)
    expect(bad.body.message).toMatch(/JSON Patch operation failed/)
  })

  test('a JSON-Patch replace keeps the member where it was (python-json-patch assigns in place)', async () => {
    const rec = await create({a: 1, b: 2, c: 3})
    const r = await req('PATCH', `${R}/${rec.id}`, {raw: JSON.stringify([{op: 'replace', path: '/data/a', value: 9}]), headers: {'content-type': 'application/json-patch+json'}})
    expect(r.status).toBe(200)
    expect(Object.keys(r.body.data).slice(0, 3)).toEqual(['a', 'b', 'c'])
    expect((await req('GET', `${R}/${rec.id}`)).body.data.a).toBe(9)
  })

  test('JSON-Patch operations missing their value or from fail (400) and change nothing', async () => {
    const rec = await create({keep: 1})
    const patch = (ops: unknown) => req('PATCH', `${R}/${rec.id}`, {raw: JSON.stringify(ops), headers: {'content-type': 'application/json-patch+json'}})
    for (const [op, name] of [
      [{op: 'copy', path: '/data/y'}, 'from'],
      [{op: 'move', path: '/data/y'}, 'from'],
      [{op: 'add', path: '/data/q'}, 'value'],
      [{op: 'replace', path: '/data/keep'}, 'value'],
      [{op: 'test', path: '/data/keep'}, 'value'],
    ] as const) {
      const r = await patch([op])
      expect(r.status, JSON.stringify(op)).toBe(400)
      expect(r.body).toMatchObject({errno: 107, message: `body: JSON Patch operation failed: The operation does not contain a '${name}' member`})
    }
    const after = await req('GET', `${R}/${rec.id}`)
    expect(after.body.data).toEqual({keep: 1, id: rec.id, last_modified: rec.last_modified})
    // A null value is a value; a principal's path is its value (upstream), whatever is given.
    expect((await patch([{op: 'replace', path: '/data/keep', value: null}])).body.data.keep).toBeNull()
    const writer = after.body.permissions.write[0] as string
    expect((await patch([{op: 'test', path: `/permissions/write/${writer}`}])).status).toBe(200)
    expect((await patch([{op: 'replace', path: `/permissions/write/${writer}`, value: 'someone'}])).body.permissions.write).toEqual([writer])
  })

  test('PATCH needs data or permissions; Response-Behavior light and diff', async () => {
    const rec = await create({a: 1, b: 1})
    const empty = await req('PATCH', `${R}/${rec.id}`, {body: {}})
    expect(empty.status).toBe(400)
    expect(empty.body.message).toBe('Provide at least one of data or permissions')
    const light = await req('PATCH', `${R}/${rec.id}`, {body: {data: {a: 2, b: 1}}, headers: {'response-behavior': 'light'}})
    expect(light.body.data).toEqual({a: 2})
    const diff = await req('PATCH', `${R}/${rec.id}`, {body: {data: {a: 3}}, headers: {'response-behavior': 'diff'}})
    expect(diff.body.data).toEqual({})
    const bad = await req('PATCH', `${R}/${rec.id}`, {body: {data: {}}, headers: {'response-behavior': 'most'}})
    expect(bad.status).toBe(400)
  })

  test('DELETE leaves a tombstone seen with _since only', async () => {
    const a = await create({n: 1})
    const b = await create({n: 2})
    const del = await req('DELETE', `${R}/${a.id}`)
    expect(del.status).toBe(200)
    expect(del.body.data).toEqual({id: a.id, last_modified: del.body.data.last_modified, deleted: true})
    expect((await req('GET', `${R}/${a.id}`)).status).toBe(404)
    expect((await req('DELETE', `${R}/${a.id}`)).status).toBe(404)
    const plain = await req('GET', R)
    expect(plain.body.data.map((r: {id: string}) => r.id)).toEqual([b.id])
    const since = await req('GET', `${R}?_since=${b.last_modified}`)
    expect(since.body.data).toEqual([{id: a.id, last_modified: del.body.data.last_modified, deleted: true}])
  })

  test('client last_modified is kept when newer, ignored when older; DELETE ?last_modified', async () => {
    const rec = await create({n: 1})
    const future = rec.last_modified + 100000
    const up = await req('PUT', `${R}/${rec.id}`, {body: {data: {n: 2, last_modified: future}}})
    expect(up.body.data.last_modified).toBe(future)
    const older = await req('PUT', `${R}/${rec.id}`, {body: {data: {n: 3, last_modified: 5}}})
    expect(older.body.data.last_modified).toBeGreaterThan(future)
    const del = await req('DELETE', `${R}/${rec.id}?last_modified=${older.body.data.last_modified + 500}`)
    expect(del.body.data.last_modified).toBe(older.body.data.last_modified + 500)
  })

  test('groups default members to [] and refuse invalid members', async () => {
    const g = await req('PUT', '/v1/buckets/b/groups/g1', {body: {data: {}}})
    expect(g.status).toBe(201)
    expect(g.body.data.members).toEqual([])
    for (const member of ['system.Everyone', '/buckets/b/groups/x']) {
      const r = await req('PUT', '/v1/buckets/b/groups/g2', {body: {data: {members: [member]}}})
      expect(r.status).toBe(400)
      expect(r.body.details[0].name).toBe('data.members.0')
    }
  })

  test('collections validate schema and cache_expires; buckets their *:schema', async () => {
    const ok = await req('PUT', '/v1/buckets/b/collections/c2', {body: {data: {schema: {type: 'object'}, cache_expires: 10}}})
    expect(ok.status).toBe(201)
    const bad = await req('PUT', '/v1/buckets/b/collections/c3', {body: {data: {schema: {type: 'nonsense'}}}})
    expect(bad.status).toBe(400)
    expect(bad.body.details[0].name).toBe('data.schema')
    const badExpires = await req('PUT', '/v1/buckets/b/collections/c3', {body: {data: {cache_expires: 'soon'}}})
    expect(badExpires.status).toBe(400)
    const badBucket = await req('PUT', '/v1/buckets/b2', {body: {data: {'record:schema': 12}}})
    expect(badBucket.status).toBe(400)
  })

  test('bodies: only data and permissions; permission names per resource', async () => {
    const extra = await req('PUT', `${R}/x`, {body: {data: {}, foo: 1}})
    expect(extra.status).toBe(400)
    expect(extra.body.message).toMatch(/Unrecognized keys in mapping/)
    const perm = await req('PUT', `${R}/x`, {body: {permissions: {'collection:create': ['a']}}})
    expect(perm.status).toBe(400)
    // Upstream's OneOf check fails the permissions mapping itself (name `permissions`).
    expect(perm.body.details[0].name).toBe('permissions')
    expect(perm.body.details[0].description).toBe('"collection:create" is not one of read, write')
    const notList = await req('PUT', `${R}/x`, {body: {permissions: {read: 'a'}}})
    expect(notList.status).toBe(400)
    const dataNotObject = await req('PUT', `${R}/x`, {body: {data: [1]}})
    expect(dataNotObject.status).toBe(400)
  })
})

describe('permissions in bodies', () => {
  test('PUT with permissions replaces all; PATCH replaces only the listed ones', async () => {
    const put = await req('PUT', `${R}/p`, {body: {data: {}, permissions: {read: ['u:1']}}})
    expect(put.body.permissions.read).toEqual(['u:1'])
    expect(put.body.permissions.write).toHaveLength(1)
    const patch = await req('PATCH', `${R}/p`, {body: {permissions: {read: ['u:2']}}})
    expect(patch.body.permissions.read).toEqual(['u:2'])
    expect(patch.body.permissions.write).toHaveLength(1)
    const put2 = await req('PUT', `${R}/p`, {body: {data: {}, permissions: {read: ['u:3']}}})
    expect(put2.body.permissions).toEqual({read: ['u:3'], write: put.body.permissions.write})
  })

  test('permissions are shown to writers of the object only', async () => {
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {read: ['system.Authenticated']}}})
    const rec = await create({})
    const asBob = await req('GET', `${R}/${rec.id}`, {auth: BOB})
    expect(asBob.status).toBe(200)
    expect(asBob.body.permissions).toEqual({})
    const list = await req('GET', R, {auth: BOB})
    expect(list.body).not.toHaveProperty('permissions')
  })

  test('explicit_permissions=false does not add the writer', async () => {
    await fresh({'kinto.explicit_permissions': 'false', 'kinto.bucket_create_principals': 'system.Authenticated', 'kinto.bucket_write_principals': 'system.Authenticated', 'kinto.collection_write_principals': 'system.Authenticated', 'kinto.collection_create_principals': 'system.Authenticated'})
    const r = await req('PUT', '/v1/buckets/z', {body: {}})
    expect(r.status).toBe(201)
    expect(r.body.permissions).toEqual({})
  })
})

describe('lists', () => {
  async function seed() {
    const rows = [
      {title: 'bar', n: 3, tags: ['a', 'b'], author: {name: 'Ann'}},
      {title: 'foo', n: 1, tags: ['b']},
      {title: 'baz', n: 2, tags: [], author: {name: 'Bob'}, flag: null},
      {title: 'Fob', n: 10},
    ]
    const out = []
    for (const r of rows) out.push(await create(r))
    return out
  }
  const titles = (r: {body: {data: Array<{title: string}>}}) => r.body.data.map((x) => x.title)

  test('filters, every operator', async () => {
    await seed()
    const cases: Array<[string, string[]]> = [
      ['title=foo', ['foo']],
      ['n=1', ['foo']],
      ['n="1"', []],
      ['not_title=foo', ['Fob', 'baz', 'bar']],
      ['lt_n=3', ['baz', 'foo']],
      ['max_n=3', ['baz', 'foo', 'bar']],
      ['gt_n=2', ['Fob', 'bar']],
      ['min_n=3', ['Fob', 'bar']],
      ['in_title=bar,baz', ['baz', 'bar']],
      ['exclude_n=1,2', ['Fob', 'bar']],
      ['like_title=ba', ['baz', 'bar']],
      ['like_title=f*', ['Fob', 'foo']],
      ['has_author=true', ['baz', 'bar']],
      ['has_author=false', ['Fob', 'foo']],
      ['author.name=Ann', ['bar']],
      ['contains_tags=b', ['foo', 'bar']],
      ['contains_tags=["a","b"]', ['bar']],
      ['contains_any_tags=["a","z"]', ['bar']],
      ['has_flag=true', ['baz']],
    ]
    for (const [q, expected] of cases) {
      const r = await req('GET', `${R}?${q}`)
      expect(r.status, q).toBe(200)
      expect(titles(r).sort(), q).toEqual([...expected].sort())
    }
  })

  test('sorting, default newest first, missing values last ascending', async () => {
    await seed()
    expect(titles(await req('GET', R))).toEqual(['Fob', 'baz', 'foo', 'bar'])
    expect(titles(await req('GET', `${R}?_sort=n`))).toEqual(['foo', 'baz', 'bar', 'Fob'])
    expect(titles(await req('GET', `${R}?_sort=-n`))).toEqual(['Fob', 'bar', 'baz', 'foo'])
    expect(titles(await req('GET', `${R}?_sort=author.name`))).toEqual(['bar', 'baz', 'Fob', 'foo'])
    expect(titles(await req('GET', `${R}?_sort=title`))).toEqual(['Fob', 'bar', 'baz', 'foo'])
  })

  test('_fields keeps id and last_modified; dotted fields', async () => {
    await seed()
    const r = await req('GET', `${R}?_fields=title,author.name&_sort=n`)
    expect(Object.keys(r.body.data[0]).sort()).toEqual(['id', 'last_modified', 'title'])
    expect(r.body.data[2]).toMatchObject({title: 'bar', author: {name: 'Ann'}})
    const one = await req('GET', `${R}/${r.body.data[0].id}?_fields=n`)
    expect(Object.keys(one.body.data).sort()).toEqual(['id', 'last_modified', 'n'])
  })

  test('pagination follows Next-Page to the end, stable under concurrent inserts', async () => {
    const created = []
    for (let i = 0; i < 10; i++) created.push(await create({i}))
    const seen: number[] = []
    let url: string | undefined = `${R}?_limit=3&_sort=i`
    let pages = 0
    while (url) {
      const r = await req('GET', url.replace(/^http:\/\/[^/]+/, ''))
      expect(r.status).toBe(200)
      seen.push(...r.body.data.map((x: {i: number}) => x.i))
      url = r.headers['next-page'] as string | undefined
      if (pages === 0) {
        expect(url).toMatch(/^http:\/\/localhost\/v1\/buckets\/b\/collections\/c\/records\?_limit=3&_sort=i&_token=/)
        await create({i: -1}) // sorts before the cursor: not seen, nothing repeated
      }
      pages++
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(pages).toBe(4)
  })

  test('paginate_by caps _limit; HEAD gives Total-Objects', async () => {
    await fresh({'kinto.paginate_by': '2'})
    await seed()
    const r = await req('GET', `${R}?_limit=3`)
    expect(r.body.data).toHaveLength(2)
    expect(r.headers['next-page']).toContain('_limit=2')
    const head = await req('HEAD', `${R}?gt_n=1`)
    expect(head.status).toBe(200)
    expect(head.headers['total-objects']).toBe('3')
    expect(head.headers['total-records']).toBe('3')
    expect(head.raw).toBe('')
  })

  test('plural DELETE deletes one page, tokens are single-use', async () => {
    for (let i = 0; i < 5; i++) await create({i})
    const first = await req('DELETE', `${R}?_limit=2&_sort=i`)
    expect(first.status).toBe(200)
    expect(first.body.data).toHaveLength(2)
    expect(first.body.data.every((d: {deleted: boolean}) => d.deleted)).toBe(true)
    const next = String(first.headers['next-page']).replace(/^http:\/\/[^/]+/, '')
    const second = await req('DELETE', next)
    expect(second.status).toBe(200)
    expect(second.body.data).toHaveLength(2)
    const reused = await req('DELETE', next)
    expect(reused.status).toBe(400)
    expect(reused.body.message).toBe('querystring: _token was already used or has expired.')
    expect((await req('GET', R)).body.data).toHaveLength(1)
  })

  test('bad tokens and bad values are 400', async () => {
    for (const q of ['_token=abc', '_token=' + Buffer.from('[1]').toString('base64'), '_limit=-1', '_limit=abc', '_since=abc', 'gt_last_modified=xyz', 'like_title=12', 'in_id=1,2', 'contains_id=a']) {
      const r = await req('GET', `${R}?${q}`)
      expect(r.status, q).toBe(400)
      expect(r.body.errno, q).toBe(107)
    }
  })

  test('list ETag is the collection timestamp, whatever the filters', async () => {
    const a = await create({n: 1})
    const r = await req('GET', `${R}?n=2`)
    expect(r.headers.etag).toBe(`"${a.last_modified}"`)
  })
})

describe('concurrency control', () => {
  test('If-None-Match gives 304 on objects and lists', async () => {
    const rec = await create({})
    const one = await req('GET', `${R}/${rec.id}`, {headers: {'if-none-match': `"${rec.last_modified}"`}})
    expect(one.status).toBe(304)
    expect(one.raw).toBe('')
    expect(one.headers.etag).toBe(`"${rec.last_modified}"`)
    const list = await req('GET', R, {headers: {'if-none-match': `"${rec.last_modified}"`}})
    expect(list.status).toBe(304)
  })

  test('If-Match stale: 412 errno 114 with the existing object', async () => {
    const rec = await create({a: 1})
    const r = await req('PUT', `${R}/${rec.id}`, {body: {data: {}}, headers: {'if-match': '"1"'}})
    expect(r.status).toBe(412)
    expect(r.body).toMatchObject({errno: 114, message: 'Resource was modified meanwhile', details: {existing: {id: rec.id, a: 1}}})
    expect(r.body.details.existing).not.toHaveProperty('__permissions__')
    expect(r.headers.etag).toBe(`"${rec.last_modified}"`)
    const ok = await req('PATCH', `${R}/${rec.id}`, {body: {data: {a: 2}}, headers: {'if-match': `"${rec.last_modified}"`}})
    expect(ok.status).toBe(200)
  })

  test('If-None-Match: * refuses existing objects (and lists); POST with If-Match always 412', async () => {
    const rec = await create({})
    expect((await req('PUT', `${R}/${rec.id}`, {body: {}, headers: {'if-none-match': '*'}})).status).toBe(412)
    expect((await req('PUT', `${R}/fresh`, {body: {}, headers: {'if-none-match': '*'}})).status).toBe(201)
    expect((await req('GET', R, {headers: {'if-none-match': '*'}})).status).toBe(412)
    expect((await req('POST', R, {body: {data: {}}, headers: {'if-match': '"1"'}})).status).toBe(412)
    expect((await req('PUT', `${R}/absent`, {body: {}, headers: {'if-match': '"1"'}})).status).toBe(412)
  })

  test('If-Match: "0" is a precondition (upstream reads it as no header)', async () => {
    const rec = await create({a: 1})
    const r = await req('PUT', `${R}/${rec.id}`, {body: {data: {}}, headers: {'if-match': '"0"'}})
    expect(r.status).toBe(412)
    expect((await req('GET', R, {headers: {'if-match': '"0"'}})).status).toBe(412)
  })

  test('malformed If-Match is 400', async () => {
    const r = await req('PUT', `${R}/x`, {body: {}, headers: {'if-match': 'nope'}})
    expect(r.status).toBe(400)
    expect(r.body.message).toBe('If-Match in header: The value should be integer between double quotes.')
  })
})

describe('cache headers', () => {
  test('authenticated: no-cache; anonymous: settings and collection cache_expires', async () => {
    await fresh({'kinto.record_cache_expires_seconds': '60', 'kinto.bucket_read_principals': 'system.Everyone'})
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {read: ['system.Everyone']}}})
    const rec = await create({})
    expect((await req('GET', `${R}/${rec.id}`)).headers['cache-control']).toBe('no-cache, no-store')
    expect((await req('GET', R, {auth: null})).headers['cache-control']).toBe('max-age=60')
    await req('PATCH', '/v1/buckets/b/collections/c', {body: {data: {cache_expires: 3600}}})
    const anon = await req('GET', `${R}/${rec.id}`, {auth: null})
    expect(anon.headers['cache-control']).toBe('max-age=3600')
    expect(anon.headers.expires).toBeTruthy()
    // A kept anonymous answer is not given to a signed-in request of the same URL (who may see more).
    expect(anon.headers.vary).toBe('Authorization')
    await req('PATCH', '/v1/buckets/b/collections/c', {body: {data: {cache_expires: 0}}})
    await fresh({'kinto.b.c.record_cache_expires_seconds': '0'})
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {read: ['system.Everyone']}}})
    const zero = await req('GET', R, {auth: null})
    expect(zero.headers['cache-control']).toBe('max-age=0, must-revalidate, no-cache, no-store')
    expect(zero.headers.pragma).toBe('no-cache')
  })

  test('a cache_expires beyond what a date holds is capped at 2^31 seconds (RFC 9111), with a valid Expires', async () => {
    await req('PATCH', '/v1/buckets/b', {body: {permissions: {read: ['system.Everyone']}}})
    for (const huge of ['1e300', '123456789012345678901234567890']) {
      await req('PATCH', '/v1/buckets/b/collections/c', {raw: `{"data": {"cache_expires": ${huge}}}`})
      const anon = await req('GET', R, {auth: null})
      expect(anon.headers['cache-control'], huge).toBe('max-age=2147483648')
      expect(Number.isNaN(Date.parse(String(anon.headers.expires))), huge).toBe(false)
    }
  })
})

describe('cascades', () => {
  test('deleting a bucket deletes its collections, groups, records and their permissions', async () => {
    await create({})
    await req('PUT', '/v1/buckets/b/groups/g', {body: {data: {members: ['u:1']}}})
    expect((await req('DELETE', '/v1/buckets/b')).status).toBe(200)
    expect((await req('PUT', '/v1/buckets/b', {body: {}})).status).toBe(201)
    expect((await req('GET', '/v1/buckets/b/collections')).body.data).toEqual([])
    expect((await req('GET', '/v1/buckets/b/groups')).body.data).toEqual([])
    expect((await req('GET', R)).status).toBe(404)
  })

  test('deleting a collection deletes its records (and their tombstones)', async () => {
    const rec = await create({})
    await req('DELETE', '/v1/buckets/b/collections/c')
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    expect((await req('GET', R)).body.data).toEqual([])
    expect((await req('GET', `${R}?_since=0`)).body.data).toEqual([])
    expect((await req('GET', `${R}/${rec.id}`)).status).toBe(404)
  })

  test('group members get the group principal, and lose it', async () => {
    const {createHmac} = await import('node:crypto')
    const bob = 'basicauth:' + createHmac('sha256', '').update('bob:secret').digest('hex')
    await req('PUT', '/v1/buckets/b/groups/readers', {body: {data: {members: [bob]}}})
    await req('PATCH', '/v1/buckets/b/collections/c', {body: {permissions: {read: ['/buckets/b/groups/readers']}}})
    const hello = await req('GET', '/v1/', {auth: BOB})
    expect(hello.body.user.principals).toContain('/buckets/b/groups/readers')
    expect((await req('GET', R, {auth: BOB})).status).toBe(200)
    await req('PATCH', '/v1/buckets/b/groups/readers', {body: {data: {members: []}}})
    expect((await req('GET', R, {auth: BOB})).status).toBe(403)
    await req('PATCH', '/v1/buckets/b/groups/readers', {body: {data: {members: [bob]}}})
    await req('DELETE', '/v1/buckets/b/groups/readers')
    expect((await req('GET', '/v1/', {auth: BOB})).body.user.principals).not.toContain('/buckets/b/groups/readers')
  })

  test('plural DELETE of collections cascades too', async () => {
    await create({})
    expect((await req('DELETE', '/v1/buckets/b/collections')).status).toBe(200)
    await req('PUT', '/v1/buckets/b/collections/c', {body: {}})
    expect((await req('GET', R, {auth: ALICE})).body.data).toEqual([])
  })
})

describe('JSON schema validation (experimental_collection_schema_validation)', () => {
  test('records validate against the collection schema and the bucket record:schema', async () => {
    await fresh({'kinto.experimental_collection_schema_validation': 'true'})
    expect((await req('GET', '/v1/')).body.capabilities).toHaveProperty('schema')
    const schema = {type: 'object', properties: {title: {type: 'string'}}, required: ['title']}
    const col = await req('PUT', '/v1/buckets/b/collections/s', {body: {data: {schema}}})
    expect(col.status).toBe(201)
    const bad = await req('POST', '/v1/buckets/b/collections/s/records', {body: {data: {title: 12}}})
    expect(bad.status).toBe(400)
    expect(bad.body).toMatchObject({errno: 107, details: [{location: 'body', name: 'title'}]})
    const missing = await req('POST', '/v1/buckets/b/collections/s/records', {body: {data: {}}})
    expect(missing.status).toBe(400)
    expect(missing.body.message).toContain("'title' is a required property")
    const ok = await req('POST', '/v1/buckets/b/collections/s/records', {body: {data: {title: 'x'}}})
    expect(ok.status).toBe(201)
    expect(ok.body.data.schema).toBe(col.body.data.last_modified)

    await req('PATCH', '/v1/buckets/b', {body: {data: {'record:schema': {type: 'object', properties: {n: {type: 'integer'}}}}}})
    const badN = await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {n: 'one'}}})
    expect(badN.status).toBe(400)
    expect(badN.body.details[0].name).toBe('n')
    expect((await req('POST', '/v1/buckets/b/collections/c/records', {body: {data: {n: 1}}})).status).toBe(201)
  })

  test('without the setting, schemas are stored but not enforced', async () => {
    await req('PUT', '/v1/buckets/b/collections/s', {body: {data: {schema: {type: 'object', required: ['title']}}}})
    expect((await req('POST', '/v1/buckets/b/collections/s/records', {body: {data: {}}})).status).toBe(201)
  })
})

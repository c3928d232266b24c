/**
 * The HTTP API as upstream Kinto 26 answers it, as a table: each row is a request (after its own
 * set-up requests) and what upstream answers — status, errno, headers present or absent, and a
 * check of the body. It runs on the memory backends and on PostgreSQL (PGlite here, the real
 * server when KINTO_TEST_DATABASE_URL is set). A difference from upstream found later is one more
 * row. Expected values come from upstream's source (resource schemas, storage rules, views).
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {ACCEPTANCE_PLUGINS} from './plugins-helpers.js'
import {ALICE, basic as basicAuth, client, memoryApp, postgresApp, type Res} from './helpers.js'

const SETTINGS: Record<string, string> = {
  ...ACCEPTANCE_PLUGINS,
  'kinto.experimental_collection_schema_validation': 'true',
  'kinto.bucket_create_principals': 'system.Authenticated',
}

type Request = ReturnType<typeof client>

interface Row {
  name: string
  /** Requests made first (their answers are not checked), then the request under test. */
  setup?: (req: Request) => Promise<unknown>
  run: (req: Request) => Promise<Res>
  status: number
  errno?: number
  /** Header name (lower case) → expected value, a pattern, or null for "absent". */
  headers?: Record<string, string | RegExp | null>
  body?: (body: any, res: Res) => void
  /** A row for one backend only (what it stores differs: jsonb reorders an object's keys). */
  only?: 'memory' | 'postgresql'
}

const B = '/v1/buckets/b'
const C = `${B}/collections/c`
const BIG = '12345678901234567890'
const JSON_PATCH = {'content-type': 'application/json-patch+json'}

/** A fresh collection per row that needs one, so rows do not see each other's records. */
let seq = 0
const fresh = () => `${B}/collections/c${++seq}`

const rows: Row[] = [
  // ---- numbers and timestamps
  {
    name: 'an integer beyond 2^53 comes back with every digit (write answer)',
    run: (r) => r('PUT', `${C}/records/big`, {raw: `{"data": {"big": ${BIG}, "neg": -${BIG}, "small": 3, "f": 1.5}}`}),
    status: 201,
    body: (_b, res) => {
      expect(res.raw).toContain(`"big":${BIG}`)
      expect(res.raw).toContain(`"neg":-${BIG}`)
      expect(res.raw).toContain('"small":3')
      expect(res.raw).toContain('"f":1.5')
    },
  },
  {
    name: 'an integer beyond 2^53 comes back with every digit (read, list, history)',
    setup: (r) => r('PUT', `${C}/records/big2`, {raw: `{"data": {"nested": {"list": [${BIG}]}}}`}),
    run: async (r) => {
      const one = await r('GET', `${C}/records/big2`)
      expect(one.raw).toContain(`[${BIG}]`)
      const history = await r("GET", `${B}/history?record_id=big2`)
      expect(history.raw).toContain(`[${BIG}]`)
      return r('GET', `${C}/records?id=big2`)
    },
    status: 200,
    body: (_b, res) => expect(res.raw).toContain(`[${BIG}]`),
  },
  {
    name: 'an integer beyond 2^53 in a batch body and its sub-response',
    run: (r) => r('POST', '/v1/batch', {raw: `{"requests": [{"method": "PUT", "path": "/buckets/b/collections/c/records/big3", "body": {"data": {"v": ${BIG}}}}]}`}),
    status: 200,
    body: (b, res) => {
      expect(b.responses[0].status).toBe(201)
      expect(res.raw).toContain(`"v":${BIG}`)
    },
  },
  // The querystring is JSON-decoded by upstream's native_value, whose parser keeps 64-bit integers
  // exact: a filter on an integer beyond 2^53 finds it, and it sorts among numbers.
  {
    name: 'a filter on an integer beyond 2^53 compares every digit (eq, in, gt, not)',
    setup: async (r) => {
      const c = `${B}/collections/bigfilter`
      await r('PUT', c)
      await r('PUT', `${c}/records/big`, {raw: `{"data": {"v": ${BIG}}}`})
      await r('PUT', `${c}/records/next`, {raw: '{"data": {"v": 12345678901234567891}}'})
      await r('PUT', `${c}/records/small`, {raw: '{"data": {"v": 5}}'})
      await r('PUT', `${c}/records/text`, {raw: '{"data": {"v": "a"}}'})
    },
    run: async (r) => {
      const c = `${B}/collections/bigfilter/records`
      const ids = async (qs: string) => ((await r('GET', `${c}?${qs}&_sort=id`)).body.data as Array<{id: string}>).map((o) => o.id)
      expect(await ids(`v=${BIG}`)).toEqual(['big'])
      expect(await ids(`in_v=${BIG},5`)).toEqual(['big', 'small'])
      expect(await ids(`gt_v=${BIG}`)).toEqual(['next'])
      expect(await ids('gt_v=5')).toEqual(['big', 'next'])
      expect(await ids(`not_v=${BIG}`)).toEqual(['next', 'small', 'text'])
      expect(await ids(`lt_v=${BIG}`)).toEqual(['small', 'text'])
      return r('GET', `${c}?_sort=-v`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['next', 'big', 'small', 'text']),
  },
  ...([`in_id=${BIG}`, `like_v=${BIG}`] as const).map(
    (qs): Row => ({
      name: `${qs} is "Invalid value for …" (an integer, not a string)`,
      run: (r) => r('GET', `${C}/records?${qs}`),
      status: 400,
      errno: 107,
      body: (b) => expect(b.message).toBe(`Invalid value for ${qs.split('=')[0]}`),
    }),
  ),
  {
    name: 'like_ ending with a lone backslash matches a literal backslash (not a storage error)',
    setup: async (r) => {
      await r('PUT', `${B}/collections/likeslash`)
      await r('PUT', `${B}/collections/likeslash/records/slash`, {raw: '{"data": {"s": "b\\\\"}}'})
      await r('PUT', `${B}/collections/likeslash/records/plain`, {raw: '{"data": {"s": "b"}}'})
    },
    run: (r) => r('GET', `${B}/collections/likeslash/records?like_s=${encodeURIComponent('*\\')}`),
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['slash']),
  },
  {
    name: 'a filter value holding a lone surrogate is a 400 (not a storage error)',
    run: (r) => r('GET', `${C}/records?s=${encodeURIComponent('"\\ud800"')}`),
    status: 400,
    errno: 107,
  },
  {
    name: 'a _token whose last object holds a NUL character has invalid content (not a storage error)',
    run: (r) =>
      r('GET', `${C}/records?_sort=s&_token=${encodeURIComponent(Buffer.from(JSON.stringify({last_object: {s: '\u0000x'}, offset: 0, nonce: 'n'})).toString('base64'))}`),
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toBe('querystring: _token has invalid content'),
  },
  // in_/exclude_ values are upstream's FieldList: split on commas, empty items dropped, each item
  // JSON-decoded; a repeated parameter gives its values as the items (kinto/core/resource/schema.py)
  ...(
    [
      ['in_e=', []],
      ['in_e=x,', ['x']],
      ['in_e=,1', ['one']],
      ['exclude_e=', ['none']],
      ['exclude_e=,', ['none']],
      ['exclude_e=x,,1', ['empty', 'none', 'text1']],
      ['in_e=1&in_e=x', ['one', 'x']],
      ['exclude_e=1&exclude_e=x', ['empty', 'none', 'text1']],
    ] as const
  ).map(
    ([qs, ids]): Row => ({
      name: `${qs} reads its items as upstream (empty items dropped, repeated values decoded): ${JSON.stringify(ids)}`,
      setup: async (r) => {
        await r('PUT', `${B}/collections/initems`)
        for (const [id, e] of [['empty', '""'], ['x', '"x"'], ['one', '1'], ['text1', '"1"'], ['none', undefined]]) {
          await r('PUT', `${B}/collections/initems/records/${id}`, {raw: `{"data": {${e === undefined ? '' : `"e": ${e}`}}}`})
        }
      },
      run: (r) => r('GET', `${B}/collections/initems/records?${qs}`),
      status: 200,
      body: (b) => expect(b.data.map((o: {id: string}) => o.id).sort()).toEqual([...ids].sort()),
    }),
  ),
  {
    // id is a text column: upstream compares with NULL (id = NULL, id <> NULL: nothing passes)
    name: 'id=null and not_id=null match nothing, not the record "null"',
    setup: async (r) => {
      await r('PUT', `${B}/collections/idnull`)
      await r('PUT', `${B}/collections/idnull/records/null`, {body: {data: {}}})
      await r('PUT', `${B}/collections/idnull/records/other`, {body: {data: {}}})
    },
    run: async (r) => {
      const not = await r('GET', `${B}/collections/idnull/records?not_id=null`)
      expect(not.body.data).toEqual([])
      return r('GET', `${B}/collections/idnull/records?id=null`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([]),
  },
  // A query value nesting deeper than a body may (MAX_JSON_DEPTH) is a 400, never a 500
  ...(['n', 'contains_tags', 'in_n', 'has_n', 'id'] as const).map(
    (name): Row => ({
      name: `${name}= a JSON value nested 5000 deep is a 400 (not a 500)`,
      run: (r) => r('GET', `${C}/records?${name}=${encodeURIComponent('['.repeat(5000) + ']'.repeat(5000))}`),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details[0].name).toBe(name),
    }),
  ),
  {
    name: 'a _token whose last object nests 5000 deep has invalid content (not a 500)',
    run: (r) =>
      r('GET', `${C}/records?_sort=s&_token=${encodeURIComponent(Buffer.from(`{"last_object": {"s": ${'['.repeat(5000) + ']'.repeat(5000)}}, "offset": 0, "nonce": "n"}`).toString('base64'))}`),
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toBe('querystring: _token has invalid content'),
  },
  ...(['a.b', '-a.b'] as const).map(
    (sort): Row => ({
      name: `pages sorted on ${sort} visit every record once, in the order of one page, when a record also has a key "a.b"`,
      setup: async (r) => {
        await r('PUT', `${B}/collections/dotted`)
        for (const [id, data] of [
          ['nested-dotted', '{"a": {"b": {"c": 3}}, "a.b": 7}'],
          ['nested-text', '{"a": {"b": {"c": "3"}}}'],
          ['nested-one', '{"a": {"b": 1}}'],
          ['dotted-only', '{"a.b": 0}'],
          ['none', '{}'],
        ]) {
          await r('PUT', `${B}/collections/dotted/records/${id}`, {raw: `{"data": ${data}}`})
        }
      },
      run: async (r) => {
        const whole = await r('GET', `${B}/collections/dotted/records?_sort=${sort}`)
        const expected = whole.body.data.map((o: {id: string}) => o.id)
        expect(expected).toHaveLength(5)
        const seen: string[] = []
        let url: string | undefined = `${B}/collections/dotted/records?_sort=${sort}&_limit=1`
        let last: Res | undefined
        for (let page = 0; url && page < 10; page++) {
          last = await r('GET', url)
          expect(last.status, last.raw).toBe(200)
          seen.push(...last.body.data.map((o: {id: string}) => o.id))
          const next = last.headers['next-page'] as string | undefined
          url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined
        }
        expect(seen).toEqual(expected)
        return last!
      },
      status: 200,
    }),
  ),
  {
    name: 'pages sorted on integers beyond 2^53 visit every record once',
    setup: async (r) => {
      await r('PUT', `${B}/collections/bigpages`)
      for (const [id, v] of [['a', BIG], ['b', '12345678901234567891'], ['c', '5'], ['d', '12345678901234567892']]) {
        await r('PUT', `${B}/collections/bigpages/records/${id}`, {raw: `{"data": {"v": ${v}}}`})
      }
    },
    run: async (r) => {
      const seen: string[] = []
      let url: string | undefined = `${B}/collections/bigpages/records?_sort=v&_limit=1`
      let last: Res | undefined
      while (url) {
        last = await r('GET', url)
        expect(last.status, last.raw).toBe(200)
        seen.push(...last.body.data.map((o: {id: string}) => o.id))
        const next = last.headers['next-page'] as string | undefined
        url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined
      }
      expect(seen).toEqual(['c', 'a', 'b', 'd'])
      return last!
    },
    status: 200,
  },
  {
    name: '_limit just above 2^63 is a 400 (compared exactly)',
    run: (r) => r('GET', `${C}/records?_limit=9223372036854775809`),
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toBe('_limit in querystring: 9223372036854775809 is greater than maximum value 9223372036854775808'),
  },
  {
    name: "a client-given last_modified in the past never becomes the list's timestamp",
    run: async (r) => {
      const col = fresh()
      await r('PUT', col)
      const before = Date.now()
      const first = await r('POST', `${col}/records`, {body: {data: {last_modified: 5}}})
      expect(first.body.data.last_modified).toBe(5)
      const list = await r('GET', `${col}/records`)
      const etag = Number(JSON.parse(list.headers.etag as string))
      expect(etag).toBeGreaterThanOrEqual(before)
      await r('POST', `${col}/records`, {body: {data: {last_modified: 3}}})
      const again = await r('GET', `${col}/records`)
      expect(again.headers.etag).toBe(list.headers.etag)
      return again
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {last_modified: number}) => o.last_modified).sort()).toEqual([3, 5]),
  },
  // ---- validation
  {
    name: 'an empty principal is a 400 (colander: Required)',
    run: (r) => r('PUT', `${B}/collections/e1`, {body: {permissions: {read: ['']}}}),
    status: 400,
    errno: 107,
    body: (b) => {
      expect(b.details).toEqual([{location: 'body', name: 'permissions.read.0', description: 'Required'}])
      expect(b.message).toBe('permissions.read.0 in body: Required')
    },
  },
  {
    name: "a body's validation error comes before preconditions and existence",
    run: (r) => r('PATCH', `${C}/records/missing-record`, {body: {permissions: {read: ['']}}, headers: {'if-match': '"1"'}}),
    status: 400,
    errno: 107,
  },
  {
    name: 'every invalid field of the body is listed',
    run: (r) => r('PUT', `${C}/records/r-invalid`, {body: {data: 'x', permissions: {read: 'x'}}}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details.map((d: {name: string}) => d.name).sort()).toEqual(['data', 'permissions.read']),
  },
  {
    name: 'an unknown permission name fails the permissions mapping',
    run: (r) => r('PUT', `${B}/collections/e2`, {body: {permissions: {bogus: ['a']}}}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details[0]).toEqual({location: 'body', name: 'permissions', description: '"bogus" is not one of read, write, record:create'}),
  },
  ...(
    [
      ['a bucket', '/v1/buckets/e3', 'read, write, collection:create, group:create'],
      ['a group', `${B}/groups/e4`, 'read, write'],
      ['a record', `${C}/records/e5`, 'read, write'],
    ] as const
  ).map(
    ([what, url, names]): Row => ({
      name: `an unknown permission name on ${what} lists that resource's permissions`,
      run: (r) => r('PUT', url, {body: {permissions: {read: ['a'], 'record:create2': ['a'], bogus: ['a']}}}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details).toEqual([{location: 'body', name: 'permissions', description: `"record:create2" is not one of ${names}`}]),
    }),
  ),
  // kinto.core's process_object: a PUT replaces the ACL only when some permission is given (not
  // null); a plain PATCH replaces the permissions it names, keeping the others.
  ...(
    [
      ['a PUT with permissions {}', 'PUT', {permissions: {}}, {read: ['x'], write: ['w']}],
      ['a PUT with every permission null', 'PUT', {permissions: {read: null, write: null}}, {read: ['x'], write: ['w']}],
      ['a PUT naming one permission', 'PUT', {permissions: {read: ['y']}}, {read: ['y']}],
      ['a PATCH emptying one permission', 'PATCH', {permissions: {read: []}}, {write: ['w']}],
      ['a PATCH with permissions {}', 'PATCH', {permissions: {}}, {read: ['x'], write: ['w']}],
    ] as const
  ).map(
    ([what, method, body, kept]): Row => ({
      name: `${what}: the ACL upstream leaves (and the writer)`,
      setup: (r) => r('PUT', `${B}/collections/acl`, {body: {permissions: {read: ['x'], write: ['w']}}}),
      run: (r) => r(method, `${B}/collections/acl`, {body}),
      status: 200,
      body: (b) => {
        const {write = [], ...others} = b.permissions as Record<string, string[]>
        expect(write.filter((p) => p.startsWith('basicauth:'))).toHaveLength(1)
        const rest = write.filter((p) => !p.startsWith('basicauth:'))
        expect({...others, ...(rest.length > 0 ? {write: rest} : {})}).toEqual(kept)
      },
    }),
  ),
  {
    name: 'a JSON-patch removing a principal that is not there is a 400',
    run: (r) => r('PATCH', C, {raw: '[{"op": "remove", "path": "/permissions/read/system.Everyone"}]', headers: JSON_PATCH}),
    status: 400,
    errno: 107,
  },
  {
    name: 'a JSON-patch removing a principal that is there is applied',
    setup: (r) => r('PATCH', C, {raw: '[{"op": "add", "path": "/permissions/read/bob"}]', headers: JSON_PATCH}),
    run: (r) => r('PATCH', C, {raw: '[{"op": "remove", "path": "/permissions/read/bob"}]', headers: JSON_PATCH}),
    status: 200,
    body: (b) => expect(b.permissions.read ?? []).not.toContain('bob'),
  },
  {
    name: 'a $ref that resolves nowhere fails only the records that reach it',
    setup: async (r) => {
      await r('PUT', `${B}/collections/s`, {body: {data: {schema: {type: 'object', properties: {a: {$ref: '#/definitions/nope'}}}}}})
      const other = await r('PUT', `${B}/collections/s/records/other`, {body: {data: {b: 1}}})
      expect(other.status).toBe(201)
    },
    run: (r) => r('PUT', `${B}/collections/s/records/x`, {body: {data: {a: 1}}}),
    status: 400,
    errno: 107,
    // jsonschema (4.18 on) wraps the referencing library's error: its class, then its words.
    body: (b) =>
      expect(b.details[0]).toMatchObject({
        name: 'schema',
        description: "PointerToNowhere: '/definitions/nope' does not exist within {'type': 'object', 'properties': {'a': {'$ref': '#/definitions/nope'}}}",
      }),
  },
  {
    name: 'a schema that cannot validate anything is refused at the collection write',
    run: (r) => r('PUT', `${B}/collections/s2`, {body: {data: {schema: {type: 'object', properties: {a: {type: 'string', pattern: '('}}}}}}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details[0]).toEqual({location: 'body', name: 'data.schema', description: "pattern'(' is not a 'regex'"}),
  },
  {
    // Python's re has no \p{…}: upstream refuses the pattern, with the keyword holding it.
    name: 'a pattern Python cannot read is refused at the collection write, as upstream words it',
    run: (r) => r('PUT', `${B}/collections/s3`, {body: {data: {schema: {type: 'object', patternProperties: {'^\\p{L}$': {}}}}}}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details[0]).toEqual({location: 'body', name: 'data.schema', description: "patternProperties'^\\\\p{L}$' is not a 'regex'"}),
  },
  {
    name: 'a schema holding an integer beyond 2^53 is a valid schema, and records are validated against it',
    setup: (r) => r('PUT', `${B}/collections/bigschema`, {raw: `{"data": {"schema": {"type": "object", "properties": {"n": {"maximum": ${BIG}}, "e": {"enum": [${BIG}, 1]}}}}}`}),
    run: async (r) => {
      const c = `${B}/collections/bigschema/records`
      expect((await r('PUT', `${c}/ok`, {raw: `{"data": {"n": 5, "e": ${BIG}}}`})).status).toBe(201)
      const refused = await r('PUT', `${c}/ko`, {raw: '{"data": {"e": 2}}'})
      expect(refused.status).toBe(400)
      expect(refused.body.details).toEqual([{location: 'body', name: 'e', description: `2 is not one of [${BIG}, 1]`}])
      return r('GET', `${B}/collections/bigschema`)
    },
    status: 200,
    body: (_b, res) => expect(res.raw).toContain(`"maximum":${BIG}`),
  },
  // ---- a collection's cache_expires is colander.Int(missing=drop): Python's int() of what is
  // sent, and a value colander reads as "nothing" (null, "", [], {}) drops the field
  ...(['null', '""', '[]', '{}'] as const).map(
    (value): Row => ({
      name: `cache_expires: ${value} drops the field (colander null → missing=drop)`,
      run: (r) => r('PUT', fresh(), {raw: `{"data": {"cache_expires": ${value}, "x": 1}}`}),
      status: 201,
      body: (b) => {
        expect(b.data).not.toHaveProperty('cache_expires')
        expect(b.data.x).toBe(1)
      },
    }),
  ),
  ...([
    ['true', 1],
    ['false', 0],
    ['" 12 "', 12],
    ['"+5"', 5],
    ['"1_000"', 1000],
    ['"-007"', -7],
  ] as const).map(
    ([value, want]): Row => ({
      name: `cache_expires: ${value} is int(${value}) = ${want}`,
      run: (r) => r('PUT', fresh(), {raw: `{"data": {"cache_expires": ${value}}}`}),
      status: 201,
      body: (b) => expect(b.data.cache_expires).toBe(want),
    }),
  ),
  {
    name: 'cache_expires: an integer beyond 2^53 keeps every digit',
    run: (r) => r('PUT', fresh(), {raw: `{"data": {"cache_expires": ${BIG}}}`}),
    status: 201,
    body: (_b, res) => expect(res.raw).toContain(`"cache_expires":${BIG}`),
  },
  ...(['"1.5"', '"1__0"', '"_1"', '[1]', '{"a": 1}'] as const).map(
    (value): Row => ({
      name: `cache_expires: ${value} is not a number`,
      run: (r) => r('PUT', fresh(), {raw: `{"data": {"cache_expires": ${value}}}`}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details[0].name).toBe('data.cache_expires'),
    }),
  ),
  // ---- filters
  {
    name: 'like_ ignores the case of every letter, not only ASCII ones (ILIKE, re.IGNORECASE)',
    run: async (r) => {
      const col = fresh()
      await r('PUT', col)
      for (const [id, v] of [['a', 'Émile'], ['b', 'émile'], ['c', 'ÉMILE'], ['d', 'emile'], ['e', 'İstanbul'], ['f', 'ΣΟΦΙΑ']]) {
        await r('PUT', `${col}/records/${id}`, {body: {data: {v}}})
      }
      const ids = async (qs: string) => (await r('GET', `${col}/records?${qs}&_sort=id`)).body.data.map((o: {id: string}) => o.id)
      expect(await ids(`like_v=${encodeURIComponent('ÉMILE')}`)).toEqual(['a', 'b', 'c'])
      expect(await ids(`like_v=${encodeURIComponent('istanbul')}`)).toEqual(['e'])
      expect(await ids(`like_v=${encodeURIComponent('σοφια')}`)).toEqual(['f'])
      return r('GET', `${col}/records?like_v=${encodeURIComponent('émile')}&_sort=id`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['a', 'b', 'c']),
  },
  // `_sort` and `_fields` are FieldList: the raw text split on commas, never JSON-decoded; an
  // empty entry is dropped (colander String), so `_fields=` asks for no projection at all
  ...(['_sort=null', '_sort=1', '_sort=true', '_fields=null', '_fields=1'] as const).map(
    (qs): Row => ({
      name: `${qs} names a field (the text, not its JSON value)`,
      run: (r) => r('GET', `${C}/records?${qs}`),
      status: 200,
    }),
  ),
  {
    name: '_sort="n" and _sort=["n"] are no sort field (ignored), not the field n',
    run: async (r) => {
      const col = fresh()
      await r('PUT', col)
      await r('PUT', `${col}/records/first`, {body: {data: {n: 1}}})
      await r('PUT', `${col}/records/second`, {body: {data: {n: 2}}})
      const ids = async (qs: string) => (await r('GET', `${col}/records?${qs}`)).body.data.map((o: {id: string}) => o.id)
      expect(await ids('_sort=n')).toEqual(['first', 'second'])
      expect(await ids(`_sort=${encodeURIComponent('["n"]')}`)).toEqual(['second', 'first'])
      return r('GET', `${col}/records?_sort=${encodeURIComponent('"n"')}`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['second', 'first']),
  },
  {
    name: '_fields="n" selects no field; _fields= (empty) selects every field',
    setup: (r) => r('PUT', `${C}/records/fields1`, {body: {data: {n: 1, m: 2}}}),
    run: async (r) => {
      const quoted = await r('GET', `${C}/records/fields1?_fields=${encodeURIComponent('"n"')}`)
      expect(quoted.body.data).toEqual({id: 'fields1', last_modified: quoted.body.data.last_modified})
      const list = await r('GET', `${C}/records?id=fields1&_fields=`)
      expect(list.body.data[0]).toMatchObject({n: 1, m: 2})
      return r('GET', `${C}/records/fields1?_fields=`)
    },
    status: 200,
    body: (b) => expect(b.data).toMatchObject({n: 1, m: 2}),
  },
  // `_limit`, `_since`, `_before`, `last_modified` are colander Integers with missing=drop: a value
  // colander reads as nothing (null, "", [], {}) passes the schema, then the view reads it
  ...(['_limit=', '_limit=null', `_limit=${encodeURIComponent('[]')}`, `_limit=${encodeURIComponent('{}')}`] as const).map(
    (qs): Row => ({
      name: `${qs} is no limit (the storage's max fetch size), not a 400`,
      setup: (r) => r('PUT', `${C}/records/limit-null`, {body: {data: {}}}),
      run: (r) => r('GET', `${C}/records?${qs}`),
      status: 200,
      headers: {'next-page': null},
      body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toContain('limit-null'),
    }),
  ),
  {
    // The view passes the null on: upstream's PostgreSQL compares with from_epoch(NULL), which
    // nothing passes (its memory backend lets every record pass _since=null).
    name: '_since=null, _before=null and _to=null match nothing (a NULL bound, as on PostgreSQL)',
    setup: (r) => r('PUT', `${C}/records/since-null`, {body: {data: {}}}),
    run: async (r) => {
      for (const qs of ['_before=null', '_to=null']) {
        const res = await r('GET', `${C}/records?${qs}`)
        expect(res.status).toBe(200)
        expect(res.body.data).toEqual([])
      }
      const head = await r('HEAD', `${C}/records?_since=null`)
      expect(head.headers['total-objects']).toBe('0')
      return r('GET', `${C}/records?_since=null`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([]),
  },
  ...(['_since=', '_before=', `_since=${encodeURIComponent('[]')}`, 'last_modified=null', 'last_modified='] as const).map(
    (qs): Row => ({
      name: `${qs} is "Invalid value for …" (the view's check, not the schema's)`,
      run: (r) => r('GET', `${C}/records?${qs}`),
      status: 400,
      errno: 107,
      body: (b) => expect(b.message).toBe(`Invalid value for ${qs.split('=')[0]}`),
    }),
  ),
  // `id` is a colander String of every plural endpoint's querystring: a value that is not a
  // string (once JSON-decoded) is refused, unless colander reads it as nothing (null, 0, false…)
  ...([
    ['id=5', '5'],
    ['id=true', 'True'],
    ['id=1.5', '1.5'],
    ['id=a&id=b', "['a', 'b']"],
    [`id=${encodeURIComponent('[1]')}`, '[1]'],
  ] as const).flatMap(([qs, shown]): Row[] =>
    ([['GET', `${C}/records`], ['DELETE', `${B}/collections/id-delete/records`], ['GET', '/v1/buckets'], ['GET', '/v1/permissions']] as const).map(
      ([method, path]): Row => ({
        name: `${method} ${path}?${qs} is a 400 (not a string)`,
        setup: (r) => r('PUT', `${B}/collections/id-delete`),
        run: (r) => r(method, `${path}?${qs}`),
        status: 400,
        errno: 107,
        body: (b) => {
          expect(b.message).toBe(`${shown} is not a string: {'id': ''}`)
          expect(b.details).toEqual([{location: 'querystring', name: 'id', description: `${shown} is not a string: {'id': ''}`}])
        },
      }),
    ),
  ),
  // `_token` is a colander String too (PluralQuerySchema)
  ...([
    ['_token=5', '5'],
    ['_token=true', 'True'],
    ['_token=a&_token=b', "['a', 'b']"],
    [`_token=${encodeURIComponent('{"a": 1}')}`, "{'a': 1}"],
  ] as const).map(
    ([qs, shown]): Row => ({
      name: `GET records?${qs} is a 400 (not a string)`,
      run: (r) => r('GET', `${C}/records?${qs}`),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details).toEqual([{location: 'querystring', name: '_token', description: `${shown} is not a string: {'_token': ''}`}]),
    }),
  ),
  ...(['_token=0', '_token=null', '_token=false', '_token='] as const).map(
    (qs): Row => ({name: `GET records?${qs} passes (no token)`, run: (r) => r('GET', `${C}/records?${qs}`), status: 200}),
  ),
  ...(['id=null', 'id=0', 'id=false', `id=${encodeURIComponent('{}')}`, 'id='] as const).flatMap((qs): Row[] =>
    [`${C}/records`, '/v1/permissions'].map(
      (path): Row => ({name: `GET ${path}?${qs} passes (colander reads it as no value)`, run: (r) => r('GET', `${path}?${qs}`), status: 200}),
    ),
  ),
  // Group members and principals are colander Strings in a sequence: a value Python reads as
  // false is "Required", another non-string "<value> is not a string: {'': ''}"
  ...([
    ['""', 'Required'],
    ['null', 'Required'],
    ['0', 'Required'],
    ['false', 'Required'],
    ['[]', 'Required'],
    ['1', "1 is not a string: {'': ''}"],
    ['true', "True is not a string: {'': ''}"],
    ['{"a": 1}', "{'a': 1} is not a string: {'': ''}"],
    [BIG, `${BIG} is not a string: {'': ''}`],
  ] as const).flatMap(([item, description]): Row[] => [
    {
      name: `group members [${item}]: ${description}`,
      run: (r) => r('PUT', `${B}/groups/members-item`, {raw: `{"data": {"members": ["ok", ${item}]}}`}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details).toEqual([{location: 'body', name: 'data.members.1', description}]),
    },
    {
      name: `permissions read [${item}]: ${description}`,
      run: (r) => r('PUT', `${B}/collections/principal-item`, {raw: `{"permissions": {"read": ["ok", ${item}]}}`}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details).toEqual([{location: 'body', name: 'permissions.read.1', description}]),
    },
  ]),
  ...([
    ['12', "12 is not a string: {'password': ''}"],
    [BIG, `${BIG} is not a string: {'password': ''}`],
    ['["a"]', "['a'] is not a string: {'password': ''}"],
    ['null', 'Required'],
    ['0', 'Required'],
    ['""', 'Required'],
  ] as const).map(
    ([password, description]): Row => ({
      name: `an account password ${password}: ${description}`,
      run: (r) => r('PUT', '/v1/accounts/pw-check', {auth: null, raw: `{"data": {"password": ${password}}}`}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.details).toEqual([{location: 'body', name: 'data.password', description}]),
    }),
  ),
  {
    name: 'a batch sub-request whose method or path is an integer beyond 2^53 is not a string',
    run: (r) => r('POST', '/v1/batch', {raw: `{"requests": [{"method": ${BIG}, "path": ${BIG}}]}`}),
    status: 400,
    errno: 107,
    body: (b) =>
      expect(b.details).toEqual([
        {location: 'body', name: 'requests.0.method', description: `${BIG} is not a string: {'method': ''}`},
        {location: 'body', name: 'requests.0.path', description: `${BIG} is not a string: {'path': ''}`},
      ]),
  },
  {
    name: 'a batch header whose value is an integer beyond 2^53 is a non string value',
    run: (r) => r('POST', '/v1/batch', {raw: `{"requests": [{"path": "/", "headers": {"X-A": ${BIG}}}]}`}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details).toEqual([{location: 'body', name: 'requests.0.headers', description: `{'X-A': ${BIG}} contains non string value`}]),
  },
  {
    name: 'a body whose data is an integer beyond 2^53 is not a mapping (its digits in the message)',
    run: (r) => r('PUT', `${C}/records/bigdata`, {raw: `{"data": ${BIG}}`}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details).toEqual([{location: 'body', name: 'data', description: `"${BIG}" is not a mapping type: Does not implement dict-like functionality.`}]),
  },
  // a plural POST reads no querystring (its request schema has none): nothing there is refused
  ...(['_limit=abc', '_since=abc', '_before=-1', 'last_modified=abc', 'id=5', 'id=a&id=b'] as const).map(
    (qs): Row => ({
      name: `POST on a list ignores ?${qs}`,
      run: (r) => r('POST', `${C}/records?${qs}`, {body: {data: {posted: qs}}}),
      status: 201,
      body: (b) => expect(b.data.posted).toBe(qs),
    }),
  ),
  // a record that fails its collection's schema in several places: upstream names the first
  // failure in the order of the schema as stored (its keywords, then its properties in order);
  // PostgreSQL's jsonb keeps an object's keys shortest first, the memory backend as written
  ...([
    ['properties before required', {type: 'object', properties: {y: {type: 'object'}}, required: ['x']}, {y: 1}, ['y', "1 is not of type 'object'"], ['x', "'x' is a required property"]],
    ['required before properties', {type: 'object', required: ['x'], properties: {y: {type: 'object'}}}, {y: 1}, ['x', "'x' is a required property"], ['x', "'x' is a required property"]],
    ['the first property in the schema', {type: 'object', properties: {bb: {type: 'string'}, a: {type: 'string'}}}, {a: 1, bb: 2}, ['bb', "2 is not of type 'string'"], ['a', "1 is not of type 'string'"]],
    ['properties before additionalProperties', {type: 'object', properties: {x: {type: 'string'}}, additionalProperties: false}, {x: 1, w: 1}, ['x', "1 is not of type 'string'"], ['x', "1 is not of type 'string'"]],
    ['array items in order', {type: 'object', properties: {r: {type: 'array', items: {type: 'integer'}}}}, {r: [1, 'b', 'c']}, ['1', "'b' is not of type 'integer'"], ['1', "'b' is not of type 'integer'"]],
  ] as const).flatMap(([what, schema, data, asWritten, asJsonb], i): Row[] =>
    (['memory', 'postgresql'] as const).map(
      (only): Row => ({
        name: `schema errors: ${what}`,
        only,
        setup: (r) => r('PUT', `${B}/collections/order${i}`, {body: {data: {schema}}}),
        run: (r) => r('PUT', `${B}/collections/order${i}/records/x`, {body: {data}}),
        status: 400,
        errno: 107,
        body: (b) => {
          const [field, description] = only === 'memory' ? asWritten : asJsonb
          expect(String(b.details[0].name)).toBe(field)
          expect(b.details[0].description).toBe(description)
        },
      }),
    ),
  ),
  {
    name: 'schema errors: every unexpected property is named, sorted',
    setup: (r) => r('PUT', `${B}/collections/extras`, {body: {data: {schema: {type: 'object', properties: {x: {type: 'string'}}, additionalProperties: false}}}}),
    run: (r) => r('PUT', `${B}/collections/extras/records/x`, {body: {data: {w: 1, v: 2, x: 'a'}}}),
    status: 400,
    errno: 107,
    body: (b) =>
      expect(b.details).toEqual([{location: 'body', name: 'additionalProperties', description: "Additional properties are not allowed ('v', 'w' were unexpected)"}]),
  },
  // ---- the permissions endpoint
  {
    name: '/permissions: _fields=permissions is not a field',
    run: (r) => r('GET', '/v1/permissions?_fields=permissions'),
    status: 400,
    errno: 107,
  },
  {
    // _plural_get reads _fields before it answers a HEAD (kinto/core/resource/__init__.py)
    name: '/permissions and /history: HEAD with an unknown _fields is a 400 too',
    run: async (r) => {
      const history = await r('HEAD', `${B}/history?_fields=nope`)
      expect(history.status).toBe(400)
      return r('HEAD', '/v1/permissions?_fields=nope')
    },
    status: 400,
  },
  ...['id=5', 'id=true', 'id=a&id=b'].map(
    (qs): Row => ({name: `/permissions: a non-string id filter (${qs}) is a 400`, run: (r) => r('GET', `/v1/permissions?${qs}`), status: 400, errno: 107}),
  ),
  {
    name: '/permissions: the timestamp of the first request, kept',
    run: async (r) => {
      const first = await r('GET', '/v1/permissions')
      expect(first.headers.etag).not.toBe('"0"')
      const second = await r('GET', '/v1/permissions')
      expect(second.headers.etag).toBe(first.headers.etag)
      return second
    },
    status: 200,
    headers: {'last-modified': /GMT$/},
    body: (_b, res) => expect(res.headers['last-modified']).not.toMatch(/1970/),
  },
  {
    name: '/permissions?_sort=id: the root entry (no id) sorts last ascending',
    run: (r) => r('GET', '/v1/permissions?_sort=id'),
    status: 200,
    body: (b) => {
      expect(b.data.length).toBeGreaterThan(1)
      expect(b.data[b.data.length - 1].id).toBeUndefined()
      expect(b.data[b.data.length - 1].resource_name).toBe('root')
    },
  },
  {
    name: '/permissions?_sort=id in pages of one: every entry once, in the order of one page, the root last',
    run: async (r) => {
      const whole = await r('GET', '/v1/permissions?_sort=id')
      const uris: string[] = []
      let page = await r('GET', '/v1/permissions?_sort=id&_limit=1')
      for (;;) {
        expect(page.status).toBe(200)
        uris.push(...page.body.data.map((e: {uri: string}) => e.uri))
        const next = page.headers['next-page']
        if (!next || uris.length > whole.body.data.length) break
        page = await r('GET', String(next).replace(/^http:\/\/[^/]+/, ''))
      }
      expect(uris).toEqual(whole.body.data.map((e: {uri: string}) => e.uri))
      return whole
    },
    status: 200,
    body: (b) => expect(b.data.at(-1).resource_name).toBe('root'),
  },
  // ---- headers and shapes
  {
    name: 'HEAD carries GET\'s Content-Type',
    run: (r) => r('HEAD', B),
    status: 200,
    headers: {'content-type': /^application\/json/, etag: /^"\d+"$/},
  },
  {
    name: 'a CORS preflight carries a Content-Type and the body null',
    run: (r) => r('OPTIONS', B, {auth: null, headers: {origin: 'http://example.org', 'access-control-request-method': 'GET'}}),
    status: 200,
    headers: {'content-type': /^application\/json/},
    body: (_b, res) => expect(res.raw).toBe('null'),
  },
  {
    name: 'a 304 carries the timestamp headers only (no Cache-Control)',
    run: async (r) => {
      const get = await r('GET', B)
      return r('GET', B, {headers: {'if-none-match': get.headers.etag as string}})
    },
    status: 304,
    headers: {etag: /^"\d+"$/, 'cache-control': null, 'content-type': null},
  },
  {
    name: 'a group created without data gets no members field',
    run: (r) => r('PUT', `${B}/groups/g-nodata`, {body: {permissions: {read: ['bob']}}}),
    status: 201,
    body: (b) => expect(b.data).not.toHaveProperty('members'),
  },
  {
    name: 'a group created with empty data gets members: [] (the schema default)',
    run: (r) => r('PUT', `${B}/groups/g-empty`, {body: {data: {}}}),
    status: 201,
    body: (b) => expect(b.data.members).toEqual([]),
  },
  {
    name: 'an empty Content-Type with a JSON body is read as JSON',
    run: (r) => r('PUT', `${B}/groups/g-ct`, {raw: '{"data": {"members": ["bob"]}}', headers: {'content-type': ''}}),
    status: 201,
    body: (b) => expect(b.data.members).toEqual(['bob']),
  },
  {
    name: 'the trailing-slash redirect: absolute Location and a JSON body',
    run: (r) => r('GET', `${B}/`, {headers: {accept: 'application/json'}}),
    status: 307,
    headers: {location: /^http:\/\/[^/]+\/v1\/buckets\/b$/, 'content-type': /^application\/json/},
    body: (b) => expect(b).toMatchObject({code: '307 Temporary Redirect', title: 'Temporary Redirect'}),
  },
  {
    name: 'an anonymous account creation shows the write permission of the account',
    run: (r) => r('PUT', '/v1/accounts/bob', {auth: null, body: {data: {password: 's3cret-passw0rd'}}}),
    status: 201,
    body: (b) => expect(b.permissions).toEqual({write: ['account:bob']}),
  },
  {
    name: 'a PATCH of an account nobody has by a user: 403 (the missing account is under no parent of theirs)',
    setup: (r) => r('PUT', '/v1/accounts/patcher', {auth: null, body: {data: {password: 'patcher-pw'}}}),
    run: (r) => r('PATCH', '/v1/accounts/nobody-here', {auth: basicAuth('patcher', 'patcher-pw'), body: {data: {password: 'x'}}}),
    status: 403,
    errno: 121,
  },
  {
    name: "DELETE /buckets/default of a user who has none: it is created, then deleted (upstream's alias creates it first)",
    run: (r) => r('DELETE', '/v1/buckets/default', {auth: basicAuth('no-bucket-yet', 'pw')}),
    status: 200,
    body: (b) => expect(b.data).toMatchObject({deleted: true, id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)}),
  },
  {
    name: 'batch sub-responses carry Content-Length and the exposed headers',
    run: (r) =>
      r('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'GET', path: '/buckets/b'},
            {method: 'HEAD', path: '/buckets/b'},
          ],
        },
      }),
    status: 200,
    body: (b) => {
      const [get, head] = b.responses
      expect(Number(get.headers['Content-Length'])).toBe(Buffer.byteLength(JSON.stringify(get.body)))
      expect(get.headers['Access-Control-Expose-Headers']).toMatch(/ETag/)
      expect(head.headers['Content-Type']).toMatch(/^application\/json/)
    },
  },
  // ---- write paths and preconditions (differential review against upstream 26.3.1)
  {
    name: 'an empty If-Match is no precondition (colander drops an empty header): the PUT replaces',
    setup: (r) => r('PUT', `${C}/records/empty-if-match`, {body: {data: {v: 1}}}),
    run: (r) => r('PUT', `${C}/records/empty-if-match`, {body: {data: {v: 2}}, headers: {'if-match': ''}}),
    status: 200,
    body: (b) => expect(b.data.v).toBe(2),
  },
  {
    name: 'an empty If-None-Match is no precondition on a read',
    setup: (r) => r('PUT', `${C}/records/empty-inm`, {body: {data: {}}}),
    run: (r) => r('GET', `${C}/records/empty-inm`, {headers: {'if-none-match': ''}}),
    status: 200,
    headers: {etag: /^"\d+"$/},
  },
  {
    name: 'a JSON-Patch operation whose op or path Python reads as false is missing: Required',
    run: (r) => r('PATCH', B, {raw: '[{"op": null, "path": "", "value": 1}, {"op": 1, "path": ["/data"]}]', headers: JSON_PATCH}),
    status: 400,
    errno: 107,
    body: (b) =>
      expect(b.details).toEqual([
        {location: 'body', name: '0.op', description: 'Required'},
        {location: 'body', name: '0.path', description: 'Required'},
        {location: 'body', name: '1.op', description: "1 is not a string: {'op': ''}"},
        {location: 'body', name: '1.path', description: "['/data'] is not a string: {'path': ''}"},
      ]),
  },
  {
    name: 'a JSON-Patch from that Python reads as false is dropped: the operation then has none',
    run: (r) => r('PATCH', B, {raw: '[{"op": "copy", "from": "", "path": "/data/y"}]', headers: JSON_PATCH}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toBe("body: JSON Patch operation failed: The operation does not contain a 'from' member"),
  },
  {
    name: 'a method the endpoint below /buckets/default has no view for (405) makes no collection there',
    run: async (r) => {
      expect((await r('PUT', '/v1/buckets/default/collections/c405/records', {body: {data: {}}})).status).toBe(405)
      // In a batch, whose view answers the 405 as a sub-response, they stay (upstream).
      const batch = await r('POST', '/v1/batch', {body: {requests: [{method: 'PUT', path: '/buckets/default/collections/b405/records'}]}})
      expect(batch.body.responses[0].status).toBe(405)
      return r('GET', '/v1/buckets/default/collections')
    },
    status: 200,
    body: (b) => {
      expect(b.data.map((c: any) => c.id)).not.toContain('c405')
      expect(b.data.map((c: any) => c.id)).toContain('b405')
    },
  },
  {
    name: 'a body that is not JSON is all a 400 reports, not the invalid headers beside it',
    run: (r) => r('PATCH', B, {raw: 'not json', headers: {'if-match': 'abc', 'response-behavior': 'bogus'}}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.details).toEqual([
      {location: 'body', name: '', description: 'Invalid JSON: Parse error at offset 1: Invalid value.'},
      {location: 'body', name: '', description: 'Required'},
    ]),
  },
  {
    // Upstream's RouteFactory reads data.id of a POST on a plural endpoint before the view lookup.
    name: 'a POST on history (no POST view) whose data.id is invalid is a 400 Invalid object id before the 405',
    run: async (r) => {
      expect((await r('POST', `${B}/history`, {body: {data: {title: 'r1'}}})).status).toBe(405)
      expect((await r('POST', `${B}/history`, {body: {data: {id: 'ab96ee18-8a3b-4c64-9b53-8f3f8f2b0b5e'}}})).status).toBe(405)
      expect((await r('POST', `${B}/history`, {raw: 'not json'})).status).toBe(405)
      const batch = await r('POST', '/v1/batch', {body: {requests: [{method: 'POST', path: '/buckets/b/history', body: {data: {id: 3}}}]}})
      expect(batch.body.responses[0].status).toBe(400)
      return r('POST', `${B}/history`, {body: {data: {id: 'r1'}}})
    },
    status: 400,
    errno: 107,
    body: (b) => expect(b).toMatchObject({message: 'path: Invalid object id', details: [{location: 'path', name: null, description: 'Invalid object id'}]}),
  },
  {
    // One colander schema validates header, querystring and body: each invalid field is listed.
    name: 'invalid querystring integers are all reported, with the JSON-decoded value in the message',
    run: (r) => r('GET', '/v1/buckets?_limit=-1&_before=%22abc%22&_since=%7B%22a%22%3A1%7D'),
    status: 400,
    errno: 107,
    body: (b) => {
      expect(b.message).toBe('_before in querystring: "abc" is not a number')
      expect(b.details).toEqual([
        {location: 'querystring', name: '_before', description: '"abc" is not a number'},
        {location: 'querystring', name: '_limit', description: '-1 is less than minimum value 0'},
        {location: 'querystring', name: '_since', description: `"{'a': 1}" is not a number`},
      ])
    },
  },
  {
    // A repeated parameter reaches colander's Integer as the list of its texts (not decoded): its str().
    name: 'a repeated querystring integer is reported as the Python list of its texts',
    run: (r) => r('GET', "/v1/buckets?_limit=1&_limit=abc&_since=1&_since=%22it's%22"),
    status: 400,
    errno: 107,
    body: (b) => {
      expect(b.details).toEqual([
        {location: 'querystring', name: '_limit', description: `"['1', 'abc']" is not a number`},
        {location: 'querystring', name: '_since', description: `"['1', '"it\\'s"']" is not a number`},
      ])
    },
  },
  {
    // Upstream's _extract_filters sends it, and a plural DELETE reads its filters there too.
    name: 'a plural DELETE with the deprecated _to carries the soft-eol Alert, as a list GET',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      await r('PUT', `${c}/records/r1`, {body: {data: {}}})
      return r('DELETE', `${c}/records?_to=5`)
    },
    status: 200,
    headers: {alert: /^\{"code":"soft-eol","message":"_to is now deprecated, you should use _before instead","url":"https:\/\/kinto\.readthedocs\.io\/[^"]+"\}$/},
  },
  {
    // Upstream's words (two strings joined without a space), then the querystring as it came.
    name: 'a querystring that is not UTF-8 is refused in upstream words, quoting the querystring as sent',
    run: (r) => r('GET', `${C}/records?flag=%FF&_limit=1&x=%22a+b%22`),
    status: 400,
    errno: 107,
    body: (b) =>
      expect(b).toEqual({
        code: 400,
        errno: 107,
        error: 'Bad Request',
        message: 'A request with an incorrect encoding in the querystring wasreceived. Please make sure your requests are encoded in UTF-8: flag=%FF&_limit=1&x=%22a+b%22',
      }),
  },
  {
    // native_value is rapidjson's loads: only JSON's whitespace (space, tab, CR, LF) may surround a value.
    name: 'a filter value surrounded by other whitespace (no-break space, vertical tab, BOM) is text, not a number',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      await r('PUT', `${c}/records/one`, {body: {data: {n: 1}}})
      const ids = async (q: string) => (await r('GET', `${c}/records?${q}`)).body.data.map((o: any) => o.id)
      expect(await ids('n=%201%0A')).toEqual(['one'])
      for (const q of ['n=%C2%A01', 'n=%0B1', 'n=%0C1', 'n=%E2%80%831', 'n=%EF%BB%BF1']) expect(await ids(q), q).toEqual([])
      return r('GET', `${c}/records?not_n=%C2%A01`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: any) => o.id)).toEqual(['one']),
  },
  {
    // Upstream strips filter names and sort entries with Python's str.strip(): its whitespace, not JavaScript's.
    name: "filter names and sort fields are stripped of Python's whitespace (\\x1c to \\x1f, \\x85), not of a BOM",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      for (const [id, n] of [['a', 2], ['b', 1], ['c', 3]] as const) await r('PUT', `${c}/records/${id}`, {body: {data: {n}}})
      const ids = async (q: string) => (await r('GET', `${c}/records?${q}`)).body.data.map((o: any) => o.id)
      expect(await ids('%1Cn=1')).toEqual(['b'])
      expect(await ids('%C2%85n%1F=3')).toEqual(['c'])
      expect(await ids('%EF%BB%BFn=1')).toEqual([])
      expect(await ids('_sort=%1Dn')).toEqual(['b', 'a', 'c'])
      expect(await ids('_sort=%C2%85-n')).toEqual(['c', 'a', 'b'])
      // A BOM is no whitespace to Python: the entry is no field name and is left out (default order).
      return r('GET', `${c}/records?_sort=%EF%BB%BFn`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: any) => o.id)).toEqual(['c', 'b', 'a']),
  },
  {
    // Upstream decodes the credentials with Python's UTF-8 codec, which keeps a leading BOM.
    name: 'a Basic username that starts with a BOM is another user than the one without',
    run: async (r) => {
      const as = (user: string) => r('GET', '/v1/', {auth: 'Basic ' + Buffer.from(`${user}:pw`).toString('base64')})
      const plain = await as('bob')
      const bom = await as('\ufeffbob')
      expect(bom.body.user.id).toMatch(/^basicauth:[0-9a-f]{64}$/)
      expect(bom.body.user.id).not.toBe(plain.body.user.id)
      return bom
    },
    status: 200,
  },
  {
    // colander's Integer is Python's int(): any script's digits, `_` between digits, its whitespace (not a BOM).
    name: "querystring integers are read as Python's int() reads them (_limit=1_0, Arabic-Indic digits), a BOM is no whitespace",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      for (const id of ['a', 'b', 'c']) await r('PUT', `${c}/records/${id}`, {body: {data: {}}})
      const count = async (q: string) => (await r('GET', `${c}/records?${q}`)).body.data.length
      expect(await count('_limit=0_2')).toBe(2)
      expect(await count('_limit=%D9%A1')).toBe(1)
      expect(await count('_limit=%EF%BC%92')).toBe(2)
      expect(await count('_limit=%C2%851%C2%A0')).toBe(1)
      // `_since` and `last_modified` are the schema's integers too: `1_0` is 10, a past timestamp.
      expect(await count('_since=1_0')).toBe(3)
      expect(await count('_before=%D9%A1%D9%A0')).toBe(0)
      expect((await r('GET', `${c}/records?gt_last_modified=1_0`)).status).toBe(400)
      expect((await r('GET', `${c}/records?_limit=1__0`)).body.details).toEqual([{location: 'querystring', name: '_limit', description: '"1__0" is not a number'}])
      return r('GET', `${c}/records?_limit=%EF%BB%BF1`)
    },
    status: 400,
    errno: 107,
    body: (b) => expect(b.details).toEqual([{location: 'querystring', name: '_limit', description: '"\ufeff1" is not a number'}]),
  },
  {
    // Upstream decodes a value by its raw name (` in_s` is no list name) and strips the name after:
    // the list operator then iterates the one value it got.
    name: 'a list filter whose name starts with whitespace iterates its one value (a text by characters), never a 500',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const records = {r1: {f: 'abc', s: 'é'}, r2: {f: ['abc'], s: 'a'}, r3: {f: ['a', 'b'], s: 'b'}, r4: {f: {a: 1}}}
      for (const [id, data] of Object.entries(records)) await r('PUT', `${c}/records/${id}`, {body: {data}})
      const ids = async (q: string) => (await r('GET', `${c}/records?${q}`)).body.data.map((o: any) => o.id).sort()
      expect(await ids('%20in_s=%C3%A9')).toEqual(['r1'])
      expect(await ids('%1Cin_s=ab')).toEqual(['r2', 'r3'])
      expect(await ids('%20exclude_s=ab')).toEqual(['r1', 'r4'])
      expect(await ids('%20contains_any_f=ab')).toEqual(['r3'])
      expect(await ids('%20in_f=%7B%22a%22:1%7D')).toEqual([])
      expect(await ids('%20in_id=r1')).toEqual([])
      expect(await ids('%20contains_f=%22abc%22')).toEqual(['r1'])
      expect(await ids('%20contains_f=%7B%22a%22:1%7D')).toEqual(['r4'])
      expect((await r('GET', `${c}/records?%20contains_id=%22r1%22`)).body.message).toBe("contains_id in querystring: Field 'id' is not an array")
      return r('GET', `${c}/records?%20in_s=5`)
    },
    status: 400,
    errno: 107,
    body: (b) => expect(b.details).toEqual([{location: 'querystring', name: 'in_s', description: 'Invalid value for in_s'}]),
  },
  {
    // The value is a Python float once JSON-decoded, and its repr() is what colander shows.
    name: 'an id or _token written as a float is refused showing the Python float (1e3 is 1000.0)',
    run: async (r) => {
      const description = async (q: string) => (await r('GET', `/v1/buckets?${q}`)).body.details[0].description
      expect(await description('id=1e-7')).toBe("1e-07 is not a string: {'id': ''}")
      expect(await description('id=-2.0')).toBe("-2.0 is not a string: {'id': ''}")
      expect(await description('id=1E16')).toBe("1e+16 is not a string: {'id': ''}")
      expect(await description('_token=2e1')).toBe("20.0 is not a string: {'_token': ''}")
      return r('GET', '/v1/buckets?id=1e3')
    },
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toBe("1000.0 is not a string: {'id': ''}"),
  },
  {
    name: 'an invalid If-Match, Response-Behavior and body are reported together',
    run: (r) =>
      r('PATCH', B, {body: {data: 'x'}, headers: {'if-match': 'abc', 'response-behavior': 'x'}}),
    status: 400,
    errno: 107,
    body: (b) => {
      expect(b.message).toBe('If-Match in header: The value should be integer between double quotes.')
      expect(b.details.map((d: any) => `${d.location}.${d.name}`)).toEqual(['header.If-Match', 'header.Response-Behavior', 'body.data'])
    },
  },
  {
    // Upstream's build_request sends `body or ""`: an empty object is no body, which the default
    // bucket's view then replaces with {"data": {}} (a group gets its default members).
    name: 'a batch sub-request whose body is an empty object is sent without a body (default bucket group gets members [])',
    run: (r) => r('POST', '/v1/batch', {body: {requests: [{method: 'PUT', path: '/buckets/default/groups/fuzz-empty', body: {}}]}}),
    status: 200,
    body: (b) => {
      expect(b.responses[0].status).toBe(201)
      expect(b.responses[0].body.data.members).toEqual([])
    },
  },
  {
    name: 'a batch sub-request whose method Python reads as false is a GET',
    run: (r) => r('POST', '/v1/batch', {body: {requests: [{method: '', path: '/buckets/b'}, {method: null, path: '/buckets/b'}]}}),
    status: 200,
    body: (b) => expect(b.responses.map((x: any) => x.status)).toEqual([200, 200]),
  },
  {
    name: 'a batch path Python reads as false is missing (Required); a non-string is not a string',
    run: (r) => r('POST', '/v1/batch', {body: {defaults: {path: ''}, requests: [{method: 'GET'}, {path: 1}, {path: 'buckets'}]}}),
    status: 400,
    errno: 107,
    body: (b) =>
      expect(b.details).toEqual([
        {location: 'body', name: 'requests.0.path', description: 'Required'},
        {location: 'body', name: 'requests.1.path', description: "1 is not a string: {'path': ''}"},
        {location: 'body', name: 'requests.2.path', description: 'String does not match expected pattern'},
      ]),
  },
  {
    name: 'a 404 outside every service exposes the default headers without an Origin too',
    run: (r) => r('GET', '/v1/nothing-here'),
    status: 404,
    errno: 111,
    headers: {'access-control-expose-headers': /^(?=.*Backoff)(?=.*Retry-After)(?=.*Alert)(?=.*Content-Length)(?=.*Content-Type)/, 'access-control-allow-origin': null},
  },
  {
    name: 'the trailing-slash redirect exposes the default headers without an Origin too',
    run: (r) => r('GET', `${B}/collections/`),
    status: 307,
    headers: {'access-control-expose-headers': /Backoff/},
  },
  {
    name: 'a 405 (a method the endpoint lacks) exposes no headers, Origin or not',
    run: async (r) => {
      const withOrigin = await r('PUT', '/v1/buckets', {body: {data: {}}, headers: {origin: 'http://example.com'}})
      expect(withOrigin.status).toBe(405)
      expect(withOrigin.headers['access-control-expose-headers']).toBeUndefined()
      expect(withOrigin.headers['access-control-allow-origin']).toBe('*')
      return r('DELETE', '/v1/')
    },
    status: 405,
    errno: 115,
    headers: {'access-control-expose-headers': null, allow: 'GET, HEAD, OPTIONS'},
  },
  ...(
    [
      ['add beyond the end of a list', [{op: 'add', path: '/data/l/10', value: 0}], "can't insert outside of list"],
      ['replace a missing member', [{op: 'replace', path: '/data/zz', value: 5}], "can't replace a non-existent object 'zz'"],
      ['replace beyond the end of a list', [{op: 'replace', path: '/data/l/2', value: 5}], "can't replace outside of list"],
      ['a failed test', [{op: 'test', path: '/data/n', value: 6}], "5 (<class 'int'>) is not equal to tested value 6 (<class 'int'>)"],
      ['a failed test on a string', [{op: 'test', path: '/data/s', value: null}], "abc (<class 'str'>) is not equal to tested value None (<class 'NoneType'>)"],
      ['copy from a missing member', [{op: 'copy', from: '/data/nope', path: '/data/o3'}], "'nope'"],
      ['move from beyond the end of a list', [{op: 'move', from: '/data/l/5', path: '/data/x'}], 'list index out of range'],
      ['move into its own child', [{op: 'move', from: '/data/o', path: '/data/o/x'}], 'Cannot move values into their own children'],
      // python-jsonpointer's messages: a missing member names the mapping it was looked for in.
      ['a path through a missing member', [{op: 'add', path: '/data/o/q/x', value: 1}], "member 'q' not found in {'p': 1}"],
      ['a test of a missing member', [{op: 'test', path: '/data/o/q', value: 1}], "member 'q' not found in {'p': 1}"],
      ['a test beyond the end of a list', [{op: 'test', path: '/data/l/5', value: 1}], "index '5' is out of bounds"],
      ['a test of the end of a list (`-`)', [{op: 'test', path: '/data/l/-', value: 2}], "EndOfList([1, 2]) (<class 'jsonpointer.EndOfList'>) is not equal to tested value 2 (<class 'int'>)"],
      ['a principal added after a copy into the permission', [{op: 'copy', from: '/data/o', path: '/permissions/read/x'}, {op: 'add', path: '/permissions/read/y'}, {op: 'test', path: '/permissions/read', value: 1}], "{'x': {'p': 1}, 'y': 'y'} (<class 'dict'>) is not equal to tested value 1 (<class 'int'>)"],
      ['remove the end of a list (`-`)', [{op: 'remove', path: '/data/l/-'}], "invalid array index '-'"],
      ['remove beyond the end of a list', [{op: 'remove', path: '/data/l/5'}], "can't remove a non-existent object '5'"],
      ['add under a number', [{op: 'add', path: '/data/n/x', value: 1}], "Document '<class 'int'>' does not support indexing, must be mapping/sequence or support __getitem__"],
      ['add a record:create principal without a value', [{op: 'add', path: '/permissions/record:create/bob'}], "The operation does not contain a 'value' member"],
      // python-jsonpointer refuses a `~` not followed by 0 or 1 before it reads the path.
      ['a path with an invalid escape', [{op: 'add', path: '/data/a~2b', value: 1}], 'Found invalid escape ~2'],
      ['a path ending with ~', [{op: 'replace', path: '/data/n~', value: 1}], 'Found invalid escape ~'],
      ['a from with an invalid escape', [{op: 'copy', from: '/data/~x', path: '/data/y'}], 'Found invalid escape ~x'],
      ['a principal with an invalid escape', [{op: 'add', path: '/permissions/read/bob~3'}], 'Found invalid escape ~3'],
    ] as const
  ).map(
    ([what, ops, message]): Row => ({
      name: `JSON-Patch, ${what}: python-json-patch's message`,
      setup: (r) => r('PUT', `${B}/collections/jp-messages`, {body: {data: {l: [1, 2], n: 5, s: 'abc', o: {p: 1}}}}),
      run: (r) => r('PATCH', `${B}/collections/jp-messages`, {body: ops, headers: JSON_PATCH}),
      status: 400,
      errno: 107,
      body: (b) => expect(b.message).toBe(`body: JSON Patch operation failed: ${message}`),
    }),
  ),
  {
    // python-jsonpointer walks to the permission before it looks for the principal.
    name: 'JSON-Patch, remove a principal of a permission the object does not have: the permission is the missing member',
    setup: (r) => r('PUT', `${B}/collections/jp-noperm`, {body: {permissions: {read: ['x']}}}),
    run: (r) => r('PATCH', `${B}/collections/jp-noperm`, {body: [{op: 'remove', path: '/permissions/record:create/x'}], headers: JSON_PATCH}),
    status: 400,
    errno: 107,
    body: (b) => expect(b.message).toMatch(/^body: JSON Patch operation failed: member 'record:create' not found in \{'read': \{'x': 'x'\}, 'write': \{'[^']+': '[^']+'\}\}$/),
  },
  {
    name: "HEAD comes right after GET in a 405's Allow and a preflight's methods (cornice adds it there)",
    run: async (r) => {
      const preflight = await r('OPTIONS', `${B}/history`, {headers: {origin: 'http://example.com', 'access-control-request-method': 'GET'}})
      expect(preflight.headers['access-control-allow-methods']).toBe('GET,HEAD,DELETE,OPTIONS')
      return r('POST', B, {body: {data: {}}})
    },
    status: 405,
    headers: {allow: 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS'},
  },
  {
    name: "a HEAD answer's Content-Length is its GET body's (object, error), {\"data\":[]} on a list",
    run: async (r) => {
      for (const url of [B, `${C}/records/head-missing`]) {
        const get = await r('GET', url)
        const head = await r('HEAD', url)
        expect(head.status).toBe(get.status)
        expect(head.raw).toBe('')
        expect(head.headers['content-length'], url).toBe(String(Buffer.byteLength(get.raw)))
      }
      return r('HEAD', `${C}/records`)
    },
    status: 200,
    headers: {'content-length': '11', 'total-records': /^\d+$/},
  },
  {
    name: "a preflight on the default bucket is the resource's own (the bucket's, the records list's), as upstream's routes answer it",
    run: async (r) => {
      const preflight = {origin: 'http://example.com', 'access-control-request-method': 'GET'}
      const bucket = await r('OPTIONS', '/v1/buckets/default', {auth: null, headers: preflight})
      expect(bucket.status).toBe(200)
      expect(bucket.headers['access-control-allow-methods']).toBe('GET,HEAD,PUT,PATCH,DELETE,OPTIONS')
      expect(String(bucket.headers['access-control-allow-headers'])).not.toMatch(/Next-Page|Total-Records/)
      return r('OPTIONS', '/v1/buckets/default/collections/x/records', {auth: null, headers: preflight})
    },
    status: 200,
    headers: {'access-control-allow-methods': 'HEAD,GET,POST,DELETE,OPTIONS', 'access-control-allow-headers': /Total-Records/},
  },
  {
    name: "a redirect to a client that does not accept JSON has webob's HTML page, or its text without an Accept",
    run: async (r) => {
      const prefix = await r('GET', '/buckets')
      expect(prefix.status).toBe(307)
      expect(prefix.headers['content-type']).toBe('text/plain; charset=UTF-8')
      expect(prefix.raw).toBe('307 Temporary Redirect\n\nThe resource has been moved to /v1/buckets; you should be redirected automatically.\n\n')
      return r('GET', `${B}/`, {headers: {accept: '*/*'}})
    },
    status: 307,
    headers: {'content-type': 'text/html; charset=UTF-8', location: /\/v1\/buckets\/b$/},
    body: (_b, res) =>
      expect(res.raw).toBe(
        '<html>\n <head>\n  <title>307 Temporary Redirect</title>\n </head>\n <body>\n  <h1>307 Temporary Redirect</h1>\n' +
          '  The resource has been moved to /v1/buckets/b; you should be redirected automatically.\n\n\n </body>\n</html>',
      ),
  },
  // ---- the sync protocol (tombstones, timestamps, preconditions), as kinto.js and kinto-http.js use it
  {
    name: '_since, _before and gt_last_modified list a deletion as a tombstone of id, last_modified and deleted only',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const put = await r('PUT', `${c}/records/gone`, {body: {data: {title: 'x', n: 1}}})
      const del = await r('DELETE', `${c}/records/gone`)
      expect(del.body.data).toEqual({id: 'gone', last_modified: del.body.data.last_modified, deleted: true})
      expect(del.body.data.last_modified).toBeGreaterThan(put.body.data.last_modified)
      const tomb = {id: 'gone', last_modified: del.body.data.last_modified, deleted: true}
      const since = put.body.data.last_modified
      expect((await r('GET', `${c}/records?_before=${del.body.data.last_modified + 1}`)).body.data).toEqual([tomb])
      expect((await r('GET', `${c}/records?gt_last_modified=${since}`)).body.data).toEqual([tomb])
      expect((await r('GET', `${c}/records`)).body.data).toEqual([])
      return r('GET', `${c}/records?_since=${encodeURIComponent(`"${since}"`)}`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([{id: 'gone', last_modified: b.data[0].last_modified, deleted: true}]),
  },
  {
    name: 'a tombstone has no data fields: a filter on one leaves it out, deleted=true keeps only tombstones, _fields drops its deleted',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      await r('PUT', `${c}/records/a`, {body: {data: {title: 'x'}}})
      await r('PUT', `${c}/records/b`, {body: {data: {title: 'x'}}})
      await r('DELETE', `${c}/records/a`)
      const byTitle = await r('GET', `${c}/records?_since=0&title=x`)
      expect(byTitle.body.data.map((o: {id: string}) => o.id)).toEqual(['b'])
      // _fields keeps id, last_modified and the fields named: upstream's tombstone loses its
      // `deleted` unless it is named too.
      const fields = await r('GET', `${c}/records?_since=0&_fields=title`)
      expect(fields.body.data).toEqual([
        {id: 'a', last_modified: fields.body.data[0].last_modified},
        {id: 'b', last_modified: fields.body.data[1].last_modified, title: 'x'},
      ])
      const named = await r('GET', `${c}/records?_since=0&_fields=title,deleted`)
      expect(named.body.data[0]).toEqual({id: 'a', last_modified: named.body.data[0].last_modified, deleted: true})
      return r('GET', `${c}/records?_since=0&deleted=true`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['a']),
  },
  {
    name: 'Total-Records and Total-Objects (HEAD) count live records only, with _since and filters; a GET list has neither',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const first = await r('PUT', `${c}/records/a`, {body: {data: {title: 'x'}}})
      await r('PUT', `${c}/records/b`, {body: {data: {title: 'x'}}})
      await r('PUT', `${c}/records/c`, {body: {data: {title: 'y'}}})
      await r('DELETE', `${c}/records/b`)
      const all = await r('HEAD', `${c}/records`)
      expect([all.headers['total-records'], all.headers['total-objects']]).toEqual(['2', '2'])
      expect((await r('HEAD', `${c}/records?title=x`)).headers['total-records']).toBe('1')
      const get = await r('GET', `${c}/records?_since=0&_limit=1`)
      expect(get.headers['total-records']).toBeUndefined()
      expect(get.headers['total-objects']).toBeUndefined()
      return r('HEAD', `${c}/records?_since=${first.body.data.last_modified}`)
    },
    status: 200,
    headers: {'total-records': '1', 'total-objects': '1'},
  },
  {
    name: 'a tombstone re-created by PUT is a creation (201, If-None-Match: * passes), listed once by _since',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const put = await r('PUT', `${c}/records/back`, {body: {data: {v: 1}}})
      await r('DELETE', `${c}/records/back`)
      const again = await r('PUT', `${c}/records/back`, {body: {data: {v: 2}}, headers: {'if-none-match': '*'}})
      expect(again.status).toBe(201)
      expect(again.body.data).toEqual({id: 'back', v: 2, last_modified: again.body.data.last_modified})
      expect((await r('GET', `${c}/records/back`)).body.data.v).toBe(2)
      return r('GET', `${c}/records?_since=${put.body.data.last_modified}`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([{id: 'back', v: 2, last_modified: b.data[0].last_modified}]),
  },
  {
    name: 'a deleted collection takes its records and their tombstones: re-created, _since from an old timestamp lists nothing',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const put = await r('PUT', `${c}/records/a`, {body: {data: {v: 1}}})
      await r('PUT', `${c}/records/b`, {body: {data: {v: 1}}})
      await r('DELETE', `${c}/records/b`)
      const old = await r('GET', `${c}/records`)
      expect((await r('DELETE', c)).status).toBe(200)
      expect((await r('PUT', c)).status).toBe(201)
      const fresh2 = await r('GET', `${c}/records`)
      expect(Number(String(fresh2.headers.etag).slice(1, -1))).toBeGreaterThanOrEqual(Number(String(old.headers.etag).slice(1, -1)))
      return r('GET', `${c}/records?_since=${put.body.data.last_modified - 1}`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([]),
  },
  {
    name: "a list's ETag is its newest change (a deletion too); If-None-Match with it is a 304, an older one a 200",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const put = await r('PUT', `${c}/records/a`, {body: {data: {}}})
      const list1 = await r('GET', `${c}/records`)
      expect(list1.headers.etag).toBe(`"${put.body.data.last_modified}"`)
      const del = await r('DELETE', `${c}/records/a`)
      const list2 = await r('GET', `${c}/records`)
      expect(list2.headers.etag).toBe(`"${del.body.data.last_modified}"`)
      expect(list2.headers['last-modified']).toBe(new Date(Math.floor(del.body.data.last_modified / 1000) * 1000).toUTCString())
      const stale = await r('GET', `${c}/records`, {headers: {'if-none-match': String(list1.headers.etag)}})
      expect(stale.status).toBe(200)
      // Filters do not change a list's ETag.
      expect((await r('GET', `${c}/records?v=1`, {headers: {'if-none-match': String(list2.headers.etag)}})).status).toBe(304)
      return r('HEAD', `${c}/records?_since=0`, {headers: {'if-none-match': String(list2.headers.etag)}})
    },
    status: 304,
    headers: {etag: /^"\d+"$/, 'total-records': null},
    body: (_b, res) => expect(res.raw).toBe(''),
  },
  {
    name: 'If-Match on a list: the current ETag reads, an older one is a 412 without details',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const list = await r('GET', `${c}/records`)
      await r('PUT', `${c}/records/a`, {body: {data: {}}})
      const now = await r('GET', `${c}/records`)
      expect((await r('GET', `${c}/records`, {headers: {'if-match': String(now.headers.etag)}})).status).toBe(200)
      return r('GET', `${c}/records`, {headers: {'if-match': String(list.headers.etag)}})
    },
    status: 412,
    errno: 114,
    headers: {etag: /^"\d+"$/},
    body: (b) => {
      expect(b.message).toBe('Resource was modified meanwhile')
      expect(b).not.toHaveProperty('details')
    },
  },
  {
    name: 'If-None-Match: * on a list (GET, DELETE) is a 412: a list always exists',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      await r('PUT', `${c}/records/a`, {body: {data: {}}})
      expect((await r('GET', `${c}/records`, {headers: {'if-none-match': '*'}})).status).toBe(412)
      return r('DELETE', `${c}/records`, {headers: {'if-none-match': '*'}})
    },
    status: 412,
    errno: 114,
  },
  {
    name: 'If-Match with an old timestamp on a record write is a 412 with the current record (no permissions) in details.existing',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const v1 = await r('PUT', `${c}/records/a`, {body: {data: {v: 1}}})
      await r('PUT', `${c}/records/a`, {body: {data: {v: 2}}})
      return r('PATCH', `${c}/records/a`, {body: {data: {v: 3}}, headers: {'if-match': `"${v1.body.data.last_modified}"`}})
    },
    status: 412,
    errno: 114,
    headers: {etag: /^"\d+"$/},
    body: (b, res) => {
      expect(b.details.existing).toEqual({id: 'a', v: 2, last_modified: Number(String(res.headers.etag).slice(1, -1))})
    },
  },
  {
    name: 'If-None-Match: * on PUT of an existing record is a 412 with it; on a new id a 201; If-Match on a missing one a 412 without details',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      expect((await r('PUT', `${c}/records/new`, {body: {data: {v: 1}}, headers: {'if-none-match': '*'}})).status).toBe(201)
      const missing = await r('PUT', `${c}/records/missing`, {body: {data: {}}, headers: {'if-match': '"123"'}})
      expect(missing.status).toBe(412)
      expect(missing.body).not.toHaveProperty('details')
      const get = await r('GET', `${c}/records/new`, {headers: {'if-none-match': '*'}})
      expect(get.status).toBe(412)
      return r('PUT', `${c}/records/new`, {body: {data: {v: 2}}, headers: {'if-none-match': '*'}})
    },
    status: 412,
    errno: 114,
    body: (b) => expect(b.details.existing).toMatchObject({id: 'new', v: 1}),
  },
  {
    name: "a bucket's ETag is its own timestamp: a collection or record written inside does not change it (the collections list's does)",
    run: async (r) => {
      const b = '/v1/buckets/etags'
      const put = await r('PUT', b)
      const buckets = await r('GET', '/v1/buckets')
      const cols = await r('GET', `${b}/collections`)
      const col = await r('PUT', `${b}/collections/c`)
      await r('PUT', `${b}/collections/c/records/r`, {body: {data: {}}})
      const bucket = await r('GET', b)
      expect(bucket.headers.etag).toBe(`"${put.body.data.last_modified}"`)
      expect((await r('GET', b, {headers: {'if-none-match': `"${put.body.data.last_modified}"`}})).status).toBe(304)
      expect((await r('GET', '/v1/buckets')).headers.etag).toBe(buckets.headers.etag)
      const cols2 = await r('GET', `${b}/collections`)
      expect(cols2.headers.etag).toBe(`"${col.body.data.last_modified}"`)
      expect(cols2.headers.etag).not.toBe(cols.headers.etag)
      // The record does not change its collection's timestamp either.
      return r('GET', `${b}/collections/c`, {headers: {'if-none-match': `"${col.body.data.last_modified}"`}})
    },
    status: 304,
  },
  {
    name: '_expected (remote-settings cache busting) is not a filter, and Next-Page keeps it with the filters, _since and _sort',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      for (const id of ['a', 'b', 'c']) await r('PUT', `${c}/records/${id}`, {body: {data: {k: 1}}})
      const all = await r('GET', `${c}/records?_expected=42&k=1&_since=0&_sort=id`)
      expect(all.body.data.map((o: {id: string}) => o.id)).toEqual(['a', 'b', 'c'])
      return r('GET', `${c}/records?_expected=42&k=1&_since=0&_sort=id&_limit=2`)
    },
    status: 200,
    headers: {'next-page': /\?(?=.*_expected=42)(?=.*k=1)(?=.*_since=0)(?=.*_sort=id)(?=.*_limit=2)(?=.*_token=)/},
  },
  {
    // Upstream's plural_get adds what it read (limit + 1) to the token's offset; plural_delete
    // passes on the offset it was given, so every DELETE page's token says 0.
    name: "a _token's offset: GET adds the objects it read, a plural DELETE passes on the one it got",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      for (const id of ['a', 'b', 'c', 'd']) await r('PUT', `${c}/records/${id}`)
      const offsetOf = (res: Res) => {
        const token = new URL(String(res.headers['next-page'])).searchParams.get('_token')!
        return JSON.parse(Buffer.from(token, 'base64').toString('utf8')).offset
      }
      const get1 = await r('GET', `${c}/records?_limit=1`)
      expect(offsetOf(get1)).toBe(2)
      const get2 = await r('GET', String(get1.headers['next-page']).replace(/^https?:\/\/[^/]+/, ''))
      expect(offsetOf(get2)).toBe(4)
      const del1 = await r('DELETE', `${c}/records?_limit=1`)
      expect(del1.body.data).toHaveLength(1)
      expect(offsetOf(del1)).toBe(0)
      return r('DELETE', String(del1.headers['next-page']).replace(/^https?:\/\/[^/]+/, ''))
    },
    status: 200,
    headers: {'next-page': /_token=/},
    body: (b, res) => {
      expect(b.data).toHaveLength(1)
      const token = new URL(String(res.headers['next-page'])).searchParams.get('_token')!
      expect(JSON.parse(Buffer.from(token, 'base64').toString('utf8')).offset).toBe(0)
    },
  },
  {
    name: "kinto.js's last pull: _since (unquoted) with exclude_id leaves out the excluded ids, tombstones too",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const start = await r('PUT', `${c}/records/old`, {body: {data: {}}})
      for (const id of ['a', 'b', 'c']) await r('PUT', `${c}/records/${id}`, {body: {data: {}}})
      await r('DELETE', `${c}/records/a`)
      await r('DELETE', `${c}/records/c`)
      return r('GET', `${c}/records?_since=${start.body.data.last_modified}&exclude_id=a,b&_sort=-last_modified`)
    },
    status: 200,
    body: (b) => expect(b.data).toEqual([{id: 'c', last_modified: b.data[0].last_modified, deleted: true}]),
  },
  {
    name: 'a deleted record is a 404 before any precondition: DELETE or PATCH with If-Match, GET with If-None-Match',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const put = await r('PUT', `${c}/records/gone`, {body: {data: {}}})
      const del = await r('DELETE', `${c}/records/gone`)
      const ifMatch = {'if-match': `"${put.body.data.last_modified}"`}
      expect((await r('PATCH', `${c}/records/gone`, {body: {data: {}}, headers: ifMatch})).status).toBe(404)
      expect((await r('GET', `${c}/records/gone`, {headers: {'if-none-match': `"${del.body.data.last_modified}"`}})).status).toBe(404)
      return r('DELETE', `${c}/records/gone`, {headers: ifMatch})
    },
    status: 404,
    errno: 110,
  },
  {
    name: "kinto-http's safe batch: a stale If-Match or If-None-Match: * on an existing record is a sub-response 412 with the current record",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const v1 = await r('PUT', `${c}/records/a`, {body: {data: {v: 1}}})
      const v2 = await r('PUT', `${c}/records/a`, {body: {data: {v: 2}}})
      const path = `${c.slice(3)}/records/a`
      return r('POST', '/v1/batch', {
        body: {
          requests: [
            {method: 'PUT', path, body: {data: {v: 3}}, headers: {'If-Match': `"${v1.body.data.last_modified}"`}},
            {method: 'DELETE', path, headers: {'If-Match': `"${v1.body.data.last_modified}"`}},
            {method: 'PUT', path, body: {data: {v: 3}}, headers: {'If-None-Match': '*'}},
            {method: 'PUT', path, body: {data: {v: 3}}, headers: {'If-Match': `"${v2.body.data.last_modified}"`}},
          ],
        },
      })
    },
    status: 200,
    body: (b) => {
      const [stale, staleDelete, create, ok] = b.responses
      for (const sub of [stale, staleDelete, create]) {
        expect(sub.status).toBe(412)
        expect(sub.body.errno).toBe(114)
        expect(sub.body.details.existing).toEqual({id: 'a', v: 2, last_modified: sub.body.details.existing.last_modified})
        expect(sub.headers.ETag).toBe(`"${sub.body.details.existing.last_modified}"`)
      }
      expect(ok.status).toBe(200)
      expect(ok.body.data.v).toBe(3)
    },
  },
  {
    name: "a list never written keeps the ETag of its first read (stored): a 304 on it, a write's ETag beyond it",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const first = await r('GET', `${c}/records`)
      const again = await r('GET', `${c}/records`)
      expect(again.headers.etag).toBe(first.headers.etag)
      expect((await r('GET', `${c}/records`, {headers: {'if-none-match': String(first.headers.etag)}})).status).toBe(304)
      const put = await r('PUT', `${c}/records/a`, {body: {data: {}}})
      expect(put.body.data.last_modified).toBeGreaterThan(Number(String(first.headers.etag).slice(1, -1)))
      return r('GET', `${c}/records?_since=${encodeURIComponent(String(first.headers.etag))}`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['a']),
  },
  {
    name: "DELETE on a list answers the tombstones with the newest one's ETag; _since from before lists them",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const a = await r('PUT', `${c}/records/a`, {body: {data: {}}})
      await r('PUT', `${c}/records/b`, {body: {data: {}}})
      const del = await r('DELETE', `${c}/records`)
      expect(del.body.data.map((o: {id: string; deleted: boolean}) => [o.id, o.deleted])).toEqual([['b', true], ['a', true]])
      const newest = Math.max(...del.body.data.map((o: {last_modified: number}) => o.last_modified))
      expect(del.headers.etag).toBe(`"${newest}"`)
      expect((await r('GET', `${c}/records`)).headers.etag).toBe(`"${newest}"`)
      // Deleted in the list's order (newest first, as upstream's memory backend does), so the
      // oldest record gets the newest tombstone.
      return r('GET', `${c}/records?_since=${a.body.data.last_modified - 1}`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string; deleted: boolean}) => [o.id, o.deleted])).toEqual([['a', true], ['b', true]]),
  },
  {
    name: 'If-Match: * passes on an existing record and is a 412 on a missing one; If-None-Match with a timestamp is no precondition on a write',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      await r('PUT', `${c}/records/a`, {body: {data: {v: 1}}})
      expect((await r('PUT', `${c}/records/a`, {body: {data: {v: 2}}, headers: {'if-match': '*'}})).status).toBe(200)
      expect((await r('PUT', `${c}/records/a`, {body: {data: {v: 3}}, headers: {'if-none-match': '"1"'}})).status).toBe(200)
      expect((await r('PUT', `${c}/records/new`, {body: {data: {}}, headers: {'if-none-match': '"1"'}})).status).toBe(201)
      return r('PUT', `${c}/records/missing`, {body: {data: {}}, headers: {'if-match': '*'}})
    },
    status: 412,
    errno: 114,
    body: (b) => expect(b).not.toHaveProperty('details'),
  },
  {
    name: 'a GET of a record with a stale If-Match is a 412 with the record in details.existing',
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const v1 = await r('PUT', `${c}/records/a`, {body: {data: {v: 1}}})
      await r('PUT', `${c}/records/a`, {body: {data: {v: 2}}})
      return r('GET', `${c}/records/a`, {headers: {'if-match': `"${v1.body.data.last_modified}"`}})
    },
    status: 412,
    errno: 114,
    body: (b) => expect(b.details.existing).toMatchObject({id: 'a', v: 2}),
  },
  {
    name: 'a deleted bucket takes its collections: re-created, _since on its collections from an old timestamp lists nothing',
    run: async (r) => {
      const b = '/v1/buckets/purged'
      await r('PUT', b)
      const col = await r('PUT', `${b}/collections/x`)
      await r('PUT', `${b}/collections/x/records/r`, {body: {data: {}}})
      await r('DELETE', `${b}/collections/y`)
      expect((await r('DELETE', b)).status).toBe(200)
      await r('PUT', b)
      await r('PUT', `${b}/collections/x`)
      const records = await r('GET', `${b}/collections/x/records?_since=0`)
      expect(records.body.data).toEqual([])
      return r('GET', `${b}/collections?_since=${col.body.data.last_modified - 1}`)
    },
    status: 200,
    body: (b) => expect(b.data.map((o: {id: string}) => o.id)).toEqual(['x']),
  },
  {
    name: "a write given the last_modified of another record or tombstone of its list is a 409 errno 122 (the list's unique timestamps), on memory too",
    run: async (r) => {
      const c = fresh()
      await r('PUT', c)
      const a = await r('PUT', `${c}/records/a`, {body: {data: {}}})
      const gone = await r('PUT', `${c}/records/gone`, {body: {data: {}}})
      const del = await r('DELETE', `${c}/records/gone`)
      await r('PUT', `${c}/records/newest`, {body: {data: {}}})
      // Its own timestamp is no collision; another record's or tombstone's is.
      const own = await r('PUT', `${c}/records/a`, {body: {data: {v: 2, last_modified: a.body.data.last_modified}}})
      expect(own.status).toBe(200)
      expect((await r('PUT', `${c}/records/b`, {body: {data: {last_modified: del.body.data.last_modified}}})).status).toBe(409)
      // A timestamp no longer held (gone's before its deletion) is free.
      expect((await r('PATCH', `${c}/records/newest`, {body: {data: {last_modified: gone.body.data.last_modified}}})).status).toBe(200)
      // The tombstone of the same id is the same row: no collision.
      expect((await r('PUT', `${c}/records/gone`, {body: {data: {last_modified: del.body.data.last_modified}}})).status).toBe(201)
      const ids = (await r('GET', `${c}/records?_sort=id`)).body.data.map((o: {id: string}) => o.id)
      expect(ids).toEqual(['a', 'gone', 'newest'])
      return r('POST', `${c}/records`, {body: {data: {id: 'c', last_modified: own.body.data.last_modified}}})
    },
    status: 409,
    errno: 122,
    headers: {'retry-after': /^\d+$/},
    body: (b) => expect(b.message).toBe('Integrity constraint violated, please retry.'),
  },
  {
    name: "preconditions on a bucket and a collection: a stale If-Match, If-None-Match: * on an existing one: 412 with it (no permissions); a collection's change leaves its records list's ETag",
    run: async (r) => {
      const b = '/v1/buckets/preconds'
      const bucket = await r('PUT', b, {body: {data: {v: 1}}})
      await r('PATCH', b, {body: {data: {v: 2}}})
      const stale = await r('PATCH', b, {body: {data: {v: 3}}, headers: {'if-match': `"${bucket.body.data.last_modified}"`}})
      expect(stale.status).toBe(412)
      expect(stale.body.details.existing).toEqual({id: 'preconds', v: 2, last_modified: stale.body.details.existing.last_modified})
      const col = await r('PUT', `${b}/collections/c`, {body: {data: {v: 1}}})
      const records = await r('GET', `${b}/collections/c/records`)
      await r('PATCH', `${b}/collections/c`, {body: {data: {v: 2}}})
      expect((await r('GET', `${b}/collections/c/records`, {headers: {'if-none-match': String(records.headers.etag)}})).status).toBe(304)
      expect((await r('GET', `${b}/collections/c`, {headers: {'if-none-match': `"${col.body.data.last_modified}"`}})).status).toBe(200)
      return r('PUT', `${b}/collections/c`, {body: {data: {}}, headers: {'if-none-match': '*'}})
    },
    status: 412,
    errno: 114,
    body: (b) => expect(b.details.existing).toEqual({id: 'c', v: 2, last_modified: b.details.existing.last_modified}),
  },
]

for (const backend of ['memory', 'postgresql'] as const) {
  describe(`upstream's answers (${backend})`, () => {
    let app: FastifyInstance
    let close: () => Promise<void>
    let req: Request

    beforeAll(async () => {
      if (backend === 'memory') {
        app = memoryApp(SETTINGS)
        close = () => app.close()
      } else {
        const pg = await postgresApp(SETTINGS)
        app = pg.app
        close = pg.close
      }
      req = client(app, ALICE)
      expect((await req('PUT', B)).status).toBe(201)
      expect((await req('PUT', C)).status).toBe(201)
    })
    afterAll(async () => close?.())

    for (const row of rows.filter((r) => !r.only || r.only === backend)) {
      test(row.name, async () => {
        await row.setup?.(req)
        const res = await row.run(req)
        expect(res.status, res.raw).toBe(row.status)
        if (row.errno !== undefined) expect(res.body.errno).toBe(row.errno)
        for (const [name, want] of Object.entries(row.headers ?? {})) {
          const got = res.headers[name]
          if (want === null) expect(got, name).toBeUndefined()
          else if (want instanceof RegExp) expect(String(got), name).toMatch(want)
          else expect(got, name).toBe(want)
        }
        row.body?.(res.body, res)
      })
    }
  })
}

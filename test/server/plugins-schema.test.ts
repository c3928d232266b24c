/**
 * JSON-schema validation: records against the collection `schema` and the
 * bucket `record:schema`, collections and groups against the bucket `collection:schema` /
 * `group:schema`, with upstream's error format (errno 107, Python jsonschema's messages, the field
 * upstream names). Upstream's tests/test_views_schema_*.py scenarios, rewritten.
 */
import type {FastifyInstance} from 'fastify'
import {afterEach, beforeEach, describe, expect, test} from 'vitest'

import {client} from './helpers.js'
import {pluginApp} from './plugins-helpers.js'

const SCHEMA = {
  title: 'Blog post schema',
  type: 'object',
  properties: {
    title: {type: 'string'},
    body: {type: 'string'},
    file: {type: 'object', properties: {size: {type: 'number'}, name: {type: 'string'}}},
    tags: {type: 'array', items: {type: 'string'}},
    status: {enum: ['draft', 'published']},
    stars: {type: 'integer', minimum: 0, maximum: 5},
    slug: {type: 'string', pattern: '^[a-z-]+$', maxLength: 10},
  },
  required: ['title'],
}

const apps: FastifyInstance[] = []
let req: ReturnType<typeof client>
function setup(validation = true) {
  const app = pluginApp(validation ? {'kinto.experimental_collection_schema_validation': 'true'} : {})
  apps.push(app)
  req = client(app)
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

const RECORDS = '/v1/buckets/blog/collections/articles/records'

describe('records against the collection schema', () => {
  beforeEach(async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
    await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {schema: SCHEMA}}})
  })
  const post = (data: Record<string, unknown>) => req('POST', RECORDS, {body: {data}})

  // The message is `<name> in body: <description>`, or the description alone when it contains
  // the name (upstream's error handler): "'much-too-long-slug' is too long".
  test.each([
    [{body: 'x'}, 'title', "'title' is a required property", "'title' is a required property"],
    [{title: 'Some title', file: {size: 'hi!'}}, 'size', "'hi!' is not of type 'number'", "size in body: 'hi!' is not of type 'number'"],
    [{title: 3.14}, 'title', "3.14 is not of type 'string'", "title in body: 3.14 is not of type 'string'"],
    [{title: 't', status: 'gone'}, 'status', "'gone' is not one of ['draft', 'published']", "status in body: 'gone' is not one of ['draft', 'published']"],
    [{title: 't', stars: 9}, 'stars', '9 is greater than the maximum of 5', 'stars in body: 9 is greater than the maximum of 5'],
    [{title: 't', stars: -1}, 'stars', '-1 is less than the minimum of 0', 'stars in body: -1 is less than the minimum of 0'],
    [{title: 't', slug: 'Not A Slug'}, 'slug', "'Not A Slug' does not match '^[a-z-]+$'", "slug in body: 'Not A Slug' does not match '^[a-z-]+$'"],
    [{title: 't', slug: 'much-too-long-slug'}, 'slug', "'much-too-long-slug' is too long", "'much-too-long-slug' is too long"],
  ])('%j → 400 naming %s: %s', async (data, name, description, message) => {
    const r = await post(data)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({code: 400, errno: 107, error: 'Invalid parameters', message})
    expect(r.body.details).toEqual([{location: 'body', name, description}])
  })

  // The name is the last step of the value's path, a number for a list's item, or at the root the
  // last item of the keyword's value (oneOf: its last subschema, an object); jsonschema 4 words a
  // bound of 1 item or character (0 at most) apart.
  test.each([
    [{type: 'object', properties: {l: {type: 'array', items: {type: 'integer'}}}}, {l: [1, 'x']}, 1, "'x' is not of type 'integer'", "1 in body: 'x' is not of type 'integer'"],
    [{type: 'object', oneOf: [{required: ['x']}, {required: ['y']}]}, {}, {required: ['y']}, '{} is not valid under any of the given schemas', "{'required': ['y']} in body: {} is not valid under any of the given schemas"],
    [{type: 'object', oneOf: [{required: ['x']}, {required: ['y']}]}, {x: 1, y: 1}, {required: ['y']}, "{'x': 1, 'y': 1} is valid under each of {'required': ['y']}, {'required': ['x']}", "{'x': 1, 'y': 1} is valid under each of {'required': ['y']}, {'required': ['x']}"],
    // Item after item, each against every keyword of `items` (upstream raises the first): the
    // first item's `minItems` before the second's `minimum`, though `minimum` is written first.
    [{type: 'object', properties: {a: {type: 'array', items: {minimum: 2, minItems: 2}}}}, {a: [[], -3]}, 0, '[] is too short', '0 in body: [] is too short'],
    // A property name failing `propertyNames`: its subschema's error, about the name (names in order).
    [{type: 'object', properties: {p: {propertyNames: {pattern: '^q', maxLength: 1}}}}, {p: {qq: 1, n: 2}}, 'p', "'qq' is too long", "p in body: 'qq' is too long"],
    [{$schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: {k: {contains: {const: 1}}}}, {k: [2]}, 'k', 'None of [2] are valid under the given schema', 'k in body: None of [2] are valid under the given schema'],
    [{type: 'object', properties: {c: {contains: {const: 1}}}}, {c: [2]}, 'c', '[2] does not contain items matching the given schema', '[2] does not contain items matching the given schema'],
    [{type: 'object', properties: {q: {minItems: 1}}}, {q: []}, 'q', '[] should be non-empty', 'q in body: [] should be non-empty'],
    [{type: 'object', properties: {z: {maxLength: 0}}}, {z: 'a'}, 'z', "'a' is expected to be empty", "z in body: 'a' is expected to be empty"],
  ])('%j, %j → 400 naming %j', async (schema, data, name, description, message) => {
    await req('PUT', '/v1/buckets/blog/collections/named', {body: {data: {schema}}})
    const r = await req('PUT', '/v1/buckets/blog/collections/named/records/r', {body: {data}})
    expect(r.status).toBe(400)
    expect(r.body.message).toBe(message)
    expect(r.body.details).toEqual([{location: 'body', name, description}])
  })

  test('a schema whose enum repeats a value is a valid Draft 7 schema (as Python jsonschema reads it)', async () => {
    const r = await req('PUT', '/v1/buckets/blog/collections/dup', {body: {data: {schema: {type: 'object', properties: {k: {enum: [1, 1]}}}}}})
    expect(r.status).toBe(201)
    expect((await req('PUT', '/v1/buckets/blog/collections/dup/records/r', {body: {data: {k: 2}}})).body.message).toBe('k in body: 2 is not one of [1, 1]')
  })

  test('an empty enum is a valid Draft 7 schema that no value passes (as Python jsonschema reads it)', async () => {
    const put = (path: string, schema: unknown) => req('PUT', `/v1/buckets/blog/collections/${path}`, {body: {data: {schema}}})
    expect((await put('none', {type: 'object', properties: {e: {enum: []}, l: {items: {enum: []}}}})).status).toBe(201)
    const record = (data: unknown) => req('PUT', '/v1/buckets/blog/collections/none/records/r', {body: {data}})
    expect((await record({e: 1})).body).toMatchObject({message: '1 is not one of []', details: [{location: 'body', name: 'e', description: '1 is not one of []'}]})
    expect((await record({l: [1]})).body).toMatchObject({message: '0 in body: 1 is not one of []', details: [{location: 'body', name: 0, description: '1 is not one of []'}]})
    expect((await record({})).status).toBe(201)
    // at the root, upstream names the keyword (its value has no last item)
    expect((await put('root', {enum: []})).status).toBe(201)
    const root = await req('PUT', '/v1/buckets/blog/collections/root/records/r', {body: {data: {a: 1}}})
    expect(root.body).toMatchObject({message: "enum in body: {'a': 1} is not one of []", details: [{location: 'body', name: 'enum', description: "{'a': 1} is not one of []"}]})
    expect((await req('PATCH', '/v1/buckets/blog', {body: {data: {'group:schema': {enum: []}}}})).status).toBe(200)
  })

  // Python jsonschema's multipleOf: an exact remainder for an integer divisor, an integral quotient
  // for a float one; oneOf names the other valid subschemas, then the first.
  test.each([
    [{type: 'object', properties: {a: {multipleOf: 3}}}, {a: 1e300}, null],
    [{type: 'object', properties: {a: {multipleOf: 0.1}}}, {a: 0.7}, '0.7 is not a multiple of 0.1'],
    [{type: 'object', properties: {a: {multipleOf: 0.5}}}, {a: 2.5}, null],
    [{type: 'object', properties: {a: {multipleOf: 2}}}, {a: 3}, '3 is not a multiple of 2'],
    [{type: 'object', properties: {a: {oneOf: [{type: 'string'}, {type: 'string', minLength: 1}]}}}, {a: 'x'}, "'x' is valid under each of {'type': 'string', 'minLength': 1}, {'type': 'string'}"],
    // a `false` subschema: upstream names the step above it
    [{type: 'object', properties: {a: {type: 'object', properties: {b: false}}}}, {a: {b: 1}}, 'False schema does not allow 1'],
    [{type: 'object', properties: {a: {prefixItems: [{}, false]}}}, {a: [0, 'x']}, "False schema does not allow 'x'"],
    [{type: 'object', properties: {a: {allOf: [false]}}}, {a: [1]}, 'False schema does not allow [1]'],
    // items beyond the ones a schema names
    [{type: 'object', properties: {a: {items: [{}], additionalItems: false}}}, {a: [1, 'x', null]}, "Additional items are not allowed ('x', None were unexpected)"],
    [{type: 'object', properties: {a: {prefixItems: [{}], items: false}}}, {a: [1, 'x']}, "Expected at most 1 item but found 1 extra: 'x'"],
    [{type: 'object', properties: {a: {prefixItems: [{}, {}], items: false}}}, {a: [1, 2, 3, 4]}, 'Expected at most 2 items but found 2 extra: [3, 4]'],
    [{type: 'object', properties: {a: {prefixItems: [{}], unevaluatedItems: false}}}, {a: [1, 'x']}, "Unevaluated items are not allowed ('x' was unexpected)"],
    // unevaluated members failing a subschema: one error for the object or list, naming them (a
    // property once per failure, in the object's order)
    [{type: 'object', properties: {a: {prefixItems: [{}], unevaluatedItems: {type: 'integer'}}}}, {a: ['x', 1, 'y', 'z']}, "Unevaluated items are not allowed ('y', 'z' were unexpected)"],
    [{type: 'object', properties: {a: {properties: {k: {}}, unevaluatedProperties: {type: 'integer', minimum: 5}}}}, {a: {k: 's', z: 't'}}, "Unevaluated properties are not valid under the given schema ('z' was unevaluated and invalid)"],
    [{type: 'object', properties: {a: {properties: {k: {}}, unevaluatedProperties: {type: 'integer', minimum: 5}}}}, {a: {z: 6, b: 'x', a: 'y'}}, "Unevaluated properties are not valid under the given schema ('b', 'a' were unevaluated and invalid)"],
    [{type: 'object', properties: {a: {properties: {k: {}}, unevaluatedProperties: {type: 'integer', minimum: 5}}}}, {a: {z: 1.5}}, "Unevaluated properties are not valid under the given schema ('z', 'z' were unevaluated and invalid)"],
    [{type: 'object', properties: {a: {properties: {k: {}}, unevaluatedProperties: {type: 'integer', minimum: 5}}}}, {a: {k: 's', z: 7}}, null],
    // additionalProperties false beside patternProperties names the patterns
    [{type: 'object', properties: {a: {patternProperties: {'^x': {}, '^a': {}}, additionalProperties: false}}}, {a: {c: 1, b: 2, xa: 3}}, "'b', 'c' do not match any of the regexes: '^a', '^x'"],
    [{type: 'object', properties: {a: {patternProperties: {'^x': {}}, additionalProperties: false}}}, {a: {b: 1}}, "'b' does not match any of the regexes: '^x'"],
    // minContains and maxContains
    [{type: 'object', properties: {a: {contains: {type: 'integer'}, minContains: 2, maxContains: 3}}}, {a: [1, 'x']}, 'Too few items match the given schema (expected at least 2 but only 1 matched)'],
    [{type: 'object', properties: {a: {contains: {type: 'integer'}, minContains: 2, maxContains: 3}}}, {a: [1, 2, 3, 4]}, 'Too many items match the given schema (expected at most 3)'],
    [{type: 'object', properties: {a: {contains: {type: 'integer'}, minContains: 2, maxContains: 3}}}, {a: ['x']}, "['x'] does not contain items matching the given schema"],
    [{type: 'object', properties: {a: {contains: {type: 'integer'}, minContains: 2, maxContains: 3}}}, {a: [1, 'x', 2]}, null],
  ])('%j: %j → %s', async (schema, data, description) => {
    await req('PUT', '/v1/buckets/blog/collections/m', {body: {data: {schema}}})
    const r = await req('POST', '/v1/buckets/blog/collections/m/records', {body: {data}})
    if (description === null) expect(r.status, JSON.stringify(r.body)).toBe(201)
    else expect(r.body.details).toEqual([{location: 'body', name: 'a', description}])
  })

  test('a `false` property schema at the root: upstream names `properties`', async () => {
    await req('PUT', '/v1/buckets/blog/collections/f', {body: {data: {schema: {type: 'object', properties: {a: false}}}}})
    const r = await req('POST', '/v1/buckets/blog/collections/f/records', {body: {data: {a: 's'}}})
    expect(r.body.details).toEqual([{location: 'body', name: 'properties', description: "False schema does not allow 's'"}])
  })

  test('items of arrays are validated (the field is the index)', async () => {
    const r = await post({title: 't', tags: ['ok', 0]})
    expect(r.status).toBe(400)
    expect(r.body.message).toBe("1 in body: 0 is not of type 'string'")
  })

  test('valid records get the collection timestamp as `schema`; PATCH and PUT are validated too', async () => {
    const collection = (await req('GET', '/v1/buckets/blog/collections/articles')).body.data
    const ok = await post({title: 'x'})
    expect(ok.status).toBe(201)
    expect(ok.body.data.schema).toBe(collection.last_modified)
    const url = `${RECORDS}/${ok.body.data.id}`
    expect((await req('PATCH', url, {body: {data: {title: 3.14}}})).status).toBe(400)
    expect((await req('PUT', url, {body: {data: {body: 'no title'}}})).status).toBe(400)
    // A record may carry id, last_modified and schema whatever the schema says.
    const strict = {...SCHEMA, additionalProperties: false}
    await req('PUT', '/v1/buckets/blog/collections/strict', {body: {data: {schema: strict}}})
    const withMeta = await req('PUT', '/v1/buckets/blog/collections/strict/records/r1', {body: {data: {id: 'r1', title: 'x', last_modified: 1234, schema: 5}}})
    expect(withMeta.status).toBe(201)
    const extra = await req('POST', '/v1/buckets/blog/collections/strict/records', {body: {data: {title: 'x', extra: 1}}})
    expect(extra.status).toBe(400)
    expect(extra.body.message).toBe("additionalProperties in body: Additional properties are not allowed ('extra' was unexpected)")
    expect(extra.body.details[0].name).toBe('additionalProperties')
  })

  test('a required field the schema requires but ignores (id) is not required; unknown required fields are', async () => {
    await req('PUT', '/v1/buckets/blog/collections/ids', {body: {data: {schema: {type: 'object', required: ['id', 'unknown']}}}})
    const r = await req('POST', '/v1/buckets/blog/collections/ids/records', {body: {data: {title: 'bug 1243'}}})
    expect(r.status).toBe(400)
    expect(r.body.message).toBe("'unknown' is a required property")
    expect((await req('POST', '/v1/buckets/blog/collections/ids/records', {body: {data: {title: 'bug 1243'}}})).status).toBe(400)
  })

  // Upstream validates a POST before the id is made: a schema naming `id` sees only an id sent.
  test('a schema naming id validates the id sent, and a POST without one as without id', async () => {
    await req('PUT', '/v1/buckets/blog/collections/ids', {body: {data: {schema: {type: 'object', properties: {id: {type: 'string', pattern: '^[0-7]$'}}}}}})
    const url = '/v1/buckets/blog/collections/ids/records'
    expect((await req('POST', url, {body: {data: {id: '1'}}})).status).toBe(201)
    expect((await req('POST', url, {body: {data: {id: 'a'}}})).status).toBe(400)
    expect((await req('PUT', `${url}/b`, {body: {data: {}}})).status).toBe(400)
    expect((await req('POST', url, {body: {data: {}}})).status).toBe(201)
    await req('PUT', '/v1/buckets/blog/collections/rid', {body: {data: {schema: {type: 'object', properties: {id: {}}, required: ['id']}}}})
    const missing = await req('POST', '/v1/buckets/blog/collections/rid/records', {body: {data: {}}})
    expect(missing.body.details).toEqual([{location: 'body', name: 'id', description: "'id' is a required property"}])
    expect((await req('PUT', '/v1/buckets/blog/collections/rid/records/x', {body: {data: {}}})).status).toBe(201)
  })

  test('a batch: one valid, one invalid record', async () => {
    const r = await req('POST', '/v1/batch', {
      body: {requests: [{method: 'POST', path: '/buckets/blog/collections/articles/records', body: {data: {title: 'a'}}}, {method: 'POST', path: '/buckets/blog/collections/articles/records', body: {data: {}}}]},
    })
    expect(r.body.responses.map((x: {status: number}) => x.status)).toEqual([201, 400])
  })

  test('very large numbers are numbers', async () => {
    expect((await post({title: 'big', file: {size: 2 ** 65}})).status).toBe(201)
    // Also when they are kept exact (beyond 2^53): the schema sees a number.
    const exact = await req('POST', RECORDS, {raw: '{"data": {"title": "big", "file": {"size": 123456789012345678901234567890}}}'})
    expect(exact.status, exact.raw).toBe(201)
    expect(exact.raw).toContain('"size":123456789012345678901234567890')
  })
})

describe('the bucket schemas', () => {
  beforeEach(() => setup())

  test('record:schema applies to every collection of the bucket, with the collection schema', async () => {
    await req('PUT', '/v1/buckets/blog', {body: {data: {'record:schema': {type: 'object', properties: {n: {type: 'integer'}}}}}})
    await req('PUT', '/v1/buckets/blog/collections/any', {body: {}})
    const bad = await req('POST', '/v1/buckets/blog/collections/any/records', {body: {data: {n: 'one'}}})
    expect(bad.body.message).toBe("'one' is not of type 'integer'")
    expect(bad.body.details[0].name).toBe('n')
    expect((await req('POST', '/v1/buckets/blog/collections/any/records', {body: {data: {n: 1}}})).status).toBe(201)
    await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {schema: SCHEMA}}})
    expect((await req('POST', RECORDS, {body: {data: {title: 't', n: 'x'}}})).status).toBe(400)
    expect((await req('POST', RECORDS, {body: {data: {n: 1}}})).status).toBe(400)
    expect((await req('POST', RECORDS, {body: {data: {title: 't', n: 1}}})).status).toBe(201)
  })

  test('collection:schema and group:schema validate collections and groups (metadata included)', async () => {
    const collectionSchema = {type: 'object', required: ['displayFields'], properties: {displayFields: {type: 'array', items: {type: 'string'}}}}
    await req('PUT', '/v1/buckets/blog', {body: {data: {'collection:schema': collectionSchema, 'group:schema': {type: 'object', properties: {members: {maxItems: 1}}}}}})
    expect((await req('POST', '/v1/buckets/blog/collections', {body: {data: {}}})).status).toBe(400)
    const bad = await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {displayFields: 42}}})
    expect(bad.body.message).toBe("displayFields in body: 42 is not of type 'array'")
    expect((await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {displayFields: ['name']}}})).status).toBe(201)
    const group = await req('PUT', '/v1/buckets/blog/groups/g', {body: {data: {members: ['a', 'b']}}})
    expect(group.status).toBe(400)
    expect(group.body.message).toBe("members in body: ['a', 'b'] is too long")
    expect((await req('PUT', '/v1/buckets/blog/groups/g', {body: {data: {members: ['a']}}})).status).toBe(201)
  })

  // Upstream resolves references lazily: only data that reaches the bad reference fails (this
  // test expected every record to fail, which upstream does not do).
  test('an unresolvable $ref is a 400 on the data it would validate, and only there', async () => {
    await req('PUT', '/v1/buckets/blog', {body: {data: {'record:schema': {properties: {displayFields: {$ref: '#/definitions/displayFields'}}}}}})
    await req('PUT', '/v1/buckets/blog/collections/c', {body: {}})
    const ok = await req('POST', '/v1/buckets/blog/collections/c/records', {body: {data: {title: 'b'}}})
    expect(ok.status).toBe(201)
    const r = await req('POST', '/v1/buckets/blog/collections/c/records', {body: {data: {displayFields: ['b']}}})
    expect(r.status).toBe(400)
    expect(r.body.details[0].name).toBe('schema')
  })
})

describe('references', () => {
  beforeEach(async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
  })
  test.each([
    // an anchor, and an $id a reference names (no network: they are in the schema)
    [{type: 'object', $defs: {s: {$anchor: 'str', type: 'string'}}, properties: {a: {$ref: '#str'}}}, 'a', "1 is not of type 'string'"],
    [{$id: 'https://example.com/root', type: 'object', $defs: {s: {$id: 's', type: 'string'}}, properties: {a: {$ref: 's'}}}, 'a', "1 is not of type 'string'"],
    [{type: 'object', properties: {a: {$ref: '#nope'}}}, 'schema', "NoSuchAnchor: 'nope' does not exist within {'type': 'object', 'properties': {'a': {'$ref': '#nope'}}}"],
    [{type: 'object', properties: {a: {$ref: 'http://127.0.0.1:9/s.json'}}}, 'schema', 'Unresolvable: http://127.0.0.1:9/s.json'],
  ])('%j', async (schema, name, description) => {
    expect((await req('PUT', '/v1/buckets/blog/collections/refs', {body: {data: {schema}}})).status).toBeLessThan(300)
    const r = await req('POST', '/v1/buckets/blog/collections/refs/records', {body: {data: {a: 1}}})
    expect(r.body.details).toEqual([{location: 'body', name, description}])
  })
})

describe('schemas are JSON schemas (always checked)', () => {
  test.each([
    ['/v1/buckets/blog', {'collection:schema': {...SCHEMA, type: 'Washmachine'}}, 'data.collection:schema'],
    ['/v1/buckets/blog/collections/articles', {schema: {...SCHEMA, type: 'Washmachine'}}, 'data.schema'],
  ])('%s: an invalid schema is refused with upstream\'s message', async (path, data, name) => {
    setup(false)
    await req('PUT', '/v1/buckets/blog', {body: {}})
    const r = await req('PUT', path, {body: {data}})
    expect(r.status).toBe(400)
    expect(r.body.message).toContain("'Washmachine' is not valid under any of the given schemas")
    expect(r.body.details[0].name).toBe(name)
  })

  test('without the setting, records are not validated', async () => {
    setup(false)
    await req('PUT', '/v1/buckets/blog', {body: {data: {'collection:schema': {type: 'object', required: ['displayFields']}}}})
    expect((await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {displayFields: 42}}})).status).toBe(201)
    const r = await req('PUT', '/v1/buckets/blog/collections/articles', {body: {data: {schema: SCHEMA}}})
    expect(r.status).toBe(200)
    const rec = await req('POST', RECORDS, {body: {data: {}}})
    expect(rec.status).toBe(201)
    expect(rec.body.data).not.toHaveProperty('schema')
    expect((await req('GET', '/v1/')).body.capabilities).not.toHaveProperty('schema')
  })
})

describe('patterns mean what they mean to upstream (Python re, searched)', () => {
  beforeEach(async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
  })
  const withPattern = async (pattern: string) => {
    const schema = {type: 'object', properties: {a: {type: 'string', pattern}}, patternProperties: {[pattern]: {type: 'string'}}}
    const r = await req('PUT', '/v1/buckets/blog/collections/p', {body: {data: {schema}}})
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300)
    return async (a: string) => (await req('POST', '/v1/buckets/blog/collections/p/records', {body: {data: {a}}})).status
  }

  test.each([
    // \w, \d and \b are Unicode-aware in Python 3
    ['^\\w+$', ['José', 'Ωμέγα', 'x_1'], ['a-b', 'a b']],
    ['^\\d{3}$', ['123', '٣٤٥'], ['12a']],
    ['^[\\w-]+$', ['Müller-Lüdenscheidt'], ['a b']],
    ['\\bété\\b', ['en été chaud'], ['étés']],
    // an escaped punctuation character is that character (JS's u flag refuses `\-`, `\_`, `\'`…)
    ['^\\d{3}\\-\\d{4}$', ['555-1234'], ['5551234']],
    ['^[a-z\\_\\.]+$', ['a_b.c'], ['a-b']],
    // `$` also matches before a final newline; `.` takes a carriage return; \A and \Z are the ends
    ['^[a-z]+$', ['abc', 'abc\n'], ['abc\n\n', 'ABC']],
    ['^a.b$', ['a\rb'], ['a\nb']],
    ['\\Aab\\Z', ['ab'], ['ab\n', 'xab']],
    // a leading `]` of a set is a member; a `{` that is no repetition is itself
    ['^[]a]+$', [']a]'], ['b']],
    ['^{x}$', ['{x}'], ['x']],
    ['^a{,2}$', ['', 'aa'], ['aaa']],
    // Python's named groups and inline flags
    ['^(?P<w>[a-z])(?P=w)$', ['aa'], ['ab']],
    ['(?i)^abc$', ['ABC', 'abc'], ['abd']],
    ['(?a)^\\w+$', ['abc'], ['José']],
  ])('%s', async (pattern, matching, notMatching) => {
    const post = await withPattern(pattern)
    for (const s of matching) expect(await post(s), `${pattern} ~ ${JSON.stringify(s)}`).toBe(201)
    for (const s of notMatching) expect(await post(s), `${pattern} !~ ${JSON.stringify(s)}`).toBe(400)
  })
})

describe('a schema whose $ref leads back to itself', () => {
  // Upstream answers 500 (Python's RecursionError) once validation reaches such a reference.
  test('is a 400 naming the schema for the data that reaches it, not a 500', async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
    expect((await req('PUT', '/v1/buckets/blog/collections/self', {body: {data: {schema: {$ref: '#'}}}})).status).toBe(201)
    const r = await req('POST', '/v1/buckets/blog/collections/self/records', {body: {data: {a: 1}}})
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({errno: 107, details: [{location: 'body', name: 'schema', description: 'Maximum recursion depth exceeded while validating'}]})
  })
})

describe('a pattern that backtracks for ever', () => {
  test('is stopped: the record is refused naming the schema, and the server goes on', async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
    const schema = {type: 'object', properties: {a: {type: 'string', pattern: '^(a+)+$'}}}
    expect((await req('PUT', '/v1/buckets/blog/collections/redos', {body: {data: {schema}}})).status).toBe(201)
    const url = '/v1/buckets/blog/collections/redos/records'
    expect((await req('POST', url, {body: {data: {a: 'aaaa'}}})).status).toBe(201)
    const started = Date.now()
    const r = await req('POST', url, {body: {data: {a: `${'a'.repeat(64)}!`}}})
    expect(Date.now() - started).toBeLessThan(5000)
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({errno: 107, details: [{location: 'body', name: 'schema', description: "'^(a+)+$' took too long to match"}]})
    // Many values, each matched in less time than the limit: the limit is for them all.
    const slow = Array.from({length: 60}, () => `${'a'.repeat(21)}!`)
    await req('PUT', '/v1/buckets/blog/collections/redos2', {body: {data: {schema: {type: 'object', properties: {l: {items: {pattern: '^(a+)+$'}}}}}}})
    const many = Date.now()
    const r2 = await req('POST', '/v1/buckets/blog/collections/redos2/records', {body: {data: {l: slow}}})
    expect(Date.now() - many).toBeLessThan(2000)
    expect(r2.body.details).toEqual([{location: 'body', name: 'schema', description: "'^(a+)+$' took too long to match"}])
    // The same pattern still works on data it can match.
    expect((await req('POST', url, {body: {data: {a: 'aaa'}}})).status).toBe(201)
    expect((await req('POST', url, {body: {data: {a: 'b'}}})).status).toBe(400)
  }, 20_000)
})

// Upstream checks a schema against Draft 7 when it is stored, then validates records with the
// draft its `$schema` names, Draft 2020-12 without one (jsonschema's validator_for).
describe('the draft records are validated with', () => {
  beforeEach(async () => {
    setup()
    await req('PUT', '/v1/buckets/blog', {body: {}})
  })
  let n = 0
  const collectionWith = async (schema: Record<string, unknown>) => {
    const url = `/v1/buckets/blog/collections/d${++n}`
    const r = await req('PUT', url, {body: {data: {schema}}})
    expect(r.status, JSON.stringify(r.body)).toBe(201)
    return (data: Record<string, unknown>) => req('POST', `${url}/records`, {body: {data}})
  }
  const DRAFT7 = 'http://json-schema.org/draft-07/schema#'

  test('without $schema, 2020-12: `dependencies` means nothing, prefixItems and unevaluatedProperties apply', async () => {
    expect((await (await collectionWith({type: 'object', dependencies: {a: ['b']}}))({a: 1})).status).toBe(201)
    const prefix = await (await collectionWith({type: 'object', properties: {l: {type: 'array', prefixItems: [{type: 'string'}]}}}))({l: [1]})
    expect(prefix.status).toBe(400)
    expect(prefix.body.details).toEqual([{location: 'body', name: 0, description: "1 is not of type 'string'"}])
    const unevaluated = await (await collectionWith({type: 'object', properties: {a: {}}, unevaluatedProperties: false}))({a: 1, b: 2})
    expect(unevaluated.status).toBe(400)
    expect(unevaluated.body.details).toEqual([{location: 'body', name: 'unevaluatedProperties', description: "Unevaluated properties are not allowed ('b' was unexpected)"}])
    const dependent = await (await collectionWith({type: 'object', properties: {a: {type: 'object', dependentRequired: {x: ['y']}}}}))({a: {x: 1}})
    expect(dependent.status).toBe(400)
    expect(dependent.body.details).toEqual([{location: 'body', name: 'a', description: "'y' is a dependency of 'x'"}])
  })

  test('a Draft 7 $schema: `dependencies` applies, and a $ref hides the keywords beside it', async () => {
    const post = await collectionWith({$schema: DRAFT7, type: 'object', properties: {a: {type: 'object', dependencies: {x: ['y']}}}})
    expect((await post({a: {x: 1}})).body.details).toEqual([{location: 'body', name: 'a', description: "'y' is a dependency of 'x'"}])
    expect((await post({a: {x: 1, y: 2}})).status).toBe(201)
    const refs = await collectionWith({$schema: DRAFT7, type: 'object', definitions: {s: {type: 'string'}}, properties: {a: {$ref: '#/definitions/s', maxLength: 2}}})
    expect((await refs({a: 'long'})).status).toBe(201)
    expect((await refs({a: 1})).status).toBe(400)
    const refs2020 = await collectionWith({type: 'object', definitions: {s: {type: 'string'}}, properties: {a: {$ref: '#/definitions/s', maxLength: 2}}})
    expect((await refs2020({a: 'long'})).body.details).toEqual([{location: 'body', name: 'a', description: "'long' is too long"}])
  })

  // Upstream answers 500 to every record of such a collection: its 2020-12 check of the schema fails.
  test('a schema that is no 2020-12 schema (a list of `items`) is validated as Draft 7', async () => {
    const post = await collectionWith({type: 'object', properties: {l: {type: 'array', items: [{type: 'string'}]}}})
    expect((await post({l: ['a', 2]})).status).toBe(201)
    expect((await post({l: [1]})).body.details).toEqual([{location: 'body', name: 0, description: "1 is not of type 'string'"}])
  })
})

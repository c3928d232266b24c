/**
 * Hostile input: bodies, querystrings, paths, headers and batches that a client (or an attacker)
 * may send. Every case must answer, below 500, with Kinto's JSON error body when it is an error.
 * Runs on memory backends, and on the postgresql backends (PGlite, or the real server in CI)
 * where SQL is built from these inputs.
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {ALICE, memoryApp, postgresApp} from './helpers.js'

const R = '/v1/buckets/b/collections/c/records'
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n)

interface Case {
  name: string
  method: string
  url: string
  body?: string | Buffer
  headers?: Record<string, string>
  /** Expected status when it matters. */
  status?: number
  errno?: number
}

const bodies: Case[] = [
  ['not json', '{not json'],
  ['truncated', '{"data": {"a": '],
  ['scalar', '"just a string"'],
  ['number', '123'],
  ['null', 'null'],
  ['deep array', `{"data": {"a": ${deep(5000)}}}`],
  ['deep object', '{"data": ' + '{"a":'.repeat(3000) + '1' + '}'.repeat(3000) + '}'],
  ['NUL in a value', '{"data": {"a": "x\\u0000y"}}'],
  ['NUL in a key', '{"data": {"a\\u0000": 1}}'],
  ['lone surrogate', '{"data": {"a": "\\ud800"}}'],
  ['number overflow', '{"data": {"a": 1e400}}'],
  ['negative overflow', '{"data": {"a": -1e400}}'],
  ['data is a list', '{"data": [1, 2]}'],
  ['data is a string', '{"data": "x"}'],
  ['permissions null', '{"data": {}, "permissions": null}'],
  ['principal not a string', '{"data": {}, "permissions": {"read": [1, {}]}}'],
  ['unknown permission', '{"permissions": {"admin": ["x"]}}'],
  ['unknown key', '{"data": {}, "extra": true}'],
  ['id object', '{"data": {"id": {"a": 1}}}'],
  ['id too long', `{"data": {"id": "${'a'.repeat(5000)}"}}`],
].map(([name, body]) => ({name: `body: ${name}`, method: 'POST', url: R, body, status: 400, errno: 107}))

const okBodies: Case[] = [
  ['unicode', '{"data": {"título": "日本語 🎉", "emoji🎉": "✓"}}'],
  ['big integer', '{"data": {"a": 123456789012345678901234567890}}'],
  ['last_modified string', '{"data": {"last_modified": "abc"}}'],
  ['last_modified huge', '{"data": {"last_modified": 99999999999999999999}}'],
  ['nesting 90', `{"data": {"a": ${deep(90)}}}`],
].map(([name, body]) => ({name: `body accepted: ${name}`, method: 'POST', url: R, body}))

const queries = [
  '_limit=1e400',
  '_limit=99999999999999999999999',
  '_limit=-5',
  '_limit=[1]',
  '_limit=1&_limit=2',
  '_sort=%00',
  '_sort=-',
  '_sort=' + 'a.'.repeat(300) + 'b',
  '_sort=title,-,,+n',
  '_since=-1',
  '_since=abc',
  '_before="123"',
  '_to=5',
  'gt_last_modified=99999999999999999',
  'last_modified=1.5',
  'in_id=',
  'in_=x',
  'like_=',
  'like_title=%00',
  'title=%00',
  '%00=1',
  'has_x=maybe',
  'contains_x={',
  'contains_any_x=[[]]',
  'lt_n=[1,2]',
  'eq_n={"a":1}',
  'in_n=1,[2],{"a":3},null,true',
  'exclude_last_modified=a,b',
  'a..b=1',
  `${'x.'.repeat(500)}y=1`,
  `title=${'z'.repeat(20000)}`,
  '_fields=a..b,,.,%00',
  '_token=%ff%fe',
  '_token=' + encodeURIComponent(Buffer.from('{"last_object":{"n":{"$gt":1}},"offset":"x","nonce":5}').toString('base64')),
  '_token=' + encodeURIComponent(Buffer.from('{"last_object":{"' + 'q'.repeat(300) + '":[1,{"a":null}]},"offset":0,"nonce":"n"}').toString('base64')),
  'title=%ff',
  '%ff=1',
  'título=日本語',
  'n=1e400',
  'n=-0',
  'like_title=' + encodeURIComponent("'; DROP TABLE objects; --"),
  encodeURIComponent("title'); DELETE FROM objects; --") + '=1',
  encodeURIComponent('data->>\'x\'') + '=1',
]
const queryCases: Case[] = queries.flatMap((q) => [
  {name: `GET ?${q}`, method: 'GET', url: `${R}?${q}`},
  {name: `HEAD ?${q}`, method: 'HEAD', url: `${R}?${q}`},
  {name: `DELETE ?${q}`, method: 'DELETE', url: `${R}?${q}&_limit=1`},
])

const paths: Case[] = [
  '/v1/buckets/%ff',
  '/v1/buckets/%00',
  '/v1/buckets/' + 'a'.repeat(10000),
  '/v1/buckets/b/collections/' + 'c'.repeat(3000) + '/records',
  '/v1/buckets/b/collections/c/records/' + 'r'.repeat(3000),
  '/v1/buckets/日本',
  '/v1/buckets/a%2Fb',
  '/v1//',
  '/v1/buckets/../buckets',
  '//evil.example/x',
  '/v1/buckets/b/collections/c/records/%20',
  '/v999999999999999999999/x',
].flatMap((url) => [
  {name: `GET ${url.slice(0, 60)}`, method: 'GET', url},
  {name: `PUT ${url.slice(0, 60)}`, method: 'PUT', url, body: '{}'},
])

const headerCases: Case[] = [
  {name: 'If-Match garbage', method: 'PUT', url: `${R}/x`, body: '{}', headers: {'if-match': 'W/"abc"'}, status: 400},
  {name: 'If-Match huge', method: 'PUT', url: `${R}/x`, body: '{}', headers: {'if-match': `"${'9'.repeat(400)}"`}},
  {name: 'If-None-Match huge', method: 'GET', url: R, headers: {'if-none-match': `"${'9'.repeat(400)}"`}},
  {name: 'wrong content type', method: 'POST', url: R, body: '{}', headers: {'content-type': 'text/plain'}, status: 415, errno: 107},
  {name: 'form content type', method: 'POST', url: R, body: 'a=1', headers: {'content-type': 'application/x-www-form-urlencoded'}, status: 415},
  {name: 'merge-patch on POST', method: 'POST', url: R, body: '{}', headers: {'content-type': 'application/merge-patch+json'}, status: 415},
  {name: 'Accept html', method: 'GET', url: R, headers: {accept: 'text/html'}, status: 406, errno: 107},
  {name: 'Accept json q=0', method: 'GET', url: R, headers: {accept: 'application/json;q=0'}, status: 406},
  {name: 'Accept wildcard', method: 'GET', url: R, headers: {accept: 'text/html, */*;q=0.1'}, status: 200},
  {name: 'Accept garbage', method: 'GET', url: R, headers: {accept: ';;;,,='}},
  {name: 'Response-Behavior garbage', method: 'PATCH', url: `${R}/x`, body: '{"data":{}}', headers: {'response-behavior': '\u00e9'}},
  {name: 'Origin garbage', method: 'GET', url: R, headers: {origin: '\u0001'}},
  {name: 'JSON-Patch not a list', method: 'PATCH', url: `${R}/x`, body: '{"op":"add"}', headers: {'content-type': 'application/json-patch+json'}},
  {name: 'JSON-Patch bad op', method: 'PATCH', url: `${R}/x`, body: '[{"op":"explode","path":"/data"}]', headers: {'content-type': 'application/json-patch+json'}},
  {name: 'JSON-Patch bad path', method: 'PATCH', url: `${R}/x`, body: '[{"op":"add","path":"/data/a/b/c","value":1}]', headers: {'content-type': 'application/json-patch+json'}},
  {name: 'JSON-Patch replace root', method: 'PATCH', url: `${R}/x`, body: '[{"op":"replace","path":"/data","value":5}]', headers: {'content-type': 'application/json-patch+json'}},
  {name: 'JSON-Patch move into itself', method: 'PATCH', url: `${R}/x`, body: '[{"op":"move","from":"/data","path":"/data/a"}]', headers: {'content-type': 'application/json-patch+json'}},
]

const batchCases: Case[] = [
  ['not an object', '[]'],
  ['requests missing', '{}'],
  ['requests not a list', '{"requests": {}}'],
  ['request not an object', '{"requests": [1]}'],
  ['path without slash', '{"requests": [{"path": "buckets"}]}'],
  ['path not a string', '{"requests": [{"path": 5}]}'],
  ['bad method', '{"requests": [{"method": "FOO", "path": "/"}]}'],
  ['headers not strings', '{"requests": [{"path": "/", "headers": {"a": 1}}]}'],
  ['header injection', '{"requests": [{"path": "/", "headers": {"x\\r\\ny": "1"}}]}'],
  ['body not an object', '{"requests": [{"path": "/", "method": "POST", "body": [1]}]}'],
  ['unknown key', '{"requests": [{"path": "/", "x": 1}]}'],
  ['recursive', '{"requests": [{"path": "/batch", "method": "POST"}]}'],
  ['too many', JSON.stringify({requests: Array.from({length: 26}, () => ({path: '/'}))})],
  ['defaults wrong', '{"defaults": 5, "requests": [{"path": "/"}]}'],
].map(([name, body]) => ({name: `batch: ${name}`, method: 'POST', url: '/v1/batch', body, status: 400, errno: 107}))

const batchOk: Case[] = [
  ['sub-requests with errors', JSON.stringify({requests: [{path: '/nowhere'}, {method: 'PUT', path: '/buckets/%ff', body: {}}, {path: '/buckets/b/collections/c/records?_limit=abc'}, {method: 'POST', path: R.slice(3), body: {data: 'x'}}, {method: 'TRACE', path: '/'}]})],
  ['sub-request DELETE with a bogus token', JSON.stringify({requests: [{method: 'DELETE', path: '/buckets/b/collections/c/records?_token=abc'}]})],
  ['unicode path', JSON.stringify({requests: [{path: '/buckets/日本'}]})],
].map(([name, body]) => ({name: `batch: ${name}`, method: 'POST', url: '/v1/batch', body, status: 200}))

const ALL = [...bodies, ...okBodies, ...queryCases, ...paths, ...headerCases, ...batchCases, ...batchOk]

async function prepare(app: FastifyInstance): Promise<void> {
  const put = (url: string) =>
    app.inject({method: 'PUT', url, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: '{}'})
  expect((await put('/v1/buckets/b')).statusCode).toBe(201)
  expect((await put('/v1/buckets/b/collections/c')).statusCode).toBe(201)
  expect((await put(`${R}/x`)).statusCode).toBe(201)
  for (let i = 0; i < 3; i++) {
    await app.inject({method: 'POST', url: R, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: JSON.stringify({data: {title: `t${i}`, n: i}})})
  }
}

async function check(app: FastifyInstance, c: Case): Promise<void> {
  const headers: Record<string, string> = {authorization: ALICE, ...c.headers}
  if (c.body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json'
  const res = await app.inject({method: c.method as 'GET', url: c.url, headers, payload: c.body})
  const label = `${c.name} → ${res.statusCode} ${res.body.slice(0, 200)}`
  expect(res.statusCode, label).toBeLessThan(500)
  if (c.status !== undefined) expect(res.statusCode, label).toBe(c.status)
  if (res.statusCode >= 400 && c.method !== 'HEAD') {
    const body = JSON.parse(res.body)
    expect(body, label).toMatchObject({code: res.statusCode, errno: expect.any(Number), error: expect.any(String)})
    if (c.errno !== undefined) expect(body.errno, label).toBe(c.errno)
  }
}

describe('hostile input on memory backends', () => {
  let app: FastifyInstance
  beforeAll(async () => {
    app = memoryApp()
    await prepare(app)
  })
  afterAll(async () => app.close())

  test.each(ALL.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await check(app, c)
  })

  test('a body over the limit is 413 errno 113', async () => {
    const big = memoryApp()
    try {
      const res = await big.inject({method: 'POST', url: R, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: '{"data":{"a":"' + 'x'.repeat(11 * 1024 * 1024) + '"}}'})
      expect(res.statusCode).toBe(413)
      expect(JSON.parse(res.body)).toMatchObject({errno: 113})
    } finally {
      await big.close()
    }
  })

  test('a body without content type on POST is 415', async () => {
    const res = await app.inject({method: 'POST', url: R, headers: {authorization: ALICE}, payload: Buffer.from('{"data":{}}')})
    expect(res.statusCode).toBe(415)
  })

  test('invalid UTF-8 in a body is 400', async () => {
    const res = await app.inject({method: 'POST', url: R, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])})
    expect(res.statusCode).toBe(400)
    expect(JSON.parse(res.body).errno).toBe(107)
  })

  test('accepted hostile values are stored and returned intact', async () => {
    const res = await app.inject({method: 'POST', url: R, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: '{"data": {"título": "日本語 🎉"}}'})
    const id = JSON.parse(res.body).data.id
    const back = await app.inject({method: 'GET', url: `${R}/${id}`, headers: {authorization: ALICE}})
    expect(JSON.parse(back.body).data['título']).toBe('日本語 🎉')
  })
})

describe('hostile input on the postgresql backends', () => {
  let env: Awaited<ReturnType<typeof postgresApp>>
  beforeAll(async () => {
    env = await postgresApp()
    await prepare(env.app)
  }, 120_000)
  afterAll(async () => env?.close())

  test('every case answers below 500', async () => {
    for (const c of ALL) await check(env.app, c)
  }, 120_000)
})

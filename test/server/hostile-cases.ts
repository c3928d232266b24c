/**
 * The hostile-input cases shared by the in-process suite (hostile.test.ts, through inject) and
 * the real-HTTP one (hostile-http.test.ts, on a listening server): bodies, querystrings, paths,
 * headers, credentials, pagination tokens and batches that a client (or an attacker) may send.
 */
import type {FastifyInstance} from 'fastify'
import {expect} from 'vitest'

import {ALICE} from './helpers.js'

export const R = '/v1/buckets/b/collections/c/records'
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n)

export interface Case {
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
  // a pattern of 60,000 characters: a regular expression that large does not compile
  'like_title=' + '*a'.repeat(30000) + 'b',
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
  {name: 'Accept garbage', method: 'GET', url: R, headers: {accept: ';;;,,='}, status: 200},
  // A header that does not parse is no header (upstream's WebOb): not a 406.
  {name: 'Accept not a media range', method: 'GET', url: R, headers: {accept: 'garbage'}, status: 200},
  {name: 'Accept with a bad q', method: 'GET', url: R, headers: {accept: 'text/html;q=2'}, status: 200},
  // An empty list is a valid header that accepts nothing (WebOb, as upstream answers): a 406.
  {name: 'Accept empty', method: 'GET', url: R, headers: {accept: ''}, status: 406, errno: 107},
  {name: 'Accept of empty elements', method: 'GET', url: R, headers: {accept: ' , '}, status: 406, errno: 107},
  {name: 'Accept html, parameters', method: 'GET', url: R, headers: {accept: 'text/html;level=1;q=0.9'}, status: 406},
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

const b64 = (s: string | Buffer) => encodeURIComponent(Buffer.from(s).toString('base64'))

/** NUL bytes, invalid UTF-8 and encoded surrogates in ids and querystrings: 400, never 500. */
const encodings: Case[] = [
  ...['%00', 'a%00b', '%C3%28', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%E2%82'].flatMap((id) => [
    {name: `record id ${id}`, method: 'GET', url: `${R}/${id}`},
    {name: `PUT record id ${id}`, method: 'PUT', url: `${R}/${id}`, body: '{}'},
    {name: `DELETE record id ${id}`, method: 'DELETE', url: `${R}/${id}`},
    {name: `bucket id ${id}`, method: 'PATCH', url: `/v1/buckets/${id}`, body: '{"data":{}}'},
    {name: `collection id ${id} in a record path`, method: 'GET', url: `/v1/buckets/b/collections/${id}/records`},
  ]),
  ...['title=%C3%28', '_sort=%ED%A0%80', '_fields=%ff', '_since=%00', 'in_id=%00,a', 'has_%00=1', '%C3%28=1', 'gt_n=1e999', '_since=1e999', '_limit=1e308', 'lt_last_modified=-1e999', 'title=%EF%BF%BF', 'title=%F0%9F%98%80'].map(
    (q) => ({name: `GET ?${q}`, method: 'GET', url: `${R}?${q}`}),
  ),
]

/** Credentials that are not credentials: anonymous (then 401 where authentication is needed), never 500. */
const authorizations = [
  'Basic',
  'Basic ',
  'Basic ====',
  'Basic !!!',
  'Basic a b',
  `Basic ${Buffer.from('nocolon').toString('base64')}`,
  `Basic ${Buffer.from(':').toString('base64')}`,
  `Basic ${Buffer.from(':password').toString('base64')}`,
  `Basic ${Buffer.from('user\u0000:pass\u0000').toString('base64')}`,
  `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0xc3, 0x28]).toString('base64')}`,
  `Basic ${'QUFB'.repeat(2000)}`,
  'Bearer',
  'Bearer x.y.z',
  'Digest username="a", realm="b"',
  'basic YWxpY2U6c2VjcmV0',
  ',,,',
  '\u00e9\u00ff',
]
const authCases: Case[] = authorizations.flatMap((auth, i) => [
  {name: `Authorization #${i} on hello`, method: 'GET', url: '/v1/', headers: {authorization: auth}},
  {name: `Authorization #${i} on a record`, method: 'GET', url: `${R}/x`, headers: {authorization: auth}},
  {name: `Authorization #${i} on a write`, method: 'PUT', url: `${R}/auth${i}`, body: '{}', headers: {authorization: auth}},
  {name: `Authorization #${i} in a batch`, method: 'POST', url: '/v1/batch', body: JSON.stringify({requests: [{path: '/buckets/b/collections/c/records/x', headers: {Authorization: auth}}]}), status: 200},
])

/** `_token`s that are not ours: 400 errno 107. */
const tokens = [
  '',
  '====',
  b64('null'),
  b64('[]'),
  b64('"x"'),
  b64('{}'),
  b64('{"last_object":[],"offset":0,"nonce":"n"}'),
  b64('{"last_object":{"last_modified":"x"},"offset":-1,"nonce":null}'),
  b64('{"last_object":{"id":{"a":[]}},"offset":1e999,"nonce":"n"}'),
  b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
  b64('{"last_object":{"\\u0000":1},"offset":0,"nonce":"n"}'),
  b64('{"last_object":' + '{"a":'.repeat(500) + '1' + '}'.repeat(500) + ',"offset":0,"nonce":"n"}'),
  'A'.repeat(4000),
  '%00',
]
const tokenCases: Case[] = tokens.flatMap((t, i) => [
  {name: `_token #${i} on GET`, method: 'GET', url: `${R}?_token=${t}`},
  {name: `_token #${i} on DELETE`, method: 'DELETE', url: `${R}?_token=${t}&_limit=1`},
])

/** Batches that must be refused whole (400 errno 107) — nothing in them runs. */
const batchRefused: Case[] = [
  ['a batch inside a batch (prefixed)', '{"requests": [{"method": "POST", "path": "/v1/batch", "body": {"requests": []}}]}'],
  ['a batch inside a batch (trailing slash)', '{"requests": [{"method": "POST", "path": "/batch/"}]}'],
  ['a batch inside a batch (querystring)', '{"requests": [{"method": "POST", "path": "/batch?x=1"}]}'],
  ['a batch inside a batch (percent-encoded)', '{"requests": [{"method": "POST", "path": "/%62atch", "body": {"requests": [{"path": "/"}]}}]}'],
  ['a batch inside a batch (encoded slash)', '{"requests": [{"method": "POST", "path": "/v1%2Fbatch"}]}'],
  ['non-object entries', '{"requests": [null, [], "GET /", 5, true]}'],
  ['path is a URL', '{"requests": [{"path": "http://evil.example/v1/"}]}'],
  ['path is empty', '{"requests": [{"path": ""}]}'],
  ['defaults not an object', '{"defaults": [], "requests": [{"path": "/"}]}'],
  ['defaults with a bad method', '{"defaults": {"method": "CONNECT"}, "requests": [{"path": "/"}]}'],
  ['requests is null', '{"requests": null}'],
  ['NUL in a path', '{"requests": [{"path": "/buckets/\\u0000"}]}'],
  ['body is a string', '{"requests": [{"method": "POST", "path": "/buckets", "body": "x"}]}'],
  ['heartbeat', '{"requests": [{"path": "/__heartbeat__"}]}'],
  ['heartbeat (prefixed)', '{"requests": [{"path": "/v1/__heartbeat__"}]}'],
  ['heartbeat (trailing slash)', '{"requests": [{"path": "/__heartbeat__/"}]}'],
  ['heartbeat (percent-encoded)', '{"requests": [{"path": "/%5F%5Fheartbeat%5F%5F"}]}'],
  ['lbheartbeat', '{"requests": [{"path": "/__lbheartbeat__"}]}'],
  ['version', '{"requests": [{"path": "/__version__"}]}'],
  ['a private path after a public one', '{"requests": [{"method": "PUT", "path": "/buckets/never", "body": {}}, {"path": "/__heartbeat__"}]}'],
].map(([name, body]) => ({name: `batch refused: ${name}`, method: 'POST', url: '/v1/batch', body, status: 400, errno: 107}))

/** Sub-requests that fail on their own (a 4xx in the responses), the batch answering 200. */
const batchSubErrors: Case[] = [
  ['a path outside /v1', '{"requests": [{"path": "/v2/buckets"}]}'],
  ['a path climbing up', '{"requests": [{"path": "/../../etc/passwd"}]}'],
  ['a double slash', '{"requests": [{"path": "//evil.example/x"}]}'],
  ['invalid UTF-8 in a sub-path', '{"requests": [{"path": "/buckets/%C3%28"}]}'],
  ['NUL in a sub-path', '{"requests": [{"path": "/buckets/b/collections/c/records/%00"}]}'],
  ['a bad If-Match in a sub-request', '{"requests": [{"method": "PUT", "path": "/buckets/b/collections/c/records/x", "headers": {"If-Match": "nope"}, "body": {}}]}'],
  ['a deep sub-body', JSON.stringify({requests: [{method: 'POST', path: '/buckets/b/collections/c/records', body: {data: {a: JSON.parse(deep(95))}}}]})],
  ['an odd Content-Type in a sub-request', '{"requests": [{"method": "POST", "path": "/buckets/b/collections/c/records", "headers": {"Content-Type": "text/plain"}}]}'],
  ['a huge header value', JSON.stringify({requests: [{path: '/', headers: {'X-Big': 'x'.repeat(100000)}}]})],
  ['an empty list', '{"requests": []}'],
].map(([name, body]) => ({name: `batch: ${name}`, method: 'POST', url: '/v1/batch', body, status: 200}))

/** Multi-level nesting within the limit, and just beyond it. */
const depthCases: Case[] = [
  {name: 'nesting 100 (the limit) is accepted', method: 'POST', url: R, body: `{"data": {"a": ${deep(98)}}}`, status: 201},
  {name: 'nesting 101 is refused', method: 'POST', url: R, body: `{"data": {"a": ${deep(99)}}}`, status: 400, errno: 107},
  {name: 'nesting 100000 is refused', method: 'POST', url: R, body: `{"data": {"a": ${deep(100000)}}}`, status: 400, errno: 107},
  {name: 'nesting in a PATCH', method: 'PATCH', url: `${R}/x`, body: `{"data": {"a": ${deep(5000)}}}`, status: 400, errno: 107},
  {name: 'nesting in a JSON-Patch', method: 'PATCH', url: `${R}/x`, body: `[{"op": "add", "path": "/data/a", "value": ${deep(5000)}}]`, headers: {'content-type': 'application/json-patch+json'}, status: 400, errno: 107},
  {name: 'nesting in a batch', method: 'POST', url: '/v1/batch', body: `{"requests": ${deep(5000)}}`, status: 400, errno: 107},
  {name: 'unbalanced brackets', method: 'POST', url: R, body: '['.repeat(50000), status: 400, errno: 107},
  {name: 'brackets inside strings do not count', method: 'POST', url: R, body: JSON.stringify({data: {a: '['.repeat(5000)}}), status: 201},
]

const sortFields = (n: number) => Array.from({length: n}, (_, i) => `f${i}`).join(',')
const filters = (n: number) => Array.from({length: n}, (_, i) => `f${i}=1`).join('&')

/**
 * Lists sorted on thousands of fields or filtered by tens of thousands of parameters: PostgreSQL
 * refuses the statement (1,664 columns, 65,535 bind parameters) and a page token over n sort
 * fields builds n² conditions. Bounded: 400 errno 107, never a 503 that tells clients to retry.
 */
const listLimitCases: Case[] = [
  {name: '_sort with 32 fields (the limit)', method: 'GET', url: `${R}?_sort=${sortFields(32)}`, status: 200},
  {name: '_sort with 33 fields', method: 'GET', url: `${R}?_sort=${sortFields(33)}`, status: 400, errno: 107},
  {name: '_sort with 2,000 fields', method: 'GET', url: `${R}?_sort=${sortFields(2000)}`, status: 400, errno: 107},
  {name: '_sort with 2,000 fields on DELETE', method: 'DELETE', url: `${R}?_sort=${sortFields(2000)}&_limit=1`, status: 400, errno: 107},
  {name: '500 filters (the limit)', method: 'GET', url: `${R}?${filters(500)}`, status: 200},
  {name: '501 filters', method: 'GET', url: `${R}?${filters(501)}`, status: 400, errno: 107},
  {name: '25,000 filters', method: 'GET', url: `${R}?${filters(25_000)}`, status: 400, errno: 107},
  {name: '25,000 filters on DELETE', method: 'DELETE', url: `${R}?${filters(25_000)}&_limit=1`, status: 400, errno: 107},
  {name: '25,000 ignored parameters', method: 'GET', url: `${R}?${Array.from({length: 25_000}, (_, i) => `_x${i}=1`).join('&')}`, status: 200},
]

/** Methods Kinto does not serve, on every kind of endpoint: 405 (or 400 for the parser's). */
const methodCases: Case[] = ['PROPFIND', 'LOCK', 'MKCOL', 'PURGE', 'SEARCH', 'REPORT', 'TRACE', 'OPTIONS', 'PATCH', 'PUT'].flatMap((method) =>
  ['/v1/', '/v1/batch', '/v1/__heartbeat__', R, '/v1/buckets'].map((url) => ({name: `${method} ${url}`, method, url})),
)

export const ALL = [
  ...bodies,
  ...okBodies,
  ...queryCases,
  ...paths,
  ...headerCases,
  ...batchCases,
  ...batchOk,
  ...encodings,
  ...authCases,
  ...tokenCases,
  ...batchRefused,
  ...batchSubErrors,
  ...depthCases,
  ...methodCases,
  ...listLimitCases,
]

/** The bucket b, collection c, record x and three more records the cases run against. */
export async function prepare(app: FastifyInstance): Promise<void> {
  const put = (url: string) =>
    app.inject({method: 'PUT', url, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: '{}'})
  expect((await put('/v1/buckets/b')).statusCode).toBe(201)
  expect((await put('/v1/buckets/b/collections/c')).statusCode).toBe(201)
  expect((await put(`${R}/x`)).statusCode).toBe(201)
  for (let i = 0; i < 3; i++) {
    await app.inject({method: 'POST', url: R, headers: {authorization: ALICE, 'content-type': 'application/json'}, payload: JSON.stringify({data: {title: `t${i}`, n: i}})})
  }
}


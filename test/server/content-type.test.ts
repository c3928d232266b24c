/**
 * Content-Type rules as upstream: JSON types accepted, other types 415, and NO Content-Type at all
 * accepted with the body read as JSON (cornice registers every view for the empty type too), so that
 * `curl -X PUT …/buckets/b` and clients that send a bare body keep working.
 */
import {afterAll, describe, expect, it} from 'vitest'

import {ALICE, memoryApp} from './helpers.js'

const app = memoryApp({'kinto.bucket_create_principals': 'system.Authenticated'})
afterAll(() => app.close())

async function put(url: string, payload: string | Buffer | undefined, contentType: string | undefined) {
  const headers: Record<string, string> = {authorization: ALICE}
  if (contentType !== undefined) headers['content-type'] = contentType
  const res = await app.inject({method: 'PUT', url, headers, payload})
  return {status: res.statusCode, body: JSON.parse(res.body)}
}

describe('request Content-Type', () => {
  it('a PUT with no body and no Content-Type creates the object', async () => {
    const r = await put('/v1/buckets/no-body', undefined, undefined)
    expect(r.status).toBe(201)
    expect(r.body.data.id).toBe('no-body')
  })

  it('a body without Content-Type is read as JSON', async () => {
    const r = await put('/v1/buckets/bare-json', '{"data": {"x": 1}}', undefined)
    expect(r.status).toBe(201)
    expect(r.body.data.x).toBe(1)
  })

  it('an invalid body without Content-Type is a 400 errno 107, not a 415 or 500', async () => {
    const r = await put('/v1/buckets/bad-json', '{"data":', undefined)
    expect(r.status).toBe(400)
    expect(r.body.errno).toBe(107)
  })

  it('a non-JSON Content-Type is still refused with 415', async () => {
    const r = await put('/v1/buckets/text', '{}', 'text/plain')
    expect(r.status).toBe(415)
    expect(r.body.errno).toBe(107)
  })

  it('a body is decoded with the charset its Content-Type names (as upstream), UTF-8 when none', async () => {
    const latin1 = Buffer.from('{"data": {"name": "Andr\u00e9"}}', 'latin1')
    for (const type of ['application/json; charset=latin1', 'application/json; charset="ISO-8859-1"', 'application/json;charset=iso-8859-1']) {
      const r = await put('/v1/buckets/latin1', latin1, type)
      expect(r.status, type).toBeLessThan(300)
      expect(r.body.data.name, type).toBe('Andr\u00e9')
    }
    const utf16 = await put('/v1/buckets/utf16', Buffer.from('{"data": {"name": "\u65e5\u672c"}}', 'utf16le'), 'application/json; charset=utf-16le')
    expect(utf16.body.data.name).toBe('\u65e5\u672c')
    // The same bytes as UTF-8 are not UTF-8.
    expect((await put('/v1/buckets/latin1', latin1, 'application/json')).status).toBe(400)
    expect((await put('/v1/buckets/latin1', latin1, 'application/json; charset=utf-8')).status).toBe(400)
  })

  it('a latin1 body through the default bucket keeps its characters', async () => {
    const personal = memoryApp({'kinto.includes': 'kinto.plugins.default_bucket', 'kinto.bucket_create_principals': 'system.Authenticated'})
    try {
      const res = await personal.inject({
        method: 'POST',
        url: '/v1/buckets/default/collections/c/records',
        headers: {authorization: ALICE, 'content-type': 'application/json; charset=latin1'},
        // data.id names `default`: the body is rewritten with the bucket's id
        payload: Buffer.from('{"data": {"id": "default-r", "name": "Andr\u00e9"}}', 'latin1'),
      })
      expect(res.statusCode, res.body).toBe(201)
      expect(JSON.parse(res.body).data).toMatchObject({id: expect.stringMatching(/-r$/), name: 'Andr\u00e9'})
    } finally {
      await personal.close()
    }
  })

  it('a charset nobody knows is a 400 errno 107 (upstream fails with a 500)', async () => {
    const r = await put('/v1/buckets/unknown', '{}', 'application/json; charset=klingon')
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({errno: 107, message: 'Invalid JSON: unknown charset "klingon"'})
  })
})

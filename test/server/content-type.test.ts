/**
 * Content-Type rules as upstream: JSON types accepted, other types 415, and NO Content-Type at all
 * accepted with the body read as JSON (cornice registers every view for the empty type too), so that
 * `curl -X PUT …/buckets/b` and clients that send a bare body keep working.
 */
import {afterAll, describe, expect, it} from 'vitest'

import {ALICE, memoryApp} from './helpers.js'

const app = memoryApp({'kinto.bucket_create_principals': 'system.Authenticated'})
afterAll(() => app.close())

async function put(url: string, payload: string | undefined, contentType: string | undefined) {
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
})

/**
 * A database that cannot be reached (down, restarting, out of connections) is the backend's failure:
 * 503 errno 201 with Retry-After, as upstream answers backend errors — not a 500 "programmatic error".
 */
import {afterAll, describe, expect, it} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {createApp} from '../../src/lib/server/app.js'
import {ALICE} from './helpers.js'

// Port 1 on loopback: nothing listens there, the connection is refused at once.
const url = 'postgresql://postgres@127.0.0.1:1/kinto'
const settings = buildSettings(
  {
    'kinto.storage_backend': 'kinto.core.storage.postgresql',
    'kinto.storage_url': url,
    'kinto.permission_backend': 'kinto.core.permission.postgresql',
    'kinto.permission_url': url,
    'kinto.bucket_create_principals': 'system.Authenticated',
  },
  {},
)
const backends = createBackends(settings)
const app = createApp({settings, backends})
afterAll(async () => {
  await app.close()
  await backends.close()
})

describe('database unreachable', () => {
  it.each([
    ['GET', '/v1/buckets/b1/collections/c1/records'],
    ['GET', '/v1/buckets/b1'],
    ['PUT', '/v1/buckets/b1'],
  ])('%s %s answers 503 errno 201 with Retry-After', async (method, url) => {
    const res = await app.inject({method: method as 'GET' | 'PUT', url, headers: {authorization: ALICE}})
    expect(res.statusCode).toBe(503)
    expect(JSON.parse(res.body).errno).toBe(201)
    expect(res.headers['retry-after']).toBe('3')
  })

  it('the heartbeat reports the backends as failing', async () => {
    const res = await app.inject({method: 'GET', url: '/v1/__heartbeat__'})
    expect(res.statusCode).toBe(503)
    expect(JSON.parse(res.body)).toMatchObject({storage: false, permission: false})
  })
})

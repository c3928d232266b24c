/**
 * A database that cannot be reached (down, restarting, out of connections) is the backend's failure:
 * 503 errno 201 with Retry-After, as upstream answers backend errors — not a 500 "programmatic error".
 */
import net from 'node:net'

import {afterAll, describe, expect, it} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {createApp} from '../../src/lib/server/app.js'
import {postgresqlSettings} from '../helpers/db.js'
import {ALICE} from './helpers.js'

// Port 1 on loopback: nothing listens there, the connection is refused at once.
const url = 'postgresql://postgres@127.0.0.1:1/kinto'
const settings = buildSettings(
  {
    ...postgresqlSettings(url, ['storage', 'permission']),
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

describe('storage_max_backlog', () => {
  it('a request that would wait behind the backlog for a connection is answered 503 errno 201 at once', async () => {
    // A server that accepts and never answers: the pool's only connection stays opening.
    const sockets: net.Socket[] = []
    const silent = net.createServer((socket) => sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const port = (silent.address() as net.AddressInfo).port
    const stuckUrl = `postgresql://postgres@127.0.0.1:${port}/kinto`
    const stuck = buildSettings(
      {
        ...postgresqlSettings(stuckUrl, ['storage', 'permission']),
        'kinto.storage_pool_size': '1',
        'kinto.storage_max_overflow': '0',
        'kinto.storage_max_backlog': '0',
        'kinto.storage_connect_timeout': '3',
      },
      {},
    )
    const stuckBackends = createBackends(stuck)
    const stuckApp = createApp({settings: stuck, backends: stuckBackends})
    try {
      const first = stuckApp.inject({method: 'GET', url: '/v1/buckets/b1', headers: {authorization: ALICE}})
      await new Promise((resolve) => setTimeout(resolve, 100))
      const started = Date.now()
      const second = await stuckApp.inject({method: 'GET', url: '/v1/buckets/b1', headers: {authorization: ALICE}})
      expect(Date.now() - started).toBeLessThan(1500)
      expect(second.statusCode).toBe(503)
      expect(JSON.parse(second.body).errno).toBe(201)
      expect(second.headers['retry-after']).toBe('3')
      expect((await first).statusCode).toBe(503)
    } finally {
      await stuckApp.close()
      await stuckBackends.close()
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  }, 20_000)
})

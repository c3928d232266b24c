/** Helpers for in-process server tests: an app on memory backends, driven through app.inject. */
import type {FastifyInstance, InjectOptions} from 'fastify'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {createApp} from '../../src/lib/server/app.js'

export function basic(user: string, password = 'secret'): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
}

export const ALICE = basic('alice')
export const BOB = basic('bob')

/** An app on fresh memory backends with the given raw ini settings (`kinto.` prefix optional). */
export function memoryApp(raw: Record<string, string> = {}): FastifyInstance {
  const settings = buildSettings(raw, {})
  const backends = createBackends(settings)
  const app = createApp({settings, backends})
  app.addHook('onClose', async () => backends.close())
  return app
}

export interface Res {
  status: number
  headers: Record<string, string | string[] | number | undefined>
  body: any
  raw: string
}

/** A small client over inject: JSON in, JSON out. */
export function client(app: FastifyInstance, defaultAuth: string | null = ALICE) {
  return async function request(
    method: string,
    url: string,
    options: {body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; auth?: string | null} = {},
  ): Promise<Res> {
    const headers: Record<string, string> = {}
    const auth = options.auth === undefined ? defaultAuth : options.auth
    if (auth) headers.authorization = auth
    let payload: string | Buffer | undefined
    if (options.raw !== undefined) {
      payload = options.raw
      headers['content-type'] = 'application/json'
    } else if (options.body !== undefined) {
      payload = JSON.stringify(options.body)
      headers['content-type'] = 'application/json'
    }
    Object.assign(headers, options.headers)
    const res = await app.inject({method: method as InjectOptions['method'], url, headers, payload})
    let body: unknown = undefined
    if (res.body) {
      try {
        body = JSON.parse(res.body)
      } catch {
        body = res.body
      }
    }
    return {status: res.statusCode, headers: res.headers as Res['headers'], body, raw: res.body}
  }
}

/**
 * An app on the postgresql backends over a fresh test database (PGlite here, the real server
 * when KINTO_TEST_DATABASE_URL is set), schema installed. `close()` also drops the database.
 */
export async function postgresApp(raw: Record<string, string> = {}): Promise<{app: FastifyInstance; url: string; close(): Promise<void>}> {
  const {createTestDatabase, postgresqlSettings} = await import('../helpers/db.js')
  const {DatabaseRegistry} = await import('../../src/lib/db/index.js')
  const {ensureSchema} = await import('../../src/lib/schema/index.js')
  const db = await createTestDatabase({schema: true})
  const registry = new DatabaseRegistry()
  await ensureSchema(registry.get(db.url), ['storage', 'permission', 'cache'])
  const settings = buildSettings({...postgresqlSettings(db.url), ...raw}, {})
  const backends = createBackends(settings, {registry})
  const app = createApp({settings, backends})
  return {
    app,
    url: db.url,
    async close() {
      await app.close()
      await backends.close()
      await registry.closeAll()
      await db.drop()
    },
  }
}

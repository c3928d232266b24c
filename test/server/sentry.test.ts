/**
 * Sentry with the real SDK (@sentry/node) against a loopback ingest: an HTTP listener on
 * 127.0.0.1 accepting envelopes plays sentry.io. An unexpected error (500) arrives as an event
 * with the request id, method, path and user id; a warning record arrives as an event at the
 * events level; and no secret of the ini or of the requests (hmac secret, Authorization header,
 * passwords, tokens) is in any byte received.
 */
import {createServer, type Server} from 'node:http'
import {gunzipSync} from 'node:zlib'

import {afterEach, describe, expect, test, vi} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {parseIni} from '../../src/lib/config/ini.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {KintoError} from '../../src/lib/errors.js'
import {KintoLogging, loggingPlan} from '../../src/lib/monitoring/index.js'
import {createApp} from '../../src/lib/server/app.js'
import {postgresqlSettings} from '../helpers/db.js'

const HMAC_SECRET = 'hmac-sentry-Zq81xw0p'
const PASSWORD = 'pw-sentry-Lk29vbn4'
const BEARER = 'tok-sentry-Qw73Rt55yy'
const PUBLIC_KEY = 'abcdef0123456789abcdef0123456789'
/** A password given as a URL parameter (redis-py and libpq read `?password=`). */
const PARAM_PASSWORD = 'pw-param-Hy62Nc0r'

interface Ingest {
  server: Server
  dsn: string
  /** Every byte received: request lines, headers and bodies (decompressed). */
  raw: string[]
  envelopes: Array<{header: Record<string, unknown>; items: Array<{header: Record<string, unknown>; payload: Record<string, unknown>}>}>
}

async function ingest(): Promise<Ingest> {
  const raw: string[] = []
  const envelopes: Ingest['envelopes'] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let body = Buffer.concat(chunks)
      raw.push(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${body.toString('latin1')}`)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      const text = body.toString('utf8')
      raw.push(text)
      const lines = text.split('\n').filter(Boolean)
      const envelope: Ingest['envelopes'][number] = {header: JSON.parse(lines[0]), items: []}
      for (let i = 1; i + 1 < lines.length; i += 2) envelope.items.push({header: JSON.parse(lines[i]), payload: JSON.parse(lines[i + 1])})
      envelopes.push(envelope)
      res.writeHead(200, {'content-type': 'application/json'})
      res.end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  return {server, dsn: `http://${PUBLIC_KEY}@127.0.0.1:${port}/42`, raw, envelopes}
}

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

function jsonIni(): string {
  return [
    '[loggers]',
    'keys = root',
    '[handlers]',
    'keys = console',
    '[formatters]',
    'keys = json',
    '[logger_root]',
    'level = DEBUG',
    'handlers = console',
    '[handler_console]',
    'class = StreamHandler',
    'args = (sys.stdout,)',
    'level = DEBUG',
    'formatter = json',
    '[formatter_json]',
    'class = kinto.core.JsonLogFormatter',
    '',
  ].join('\n')
}

describe('Sentry', () => {
  // First: the other test loads the SDK into this process.
  test('no DSN: the SDK is not loaded', async () => {
    const settings = buildSettings({'kinto.userid_hmac_secret': HMAC_SECRET}, {})
    const backends = createBackends(settings)
    const app = createApp({settings, backends})
    closers.push(async () => {
      await app.close()
      await backends.close()
    })
    expect((await app.inject({method: 'GET', url: '/v1/'})).statusCode).toBe(200)
    const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((p) => p.includes('@sentry/node'))
    expect(loaded).toBe(false)
  })

  test('a DSN the SDK cannot read: the app is not built (upstream fails too), and the DSN is never printed', () => {
    // The SDK writes a DSN it cannot read, public key and all, to the console and runs without
    // reporting; the key must not reach the operator's logs, and the server must not run blind.
    const printed: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      printed.push(String(chunk))
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest)
    })
    const consoleError = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')))
    try {
      for (const [dsn, problem] of [
        ['https://secretkey0123456789@o1.ingest.sentry.io/', /no project id/],
        ['https://secret-key-0123456789@o1.ingest.sentry.io/42', /public key/],
      ] as const) {
        const settings = buildSettings({'kinto.userid_hmac_secret': HMAC_SECRET, 'kinto.sentry_dsn': dsn}, {})
        const backends = createBackends(settings)
        closers.push(() => backends.close())
        let thrown: unknown
        try {
          createApp({settings, backends})
        } catch (error) {
          thrown = error
        }
        expect(thrown, dsn).toBeInstanceOf(KintoError)
        expect((thrown as KintoError).code).toBe('KINTO_CONFIG_INVALID')
        expect((thrown as KintoError).message).toMatch(problem)
        expect((thrown as KintoError).message).not.toContain('secret')
      }
      expect(printed.join('\n')).not.toContain('secret')
    } finally {
      stderr.mockRestore()
      consoleError.mockRestore()
    }
  })

  test('an unexpected error and a warning arrive as events, scrubbed', async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    const logging = new KintoLogging(loggingPlan(parseIni(jsonIni())), {projectName: 'kinto', stdout: {write: () => true}})
    const settings = buildSettings(
      {
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.sentry_dsn': sink.dsn,
        'kinto.sentry_env': 'test-env',
        // A secret URL setting no backend of this test opens.
        'kinto.example_url': `redis://cache.invalid:6379/0?password=${PARAM_PASSWORD}`,
        // Upstream plugin we do not carry: a WARNING at start-up.
        'kinto.includes': 'kinto.plugins.quotas',
      },
      {},
    )
    const backends = createBackends(settings)
    // A bug in the storage, whose message happens to carry the hmac secret.
    const transaction = backends.transaction.bind(backends)
    backends.transaction = (fn) =>
      transaction((tx) => {
        const storage = Object.create(tx.storage) as typeof tx.storage
        storage.create = async () => {
          throw new TypeError(`storage bug near ${HMAC_SECRET} and ${PARAM_PASSWORD}`)
        }
        return fn({...tx, storage})
      })
    const app = createApp({settings, backends, logger: logging.root})
    let closed = false
    closers.push(async () => {
      if (!closed) await app.close()
      await backends.close()
    })

    const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`
    const ok = await app.inject({method: 'GET', url: '/v1/', headers: {authorization: `Bearer ${BEARER}`}})
    expect(ok.statusCode).toBe(200)
    const failed = await app.inject({
      method: 'PUT',
      url: '/v1/buckets/b1?token=' + BEARER,
      headers: {authorization: basic, 'x-request-id': 'req-sentry-1', 'content-type': 'application/json', cookie: `session=${BEARER}`},
      payload: JSON.stringify({data: {password: PASSWORD}}),
    })
    expect(failed.statusCode).toBe(500)
    const userId = JSON.parse((await app.inject({method: 'GET', url: '/v1/', headers: {authorization: basic}})).body).user.id as string
    // Closing the app flushes the SDK (bounded: 2 s).
    await app.close()
    closed = true

    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    const error = events.find((e) => e.exception?.values?.[0]?.type === 'TypeError')
    expect(error, JSON.stringify(events.map((e) => [e.message, e.exception?.values?.[0]?.type]))).toBeDefined()
    expect(error.exception.values[0].type).toBe('TypeError')
    expect(error.tags).toMatchObject({request_id: 'req-sentry-1', status: '500'})
    expect(error.request).toEqual({method: 'PUT', url: '/v1/buckets/b1'})
    expect(error.user).toEqual({id: userId})
    expect(userId).toMatch(/^basicauth:[0-9a-f]{64}$/)
    expect(error.environment).toBe('test-env')
    expect(error.exception.values[0].value).toContain('[Filtered]')

    const warning = events.find((e) => /kinto\.plugins\.quotas/.test(JSON.stringify(e.message ?? e.exception)))
    expect(warning).toBeDefined()
    expect(warning.level).toBe('warning')
    // Only one event per failure: the error's log line is not a second event.
    expect(events.filter((e) => e.exception?.values?.[0]?.type === 'TypeError')).toHaveLength(1)

    const received = sink.raw.join('\n')
    expect(received.length).toBeGreaterThan(0)
    for (const secret of [HMAC_SECRET, PARAM_PASSWORD, PASSWORD, BEARER, basic, basic.slice(6)]) expect(received, secret).not.toContain(secret)
  }, 60_000)

  test("an error's breadcrumbs are its own request's, never other users' requests", async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    const logging = new KintoLogging(loggingPlan(parseIni(jsonIni())), {projectName: 'kinto', stdout: {write: () => true}})
    const settings = buildSettings({'kinto.userid_hmac_secret': HMAC_SECRET, 'kinto.sentry_dsn': sink.dsn}, {})
    const backends = createBackends(settings)
    // A bug in the storage when Bob creates a bucket.
    const transaction = backends.transaction.bind(backends)
    backends.transaction = (fn) =>
      transaction((tx) => {
        const storage = Object.create(tx.storage) as typeof tx.storage
        storage.create = async () => {
          throw new TypeError('storage bug')
        }
        return fn({...tx, storage})
      })
    const app = createApp({settings, backends, logger: logging.root})
    closers.push(() => backends.close())
    const alice = `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`
    const bob = `Basic ${Buffer.from('bob:bob-pw').toString('base64')}`
    expect((await app.inject({method: 'GET', url: '/v1/buckets?private=alice-query', headers: {authorization: alice, 'x-request-id': 'req-alice'}})).statusCode).toBe(200)
    expect((await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: bob, 'x-request-id': 'req-bob'}})).statusCode).toBe(500)
    // Closing the app flushes the SDK (bounded: 2 s).
    await app.close()
    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    const error = events.find((e) => e.tags?.request_id === 'req-bob')
    expect(error).toBeDefined()
    const crumbs = (error.breadcrumbs ?? []) as Array<{category: string; data?: {rid?: string}}>
    // Bob's request's own records are kept; Alice's request is not Bob's error's context.
    expect(crumbs.some((c) => c.data?.rid === 'req-bob')).toBe(true)
    expect(crumbs.filter((c) => c.data?.rid !== undefined && c.data.rid !== 'req-bob')).toEqual([])
    expect(JSON.stringify(error)).not.toContain('alice-query')
  }, 60_000)

  test('a database that cannot be reached is reported (a backend failure, not a deliberate 503)', async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const url = `postgresql://kinto:${PASSWORD}@127.0.0.1:1/kinto`
    const settings = buildSettings(
      {
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.sentry_dsn': sink.dsn,
        ...postgresqlSettings(url, ['storage', 'permission']),
      },
      {},
    )
    const backends = createBackends(settings)
    closers.push(() => backends.close())
    const app = createApp({settings, backends})
    const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`
    const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: basic, 'x-request-id': 'req-db-down'}})
    expect(res.statusCode).toBe(503)
    expect(JSON.parse(res.body).errno).toBe(201)
    // Closing the app flushes the SDK (bounded: 2 s).
    await app.close()
    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    const reported = events.filter((e) => e.tags?.request_id === 'req-db-down')
    expect(reported, JSON.stringify(events.map((e) => e.message ?? e.exception?.values?.[0]?.value))).toHaveLength(1)
    expect(reported[0].tags.status).toBe('503')
    expect(reported[0].exception.values[0].value).toMatch(/Cannot connect to PostgreSQL/)
    expect(sink.raw.join('\n')).not.toContain(PASSWORD)
  }, 60_000)

  test('with the logs on (as kinto start runs), an unreachable database is still one event per request, and a heartbeat probe one per check', async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    const url = `postgresql://kinto:${PASSWORD}@127.0.0.1:1/kinto`
    const logging = new KintoLogging(loggingPlan(parseIni(jsonIni())), {projectName: 'kinto', stdout: {write: () => true}})
    const settings = buildSettings(
      {
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.sentry_dsn': sink.dsn,
        ...postgresqlSettings(url, ['storage', 'permission']),
      },
      {},
    )
    const backends = createBackends(settings)
    closers.push(() => backends.close())
    const app = createApp({settings, backends, logger: logging.root})
    const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`
    const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: basic, 'x-request-id': 'req-db-down'}})
    expect(res.statusCode).toBe(503)
    app.kinto.heartbeats.set('broken', async () => {
      throw new Error('attachments folder is gone')
    })
    const heartbeat = await app.inject({method: 'GET', url: '/v1/__heartbeat__', headers: {'x-request-id': 'req-hb-down'}})
    expect(heartbeat.statusCode).toBe(503)
    await app.close()
    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    const summary = JSON.stringify(events.map((e) => [e.tags?.request_id, e.message ?? e.exception?.values?.[0]?.value]))
    // the exception, once: its CRITICAL log line is the same failure, not a second event
    const reported = events.filter((e) => e.tags?.request_id === 'req-db-down')
    expect(reported, summary).toHaveLength(1)
    expect(reported[0].exception.values[0].value).toMatch(/Cannot connect to PostgreSQL/)
    // a heartbeat's failing checks are ERROR records (upstream's "Heartbeat Error" events), one per check
    const probes = events.filter((e) => e.tags?.request_id === 'req-hb-down')
    expect(probes.map((e) => e.message).sort(), summary).toEqual(["'broken' heartbeat failed.", "'permission' heartbeat failed.", "'storage' heartbeat failed."])
    expect(sink.raw.join('\n')).not.toContain(PASSWORD)
  }, 60_000)

  test("SENTRY_RELEASE and SENTRY_ENVIRONMENT, which upstream's SDK reads, set the release and the environment", async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    vi.stubEnv('SENTRY_RELEASE', 'kinto@9.9.9-qa')
    vi.stubEnv('SENTRY_ENVIRONMENT', 'stage-qa')
    closers.push(async () => void vi.unstubAllEnvs())
    const settings = buildSettings({'kinto.userid_hmac_secret': HMAC_SECRET, 'kinto.sentry_dsn': sink.dsn}, {})
    const backends = createBackends(settings)
    closers.push(() => backends.close())
    const app = createApp({settings, backends})
    await app.close()
    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    expect(events.length).toBeGreaterThan(0)
    for (const event of events) expect([event.release, event.environment]).toEqual(['kinto@9.9.9-qa', 'stage-qa'])
  }, 60_000)

  test('once the app is built, the start-up event upstream documents as the setup check', async () => {
    const sink = await ingest()
    closers.push(() => new Promise((r) => sink.server.close(() => r())))
    const settings = buildSettings(
      {'kinto.userid_hmac_secret': HMAC_SECRET, 'kinto.sentry_dsn': sink.dsn, 'kinto.project_name': 'remote-settings', 'kinto.project_version': '9.8.7'},
      {},
    )
    const backends = createBackends(settings)
    closers.push(() => backends.close())
    const app = createApp({settings, backends})
    // Closing the app flushes the SDK (bounded: 2 s).
    await app.close()
    const events = sink.envelopes.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload as any))
    const started = events.filter((e) => e.message === 'Running remote-settings 9.8.7.')
    expect(started, JSON.stringify(events.map((e) => e.message))).toHaveLength(1)
    expect(started[0].level).toBe('info')
  }, 60_000)

})

/**
 * docs/scaling.md, run: two `kinto start` processes on two ports sharing one PostgreSQL database and
 * one Redis. An account login verified (and cached) by one is honoured by the other from the cache;
 * an OpenID access token verified by one (at a real provider, oidc-provider) is not verified again
 * by the other; a pagination token of a DELETE issued by one is accepted by the other, once.
 *
 * PostgreSQL: KINTO_TEST_DATABASE_URL when set, else the server on 127.0.0.1:5432 when it answers
 * (a database of the test's own is created and dropped); SKIPPED when there is none, or no Redis.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {accountCacheKey} from '../../src/lib/accounts/index.js'
import {RedisCache} from '../../src/lib/cache/redis.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {redisMissing, stopAll, testRedisUrl, uniquePrefix} from '../helpers/cache-servers.js'
import {runCli} from '../helpers/cli.js'
import {createServerDatabase, postgresqlSettings, realServerUrl, type TestDatabase} from '../helpers/db.js'
import {freePort} from '../helpers/deploy-servers.js'
import {Browser, startProvider, tokensFrom, type TestProvider} from '../helpers/oidc-provider.js'
import {spawnStart, type Started} from '../helpers/ops-servers.js'

const CALLBACK = 'http://127.0.0.1:9/app/#tokens='

const LOCAL_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'

async function adminUrl(): Promise<string | null> {
  if (realServerUrl) return realServerUrl
  const client = new pg.Client({connectionString: LOCAL_ADMIN_URL, connectionTimeoutMillis: 2000})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return LOCAL_ADMIN_URL
  } catch {
    return null
  } finally {
    await client.end().catch(() => {})
  }
}

const admin = await adminUrl()
const redisSkip = await redisMissing()
const skip = !admin ? 'SKIPPED: no PostgreSQL server (KINTO_TEST_DATABASE_URL unset and nothing on 127.0.0.1:5432)' : redisSkip

describe.skipIf(skip !== '')(`two kinto start sharing PostgreSQL and Redis ${skip}`, () => {
  let db: TestDatabase
  let dir: string
  let ini: string
  let a: Started
  let b: Started
  let cache: RedisCache
  let provider: TestProvider
  const secret = randomBytes(32).toString('hex')
  const prefix = uniquePrefix('scaling')
  const alice = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`

  beforeAll(async () => {
    db = await createServerDatabase(admin!)
    const redisUrl = (await testRedisUrl())!
    // The provider is read at start (discovery), and knows both servers' token endpoints.
    const ports = [await freePort(), await freePort()]
    provider = await startProvider()
    await provider.configure([
      {client_id: 'kinto', client_secret: 'kinto-secret', redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/v1/openid/oidc/token`)},
    ])
    dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-scaling-'))
    ini = path.join(dir, 'kinto.ini')
    const settings: Record<string, string> = {
      ...postgresqlSettings(db.url, ['storage', 'permission']),
      'kinto.cache_backend': 'kinto.core.cache.redis',
      'kinto.cache_url': redisUrl,
      'kinto.cache_prefix': prefix,
      'kinto.userid_hmac_secret': secret,
      'kinto.includes': 'kinto.plugins.accounts kinto.plugins.openid',
      'multiauth.policies': 'account oidc',
      'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
      'multiauth.policy.oidc.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
      'multiauth.policy.oidc.issuer': provider.issuer,
      'multiauth.policy.oidc.client_id': 'kinto',
      'multiauth.policy.oidc.client_secret': 'kinto-secret',
      'kinto.account_create_principals': 'system.Everyone',
      'kinto.bucket_create_principals': 'account:alice',
    }
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`)
    writeFileSync(ini, ['[server:main]', 'use = egg:waitress#main', 'host = 127.0.0.1', 'port = %(http_port)s', '', '[app:main]', 'use = egg:kinto', ...lines, ''].join('\n'), {mode: 0o600})
    const migrated = await runCli(['migrate', '--ini', ini], {env: {KINTO_TEST_DATABASE_URL: undefined}, timeoutMs: 120_000})
    expect(migrated.code, migrated.stderr).toBe(0)
    ;[a, b] = await Promise.all(ports.map((p) => spawnStart(['--ini', ini, '--port', String(p)])))
    cache = new RedisCache({url: redisUrl, prefix})
  }, 240_000)

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await provider?.close()
    await cache?.flush()
    await cache?.close()
    await db?.drop()
    await stopAll()
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  const call = (server: Started, method: string, url: string, body?: unknown, auth: string | null = alice) =>
    fetch(url.startsWith('http') ? url : `${new URL(server.url).origin}${url}`, {
      method,
      headers: {...(auth ? {Authorization: auth} : {}), ...(body ? {'Content-Type': 'application/json'} : {})},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    })

  it('the two servers are distinct processes on distinct ports', () => {
    expect(a.pid).not.toBe(b.pid)
    expect(a.url).not.toBe(b.url)
  })

  it('an account login verified by one is served by the other from the shared cache', async () => {
    expect((await call(a, 'PUT', '/v1/accounts/alice', {data: {password: 'alice-secret'}}, null)).status).toBe(201)
    const viaA = (await (await call(a, 'GET', '/v1/')).json()) as {user?: {id: string}}
    expect(viaA.user?.id).toBe('account:alice')
    const key = accountCacheKey(buildSettings({'kinto.userid_hmac_secret': secret}), 'alice')
    expect(typeof (await cache.get(key))).toBe('string')

    // Break the stored hash: from now on only the cached verification can let alice in.
    const client = new pg.Client({connectionString: db.url})
    await client.connect()
    try {
      const r = await client.query(`UPDATE objects SET data = jsonb_set(data, '{password}', '"not-a-hash"') WHERE resource_name = 'account' AND id = 'alice'`)
      expect(r.rowCount).toBe(1)
    } finally {
      await client.end()
    }
    const viaB = (await (await call(b, 'GET', '/v1/')).json()) as {user?: {id: string}}
    expect(viaB.user?.id).toBe('account:alice')
    expect((await call(b, 'PUT', '/v1/buckets/scaling', {})).status).toBe(201)

    // Without the cached entry, B checks the (broken) hash and refuses: the cache was what let alice in.
    await cache.delete(key)
    const refused = (await (await call(b, 'GET', '/v1/')).json()) as {user?: {id: string}}
    expect(refused.user).toBeUndefined()
    expect((await call(b, 'GET', '/v1/buckets/scaling')).status).toBe(401)
    // Put the login back for the next test (as A would after a successful check).
    const repaired = new pg.Client({connectionString: db.url})
    await repaired.connect()
    try {
      await repaired.query(`DELETE FROM objects WHERE resource_name = 'account' AND id = 'alice'`)
    } finally {
      await repaired.end()
    }
    expect((await call(a, 'PUT', '/v1/accounts/alice', {data: {password: 'alice-secret'}}, null)).status).toBe(201)
  }, 120_000)

  it('an OpenID access token verified by one is not verified again by the other', async () => {
    const start = `${new URL(a.url).origin}/v1/openid/oidc/login?callback=${encodeURIComponent(CALLBACK)}&scope=${encodeURIComponent('openid email')}`
    const visit = await new Browser().visit(start, CALLBACK, 'carol')
    const token = tokensFrom(visit.location, CALLBACK).access_token as string
    expect(typeof token).toBe('string')
    const bearer = `Bearer ${token}`
    const before = provider.hitsOf('/me')
    const viaA = (await (await call(a, 'GET', '/v1/', undefined, bearer)).json()) as {user?: {id: string}}
    expect(viaA.user?.id).toBe('oidc:carol')
    expect(provider.hitsOf('/me') - before).toBe(1)
    const viaB = (await (await call(b, 'GET', '/v1/', undefined, bearer)).json()) as {user?: {id: string}}
    expect(viaB.user?.id).toBe('oidc:carol')
    // Authenticated (403, not 401): only account:alice may create buckets in this ini.
    expect((await call(b, 'PUT', '/v1/buckets/carol-bucket', {}, bearer)).status).toBe(403)
    // One verification at the provider for both servers: B found A's in the shared cache.
    expect(provider.hitsOf('/me') - before).toBe(1)
    // The cache holds an HMAC of the token, never the token itself.
    const {Redis} = await import('ioredis')
    const direct = new Redis((await testRedisUrl())!, {lazyConnect: true})
    try {
      const keys = await direct.keys(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`)
      expect(keys.length).toBeGreaterThan(0)
      expect(keys.filter((k) => k.includes(token))).toEqual([])
    } finally {
      direct.disconnect()
    }
  }, 120_000)

  it('a pagination token of a DELETE issued by one is accepted by the other, and only once', async () => {
    const base = '/v1/buckets/scaling/collections/c'
    expect((await call(a, 'PUT', base, {})).status).toBe(201)
    for (let i = 0; i < 5; i++) expect((await call(a, 'POST', `${base}/records`, {data: {i}})).status).toBe(201)

    const first = await call(a, 'DELETE', `${base}/records?_limit=2`)
    expect(first.status).toBe(200)
    expect(((await first.json()) as {data: unknown[]}).data).toHaveLength(2)
    const next = first.headers.get('next-page')
    expect(next).toMatch(/_token=/)
    const onB = next!.replace(new URL(a.url).origin, new URL(b.url).origin)
    expect(onB).not.toBe(next)

    const second = await call(b, 'DELETE', onB)
    expect(second.status).toBe(200)
    expect(((await second.json()) as {data: unknown[]}).data).toHaveLength(2)
    const replay = await call(a, 'DELETE', next!)
    expect(replay.status).toBe(400)
    expect(((await replay.json()) as {message: string}).message).toContain('_token was already used or has expired')

    const left = (await (await call(b, 'GET', `${base}/records`)).json()) as {data: unknown[]}
    expect(left.data).toHaveLength(1)
  }, 120_000)
})

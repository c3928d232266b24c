/**
 * kinto.plugins.openid against a real OpenID Connect provider (the npm `oidc-provider`, on
 * loopback): the authorization-code flow through /openid/<provider>/login and /token with a
 * cookie-keeping client that submits the provider's login and consent forms, then kinto-http
 * with the access token; revoked and expired tokens; one userinfo call per token within the
 * verification ttl; the JWT check when an audience is set; start-up without the provider.
 */
import {createHmac} from 'node:crypto'
import {createServer} from 'node:http'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'
import pino from 'pino'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {checkIni} from '../../src/lib/check/index.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {parseIni} from '../../src/lib/config/ini.js'
import {flushLogLines, KintoLogging, loggingPlan} from '../../src/lib/monitoring/index.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import type {Logger} from '../../src/lib/logger.js'
import {startServer} from '../../src/lib/server/start.js'
import {createBackends} from '../../src/lib/backends.js'
import {createApp} from '../../src/lib/server/app.js'
import {verifyJwt} from '../../src/lib/server/plugins/openid/jwt.js'
import {freePort} from '../helpers/deploy-servers.js'
import {failure, KintoClient} from '../helpers/kinto-http.js'
import {statsdListener, type StatsdListener} from '../server/statsd-listener.js'
import {Browser, startProvider, tokensFrom, type ClientConfig, type TestProvider} from '../helpers/oidc-provider.js'
import {BACKEND_KINDS, iniText, startTestServer, type TestServer} from './helpers.js'

const HMAC_SECRET = 'openid-tests'
const CALLBACK = 'http://127.0.0.1:9/app/#tokens='

function openidSettings(issuer: string, secondIssuer = issuer): Record<string, string> {
  return {
    'kinto.userid_hmac_secret': HMAC_SECRET,
    'kinto.includes': 'kinto.plugins.openid',
    'multiauth.policies': 'oidc shortlived',
    'multiauth.policy.oidc.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
    'multiauth.policy.oidc.issuer': issuer,
    'multiauth.policy.oidc.client_id': 'kinto',
    'multiauth.policy.oidc.client_secret': 'kinto-secret',
    'multiauth.policy.shortlived.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
    'multiauth.policy.shortlived.issuer': secondIssuer,
    'multiauth.policy.shortlived.client_id': 'kinto-short',
    'multiauth.policy.shortlived.client_secret': 'short-secret',
    'multiauth.policy.shortlived.userid_field': 'email',
    'multiauth.policy.shortlived.verification_ttl_seconds': '1',
  }
}

function bearer(remote: string, token: string): KintoClient {
  return new KintoClient(remote, {headers: {Authorization: `Bearer ${token}`}, retry: 0})
}

describe.each(BACKEND_KINDS)('OpenID Connect against oidc-provider (%s)', (kind) => {
  let provider: TestProvider
  /** The second provider (policy `shortlived`). */
  let other: TestProvider
  let srv: TestServer
  let kintoPort: number
  let statsd: StatsdListener
  let clients: Record<'kinto' | 'short', ClientConfig>

  beforeAll(async () => {
    provider = await startProvider()
    other = await startProvider()
    kintoPort = await freePort()
    const base = `http://127.0.0.1:${kintoPort}/v1/openid`
    clients = {
      kinto: {client_id: 'kinto', client_secret: 'kinto-secret', redirect_uris: [`${base}/oidc/token`]},
      short: {client_id: 'kinto-short', client_secret: 'short-secret', redirect_uris: [`${base}/shortlived/token`], accessTokenTtl: 2},
    }
    await provider.configure([clients.kinto])
    await other.configure([clients.short])
    statsd = await statsdListener()
    srv = await startTestServer(kind, {...openidSettings(provider.issuer, other.issuer), 'kinto.statsd_url': statsd.url}, undefined, kintoPort)
  }, 120_000)
  afterAll(async () => {
    await srv?.close()
    await provider?.close()
    await other?.close()
    await statsd?.close()
  })

  /** The whole login: Kinto's /login, the provider's forms, Kinto's /token, back to the callback. */
  async function login(providerName: string, account: string, browser = new Browser()) {
    const scope = 'openid email'
    const start = `${srv.remote}/openid/${providerName}/login?callback=${encodeURIComponent(CALLBACK)}&scope=${encodeURIComponent(scope)}`
    const visit = await browser.visit(start, CALLBACK, account)
    return {visit, tokens: tokensFrom(visit.location, CALLBACK), browser}
  }

  test('hello lists both providers in the openid capability', async () => {
    const info = await new KintoClient(srv.remote).fetchServerInfo()
    const openid = info.capabilities.openid as {description: string; url: string; providers: Array<Record<string, string>>}
    expect(openid.description).toBe('OpenID connect support.')
    expect(openid.providers).toEqual([
      {
        name: 'oidc',
        issuer: provider.issuer,
        auth_path: '/openid/oidc/login',
        client_id: 'kinto',
        audience: '',
        header_type: 'Bearer',
        userinfo_endpoint: `${provider.issuer}/me`,
      },
      {
        name: 'shortlived',
        issuer: other.issuer,
        auth_path: '/openid/shortlived/login',
        client_id: 'kinto-short',
        audience: '',
        header_type: 'Bearer',
        userinfo_endpoint: `${other.issuer}/me`,
      },
    ])
  })

  test('login flow, then kinto-http with the access token; userinfo is called once per token', async () => {
    const {visit, tokens} = await login('oidc', 'alice')
    // Kinto's login endpoint, the provider's pages, Kinto's token endpoint.
    expect(visit.urls[0]).toContain('/v1/openid/oidc/login?')
    expect(visit.urls.some((u) => u.startsWith(`${provider.issuer}/interaction/`))).toBe(true)
    expect(visit.urls[visit.urls.length - 1]).toMatch(new RegExp(`^${srv.remote}/openid/oidc/token\\?code=.+&state=[0-9a-f]{64}`))
    expect(tokens.token_type).toBe('Bearer')
    expect(typeof tokens.access_token).toBe('string')
    expect(typeof tokens.id_token).toBe('string')
    const token = tokens.access_token as string

    const before = provider.hitsOf('/me')
    const client = bearer(srv.remote, token)
    const info = await client.fetchServerInfo()
    expect(info.user?.id).toBe('oidc:alice')
    expect((info.user as {profile?: unknown}).profile).toEqual({sub: 'alice', email: 'alice@example.com', email_verified: true})
    await client.createBucket('oidc-bucket')
    const {data, permissions} = await client.bucket('oidc-bucket').getData<{id: string}>().then(async (d) => ({
      data: d,
      permissions: await client.bucket('oidc-bucket').getPermissions(),
    }))
    expect(data.id).toBe('oidc-bucket')
    expect(permissions.write).toContain('oidc:alice')
    // Four authenticated requests, one verification at the provider.
    expect(provider.hitsOf('/me') - before).toBe(1)
    // Counted under the policy's name, like the other policies; the token is in no metric.
    await statsd.waitFor('kinto.authn_type.oidc')
    expect(statsd.lines.filter((l) => l.includes(token))).toEqual([])

    // The verification is cached under an HMAC of issuer, client, audience and token.
    const key = `openid:verify:${createHmac('sha256', HMAC_SECRET).update(`${provider.issuer}:kinto::${token}`).digest('hex')}`
    expect(await srv.server.app.kinto.backends.cache.get(key)).toEqual({sub: 'alice', email: 'alice@example.com', email_verified: true})
    const ttl = await srv.server.app.kinto.backends.cache.ttl(key)
    expect(ttl).toBeGreaterThan(86000)
    if (srv.databaseUrl && kind === 'postgresql') {
      const db = new pg.Client({connectionString: srv.databaseUrl})
      await db.connect()
      try {
        const {rows} = await db.query<{key: string; value: string}>('SELECT key, value::text AS value FROM cache')
        expect(rows.some((r) => r.key === key)).toBe(true)
        expect(rows.filter((r) => r.key.includes(token) || r.value.includes(token))).toEqual([])
      } finally {
        await db.end()
      }
    }
  })

  // Two servers share a cache only on a PostgreSQL server (PGlite and memory are one process's).
  if (kind === 'postgresql') test('a token verified by one server is not verified again by another sharing the cache', async () => {
    const {tokens} = await login('oidc', 'frank')
    const token = tokens.access_token as string
    const before = provider.hitsOf('/me')
    expect((await bearer(srv.remote, token).fetchServerInfo()).user?.id).toBe('oidc:frank')
    const second = await startServer(loadConfig(srv.iniPath, {env: {}}), {port: 0, logger: pino({level: 'silent'})})
    try {
      const remote = second.url.replace(/\/$/, '')
      expect((await bearer(remote, token).fetchServerInfo()).user?.id).toBe('oidc:frank')
      expect(provider.hitsOf('/me') - before).toBe(1)
    } finally {
      await second.close()
    }
  })

  test('a state is used once; the code exchange goes to the provider with the client secret', async () => {
    const {visit} = await login('oidc', 'carol')
    const tokenUrl = visit.urls[visit.urls.length - 1]
    const tokenHits = provider.hitsOf('/token')
    const res = await fetch(tokenUrl, {redirect: 'manual', signal: AbortSignal.timeout(10_000)})
    expect(res.status).toBe(400)
    // As upstream 26.3.1 answers it: its raise_invalid(errno=105) puts the errno in the detail, and
    // the answer keeps errno 107; the message is the description, which names the field.
    expect(await res.json()).toEqual({
      code: 400,
      errno: 107,
      error: 'Invalid parameters',
      message: 'Invalid state',
      details: [{location: 'body', name: 'state', description: 'Invalid state', errno: 105}],
    })
    expect(provider.hitsOf('/token')).toBe(tokenHits)
  })

  test('a callback with non-ASCII characters gets its tokens, percent-encoded (not a 500 once signed in)', async () => {
    const callback = 'http://127.0.0.1:9/app/café€/#tokens='
    const sent = 'http://127.0.0.1:9/app/caf%C3%A9%E2%82%AC/#tokens='
    const start = `${srv.remote}/openid/oidc/login?callback=${encodeURIComponent(callback)}&scope=${encodeURIComponent('openid email')}`
    const visit = await new Browser().visit(start, sent, 'grace')
    const tokens = tokensFrom(visit.location, sent)
    expect(tokens.token_type).toBe('Bearer')
    expect((await bearer(srv.remote, tokens.access_token as string).fetchServerInfo()).user?.id).toBe('oidc:grace')
  })

  test('hello as a batch sub-request with a token shows that user\'s profile, as upstream', async () => {
    const {tokens} = await login('oidc', 'henry')
    const res = await fetch(`${srv.remote}/batch`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({requests: [{path: '/', headers: {Authorization: `Bearer ${tokens.access_token as string}`}}]}),
      signal: AbortSignal.timeout(10_000),
    })
    const body = (await res.json()) as {responses: Array<{body: {user?: Record<string, unknown>}}>}
    expect(body.responses[0].body.user).toMatchObject({id: 'oidc:henry', profile: {sub: 'henry', email: 'henry@example.com', email_verified: true}})
  })

  test('a revoked token is refused (401)', async () => {
    const {tokens} = await login('oidc', 'dave')
    const token = tokens.access_token as string
    expect(await provider.revoke(token, clients.kinto)).toBe(200)
    const before = [provider.hitsOf('/me'), other.hitsOf('/me')]
    expect(await failure(bearer(srv.remote, token).createBucket('dave-bucket'))).toMatchObject({status: 401, errno: 104})
    // Each OpenID policy asks its provider, as upstream's multiauth tries every policy.
    expect([provider.hitsOf('/me') - before[0], other.hitsOf('/me') - before[1]]).toEqual([1, 1])
    const info = await bearer(srv.remote, token).fetchServerInfo()
    expect(info.user).toBeUndefined()
  })

  test('a second provider: user id from the email field; an expired token is refused (401)', async () => {
    const {tokens} = await login('shortlived', 'erin')
    const token = tokens.access_token as string
    expect(tokens.expires_in).toBe(2)
    const client = bearer(srv.remote, token)
    expect((await client.fetchServerInfo()).user?.id).toBe('shortlived:erin@example.com')
    await client.createBucket('erin-bucket')
    // The token expires at the provider after 2 s, our verification after 1 s.
    await new Promise((resolve) => setTimeout(resolve, 3100))
    const before = other.hitsOf('/me')
    expect(await failure(client.bucket('erin-bucket').getData())).toMatchObject({status: 401})
    expect(other.hitsOf('/me') - before).toBe(1)
  })

  test("login and token redirects carry upstream's (webob's) 307 body: HTML, JSON or text as the client accepts", async () => {
    const cb = encodeURIComponent('http://ui.example.com/#tokens=')
    const open = (path: string, accept?: string) =>
      fetch(`${srv.remote}${path}`, {redirect: 'manual', headers: accept === undefined ? {} : {accept}, signal: AbortSignal.timeout(10_000)})
    const html = await open(`/openid/oidc/login?callback=${cb}&scope=openid`, 'text/html,*/*')
    expect(html.status).toBe(307)
    const location = html.headers.get('location')!
    expect(html.headers.get('content-type')).toBe('text/html; charset=UTF-8')
    expect(await html.text()).toContain(`<h1>307 Temporary Redirect</h1>\n  The resource has been moved to ${location.replace(/&/g, '&amp;')}; you should be redirected automatically.`)
    const json = await open(`/openid/oidc/login?callback=${cb}&scope=openid`, 'application/json')
    expect(await json.json()).toEqual({
      message: `The resource has been moved to ${json.headers.get('location')}; you should be redirected automatically.\n\n`,
      code: '307 Temporary Redirect',
      title: 'Temporary Redirect',
    })
    // The token endpoint's redirect to the callback (here with the provider's refusal of a bad code).
    const state = new URL(location).searchParams.get('state')
    const token = await open(`/openid/oidc/token?code=bad&state=${state}`, '')
    expect(token.status).toBe(307)
    expect(token.headers.get('location')).toMatch(/^http:\/\/ui\.example\.com\/#tokens=/)
    expect(token.headers.get('content-type')).toBe('text/plain; charset=UTF-8')
    expect(await token.text()).toBe(`307 Temporary Redirect\n\nThe resource has been moved to ${token.headers.get('location')}; you should be redirected automatically.\n\n`)
  })

  test('login and token endpoints validate their parameters as upstream', async () => {
    const get = async (path: string) => {
      const res = await fetch(`${srv.remote}${path}`, {redirect: 'manual', signal: AbortSignal.timeout(10_000)})
      return {status: res.status, location: res.headers.get('location'), body: res.status === 307 ? null : ((await res.json()) as Record<string, unknown>)}
    }
    const cb = encodeURIComponent('http://ui.example.com/#tokens=')
    expect((await get('/openid/oidc/login')).body).toMatchObject({errno: 107, message: 'callback in querystring: Required'})
    expect((await get('/openid/oidc/login?callback=http://no-scope.example.com')).body).toMatchObject({errno: 107, message: 'scope in querystring: Required'})
    expect((await get('/openid/oidc/login?callback=bad&scope=openid')).body).toMatchObject({errno: 107, message: 'callback in querystring: Must be a URL'})
    expect((await get(`/openid/fxa/login?callback=${cb}&scope=openid`)).body).toMatchObject({
      errno: 107,
      details: [{location: 'path', name: 'provider', description: "Unknown provider 'fxa'"}],
    })
    expect((await get(`/openid/oidc/login?callback=${cb}&scope=openid&prompt=login`)).status).toBe(400)
    // userid_field = email needs the email scope.
    expect((await get(`/openid/shortlived/login?callback=${cb}&scope=openid`)).body).toMatchObject({
      errno: 107,
      message: "Provider shortlived requires 'email' scope",
      details: [{location: 'body', name: 'scope', description: "Provider shortlived requires 'email' scope"}],
    })
    const redirect = await get(`/openid/oidc/login?callback=${cb}&scope=openid&prompt=none`)
    expect(redirect.status).toBe(307)
    const location = new URL(redirect.location!)
    expect(`${location.origin}${location.pathname}`).toBe(`${provider.issuer}/auth`)
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      client_id: 'kinto',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${srv.remote}/openid/oidc/token`,
      prompt: 'none',
    })
    expect(location.searchParams.get('state')).toMatch(/^[0-9a-f]{64}$/)
    expect(location.searchParams.has('audience')).toBe(false)
    // The callback waits in the cache under the state.
    expect(await srv.server.app.kinto.backends.cache.get(`openid:state:${location.searchParams.get('state')}`)).toBe('http://ui.example.com/#tokens=')

    expect((await get('/openid/oidc/token')).status).toBe(400)
    expect((await get('/openid/oidc/token?code=abc')).body).toMatchObject({message: 'state in querystring: Required'})
    expect((await get('/openid/oidc/token?state=abc')).body).toMatchObject({message: 'code in querystring: Required'})
    expect((await get('/openid/oidc/token?code=abc&state=abc')).body).toMatchObject({errno: 107, message: 'Invalid state', details: [{name: 'state', errno: 105}]})
    expect((await get('/openid/fxa/token?code=abc&state=abc')).body).toMatchObject({errno: 107, details: [{name: 'provider'}]})
  })
})

describe('OpenID Connect: JWT access tokens when an audience is set', () => {
  let provider: TestProvider
  const machine: ClientConfig = {client_id: 'machine', client_secret: 'machine-secret', grant_types: ['client_credentials']}

  beforeAll(async () => {
    provider = await startProvider()
    await provider.configure([machine])
  }, 60_000)
  afterAll(async () => provider?.close())

  function audienceApp(audience: string, extra: Record<string, string> = {}, logger: Logger & object = pino({level: 'silent'})) {
    const settings = buildSettings(
      {
        ...extra,
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.includes': 'kinto.plugins.openid',
        'multiauth.policies': 'corp',
        'multiauth.policy.corp.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
        'multiauth.policy.corp.issuer': provider.issuer,
        'multiauth.policy.corp.client_id': 'machine',
        'multiauth.policy.corp.audience': audience,
      },
      {},
    )
    const backends = createBackends(settings)
    const app = createApp({settings, backends, logger})
    app.addHook('onClose', async () => backends.close())
    return app
  }

  test('the provider-signed JWT passes the check; another audience, a forged signature, another issuer do not', async () => {
    const token = await provider.clientCredentialsToken(machine)
    const jwksUri = `${provider.issuer}/jwks`
    const claims = await verifyJwt(token, {issuer: provider.issuer, audience: provider.jwtResource.audience, jwksUri})
    expect(claims).toMatchObject({iss: provider.issuer, aud: provider.jwtResource.audience, client_id: 'machine'})
    expect(await verifyJwt(token, {issuer: provider.issuer, audience: 'another-api', jwksUri})).toBeNull()
    expect(await verifyJwt(token, {issuer: 'https://elsewhere.example', audience: provider.jwtResource.audience, jwksUri})).toBeNull()
    const [h, p, s] = token.split('.')
    const forged = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`
    expect(await verifyJwt(forged, {issuer: provider.issuer, audience: provider.jwtResource.audience, jwksUri})).toBeNull()
    // Expired: checked against a clock past `exp`.
    expect(await verifyJwt(token, {issuer: provider.issuer, audience: provider.jwtResource.audience, jwksUri}, (claims!.exp as number) + 1)).toBeNull()
    expect(await verifyJwt('not-a-jwt', {issuer: provider.issuer, audience: provider.jwtResource.audience, jwksUri})).toBeNull()
  })

  test('a token for another audience is refused without asking userinfo; the audience is sent at login', async () => {
    const token = await provider.clientCredentialsToken(machine)
    const app = audienceApp('another-api')
    try {
      const before = provider.hitsOf('/me')
      const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: `Bearer ${token}`}})
      expect(res.statusCode).toBe(401)
      expect(provider.hitsOf('/me')).toBe(before)
      const login = await app.inject({method: 'GET', url: `/v1/openid/corp/login?callback=${encodeURIComponent('http://ui.example.com/#t=')}&scope=openid`})
      expect(login.statusCode).toBe(307)
      expect(new URL(login.headers.location as string).searchParams.get('audience')).toBe('another-api')
    } finally {
      await app.close()
    }
  })

  test('the authorization code, the state and the token are in no log line', async () => {
    const token = await provider.clientCredentialsToken(machine)
    const lines: string[] = []
    // The logging `kinto start` sets up (with the default plan of an ini without logging sections).
    const logging = new KintoLogging(loggingPlan(parseIni('[app:main]\n')), {projectName: 'kinto', stderr: {write: (text: string) => void lines.push(...text.split('\n').filter(Boolean))}})
    const app = audienceApp('another-api', {}, logging.root)
    try {
      const res = await app.inject({method: 'GET', url: '/v1/openid/corp/token?code=one-time-code-1234&state=state-5678'})
      expect(res.statusCode).toBe(400)
      await app.inject({method: 'GET', url: '/v1/', headers: {authorization: `Bearer ${token}`}})
      // Summaries wait to be written together (up to SUMMARY_LINGER_MS): write what waits.
      flushLogLines()
      const summaries = lines.filter((l) => l.includes('/v1/openid/corp/token'))
      expect(summaries.length).toBeGreaterThan(0)
      for (const secret of ['one-time-code-1234', 'state-5678', token]) expect(lines.filter((l) => l.includes(secret))).toEqual([])
    } finally {
      await app.close()
    }
  })

  test('header_type: the Authorization scheme the policy accepts (case-insensitive)', async () => {
    const token = await provider.clientCredentialsToken(machine)
    const app = audienceApp(provider.jwtResource.audience, {'multiauth.policy.corp.header_type': 'Bearer+OIDC'})
    try {
      const before = provider.hitsOf('/me')
      // Another scheme is not this policy's: the token goes nowhere.
      expect((await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: `Bearer ${token}`}})).statusCode).toBe(401)
      expect(provider.hitsOf('/me')).toBe(before)
      // Its own scheme, in any case: the token passes the JWT check and reaches userinfo.
      expect((await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: `bearer+oidc ${token}`}})).statusCode).toBe(401)
      expect(provider.hitsOf('/me') - before).toBe(1)
      const hello = await app.inject({method: 'GET', url: '/v1/'})
      expect(hello.json().capabilities.openid.providers[0]).toMatchObject({name: 'corp', header_type: 'Bearer+OIDC', audience: provider.jwtResource.audience})
    } finally {
      await app.close()
    }
  })

  test('/__api__ describes each provider as an oauth2 method with its endpoints, valid Swagger 2.0 (flow, tokenUrl and scopes, which upstream omits)', async () => {
    const app = audienceApp(provider.jwtResource.audience)
    try {
      const res = await app.inject({method: 'GET', url: '/v1/__api__'})
      expect(res.statusCode).toBe(200)
      expect(res.json().securityDefinitions).toEqual({
        corp: {type: 'oauth2', flow: 'accessCode', authorizationUrl: `${provider.issuer}/auth`, tokenUrl: `${provider.issuer}/token`, scopes: {}},
      })
      expect(res.json().paths['/buckets'].get.security).toEqual([{corp: []}])
      // the login and token endpoints with their querystring, as upstream's schemas give them
      const query = (path: string) => (res.json().paths[path].get.parameters as Array<{name: string; in: string; required: boolean}>).map((p) => [p.name, p.in, p.required])
      expect(query('/openid/{provider}/login')).toEqual([
        ['callback', 'query', true],
        ['scope', 'query', true],
        ['prompt', 'query', false],
      ])
      expect(query('/openid/{provider}/token')).toEqual([
        ['code', 'query', true],
        ['state', 'query', true],
      ])
      expect(Object.keys(res.json().paths['/openid/{provider}/login'].get.responses).sort()).toEqual(['307', '400'])
    } finally {
      await app.close()
    }
  })

  test('a 401 challenges with the scheme of each configured policy, as upstream (not Basic alone)', async () => {
    const anonymousPut = async (app: ReturnType<typeof audienceApp>) => {
      const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1'})
      expect(res.statusCode).toBe(401)
      expect(res.json().errno).toBe(104)
      return res.headers['www-authenticate']
    }
    const only = audienceApp(provider.jwtResource.audience)
    try {
      expect(await anonymousPut(only)).toBe('Bearer realm="Realm"')
    } finally {
      await only.close()
    }
    const custom = audienceApp(provider.jwtResource.audience, {'multiauth.policy.corp.header_type': 'Bearer+OIDC'})
    try {
      expect(await anonymousPut(custom)).toBe('Bearer+OIDC realm="Realm"')
    } finally {
      await custom.close()
    }
    // upstream's policy takes a `realm` argument (multiauth.policy.<name>.realm).
    const realm = audienceApp(provider.jwtResource.audience, {'multiauth.policy.corp.realm': 'Kinto'})
    try {
      expect(await anonymousPut(realm)).toBe('Bearer realm="Kinto"')
    } finally {
      await realm.close()
    }
    const settings = buildSettings(
      {
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.includes': 'kinto.plugins.openid',
        'multiauth.policies': 'corp basicauth',
        'multiauth.policy.corp.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
        'multiauth.policy.corp.issuer': provider.issuer,
        'multiauth.policy.corp.client_id': 'machine',
      },
      {},
    )
    const backends = createBackends(settings)
    const both = createApp({settings, backends})
    try {
      expect(await anonymousPut(both)).toBe('Bearer realm="Realm", Basic realm="Realm"')
      // From a page's script (the admin console), the Basic one is left out: a browser would open
      // its own sign-in dialog over the page for it; the Bearer one keeps the 401 a challenge.
      const fromScript = await both.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {'sec-fetch-dest': 'empty'}})
      expect(fromScript.statusCode).toBe(401)
      expect(fromScript.headers['www-authenticate']).toBe('Bearer realm="Realm"')
    } finally {
      await both.close()
      await backends.close()
    }
  })

  test('a token for the configured audience passes the JWT check and goes on to userinfo', async () => {
    const token = await provider.clientCredentialsToken(machine)
    const app = audienceApp(provider.jwtResource.audience)
    try {
      const before = provider.hitsOf('/me')
      const res = await app.inject({method: 'PUT', url: '/v1/buckets/b1', headers: {authorization: `Bearer ${token}`}})
      // oidc-provider's userinfo refuses tokens issued for a resource server (it has no `openid`
      // scope and an audience), so the request stays anonymous: the point is that it was asked.
      expect(provider.hitsOf('/me') - before).toBe(1)
      expect(res.statusCode).toBe(401)
    } finally {
      await app.close()
    }
  })
})

describe('OpenID Connect: start-up', () => {
  test('an unreachable issuer stops the start with an error naming the discovery URL', async () => {
    const port = await freePort()
    const issuer = `http://127.0.0.1:${port}`
    const err = await startTestServer('memory', openidSettings(issuer)).then(
      async (srv) => {
        await srv.close()
        return null
      },
      (e: unknown) => e as {code?: string; message: string},
    )
    expect(err?.code).toBe('KINTO_OPENID_DISCOVERY')
    expect(err?.message).toBe(`Cannot read the OpenID Connect discovery document ${issuer}/.well-known/openid-configuration: connection refused.`)
  })

  test('kinto check reads each provider\'s discovery document and names the one it cannot read', async () => {
    const up = await startProvider()
    const port = await freePort()
    try {
      await up.configure([])
      const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-openid-check-'))
      try {
        const ini = path.join(dir, 'kinto.ini')
        const settings = {
          ...openidSettings(up.issuer, `http://127.0.0.1:${port}`),
          'multiauth.policy.oidc.client_secret': '',
        }
        writeFileSync(ini, iniText(settings), {mode: 0o600})
        const report = await checkIni(ini, {db: false, env: {}})
        const openid = report.findings.filter((f) => f.id === 'openid')
        expect(openid.map((f) => [f.level, f.message])).toEqual([
          ['ok', `multiauth.policy.oidc: ${up.issuer} publishes its discovery document (userinfo: ${up.issuer}/me).`],
          [
            'warning',
            'multiauth.policy.oidc.client_secret is not set: /v1/openid/oidc/token cannot trade login codes for tokens (tokens obtained elsewhere are still accepted).',
          ],
          [
            'error',
            `multiauth.policy.shortlived: Cannot read the OpenID Connect discovery document http://127.0.0.1:${port}/.well-known/openid-configuration: connection refused. The server refuses to start.`,
          ],
        ])
        expect(JSON.stringify(report)).not.toContain('short-secret')
        // cors_origins * (the default): the login sends tokens to any callback
        expect(report.findings.filter((f) => f.id === 'openid-callback').map((f) => [f.level, f.message])).toEqual([
          ['warning', 'kinto.cors_origins is *: the OpenID login sends the tokens to any callback it is given, so a crafted login link hands them to another site.'],
        ])
        writeFileSync(ini, iniText({...settings, 'kinto.cors_origins': 'https://app.example.com'}), {mode: 0o600})
        expect((await checkIni(ini, {db: false, env: {}})).findings.filter((f) => f.id === 'openid-callback')).toEqual([])
      } finally {
        rmSync(dir, {recursive: true, force: true})
      }
    } finally {
      await up.close()
    }
  })

  test('an authorization endpoint with a query of its own (Azure AD B2C: ?p=<policy>) gets the login parameters after it, not a second "?"', async () => {
    const port = 19330
    const issuer = `http://127.0.0.1:${port}`
    const discovery = createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          issuer,
          authorization_endpoint: `${issuer}/authorize?p=b2c_1_signin`,
          token_endpoint: `${issuer}/token`,
          userinfo_endpoint: `${issuer}/userinfo`,
        }),
      )
    })
    await new Promise<void>((resolve) => discovery.listen(port, '127.0.0.1', resolve))
    const settings = buildSettings({...openidSettings(issuer), 'multiauth.policies': 'oidc'}, {})
    const app = createApp({settings, backends: createBackends(settings)})
    try {
      await app.ready()
      const res = await app.inject({method: 'GET', url: `/v1/openid/oidc/login?callback=${encodeURIComponent(CALLBACK)}&scope=openid`})
      expect(res.statusCode).toBe(307)
      const location = new URL(res.headers.location as string)
      expect(`${location.origin}${location.pathname}`).toBe(`${issuer}/authorize`)
      expect(location.searchParams.get('p')).toBe('b2c_1_signin')
      expect(location.searchParams.get('client_id')).toBe('kinto')
      expect(location.searchParams.get('response_type')).toBe('code')
      expect(location.searchParams.get('state')).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await app.close()
      await new Promise((resolve) => discovery.close(resolve))
    }
  })

  test('with kinto.cors_origins restricted, the tokens go only to a callback on this server or an allowed origin; with *, anywhere (as upstream)', async () => {
    const discovery = createServer((req, res) => {
      const issuer = `http://127.0.0.1:${(discovery.address() as {port: number}).port}`
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, userinfo_endpoint: `${issuer}/userinfo`}))
    })
    await new Promise<void>((resolve) => discovery.listen(0, '127.0.0.1', resolve))
    const issuer = `http://127.0.0.1:${(discovery.address() as {port: number}).port}`
    const login = async (extra: Record<string, string>, callback: string) => {
      const settings = buildSettings({...openidSettings(issuer), 'multiauth.policies': 'oidc', ...extra}, {})
      const app = createApp({settings, backends: createBackends(settings)})
      try {
        await app.ready()
        const res = await app.inject({method: 'GET', url: `/v1/openid/oidc/login?callback=${encodeURIComponent(callback)}&scope=openid`, headers: {host: 'kinto.example.com'}})
        return {status: res.statusCode, body: res.statusCode === 307 ? null : res.json()}
      } finally {
        await app.close()
      }
    }
    try {
      const restricted = {'kinto.cors_origins': 'https://app.example.com https://*.trusted.example'}
      for (const callback of ['https://app.example.com/#tokens=', 'https://ops.trusted.example/cb#tokens=', 'http://kinto.example.com/v1/admin/#auth/oidc/']) {
        expect((await login(restricted, callback)).status, callback).toBe(307)
      }
      for (const callback of ['https://evil.example/#tokens=', 'http://app.example.com/#tokens=', 'https://app.example.com.evil.example/#tokens=']) {
        const refused = await login(restricted, callback)
        expect(refused.status, callback).toBe(400)
        expect(refused.body).toMatchObject({errno: 107, details: [{location: 'querystring', name: 'callback', description: 'Not on an origin allowed by kinto.cors_origins'}]})
      }
      // the default (*): any callback, as upstream
      expect((await login({}, 'https://evil.example/#tokens=')).status).toBe(307)
    } finally {
      await new Promise((resolve) => discovery.close(resolve))
    }
  })

  test('a provider that answers with an error stops the start too', async () => {
    // Not configured yet: the provider's server answers 503 to everything.
    const down = await startProvider()
    try {
      const err = await startTestServer('memory', openidSettings(down.issuer)).then(
        async (srv) => {
          await srv.close()
          return null
        },
        (e: unknown) => e as {code?: string; message: string},
      )
      expect(err?.code).toBe('KINTO_OPENID_DISCOVERY')
      expect(err?.message).toBe(`Cannot read the OpenID Connect discovery document ${down.issuer}/.well-known/openid-configuration: the provider answered HTTP 503.`)
      expect(down.hitsOf('/.well-known/openid-configuration')).toBe(1)
    } finally {
      await down.close()
    }
  })

  test('a provider that goes away after the start: 503 with Retry-After (retry_after_seconds, as every 503), not a 401', async () => {
    const gone = await startProvider()
    await gone.configure([])
    const settings = buildSettings({...openidSettings(gone.issuer), 'multiauth.policies': 'oidc', 'kinto.retry_after_seconds': '7'}, {})
    const backends = createBackends(settings)
    const app = createApp({settings, backends})
    try {
      await app.ready()
      await gone.close()
      const res = await app.inject({method: 'GET', url: '/v1/buckets', headers: {authorization: 'Bearer some-opaque-token'}})
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('7')
      expect(res.json().errno).toBe(201)
      // Refused, or closed when a kept-alive connection is tried first.
      expect(res.json().message).toMatch(new RegExp(`^The OpenID Connect provider ${gone.issuer} cannot be reached \\(connection (refused|closed by the server)\\); please retry later\\.$`))
      expect(res.body).not.toContain('some-opaque-token')
      // The code exchange of a login under way: the same 503.
      await backends.cache.set('openid:state:pending', 'http://ui.example.com/#tokens=', 60)
      const token = await app.inject({method: 'GET', url: '/v1/openid/oidc/token?code=abc&state=pending'})
      expect(token.statusCode).toBe(503)
      expect(token.headers['retry-after']).toBe('7')
      expect(token.json().errno).toBe(201)
    } finally {
      await app.close()
      await backends.close()
    }
  })

  test('one provider down does not lock out the users of another; its outage is a 503 when no policy knows the token', async () => {
    const gone = await startProvider()
    const live = await startProvider()
    const callback = 'http://127.0.0.1:9/cb'
    await gone.configure([])
    await live.configure([{client_id: 'live', client_secret: 'live-secret', redirect_uris: [callback]}])
    const settings = buildSettings(
      {
        'kinto.userid_hmac_secret': HMAC_SECRET,
        'kinto.includes': 'kinto.plugins.openid',
        'multiauth.policies': 'gone live',
        'multiauth.policy.gone.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
        'multiauth.policy.gone.issuer': gone.issuer,
        'multiauth.policy.gone.client_id': 'other',
        'multiauth.policy.live.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
        'multiauth.policy.live.issuer': live.issuer,
        'multiauth.policy.live.client_id': 'live',
      },
      {},
    )
    const backends = createBackends(settings)
    const app = createApp({settings, backends})
    try {
      await app.ready()
      await gone.close()
      // An access token of the live provider, from its own authorization-code flow.
      const auth = `${live.issuer}/auth?${new URLSearchParams({client_id: 'live', response_type: 'code', scope: 'openid', redirect_uri: callback, state: 'st'})}`
      const visit = await new Browser().visit(auth, callback, 'zoe')
      const code = new URL(visit.location).searchParams.get('code') ?? ''
      const exchange = await fetch(`${live.issuer}/token`, {
        method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({grant_type: 'authorization_code', code, redirect_uri: callback, client_id: 'live', client_secret: 'live-secret'}),
        signal: AbortSignal.timeout(10_000),
      })
      const {access_token: token} = (await exchange.json()) as {access_token: string}
      const hello = await app.inject({method: 'GET', url: '/v1/', headers: {authorization: `Bearer ${token}`}})
      expect(hello.statusCode).toBe(200)
      expect(hello.json().user?.id).toBe('live:zoe')
      // A token the reachable provider refuses: the other one could not be asked, so 503.
      const unknown = await app.inject({method: 'GET', url: '/v1/buckets', headers: {authorization: 'Bearer nobody-knows-it'}})
      expect(unknown.statusCode).toBe(503)
      expect(unknown.json().errno).toBe(201)
    } finally {
      await app.close()
      await backends.close()
      await live.close()
    }
  })

  test('a policy without issuer is a configuration error', () => {
    const settings = buildSettings(
      {
        'multiauth.policies': 'corp',
        'multiauth.policy.corp.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
        'multiauth.policy.corp.client_id': 'abc',
      },
      {},
    )
    const backends = createBackends(settings)
    expect(() => createApp({settings, backends})).toThrow("The OpenID Connect policy 'corp' has no multiauth.policy.corp.issuer setting.")
  })
})

/**
 * kinto.includes: upstream's plugin names, unknown names a startup error,
 * upstream plugins we do not carry reported once and skipped, flush behind its setting, the admin
 * plugin's side effect (/permissions).
 */
import type {FastifyInstance} from 'fastify'
import {afterEach, describe, expect, test} from 'vitest'

import {KintoError} from '../../src/lib/errors.js'
import {ALICE, client} from './helpers.js'
import {capturingLogger, pluginApp} from './plugins-helpers.js'

const apps: FastifyInstance[] = []
function setup(raw: Record<string, string>) {
  const captured = capturingLogger()
  const app = pluginApp(raw, captured)
  apps.push(app)
  return {app, req: client(app), ...captured}
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

describe('kinto.includes', () => {
  test('a name that is no plugin is a startup error naming it and what exists', () => {
    let error: unknown
    try {
      setup({'kinto.includes': 'kinto.plugins.default_bucket kinto_signer'})
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(KintoError)
    expect((error as KintoError).code).toBe('KINTO_PLUGIN_UNKNOWN')
    expect((error as KintoError).message).toBe("Unknown plugin 'kinto_signer' in kinto.includes.")
    expect((error as KintoError).hint).toContain('kinto.plugins.history')
  })

  test('several names that are no plugin are named in one error, not one start at a time', () => {
    expect(() => setup({'kinto.includes': 'kinto_signer kinto.plugins.history kinto_emailer'})).toThrow(
      "Unknown plugins 'kinto_signer', 'kinto_emailer' in kinto.includes.",
    )
  })

  test('kinto.plugins.openid without an OpenID policy: no capability, and its endpoints know no provider', async () => {
    const {req, warnings} = setup({'kinto.includes': 'kinto.plugins.openid'})
    expect(warnings).toEqual([])
    expect((await req('GET', '/v1/')).body.capabilities).not.toHaveProperty('openid')
    const login = await req('GET', '/v1/openid/google/login?callback=http%3A%2F%2Fui.example.com%2F&scope=openid')
    expect(login.status).toBe(400)
    expect(login.body.details).toEqual([{location: 'path', name: 'provider', description: "Unknown provider 'google'"}])
  })

  test.each([['kinto.plugins.quotas', '20.0.0']])('%s (upstream, not carried) is reported once and skipped', async (name, consequence) => {
    const {req, warnings} = setup({'kinto.includes': `${name} kinto.plugins.default_bucket`})
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(name)
    expect(warnings[0]).toContain(consequence)
    // The rest of the includes still works.
    expect((await req('GET', '/v1/')).body.capabilities).toHaveProperty('default_bucket')
    expect((await req('GET', '/v1/__metrics__')).status).toBe(404)
  })

  test('kinto.plugins.prometheus and kinto.plugins.counters are carried: no warning, endpoints served', async () => {
    const {req, warnings} = setup({'kinto.includes': 'kinto.plugins.prometheus kinto.plugins.counters'})
    expect(warnings).toEqual([])
    const hello = await req('GET', '/v1/', {auth: null})
    expect(hello.body.capabilities).toHaveProperty('prometheus')
    expect(hello.body.capabilities).toHaveProperty('counters_endpoint')
    expect((await req('GET', '/v1/__metrics__', {auth: null})).status).toBe(200)
    expect((await req('GET', '/v1/__counters__', {auth: null})).status).toBe(200)
  })

  test('the kinto init template includes start (default_bucket, admin, accounts with the account policy)', async () => {
    const {req, warnings} = setup({
      'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.admin kinto.plugins.accounts',
      'multiauth.policies': 'account',
      'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
      'kinto.account_create_principals': 'system.Everyone',
      'kinto.account_write_principals': 'account:admin',
      'kinto.bucket_create_principals': 'account:admin',
    })
    const hello = await req('GET', '/v1/', {auth: null})
    expect(Object.keys(hello.body.capabilities).sort()).toEqual(['accounts', 'admin', 'default_bucket', 'permissions_endpoint'])
    // Reported: memory storage loses accounts. The admin console is served (no warning about it).
    expect(warnings.some((w) => w.includes('memory storage backend'))).toBe(true)
    expect(warnings.filter((w) => w.includes('admin'))).toEqual([])
    expect((await req('GET', '/v1/admin/', {auth: null})).status).toBe(200)
  })

  test('a plugin listed twice is included once', async () => {
    const {req} = setup({'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.default_bucket'})
    expect((await req('GET', '/v1/buckets/default')).status).toBe(200)
  })
})

describe('kinto.event_listeners', () => {
  test('a listed listener is a startup error naming it and its module (its events would go nowhere)', () => {
    let error: unknown
    try {
      setup({
        'kinto.event_listeners': 'redis',
        'kinto.event_listeners.redis.use': 'kinto_redis.listeners',
        'kinto.event_listeners.redis.url': 'redis://localhost:6379/0',
      })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(KintoError)
    expect((error as KintoError).code).toBe('KINTO_PLUGIN_UNKNOWN')
    expect((error as KintoError).message).toBe(
      "kinto.event_listeners lists 'redis' (kinto_redis.listeners): kinto-ops runs no event listener modules, so nothing would receive the events.",
    )
  })

  test('empty (the default): the server starts', async () => {
    const {req} = setup({'kinto.event_listeners': ''})
    expect((await req('GET', '/v1/')).status).toBe(200)
  })
})

describe('multiauth.authorization_policy and multiauth.groupfinder', () => {
  test("upstream's own classes start; another class is a startup error (it would decide permissions)", async () => {
    const {req} = setup({
      'multiauth.authorization_policy': 'kinto.authorization.AuthorizationPolicy',
      'multiauth.groupfinder': 'kinto.core.authorization.groupfinder',
    })
    expect((await req('GET', '/v1/')).status).toBe(200)
    let error: unknown
    try {
      setup({'multiauth.groupfinder': 'myproject.ldap.groupfinder'})
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(KintoError)
    expect((error as KintoError).message).toBe(
      "multiauth.groupfinder = myproject.ldap.groupfinder: kinto-ops uses upstream's own kinto.core.authorization.groupfinder and cannot load another.",
    )
  })
})

describe('kinto.plugins.flush', () => {
  test('the plugin alone serves it, as upstream since Kinto 7 (flush_endpoint_enabled plays no part), with a warning at start', async () => {
    const {req, warnings} = setup({'kinto.includes': 'kinto.plugins.flush'})
    expect(warnings).toEqual([expect.stringContaining('POST /v1/__flush__ deletes every bucket')])
    await req('PUT', '/v1/buckets/gone', {body: {}})
    const r = await req('POST', '/v1/__flush__', {auth: null})
    expect(r.status).toBe(202)
    expect((await req('GET', '/v1/buckets/gone')).status).toBe(403)
  })

  test('the setting alone serves nothing (the plugin is what adds the endpoint)', async () => {
    const {req, warnings} = setup({'kinto.flush_endpoint_enabled': 'true'})
    expect(warnings).toEqual([])
    expect((await req('GET', '/v1/')).body.capabilities).not.toHaveProperty('flush_endpoint')
    await req('PUT', '/v1/buckets/kept', {body: {}})
    expect((await req('POST', '/v1/__flush__', {auth: null})).status).toBe(404)
    expect((await req('GET', '/v1/buckets/kept')).status).toBe(200)
  })

  test('POST /__flush__ answers 202 {} to anyone and empties storage, permissions and cache', async () => {
    const {app, req} = setup({'kinto.includes': 'kinto.plugins.flush'})
    await req('PUT', '/v1/buckets/b', {body: {permissions: {read: ['system.Everyone']}}})
    await app.kinto.backends.cache.set('k', 'v', 60)
    expect((await req('GET', '/v1/')).body.capabilities.flush_endpoint).toEqual({
      description: 'The __flush__ endpoint can be used to remove all data from all backends.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/flush.html',
    })
    const r = await req('POST', '/v1/__flush__', {auth: null})
    expect(r.status).toBe(202)
    expect(r.body).toEqual({})
    expect((await req('GET', '/v1/buckets/b')).status).toBe(403)
    expect(await app.kinto.backends.cache.get('k')).toBeUndefined()
    expect((await app.kinto.backends.permission.getObjectPermissions('/buckets/b')).read).toBeUndefined()
  })

  test('readonly: 405 like every write', async () => {
    const {req} = setup({'kinto.includes': 'kinto.plugins.flush', 'kinto.flush_endpoint_enabled': 'true', 'kinto.readonly': 'true'})
    const r = await req('POST', '/v1/__flush__', {auth: null})
    expect(r.status).toBe(405)
    expect(r.body.errno).toBe(115)
  })
})

describe('kinto.plugins.admin', () => {
  // The console itself: plugins-admin.test.ts.
  test('turns /v1/permissions on, as upstream', async () => {
    const {req} = setup({'kinto.includes': 'kinto.plugins.admin'})
    const hello = await req('GET', '/v1/', {auth: null})
    expect(hello.body.capabilities).toHaveProperty('permissions_endpoint')
    expect(hello.body.capabilities).toHaveProperty('admin')
    expect((await req('GET', '/v1/permissions', {auth: ALICE})).status).toBe(200)
  })

  test('without it (and without the setting) there is no /v1/permissions', async () => {
    const {req} = setup({})
    expect((await req('GET', '/v1/permissions')).status).toBe(404)
    expect((await req('GET', '/v1/')).body.capabilities).not.toHaveProperty('permissions_endpoint')
  })
})

describe('logs', () => {
  test("a plugin view's unexpected failure is a 500 whose log line holds no secret and no credentials", async () => {
    const {app, req, lines} = setup({'kinto.userid_hmac_secret': 'very-secret-hmac-key'})
    app.kinto.addService({
      name: 'broken',
      pattern: '/broken',
      views: new Map([['POST', {method: 'POST', permission: 'public', handler: async () => {
        throw new Error('boom')
      }}]]),
    })
    const r = await req('POST', '/v1/broken', {body: {}})
    expect(r.status).toBe(500)
    expect(r.body.errno).toBe(999)
    const logged = lines.join('')
    expect(logged).toContain('boom')
    expect(logged).not.toContain('very-secret-hmac-key')
    expect(logged).not.toContain(ALICE.slice('Basic '.length))
  })
})

/**
 * kinto.plugins.accounts in-process: /accounts create, read, update, delete,
 * account_create_principals / account_write_principals, the account:<id> principal, passwords as
 * upstream stores them, the verification cache, the multiauth.policies order and startup checks.
 * Upstream's tests/plugins/test_accounts.py scenarios, rewritten.
 *
 * Hashes made by the server use cost 4 here (bcrypt at cost 12 takes ~0.3 s); one test checks
 * the real hash function gives upstream's $2b$ cost-12 form.
 */
import bcrypt from 'bcryptjs'
import type {FastifyInstance} from 'fastify'
import {afterAll, afterEach, describe, expect, test, vi} from 'vitest'

import {KintoError} from '../../src/lib/errors.js'
import {basic, client, postgresApp} from './helpers.js'
import {ACCOUNTS, capturingLogger, pluginApp} from './plugins-helpers.js'

vi.mock('../../src/lib/accounts/index.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/lib/accounts/index.js')>()
  return {...original, hashPassword: (password: string) => bcrypt.hash(password, 4), realHashPassword: original.hashPassword}
})

const apps: FastifyInstance[] = []
function setup(raw: Record<string, string> = {}) {
  const app = pluginApp({...ACCOUNTS, ...raw})
  apps.push(app)
  return {app, req: client(app, null)}
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

/** A known vector from pyca/bcrypt's test suite (what Python's bcrypt, hence upstream, produces). */
const PYCA_PASSWORD = 'Kk4DQuMMfZL9o'
const PYCA_HASH = '$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm'

describe('password hashes', () => {
  test('hashPassword gives $2b$ cost 12, as Python bcrypt.gensalt() does', async () => {
    const mod = (await import('../../src/lib/accounts/index.js')) as unknown as {realHashPassword(p: string): Promise<string>}
    const hash = await mod.realHashPassword('12éé6')
    expect(hash).toMatch(/^\$2b\$12\$[./A-Za-z0-9]{53}$/)
    expect(await bcrypt.compare('12éé6', hash)).toBe(true)
  })

  test('verifyPassword accepts upstream $2b$ hashes and the $2a$/$2y$ spellings, and nothing else', async () => {
    const {verifyPassword} = await import('../../src/lib/accounts/index.js')
    expect(await verifyPassword(PYCA_PASSWORD, PYCA_HASH)).toBe(true)
    expect(await verifyPassword(PYCA_PASSWORD, PYCA_HASH.replace('$2b$', '$2a$'))).toBe(true)
    expect(await verifyPassword(PYCA_PASSWORD, PYCA_HASH.replace('$2b$', '$2y$'))).toBe(true)
    expect(await verifyPassword('kk4DQuMMfZL9o', PYCA_HASH)).toBe(false)
    expect(await verifyPassword(PYCA_PASSWORD, 'Kk4DQuMMfZL9o')).toBe(false)
    expect(await verifyPassword(PYCA_PASSWORD, null)).toBe(false)
  })

  test('an account stored by upstream Kinto (its $2b$ hash) logs in', async () => {
    const {app, req} = setup()
    await app.kinto.backends.storage.create('account', 'pyca', {id: 'pyca', password: PYCA_HASH})
    const hello = await req('GET', '/v1/', {auth: basic('pyca', PYCA_PASSWORD)})
    expect(hello.body.user?.id).toBe('account:pyca')
    expect((await req('GET', '/v1/', {auth: basic('pyca', 'wrong')})).body.user).toBeUndefined()
  })
})

describe('policy class', () => {
  test("written in Pyramid's module:attribute form, as pyramid_multiauth resolves it", async () => {
    const {req} = setup({'multiauth.policy.account.use': 'kinto.plugins.accounts.authentication:AccountsAuthenticationPolicy'})
    expect((await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'alice-pw'}}})).status).toBe(201)
    expect((await req('GET', '/v1/', {auth: basic('alice', 'alice-pw')})).body.user?.id).toBe('account:alice')
  })
})

describe('creation', () => {
  test('anyone may create an account (POST with data.id, or PUT); the password is stored hashed', async () => {
    const {app, req} = setup()
    const posted = await req('POST', '/v1/accounts', {body: {data: {id: 'alice', password: '12éé6'}}})
    expect(posted.status).toBe(201)
    expect(posted.body.data.password).toMatch(/^\$2b\$/)
    // As upstream, the write is made as the account itself, and the answer shows its permissions
    // (this test expected none for an anonymous creator; upstream's model shows them).
    expect(posted.body.permissions).toEqual({write: ['account:alice']})
    const put = await req('PUT', '/v1/accounts/bob', {body: {data: {password: '123456', age: 42}}})
    expect(put.status).toBe(201)
    expect(put.body.data.age).toBe(42)
    const stored = await app.kinto.backends.storage.get('account', 'bob', 'bob')
    expect(stored.password).not.toBe('123456')
    expect(await bcrypt.compare('123456', stored.password as string)).toBe(true)
    expect((await app.kinto.backends.permission.getObjectPermissions('/accounts/bob')).write).toEqual(new Set(['account:bob']))
  })

  test('emails are valid ids; spaces are not', async () => {
    const {req} = setup()
    expect((await req('PUT', '/v1/accounts/alice+test@example.com', {body: {data: {password: '123456'}}})).status).toBe(201)
    const bad = await req('PUT', '/v1/accounts/al%20ice', {body: {data: {password: '123456'}}})
    expect(bad.status).toBe(400)
    expect(bad.body.message).toBe('path: Invalid object id')
  })

  test('password and id are required', async () => {
    const {req} = setup()
    const noPassword = await req('POST', '/v1/accounts', {body: {data: {id: 'me'}}})
    expect(noPassword.status).toBe(400)
    expect(noPassword.body.details).toEqual([{location: 'body', name: 'data.password', description: 'Required'}])
    expect((await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: ''}}})).status).toBe(400)
    expect((await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: 12}}})).status).toBe(400)
    const noId = await req('POST', '/v1/accounts', {body: {data: {password: 'pass'}}})
    expect(noId.status).toBe(400)
    expect(noId.body.message).toBe('data.id in body: Required')
  })

  test('a password longer than 72 bytes (UTF-8) is refused, not cut: bcrypt reads 72 bytes only', async () => {
    // Upstream's bcrypt (pyca 5) raises on such a password (a 500); before it, the rest was
    // dropped, so any password sharing the first 72 bytes logged in.
    const {app, req} = setup()
    const tooLong = 'é'.repeat(36) + 'x' // 73 bytes
    const refused = {location: 'body', name: 'data.password', description: 'Longer than 72 bytes (UTF-8): bcrypt would ignore the rest'}
    for (const [method, url, body] of [
      ['PUT', '/v1/accounts/long', {data: {password: tooLong}}],
      ['POST', '/v1/accounts', {data: {id: 'long', password: tooLong}}],
    ] as const) {
      const res = await req(method, url, {body})
      expect(res.status, method).toBe(400)
      expect(res.body.errno, method).toBe(107)
      expect(res.body.details, method).toEqual([refused])
    }
    expect(await app.kinto.backends.storage.list('account', '*')).toEqual([])
    // 72 bytes are taken, and all of them count.
    const longest = 'é'.repeat(36)
    expect((await req('PUT', '/v1/accounts/long', {body: {data: {password: longest}}})).status).toBe(201)
    expect((await req('GET', '/v1/', {auth: basic('long', longest)})).body.user?.id).toBe('account:long')
    expect((await req('GET', '/v1/', {auth: basic('long', 'é'.repeat(35) + 'e')})).body.user).toBeUndefined()
    // A change to a longer password is refused, whichever way it comes.
    const auth = basic('long', longest)
    const patched = await req('PATCH', '/v1/accounts/long', {body: {data: {password: tooLong}}, auth})
    expect(patched.status).toBe(400)
    expect(patched.body.details).toEqual([{...refused, name: 'password'}])
    const jsonPatch = await req('PATCH', '/v1/accounts/long', {
      raw: JSON.stringify([{op: 'replace', path: '/data/password', value: tooLong}]),
      headers: {'content-type': 'application/json-patch+json'},
      auth,
    })
    expect(jsonPatch.status).toBe(400)
    expect((await req('GET', '/v1/', {auth})).body.user?.id).toBe('account:long')
  })

  test('an account an older upstream made with a longer password (its hash of the first 72 bytes) still logs in with it', async () => {
    const {app, req} = setup()
    const typed = 'p'.repeat(72) + '-and-more'
    await app.kinto.backends.storage.create('account', 'legacy', {id: 'legacy', password: bcrypt.hashSync('p'.repeat(72), 4)})
    expect((await req('GET', '/v1/', {auth: basic('legacy', typed)})).body.user?.id).toBe('account:legacy')
  })

  test('an existing account is not replaced by an anonymous POST (401), its owner gets it back (200)', async () => {
    const {req} = setup()
    await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: 'bouh'}}})
    expect((await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: 'not read'}}})).status).toBe(401)
    const mine = await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: 'bouh'}}, auth: basic('me', 'bouh')})
    expect(mine.status).toBe(200)
  })

  test('the id in the body must match the URL; an account user cannot create another account', async () => {
    const {req} = setup()
    const mismatch = await req('PUT', '/v1/accounts/alice', {body: {data: {id: 'bob', password: 'bouh'}}})
    expect(mismatch.status).toBe(400)
    expect(mismatch.body.message).toContain('does not match')
    await req('PUT', '/v1/accounts/me', {body: {data: {password: 'bouh'}}})
    const other = await req('POST', '/v1/accounts', {body: {data: {id: 'you', password: 'bouh'}}, auth: basic('me', 'bouh')})
    expect(other.status).toBe(400)
    expect(other.body.message).toBe('data.id in body: Username and account ID do not match.')
    expect((await req('PUT', '/v1/accounts/you', {body: {data: {password: 'x'}}, auth: basic('me', 'bouh')})).status).toBe(400)
    expect((await req('POST', '/v1/accounts', {body: {data: {password: 'x'}}, auth: basic('me', 'bouh')})).status).toBe(400)
  })

  test('account_create_principals decides who may create: nobody by default', async () => {
    const {req} = setup({'kinto.account_create_principals': ''})
    const r = await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    expect(r.status).toBe(401)
  })
})

describe('login, the verification cache and changes', () => {
  test('Basic credentials of an account give account:<id>; wrong ones are anonymous', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/me', {body: {data: {password: 'bouh'}}})
    const hello = await req('GET', '/v1/', {auth: basic('me', 'bouh')})
    expect(hello.body.user).toEqual({id: 'account:me', principals: ['account:me', 'system.Everyone', 'system.Authenticated']})
    expect((await req('GET', '/v1/', {auth: basic('me', 'wrong')})).body.user).toBeUndefined()
    expect((await req('GET', '/v1/', {auth: basic('nobody', 'bouh')})).body.user).toBeUndefined()
  })

  test('a verified login is cached (bcrypt runs once), the TTL refreshed on each use', async () => {
    const {app, req} = setup({'kinto.account_cache_ttl_seconds': '30'})
    const {accountCacheKey} = await import('../../src/lib/accounts/index.js')
    await req('PUT', '/v1/accounts/me', {body: {data: {password: 'bouh'}}})
    const compare = vi.spyOn(bcrypt, 'compare')
    try {
      expect((await req('GET', '/v1/', {auth: basic('me', 'bouh')})).body.user.id).toBe('account:me')
      expect((await req('GET', '/v1/', {auth: basic('me', 'bouh')})).body.user.id).toBe('account:me')
      expect(compare).toHaveBeenCalledTimes(1)
    } finally {
      compare.mockRestore()
    }
    const cache = app.kinto.backends.cache
    const key = accountCacheKey(app.kinto.settings, 'me')
    await cache.expire(key, 10)
    await req('GET', '/v1/', {auth: basic('me', 'bouh')})
    expect(await cache.ttl(key)).toBeGreaterThanOrEqual(20)
    // A wrong password is not the cached one.
    expect((await req('GET', '/v1/', {auth: basic('me', 'blah')})).body.user).toBeUndefined()
  })

  test('changing the password: the old one stops working at once, the new one works', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    const old = basic('alice', '123456')
    expect((await req('GET', '/v1/accounts/alice', {auth: old})).status).toBe(200) // cached now
    expect((await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'bouh'}}, auth: old})).status).toBe(200)
    expect((await req('GET', '/v1/accounts/alice', {auth: old})).status).toBe(401)
    expect((await req('GET', '/v1/accounts/alice', {auth: basic('alice', 'bouh')})).status).toBe(200)
  })

  test('PATCH of other fields keeps the password hash; PATCH of the password (merge or JSON-Patch) rehashes', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    const auth = basic('alice', '123456')
    const before = (await req('GET', '/v1/accounts/alice', {auth})).body.data.password
    const patched = await req('PATCH', '/v1/accounts/alice', {body: {data: {age: 'captain'}}, auth})
    expect(patched.body.data).toMatchObject({age: 'captain', password: before})
    const jsonPatch = await req('PATCH', '/v1/accounts/alice', {
      raw: JSON.stringify([{op: 'replace', path: '/data/password', value: 'via-patch'}]),
      headers: {'content-type': 'application/json-patch+json'},
      auth,
    })
    expect(jsonPatch.status).toBe(200)
    expect(jsonPatch.body.data.password).toMatch(/^\$2b\$/)
    expect((await req('GET', '/v1/', {auth: basic('alice', 'via-patch')})).body.user.id).toBe('account:alice')
    const renamed = await req('PATCH', '/v1/accounts/alice', {body: {data: {id: 'bob', password: 'bouh'}}, auth: basic('alice', 'via-patch')})
    expect(renamed.status).toBe(400)
  })

  test('an account read and PUT back as it is keeps its password', async () => {
    // Upstream hashes whatever data.password a PUT carries: the stored hash sent back becomes
    // the password (its text), and the one the user knows stops working.
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    const auth = basic('alice', '123456')
    const {data} = (await req('GET', '/v1/accounts/alice', {auth})).body
    const put = await req('PUT', '/v1/accounts/alice', {body: {data: {...data, age: 42}}, auth})
    expect(put.status).toBe(200)
    expect(put.body.data).toMatchObject({age: 42, password: data.password})
    expect((await req('GET', '/v1/', {auth})).body.user?.id).toBe('account:alice')
    expect((await req('GET', '/v1/', {auth: basic('alice', data.password)})).body.user).toBeUndefined()
  })

  test('deleting an account ends its logins', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    const auth = basic('alice', '123456')
    expect((await req('DELETE', '/v1/accounts/alice', {auth})).status).toBe(200)
    expect((await req('GET', '/v1/accounts/alice', {auth})).status).toBe(401)
  })
})

describe('who sees what', () => {
  test('users see their own account only; anonymous list → 401 "Cannot read accounts."', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    await req('PUT', '/v1/accounts/bob', {body: {data: {password: 'azerty'}}})
    const anonymous = await req('GET', '/v1/accounts')
    expect(anonymous.status).toBe(401)
    expect(anonymous.body).toEqual({code: 401, errno: 999, error: 'Cannot read accounts.'})
    expect((await req('GET', '/v1/accounts/alice')).status).toBe(401)
    const alice = basic('alice', '123456')
    const list = await req('GET', '/v1/accounts', {auth: alice})
    expect(list.body.data.map((a: {id: string}) => a.id)).toEqual(['alice'])
    expect((await req('GET', '/v1/accounts/bob', {auth: alice})).status).toBe(403)
    expect((await req('GET', '/v1/accounts/jeanine', {auth: alice})).status).toBe(403)
    expect((await req('PATCH', '/v1/accounts/bob', {body: {data: {password: 'x'}}, auth: alice})).status).toBe(403)
  })

  test('anonymous list when anonymous may not create accounts → the usual 401 (errno 104, WWW-Authenticate), as upstream', async () => {
    // Upstream checks the permission before it looks for whose accounts to list: an anonymous
    // caller without account:create (nor any account shared with them) is refused as on any
    // endpoint; "Cannot read accounts." is only for those who get past the check (26.3.1's answers).
    const {req} = setup({'kinto.account_create_principals': 'account:admin', 'kinto.account_write_principals': 'account:admin'})
    for (const method of ['GET', 'HEAD', 'DELETE'] as const) {
      const res = await req(method, '/v1/accounts')
      expect(res.status, method).toBe(401)
      expect(res.headers['www-authenticate'], method).toBe('Basic realm="Realm"')
      if (method !== 'HEAD') {
        expect(res.body, method).toEqual({code: 401, errno: 104, error: 'Unauthorized', message: 'Please authenticate yourself to use this endpoint.'})
      }
    }
    const batch = await req('POST', '/v1/batch', {body: {requests: [{method: 'GET', path: '/accounts'}]}})
    expect(batch.body.responses[0].status).toBe(401)
    expect(batch.body.responses[0].body.errno).toBe(104)
  })

  test('anonymous list past the permission check (an account shared with everyone) → 401 "Cannot read accounts."', async () => {
    const {app, req} = setup({'kinto.account_create_principals': 'account:admin', 'kinto.account_write_principals': 'account:admin'})
    // Nobody may create the administrator's account here: it is put in storage.
    await app.kinto.backends.storage.create('account', 'admin', {id: 'admin', password: bcrypt.hashSync('adminpw', 4)})
    const created = await req('PUT', '/v1/accounts/eve', {body: {data: {password: 'e'}, permissions: {read: ['system.Everyone']}}, auth: basic('admin', 'adminpw')})
    expect(created.status).toBe(201)
    const res = await req('GET', '/v1/accounts')
    expect(res.status).toBe(401)
    expect(res.body).toEqual({code: 401, errno: 999, error: 'Cannot read accounts.'})
    expect(res.headers['www-authenticate']).toBeUndefined()
  })

  test('administrators (account_write_principals, with account_read_principals to list) manage every account', async () => {
    const {req} = setup({'kinto.account_write_principals': 'account:admin', 'kinto.account_read_principals': 'account:admin'})
    await req('PUT', '/v1/accounts/admin', {body: {data: {password: '123456'}}})
    await req('PUT', '/v1/accounts/bob', {body: {data: {password: '987654'}}})
    const admin = basic('admin', '123456')
    const created = await req('POST', '/v1/accounts', {body: {data: {id: 'alice', password: 'bouh'}}, auth: admin})
    expect(created.status).toBe(201)
    // What an admin creates belongs to the account itself.
    const own = await req('GET', '/v1/accounts/alice', {auth: basic('alice', 'bouh')})
    expect(own.body.permissions).toEqual({write: ['account:alice']})
    const list = await req('GET', '/v1/accounts', {auth: admin})
    expect(list.body.data.map((a: {id: string}) => a.id).sort()).toEqual(['admin', 'alice', 'bob'])
    expect((await req('PATCH', '/v1/accounts/bob', {body: {data: {password: 'bouh'}}, auth: admin})).status).toBe(200)
    expect((await req('GET', '/v1/accounts/bob', {auth: basic('bob', '987654')})).status).toBe(401)
    expect((await req('GET', '/v1/accounts/bob', {auth: basic('bob', 'bouh')})).status).toBe(200)
    expect((await req('DELETE', '/v1/accounts', {auth: admin})).status).toBe(200)
    expect((await req('GET', '/v1/accounts/bob', {auth: basic('bob', 'bouh')})).status).toBe(401)
  })

  test('a basicauth user (when both policies are on) has no account and lists none', async () => {
    const {req} = setup({'multiauth.policies': 'account basicauth'})
    await req('POST', '/v1/accounts', {body: {data: {id: 'me', password: 'bleh'}}})
    expect((await req('GET', '/v1/', {auth: basic('me', 'wrong')})).body.user.id).toMatch(/^basicauth:/)
    expect((await req('GET', '/v1/', {auth: basic('me', 'bleh')})).body.user.id).toBe('account:me')
    const list = await req('GET', '/v1/accounts', {auth: basic('someone', 'x')})
    expect(list.status).toBe(200)
    expect(list.body.data).toEqual([])
  })

  test('an account may own buckets like any user', async () => {
    const {req} = setup()
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: '123456'}}})
    const r = await req('PUT', '/v1/buckets/mine', {body: {}, auth: basic('alice', '123456')})
    expect(r.status).toBe(201)
    expect(r.body.permissions.write).toEqual(['account:alice'])
  })
})

describe('configuration', () => {
  test('hello lists the accounts capability', async () => {
    const {req} = setup()
    expect((await req('GET', '/v1/')).body.capabilities.accounts).toEqual({
      description: 'Manage user accounts.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html',
      validation_enabled: false,
    })
  })

  test.each([
    [{'multiauth.policies': 'basicauth', 'multiauth.policy.account.use': ''}, 'no authentication policy uses it'],
    [{'multiauth.policies': 'basicauth account'}, "'basicauth' should not be mentioned before 'account'"],
    [{'kinto.account_create_principals': 'account:admin'}, 'not in kinto.account_write_principals'],
  ])('startup error %#', (raw, message) => {
    let error: unknown
    try {
      setup(raw)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(KintoError)
    expect((error as KintoError).message).toContain(message)
  })

  test('the policy works under another name too (its user ids stay account:)', async () => {
    const {req} = setup({'multiauth.policies': 'accts', 'multiauth.policy.accts.use': 'kinto.plugins.accounts.AccountsPolicy'})
    await req('PUT', '/v1/accounts/me', {body: {data: {password: 'bouh'}}})
    expect((await req('GET', '/v1/', {auth: basic('me', 'bouh')})).body.user.id).toBe('account:me')
  })

  test('kinto.account_validation (Kinto 19 and older) is warned about: nothing validates accounts any more', () => {
    const captured = capturingLogger()
    apps.push(pluginApp({...ACCOUNTS, 'kinto.account_validation': 'true'}, captured))
    expect(captured.warnings).toContainEqual(expect.stringMatching(/account_validation.*Kinto 20 and later.*log in.*data\.validated false/))
  })

  test('with the memory storage, a warning says accounts are lost on restart', () => {
    const captured = capturingLogger()
    apps.push(pluginApp(ACCOUNTS, captured))
    expect(captured.warnings).toEqual([expect.stringContaining('loses every account when the server stops')])
  })
})

/**
 * A batch's sub-request that logs in with an account an earlier sub-request of the batch creates,
 * or with the password it has just been given: upstream authenticates each sub-request at its turn
 * inside the batch's transaction, so these log in (26.3.1's answers).
 */
async function batchSignsUpAndLogsIn(req: ReturnType<typeof client>): Promise<void> {
  const signUp = await req('POST', '/v1/batch', {
    body: {
      requests: [
        {method: 'PUT', path: '/accounts/newbie', body: {data: {password: 'pw-n'}}},
        {method: 'PUT', path: '/buckets/newbies', headers: {Authorization: basic('newbie', 'pw-n')}},
        {method: 'GET', path: '/v1/accounts/newbie', headers: {Authorization: basic('newbie', 'pw-n')}},
      ],
    },
  })
  expect(signUp.body.responses.map((r: {status: number}) => r.status)).toEqual([201, 201, 200])
  expect(signUp.body.responses[1].body.permissions.write).toEqual(['account:newbie'])
}

async function batchChangesPasswordAndLogsIn(req: ReturnType<typeof client>): Promise<void> {
  expect((await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'pw-a'}}})).status).toBe(201)
  const change = await req('POST', '/v1/batch', {
    auth: basic('alice', 'pw-a'),
    body: {
      requests: [
        {method: 'PATCH', path: '/accounts/alice', body: {data: {password: 'pw-new'}}},
        {method: 'GET', path: '/accounts/alice', headers: {Authorization: basic('alice', 'pw-new')}},
      ],
    },
  })
  expect(change.body.responses.map((r: {status: number}) => r.status)).toEqual([200, 200])
}

describe('bodies', () => {
  test('PUT without data → 400 "data in body: Required" (an account has a required password), as upstream', async () => {
    const {req} = setup()
    const alice = basic('alice', 'pw')
    await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'pw', x: 1}}})
    const required = {
      code: 400,
      errno: 107,
      error: 'Invalid parameters',
      message: 'data in body: Required',
      details: [{location: 'body', name: 'data', description: 'Required'}],
    }
    for (const body of [{permissions: {read: ['system.Everyone']}}, {}]) {
      const replaced = await req('PUT', '/v1/accounts/alice', {body, auth: alice})
      expect(replaced.status, JSON.stringify(body)).toBe(400)
      expect(replaced.body, JSON.stringify(body)).toEqual(required)
      const created = await req('PUT', '/v1/accounts/bob', {body})
      expect(created.body, JSON.stringify(body)).toEqual(required)
    }
    // Nothing changed: the account is not readable by everyone.
    expect((await req('GET', '/v1/accounts/alice')).status).toBe(401)
    // PATCH still takes permissions alone.
    expect((await req('PATCH', '/v1/accounts/alice', {body: {permissions: {read: ['system.Everyone']}}, auth: alice})).status).toBe(200)
  })
})

describe('batches', () => {
  test('a sub-request logs in with an account created earlier in its batch', async () => {
    const {req} = setup({'multiauth.policies': 'account basicauth'})
    await batchSignsUpAndLogsIn(req)
  })

  test('a sub-request logs in with the password given earlier in its batch', async () => {
    const {req} = setup({'multiauth.policies': 'account basicauth'})
    await batchChangesPasswordAndLogsIn(req)
  })
})

describe('on the postgresql backends (PGlite here, the server in CI)', () => {
  let pg: Awaited<ReturnType<typeof postgresApp>>
  afterAll(async () => pg?.close())

  test('create, log in through the cache, and log in from sub-requests of a batch with other credentials', async () => {
    pg = await postgresApp({...ACCOUNTS, 'kinto.userid_hmac_secret': 'pg-tests'})
    const req = client(pg.app, null)
    expect((await req('PUT', '/v1/accounts/alice', {body: {data: {password: 'pw-a'}}})).status).toBe(201)
    expect((await req('PUT', '/v1/accounts/bob', {body: {data: {password: 'pw-b'}}})).status).toBe(201)
    expect((await req('GET', '/v1/', {auth: basic('alice', 'pw-a')})).body.user.id).toBe('account:alice')
    // The batch itself is alice's; its second request is bob's (authenticated before the
    // transaction: on PGlite the cache shares the single connection).
    const batch = await req('POST', '/v1/batch', {
      auth: basic('alice', 'pw-a'),
      body: {
        requests: [
          {method: 'PUT', path: '/buckets/alices'},
          {method: 'PUT', path: '/buckets/bobs', headers: {Authorization: basic('bob', 'pw-b')}},
          {method: 'GET', path: '/accounts', headers: {Authorization: basic('bob', 'pw-b')}},
        ],
      },
    })
    expect(batch.status).toBe(200)
    expect(batch.body.responses.map((r: {status: number}) => r.status)).toEqual([201, 201, 200])
    expect(batch.body.responses[1].body.permissions.write).toEqual(['account:bob'])
    expect(batch.body.responses[2].body.data.map((a: {id: string}) => a.id)).toEqual(['bob'])
    // Password change drops the cached verification once committed.
    expect((await req('PATCH', '/v1/accounts/alice', {body: {data: {password: 'new'}}, auth: basic('alice', 'pw-a')})).status).toBe(200)
    expect((await req('GET', '/v1/', {auth: basic('alice', 'pw-a')})).body.user).toBeUndefined()
    expect((await req('GET', '/v1/', {auth: basic('alice', 'new')})).body.user.id).toBe('account:alice')
  }, 60_000)

  test('with a memory cache, a password changed or an account deleted by another process stops working at once', async () => {
    // Two servers (workers, hosts) on one database, each with its memory cache: what one forgets
    // on a change, the other still remembers. kinto create-user, which writes the database
    // directly, is another such process.
    const {createTestDatabase, postgresqlSettings} = await import('../helpers/db.js')
    const {DatabaseRegistry} = await import('../../src/lib/db/index.js')
    const {ensureSchema} = await import('../../src/lib/schema/index.js')
    const {buildSettings} = await import('../../src/lib/config/settings.js')
    const {createBackends} = await import('../../src/lib/backends.js')
    const {createApp} = await import('../../src/lib/server/app.js')
    const db = await createTestDatabase({schema: true})
    const registry = new DatabaseRegistry()
    const servers: FastifyInstance[] = []
    try {
      await ensureSchema(registry.get(db.url), ['storage', 'permission'])
      const settings = buildSettings({...postgresqlSettings(db.url, ['storage', 'permission']), ...ACCOUNTS, 'kinto.account_cache_ttl_seconds': '300'}, {})
      const [one, other] = [0, 1].map(() => {
        const app = createApp({settings, backends: createBackends(settings, {registry})})
        servers.push(app)
        return client(app, null)
      })
      expect((await one('PUT', '/v1/accounts/alice', {body: {data: {password: 'pw-1'}}})).status).toBe(201)
      expect((await other('GET', '/v1/', {auth: basic('alice', 'pw-1')})).body.user?.id).toBe('account:alice')
      expect((await one('PATCH', '/v1/accounts/alice', {body: {data: {password: 'pw-2'}}, auth: basic('alice', 'pw-1')})).status).toBe(200)
      expect((await other('GET', '/v1/', {auth: basic('alice', 'pw-1')})).body.user).toBeUndefined()
      expect((await other('GET', '/v1/', {auth: basic('alice', 'pw-2')})).body.user?.id).toBe('account:alice')
      // Verified once, the new password is remembered there (no bcrypt), until the account goes.
      const compare = vi.spyOn(bcrypt, 'compare')
      try {
        expect((await other('GET', '/v1/', {auth: basic('alice', 'pw-2')})).body.user?.id).toBe('account:alice')
        expect(compare).not.toHaveBeenCalled()
      } finally {
        compare.mockRestore()
      }
      expect((await one('DELETE', '/v1/accounts/alice', {auth: basic('alice', 'pw-2')})).status).toBe(200)
      expect((await other('GET', '/v1/', {auth: basic('alice', 'pw-2')})).body.user).toBeUndefined()
    } finally {
      for (const app of servers) await app.close()
      await registry.closeAll()
      await db.drop()
    }
  }, 60_000)

  test('a sub-request logs in with an account written earlier in its batch (inside the transaction, without the cache PGlite cannot serve there)', async () => {
    const other = await postgresApp({...ACCOUNTS, 'multiauth.policies': 'account basicauth', 'kinto.userid_hmac_secret': 'pg-tests'})
    try {
      const req = client(other.app, null)
      await batchSignsUpAndLogsIn(req)
      await batchChangesPasswordAndLogsIn(req)
    } finally {
      await other.close()
    }
  }, 60_000)
})

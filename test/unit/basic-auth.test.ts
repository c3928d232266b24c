import {describe, expect, test} from 'vitest'

import {BASIC_IDS_REMEMBERED, basicAuthPolicy, hmacDigest, type AuthenticationEnv} from '../../src/lib/server/auth.js'

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const env = (secret: string) => ({settings: {userid_hmac_secret: secret}}) as unknown as AuthenticationEnv

describe('basicauth ids, remembered per Authorization header', () => {
  test('the id is the HMAC of user:password under the current secret, also when asked again', async () => {
    const policy = basicAuthPolicy()
    const header = basic('alice', 's3cret')
    for (let i = 0; i < 3; i++) expect(await policy.authenticate({authorization: header}, env('one'))).toBe(hmacDigest('one', 'alice:s3cret'))
    // A reloaded secret gives the new id, not the remembered one.
    expect(await policy.authenticate({authorization: header}, env('two'))).toBe(hmacDigest('two', 'alice:s3cret'))
    expect(await policy.authenticate({authorization: header}, env('one'))).toBe(hmacDigest('one', 'alice:s3cret'))
  })

  test('what is not credentials stays null when asked again', async () => {
    const policy = basicAuthPolicy()
    for (const authorization of [basic('', 'nouser'), 'Basic !!!', 'Bearer abc', undefined]) {
      for (let i = 0; i < 2; i++) expect(await policy.authenticate({authorization}, env('s'))).toBeNull()
    }
  })

  test('past the bound, and for long headers, every caller still gets its own id', async () => {
    const policy = basicAuthPolicy()
    const users = Array.from({length: BASIC_IDS_REMEMBERED + 10}, (_, i) => `user${i}`)
    for (const round of [1, 2]) {
      for (const user of users) expect(await policy.authenticate({authorization: basic(user, 'pw')}, env('s')), `${user} round ${round}`).toBe(hmacDigest('s', `${user}:pw`))
    }
    const long = 'p'.repeat(2000)
    for (let i = 0; i < 2; i++) expect(await policy.authenticate({authorization: basic('bob', long)}, env('s'))).toBe(hmacDigest('s', `bob:${long}`))
  })
})

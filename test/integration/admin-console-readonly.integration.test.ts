/**
 * The Kinto Admin console in chromium against a readonly `kinto start` (kinto.readonly = true): hello
 * is then cacheable (root_cache_expires_seconds) and the browser keeps the anonymous one that the
 * page reads first. Signing in must still read the signed-in hello (Vary: Authorization), or the
 * console says "Authentication failed" for good credentials.
 */
import type {Browser} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {stopAll} from '../helpers/deploy-servers.js'
import {chromiumSkip as skipReason, launchChromium, startMemoryKinto} from '../helpers/kinto-server.js'

const STEP_MS = 15_000

let base = ''
let browser: Browser | undefined

afterAll(async () => {
  await browser?.close()
  await stopAll()
})

describe.skipIf(skipReason !== '')(`the admin console on a readonly server ${skipReason}`, () => {
  beforeAll(async () => {
    ;({base} = await startMemoryKinto('admin-readonly', [
      'kinto.includes = kinto.plugins.admin',
      'kinto.userid_hmac_secret = 0d6e1f2c3b4a59687f6e5d4c3b2a19080f7e6d5c4b3a2918',
      'multiauth.policies = basicauth',
      'kinto.readonly = true',
    ]))
    browser = await launchChromium()
  }, 90_000)

  it('signs in with Basic Auth although the browser kept the anonymous hello', async () => {
    const context = await browser!.newContext()
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(STEP_MS)
      // The page reads hello anonymously first (kinto-admin sends `Authorization: undefined` then).
      const firstHello = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/')
      await page.goto(`${base}/v1/admin/`)
      const anonymous = await firstHello
      expect(anonymous.headers()['cache-control']).toMatch(/^max-age=[1-9]/)
      expect(anonymous.request().headers().authorization ?? '').not.toMatch(/^Basic /)
      await page.getByLabel('Basic Auth').check()
      await page.locator('#root_credentials_username').fill('reader')
      await page.locator('#root_credentials_password').fill('reader-pw')
      await page.getByRole('button', {name: 'Sign in using Basic Auth'}).click()
      await page.getByText('Connected as').waitFor()
      await page.locator('.user-info').getByText(/^basicauth:/).waitFor()
      expect(await page.getByText('Authentication failed.').count()).toBe(0)
    } finally {
      await context.close()
    }
  }, 60_000)
})

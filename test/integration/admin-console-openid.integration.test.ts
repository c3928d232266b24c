/**
 * The Kinto Admin console in chromium against `kinto start` signing in with OpenID Connect first
 * (`multiauth.policies = oidc account`), the provider being the npm `oidc-provider` on loopback
 * (test/helpers/oidc-provider.ts). The form opens on the server's first method, OpenID; a person
 * signs in through the provider's pages, signs out, and finds the form still on OpenID (kinto-admin
 * 1.31 remembered `openid`, which is none of the form's choices: the button then did nothing).
 */
import type {Browser, Page} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {freePort, stopAll} from '../helpers/deploy-servers.js'
import {chromiumSkip as skipReason, launchChromium, startMemoryKinto} from '../helpers/kinto-server.js'
import {startProvider, type TestProvider} from '../helpers/oidc-provider.js'

const STEP_MS = 15_000
const HISTORY_KEY = 'kinto-admin-server-history'

/** The console's server history in the page's localStorage (the tests have no DOM types). */
async function savedHistory(page: Page): Promise<unknown> {
  return JSON.parse((await page.evaluate<string | null>(`localStorage.getItem(${JSON.stringify(HISTORY_KEY)})`)) ?? '[]')
}

let base = ''
let browser: Browser | undefined
let provider: TestProvider | undefined

afterAll(async () => {
  await browser?.close()
  await stopAll()
  await provider?.close()
})

/** The login form's chosen method and its button. */
async function formState(page: Page): Promise<{checked: string[]; button: string}> {
  const button = page.getByRole('button', {name: /^Sign in using/})
  await button.waitFor()
  return {checked: await page.locator('input[type=radio]:checked').evaluateAll((els) => els.map((e) => (e as unknown as {value: string}).value)), button: (await button.innerText()).trim()}
}

describe.skipIf(skipReason !== '')(`the admin console signing in with OpenID Connect ${skipReason}`, () => {
  beforeAll(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    provider = await startProvider()
    await provider.configure([{client_id: 'kinto', client_secret: 'kinto-secret', redirect_uris: [`${base}/v1/openid/oidc/token`]}])
    await startMemoryKinto(
      'admin-openid',
      [
        'kinto.includes = kinto.plugins.admin kinto.plugins.accounts kinto.plugins.openid',
        'kinto.userid_hmac_secret = 3c2a49f8a7e6d5c4b3a291806b1f0d1ef7e6d5c4b3a2918',
        'kinto.bucket_create_principals = system.Authenticated',
        'multiauth.policies = oidc account',
        'multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy',
        'multiauth.policy.oidc.use = kinto.plugins.openid.OpenIDConnectPolicy',
        `multiauth.policy.oidc.issuer = ${provider.issuer}`,
        'multiauth.policy.oidc.client_id = kinto',
        'multiauth.policy.oidc.client_secret = kinto-secret',
      ],
      {port},
    )
    browser = await launchChromium()
  }, 90_000)

  it('opens on OpenID, signs in through the provider, and stays on OpenID once signed out', async () => {
    const context = await browser!.newContext()
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(STEP_MS)
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      await page.goto(`${base}/v1/admin/`)
      expect(await formState(page)).toEqual({checked: ['openid-oidc'], button: 'Sign in using OpenID Connect (Oidc)'})

      await page.getByRole('button', {name: 'Sign in using OpenID Connect (Oidc)'}).click()
      // The provider's own (development) login and consent pages.
      await page.locator('input[name=login]').fill('alice')
      await page.locator('input[name=password]').fill('any')
      await page.locator('button[type=submit]').click()
      await page.waitForURL((url) => url.href.startsWith(`${base}/`) || url.pathname.startsWith('/interaction/'))
      if (!page.url().startsWith(`${base}/`)) await page.locator('button[type=submit]').click()
      await page.locator('.user-info').getByText('oidc:alice', {exact: true}).waitFor()

      await page.getByText('Logout').click()
      expect(await formState(page)).toEqual({checked: ['openid-oidc'], button: 'Sign in using OpenID Connect (Oidc)'})
      expect(await savedHistory(page)).toEqual([{server: `${base}/v1/`, authType: 'openid-oidc'}])
      await page.reload()
      expect(await formState(page)).toEqual({checked: ['openid-oidc'], button: 'Sign in using OpenID Connect (Oidc)'})
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)

  it('a browser that remembered `openid` (an earlier console) opens on the OpenID provider', async () => {
    const context = await browser!.newContext()
    try {
      const server = `${base}/v1/`
      const remembered = JSON.stringify([{server, authType: 'openid'}, {server: 'http://elsewhere.example/v1/', authType: 'basicauth'}])
      await context.addInitScript({content: `localStorage.setItem(${JSON.stringify(HISTORY_KEY)}, ${JSON.stringify(remembered)})`})
      const page = await context.newPage()
      page.setDefaultTimeout(STEP_MS)
      await page.goto(`${base}/v1/admin/`)
      expect(await formState(page)).toEqual({checked: ['openid-oidc'], button: 'Sign in using OpenID Connect (Oidc)'})
      expect(await savedHistory(page)).toEqual([
        {server, authType: 'openid-oidc'},
        {server: 'http://elsewhere.example/v1/', authType: 'basicauth'},
      ])
    } finally {
      await context.close()
    }
  }, 60_000)
})

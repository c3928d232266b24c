/**
 * The Kinto Admin console in a real browser: Debian's chromium, driven by playwright-core, against
 * `kinto start` (memory backends, accounts and basicauth, kinto.plugins.admin serving the console
 * that `npm run build` bundled). A person's path through it: open /v1/admin, see the login form
 * already on the server's first auth method, fail with a wrong password, sign in as Anonymous (a
 * refused write is an error on the page, never the browser's own sign-in dialog), with Basic Auth
 * and with an account, create a bucket, a collection and a record through the forms, then read
 * them back through the HTTP API. Every page request stays on this server (no network needed).
 *
 * The screenshot of the signed-in console is written to a temporary folder on every run, and to
 * docs/admin.png (shown in the README) when KINTO_UPDATE_SCREENSHOT=1.
 */
import {copyFileSync, readFileSync} from 'node:fs'
import path from 'node:path'

import type {Browser, BrowserContext, Page} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'
import {httpRequest, stopAll} from '../helpers/deploy-servers.js'
import {chromiumSkip as skipReason, launchChromium, startMemoryKinto} from '../helpers/kinto-server.js'

const ADMIN_PASSWORD = 'c0nsole-Passw0rd'
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
/** Bound for each browser step (the server answers in milliseconds; the bundle loads once). */
const STEP_MS = 15_000

let base = ''
let serverOutput: () => string = () => ''
let browser: Browser | undefined
let screenshotDir = ''

async function api(method: string, p: string, auth: string, body?: unknown): Promise<{status: number; json: any}> {
  const headers: Record<string, string> = {Authorization: auth}
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const r = await httpRequest(`${base}${p}`, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)})
  return {status: r.status, json: r.body ? JSON.parse(r.body) : undefined}
}

/** A fresh browser profile: no saved server history nor session. Page errors and off-server requests are kept. */
async function newPage(): Promise<{context: BrowserContext; page: Page; errors: string[]; foreign: string[]; consoleErrors: string[]}> {
  const context = await browser!.newContext({viewport: {width: 1280, height: 800}})
  const page = await context.newPage()
  page.setDefaultTimeout(STEP_MS)
  page.setDefaultNavigationTimeout(STEP_MS)
  const errors: string[] = []
  const foreign: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  const consoleErrors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${m.text()} ${m.location().url}`)
  })
  page.on('request', (r) => {
    if (!r.url().startsWith(`${base}/`) && !r.url().startsWith('data:')) foreign.push(r.url())
  })
  return {context, page, errors, foreign, consoleErrors}
}

async function signIn(page: Page, method: 'Basic Auth' | 'Kinto Account Auth', user: string, password: string): Promise<void> {
  await page.getByLabel(method).check()
  await page.locator('#root_credentials_username').fill(user)
  await page.locator('#root_credentials_password').fill(password)
  await page.getByRole('button', {name: `Sign in using ${method}`}).click()
}

afterAll(async () => {
  await browser?.close()
  await stopAll()
})

describe.skipIf(skipReason !== '')(`the admin console in chromium ${skipReason}`, () => {
  beforeAll(async () => {
    const server = await startMemoryKinto('admin-console', [
      'kinto.includes = kinto.plugins.default_bucket kinto.plugins.admin kinto.plugins.accounts',
      'kinto.userid_hmac_secret = 6b1f0d1e3c2a49f8a7e6d5c4b3a29180f7e6d5c4b3a2918',
      'multiauth.policies = account basicauth',
      'multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy',
      'kinto.account_create_principals = system.Everyone',
      'kinto.account_write_principals = account:admin',
      'kinto.bucket_create_principals = system.Authenticated',
    ])
    base = server.base
    screenshotDir = server.dir
    serverOutput = server.output
    const created = await api('PUT', '/v1/accounts/admin', '', {data: {password: ADMIN_PASSWORD}})
    expect(created.status, JSON.stringify(created.json)).toBe(201)

    browser = await launchChromium()
  }, 90_000)

  it('opens from /v1/admin on the login form, preset to the server and its first auth method', async () => {
    const {context, page, errors, foreign, consoleErrors} = await newPage()
    const requested: string[] = []
    page.on('request', (r) => requested.push(new URL(r.url()).pathname))
    try {
      const response = await page.goto(`${base}/v1/admin`)
      expect(response?.status()).toBe(200)
      expect(new URL(page.url()).pathname).toBe('/v1/admin/')
      await expect.poll(() => page.getByRole('heading', {name: 'Kinto Administration'}).count(), {timeout: STEP_MS}).toBe(1)
      // Single-server mode on this server; `account` (multiauth.policies' first) is preselected.
      expect(await page.locator('#root_server').inputValue()).toBe(`${base}/v1/`)
      expect(await page.getByLabel('Kinto Account Auth').isChecked()).toBe(true)
      expect(await page.getByLabel('Basic Auth').count()).toBe(1)
      // Nothing the page asks for is missing (the icon is the bundle's logo, not /favicon.ico).
      await expect.poll(() => requested.some((p) => /^\/v1\/admin\/assets\/logo-[^/]+\.png$/.test(p)), {timeout: STEP_MS}).toBe(true)
      expect(requested).not.toContain('/favicon.ico')
      expect(consoleErrors).toEqual([])
      expect(errors).toEqual([])
      expect(foreign).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)

  it('a wrong password shows the error and no session', async () => {
    const {context, page, errors} = await newPage()
    try {
      await page.goto(`${base}/v1/admin/`)
      await signIn(page, 'Kinto Account Auth', 'admin', 'not-the-password')
      await page.getByText('Authentication failed.').waitFor()
      await page.getByText('Could not authenticate with Kinto Account Auth').waitFor()
      expect(await page.getByText('Connected as').count()).toBe(0)
      expect(await page.getByRole('button', {name: 'Sign in using Kinto Account Auth'}).count()).toBe(1)
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)

  it('Anonymous: the lists load and a refused write is an error on the page, not a browser sign-in dialog', async () => {
    const {context, page, errors} = await newPage()
    try {
      // A 401 with a Basic challenge makes chromium answer the page's fetch with its own sign-in
      // dialog (headless: the request is dropped and the console waits for ever).
      const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/buckets')
      await page.goto(`${base}/v1/admin/`)
      await page.getByLabel('Anonymous').check()
      await page.getByRole('button', {name: 'Sign in using Anonymous'}).click()
      expect((await listed).status()).toBe(401)
      await page.locator('.user-info', {hasText: 'Anonymous'}).waitFor()
      await expect.poll(() => page.locator('.sidebar .spinner, .spinner').count(), {timeout: STEP_MS}).toBe(0)
      expect(await page.getByText("Couldn't list buckets").count()).toBe(0)

      await page.goto(`${base}/v1/admin/#/buckets/create`)
      await page.locator('#root_id').fill('anonymous-bucket')
      await page.getByRole('button', {name: 'Create bucket'}).click()
      await page.getByText("Couldn't create bucket.").waitFor()
      await page.getByText(/HTTP 401/).first().waitFor()
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)

  it('Basic Auth: signs in and creates a bucket that the API then shows to the same user', async () => {
    const {context, page, errors} = await newPage()
    try {
      await page.goto(`${base}/v1/admin/`)
      await signIn(page, 'Basic Auth', 'alice', 'alice-pw')
      await page.getByText('Connected as').waitFor()
      const hello = await api('GET', '/v1/', basic('alice', 'alice-pw'))
      await page.locator('.user-info').getByText(hello.json.user.id, {exact: true}).waitFor()
      await page.getByRole('link', {name: 'Create bucket'}).click()
      await page.locator('#root_id').fill('alice-notes')
      await page.getByRole('button', {name: 'Create bucket'}).click()
      await page.locator('.bucket-menu', {hasText: 'alice-notes'}).waitFor()
      const bucket = await api('GET', '/v1/buckets/alice-notes', basic('alice', 'alice-pw'))
      expect(bucket.status).toBe(200)
      expect(bucket.json.permissions.write).toEqual([hello.json.user.id])
      // Logging out returns to the form.
      await page.getByText('Logout').click()
      await page.getByRole('button', {name: /^Sign in using/}).waitFor()
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)

  it('an account: bucket, collection and record made through the forms are in the API', async () => {
    const {context, page, errors, foreign} = await newPage()
    try {
      await page.goto(`${base}/v1/admin/`)
      await signIn(page, 'Kinto Account Auth', 'admin', ADMIN_PASSWORD)
      await page.locator('.user-info').getByText('account:admin', {exact: true}).waitFor()

      await page.getByRole('link', {name: 'Create bucket'}).click()
      await page.locator('#root_id').fill('shop')
      await page.getByRole('button', {name: 'Create bucket'}).click()
      const bucketMenu = page.locator('.bucket-menu', {hasText: 'shop'})
      await bucketMenu.waitFor()

      await bucketMenu.getByRole('link', {name: 'Create collection'}).click()
      await page.locator('#root_id').fill('products')
      await page.getByRole('button', {name: 'Create collection'}).click()
      await page.getByRole('heading', {name: /Records of\s+shop\/products/}).waitFor()

      // The collection's default schema gives the record form a Title and a Content field.
      await page.getByRole('link', {name: 'Create record'}).first().click()
      await page.locator('#root_title').fill('Blue mug')
      await page.locator('#root_content').fill('350 ml, stoneware')
      await page.getByRole('button', {name: 'Create record'}).click()
      await page.getByRole('cell', {name: 'Blue mug'}).waitFor()

      const auth = basic('admin', ADMIN_PASSWORD)
      const bucket = await api('GET', '/v1/buckets/shop', auth)
      expect(bucket.status).toBe(200)
      expect(bucket.json.permissions.write).toEqual(['account:admin'])
      const collection = await api('GET', '/v1/buckets/shop/collections/products', auth)
      expect(collection.status).toBe(200)
      expect(collection.json.data.schema.properties).toHaveProperty('title')
      const records = await api('GET', '/v1/buckets/shop/collections/products/records', auth)
      expect(records.status).toBe(200)
      expect(records.json.data).toHaveLength(1)
      expect(records.json.data[0]).toMatchObject({title: 'Blue mug', content: '350 ml, stoneware'})
      // Anonymous readers see none of it.
      expect((await httpRequest(`${base}/v1/buckets/shop/collections/products/records`)).status).toBe(401)

      // The screenshot: the signed-in console on the new collection, notifications dismissed.
      const dismiss = page.locator('button[title="Dismiss"]')
      const deadline = Date.now() + STEP_MS
      // They slide as others leave: one at a time, each click retried until none is left.
      while ((await dismiss.count()) > 0 && Date.now() < deadline) await dismiss.first().click({timeout: 2000}).catch(() => undefined)
      expect(await dismiss.count()).toBe(0)
      const shot = path.join(screenshotDir, 'admin.png')
      await page.screenshot({path: shot})
      const png = readFileSync(shot)
      expect(png.subarray(1, 4).toString()).toBe('PNG')
      expect(png.readUInt32BE(16)).toBe(1280)
      if (process.env.KINTO_UPDATE_SCREENSHOT === '1') copyFileSync(shot, path.join(repoRoot, 'docs', 'admin.png'))

      expect(errors).toEqual([])
      expect(foreign).toEqual([])
    } catch (err) {
      throw new Error(`${(err as Error).message}\nserver output:\n${serverOutput().slice(-3000)}`, {cause: err})
    } finally {
      await context.close()
    }
  }, 90_000)
})

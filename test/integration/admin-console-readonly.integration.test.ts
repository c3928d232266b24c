/**
 * The Kinto Admin console in chromium against a readonly `kinto start` (kinto.readonly = true): hello
 * is then cacheable (root_cache_expires_seconds) and the browser keeps the anonymous one that the
 * page reads first. Signing in must still read the signed-in hello (Vary: Authorization), or the
 * console says "Authentication failed" for good credentials.
 */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import type {Browser} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cliBin} from '../helpers/cli.js'
import {findBinary, freePort, httpRequest, startProcess, stopAll, tempDir, waitFor} from '../helpers/deploy-servers.js'

const chromiumPath = findBinary('chromium')
const skipReason = chromiumPath ? '' : 'SKIPPED: chromium not installed (CI installs the Debian chromium package)'
const STEP_MS = 15_000

let base = ''
let browser: Browser | undefined

afterAll(async () => {
  await browser?.close()
  await stopAll()
})

describe.skipIf(skipReason !== '')(`the admin console on a readonly server ${skipReason}`, () => {
  beforeAll(async () => {
    const dir = tempDir('admin-readonly')
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(
      ini,
      [
        '[server:main]',
        'use = egg:waitress#main',
        'host = 127.0.0.1',
        `port = ${port}`,
        '',
        '[app:main]',
        'use = egg:kinto',
        'kinto.includes = kinto.plugins.admin',
        'kinto.storage_backend = kinto.core.storage.memory',
        'kinto.permission_backend = kinto.core.permission.memory',
        'kinto.cache_backend = kinto.core.cache.memory',
        'kinto.userid_hmac_secret = 0d6e1f2c3b4a59687f6e5d4c3b2a19080f7e6d5c4b3a2918',
        'multiauth.policies = basicauth',
        'kinto.readonly = true',
        '',
      ].join('\n'),
      {mode: 0o600},
    )
    const kinto = startProcess(process.execPath, [cliBin, 'start', '--ini', ini], {cwd: dir, env: {NO_COLOR: '1', CI: 'true'}})
    await waitFor(async () => (await httpRequest(`${base}/v1/__lbheartbeat__`, {timeoutMs: 2000})).status === 200, 45_000, () => `kinto start: ${kinto.output()}`)
    const {chromium} = await import('playwright-core')
    browser = await chromium.launch({executablePath: chromiumPath, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [], timeout: 30_000})
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

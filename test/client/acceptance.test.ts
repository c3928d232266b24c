/**
 * The black-box yardstick: shared/acceptance/http_checks.py `core` (40 checks that upstream Kinto
 * 26.3.1 passes), and `core plugins` (all 50) with the plugin settings of
 * shared/acceptance/README.md, against a running server on each backend kind.
 */
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {acceptanceFile} from '../helpers/schema-catalog.js'
import {BACKEND_KINDS, startTestServer, type TestServer} from './helpers.js'

const run = promisify(execFile)
const script = acceptanceFile('http_checks.py')

async function python(): Promise<string | undefined> {
  try {
    await run('python3', ['--version'])
    return 'python3'
  } catch {
    return undefined
  }
}

describe.each(BACKEND_KINDS)('http_checks.py core (%s)', (kind) => {
  let srv: TestServer
  beforeAll(async () => {
    srv = await startTestServer(kind)
  }, 120_000)
  afterAll(async () => srv?.close())

  test('all 40 core checks pass', async (ctx) => {
    const py = await python()
    if (!script || !py) {
      console.log(`SKIPPED: ${script ? 'python3' : 'shared/acceptance/http_checks.py'} not found`)
      ctx.skip()
      return
    }
    let stdout = ''
    try {
      ;({stdout} = await run(py, [script, srv.remote, 'core'], {timeout: 120_000}))
    } catch (err) {
      stdout = (err as {stdout?: string}).stdout ?? String(err)
    }
    expect(stdout.trim().split('\n').pop()).toBe('40 passed, 0 failed')
  }, 180_000)
})

/** The settings shared/acceptance/README.md gives for the `plugins` group. */
const PLUGIN_SETTINGS: Record<string, string> = {
  'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.history kinto.plugins.accounts kinto.plugins.flush',
  'kinto.flush_endpoint_enabled': 'true',
  'kinto.experimental_permissions_endpoint': 'true',
  'multiauth.policies': 'account basicauth',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  'kinto.account_create_principals': 'system.Everyone',
}

describe.each(BACKEND_KINDS)('http_checks.py core plugins (%s)', (kind) => {
  let srv: TestServer
  beforeAll(async () => {
    srv = await startTestServer(kind, PLUGIN_SETTINGS)
  }, 120_000)
  afterAll(async () => srv?.close())

  test('all 50 checks pass', async (ctx) => {
    const py = await python()
    if (!script || !py) {
      console.log(`SKIPPED: ${script ? 'python3' : 'shared/acceptance/http_checks.py'} not found`)
      ctx.skip()
      return
    }
    let stdout = ''
    try {
      ;({stdout} = await run(py, [script, srv.remote, 'core', 'plugins'], {timeout: 120_000}))
    } catch (err) {
      stdout = (err as {stdout?: string}).stdout ?? String(err)
    }
    expect(stdout.trim(), stdout).toMatch(/(^|\n)50 passed, 0 failed$/)
  }, 180_000)
})

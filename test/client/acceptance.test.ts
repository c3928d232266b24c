/**
 * The black-box yardstick: shared/acceptance/http_checks.py `core` (40 checks that upstream Kinto
 * 26.3.1 passes), and `core plugins` (all 50) with the plugin settings of
 * shared/acceptance/README.md, against a running server on each backend kind.
 */
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, test, type TestContext} from 'vitest'

import {acceptanceFile} from '../helpers/schema-catalog.js'
import {ACCEPTANCE_PLUGINS} from '../server/plugins-helpers.js'
import {BACKEND_KINDS, type BackendKind, startTestServer, type TestServer} from './helpers.js'

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

/** A server of this kind with these settings for the describe block around (started before its tests, closed after). */
function serverOf(kind: BackendKind, settings?: Record<string, string>): () => TestServer {
  let srv: TestServer
  beforeAll(async () => {
    srv = await startTestServer(kind, settings)
  }, 120_000)
  afterAll(async () => srv?.close())
  return () => srv
}

/** What http_checks.py prints for these groups against srv; undefined when the test skipped (no script or no python3). */
async function httpChecks(ctx: TestContext, srv: TestServer, groups: string[]): Promise<string | undefined> {
  const py = await python()
  if (!script || !py) {
    ctx.skip(`SKIPPED: ${script ? 'python3' : 'shared/acceptance/http_checks.py'} not found`)
    return undefined
  }
  try {
    return (await run(py, [script, srv.remote, ...groups], {timeout: 120_000})).stdout
  } catch (err) {
    return (err as {stdout?: string}).stdout ?? String(err)
  }
}

describe.each(BACKEND_KINDS)('http_checks.py core (%s)', (kind) => {
  const server = serverOf(kind)

  test('all 40 core checks pass', async (ctx) => {
    const stdout = await httpChecks(ctx, server(), ['core'])
    if (stdout === undefined) return
    expect(stdout.trim().split('\n').pop()).toBe('40 passed, 0 failed')
  }, 180_000)
})

describe.each(BACKEND_KINDS)('http_checks.py core plugins (%s)', (kind) => {
  const server = serverOf(kind, ACCEPTANCE_PLUGINS)

  test('all 50 checks pass', async (ctx) => {
    const stdout = await httpChecks(ctx, server(), ['core', 'plugins'])
    if (stdout === undefined) return
    expect(stdout.trim(), stdout).toMatch(/(^|\n)50 passed, 0 failed$/)
  }, 180_000)
})

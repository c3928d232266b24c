/**
 * scripts/upgrade.sh end to end against a running `kinto start`: the Backoff header is on while
 * it runs and off after, the ini ends as it began, the server keeps serving (same pid). A failing
 * step stops the job with its exit code and still turns backoff (and maintenance) off. On the
 * embedded database the running server holds the folder: the migrate check runs in that server
 * (its control socket) and the upgrade completes, the server serving throughout.
 */
import {spawn} from 'node:child_process'
import {chmodSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, describe, expect, test} from 'vitest'

import {cliBin, repoRoot} from '../helpers/cli.js'
import {dbKind} from '../helpers/db.js'
import {opsIni, sleep, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

const script = path.join(repoRoot, 'scripts', 'upgrade.sh')
const inis: OpsIni[] = []
const servers: Started[] = []
afterAll(async () => {
  for (const s of servers) await s.stop()
  for (const i of inis) await i.cleanup()
})

function runScript(args: string[], kinto: string): Promise<{code: number | null; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn('sh', [script, ...args], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', KINTO: kinto}, stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stdout.on('data', (d) => (stderr += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({code, stderr}))
  })
}

/** Polls the server while fn runs; returns the Backoff and status values seen. */
async function watching<T>(url: string, fn: () => Promise<T>): Promise<{result: T; backoffs: Set<string | null>; statuses: Set<number>}> {
  const backoffs = new Set<string | null>()
  const statuses = new Set<number>()
  let on = true
  const poll = (async () => {
    while (on) {
      try {
        const res = await fetch(`${url}__heartbeat__`)
        await res.arrayBuffer()
        backoffs.add(res.headers.get('backoff'))
        statuses.add(res.status)
      } catch {
        statuses.add(0)
      }
      await sleep(50)
    }
  })()
  const result = await fn()
  on = false
  await poll
  return {result, backoffs, statuses}
}

const kinto = `${process.execPath} ${cliBin}`
// a server kind whose database another process may migrate while it runs
const liveKind = dbKind === 'postgresql' ? 'postgresql' : 'memory'

describe('scripts/upgrade.sh', () => {
  test(`${liveKind}: backoff on during the upgrade, off after; the server keeps serving`, async () => {
    const i = await opsIni(liveKind)
    inis.push(i)
    const before = readFileSync(i.ini, 'utf8')
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    servers.push(server)
    const {result, backoffs, statuses} = await watching(server.url, () => runScript(['--ini', i.ini, '--backoff', '45', '--maintenance', '--timeout', '20'], kinto))
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toMatch(/\$ kinto backoff 45 --for 1h/)
    expect(result.stderr).toMatch(/\$ kinto migrate --check/)
    expect(result.stderr).toMatch(/\$ kinto reload/)
    expect(result.stderr).toMatch(/is ready/)
    expect(result.stderr).toMatch(/done: upgraded, backoff off/)
    expect(backoffs.has('45')).toBe(true)
    expect([...statuses]).toEqual([200])
    expect(readFileSync(i.ini, 'utf8')).toBe(before)
    const after = await fetch(server.url)
    expect(after.headers.get('backoff')).toBeNull()
    expect(((await after.json()) as {settings: {maintenance?: boolean}}).settings.maintenance).toBeUndefined()
    expect(server.child.exitCode).toBeNull()
  }, 180_000)

  test('a failing step stops the job with its exit code; backoff and maintenance are off again', async () => {
    const i = inis[0]
    const server = servers[0]
    const before = readFileSync(i.ini, 'utf8')
    // A kinto whose migrate reports drift (exit 5).
    const fake = path.join(i.dir, 'fake-kinto.sh')
    writeFileSync(fake, `#!/bin/sh\nif [ "$1" = migrate ]; then echo "Error: drift" >&2; exit 5; fi\nexec ${kinto} "$@"\n`)
    chmodSync(fake, 0o755)
    const {result, backoffs} = await watching(server.url, () => runScript(['--ini', i.ini, '--maintenance'], fake))
    expect(result.code, result.stderr).toBe(5)
    expect(result.stderr).toMatch(/step failed: kinto migrate --check \(exit 5\)/)
    expect(result.stderr).toMatch(/FAILED \(exit 5\); backoff and maintenance are off again/)
    expect(backoffs.has('60')).toBe(true)
    expect(readFileSync(i.ini, 'utf8')).toBe(before)
    expect((await fetch(server.url)).headers.get('backoff')).toBeNull()
    const bad = await runScript(['--ini'], kinto)
    expect(bad.code).toBe(2)
  }, 180_000)

  test('embedded database served by a running server: the migrate check runs in that server, the upgrade completes', async () => {
    const i = await opsIni('pglite')
    inis.push(i)
    const before = readFileSync(i.ini, 'utf8')
    const server = await spawnStart(['--ini', i.ini, '--port', '0'])
    servers.push(server)
    const {result, backoffs, statuses} = await watching(server.url, () => runScript(['--ini', i.ini, '--timeout', '20'], kinto))
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toMatch(/\$ kinto migrate --check/)
    expect(result.stderr).toMatch(/schema current: nothing to migrate/)
    expect(result.stderr).toMatch(/done: upgraded, backoff off/)
    expect(result.stderr).not.toContain('open in a running server')
    expect(backoffs.has('60')).toBe(true)
    expect([...statuses]).toEqual([200])
    expect(readFileSync(i.ini, 'utf8')).toBe(before)
    expect((await fetch(server.url)).headers.get('backoff')).toBeNull()
    expect(server.child.exitCode).toBeNull()
  }, 180_000)
})

/**
 * The commands under faults: `kinto migrate` cut by a database restart exits non-zero with one
 * clear line and leaves each backend at its old or its new version (a rerun completes it);
 * `kinto migrate`, `check`, `wait-ready` and `status` never hang on a blackholed database or a
 * server that accepts connections and never answers.
 */
import {writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openDatabase} from '../../src/lib/db/index.js'
import {detectVersion} from '../../src/lib/schema/index.js'
import {CURRENT_VERSIONS} from '../../src/lib/schema/sql-files.js'
import {iniText} from '../client/helpers.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {until} from '../helpers/fault-load.js'
import {clusterUnavailable, createCluster, type PgCluster} from '../helpers/pg-cluster.js'
import {startProxy, type TcpProxy} from '../helpers/tcp-proxy.js'
import {tempFolders} from '../helpers/tmp.js'

const skip = clusterUnavailable()
const tempDir = tempFolders('faults-commands')

function writeIni(url: string, extra: Record<string, string> = {}): string {
  const settings: Record<string, string> = {'kinto.userid_hmac_secret': 'fault-tests'}
  for (const b of ['storage', 'permission', 'cache']) {
    settings[`kinto.${b}_backend`] = `kinto.core.${b}.postgresql`
    settings[`kinto.${b}_url`] = url
  }
  const ini = path.join(tempDir(), 'kinto.ini')
  writeFileSync(ini, iniText({...settings, ...extra}))
  return ini
}

/** No stack trace, and one error line (progress lines aside) that says what failed. */
function expectClearError(stderr: string, pattern: RegExp): void {
  expect(stderr).not.toMatch(/^\s+at /m)
  const errors = stderr.split('\n').filter((l) => l.startsWith('Error:'))
  expect(errors, stderr).toHaveLength(1)
  expect(errors[0]).toMatch(pattern)
  expect(errors[0]).not.toMatch(/unexpected failure/)
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = Date.now()
  const r = await fn()
  return [r, Date.now() - t]
}

describe.skipIf(skip !== null)(`commands under faults${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  let cluster: PgCluster
  let proxy: TcpProxy
  let silent: net.Server
  let silentUrl: string
  const held: net.Socket[] = []
  beforeAll(async () => {
    cluster = await createCluster()
    proxy = await startProxy(cluster.port)
    // Accepts connections, never answers.
    silent = net.createServer((s) => {
      held.push(s)
      s.on('error', () => {})
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()))
    silentUrl = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/v1/`
  }, 120_000)
  afterAll(async () => {
    for (const s of held) s.destroy()
    silent?.close()
    await proxy?.close()
    await cluster?.destroy()
  })

  it('kinto migrate cut by a database restart: one clear line, each backend old or new, a rerun completes', async () => {
    const url = await cluster.createDatabase('cut')
    const fixtures = path.join(repoRoot, 'test', 'fixtures', 'sql')
    const {readFileSync} = await import('node:fs')
    const setup = new pg.Client({connectionString: url})
    await setup.connect()
    for (const f of ['storage_v001.sql', 'permission_v001.sql']) await setup.query(readFileSync(path.join(fixtures, f), 'utf8'))
    await setup.end()
    // Another session holds the permission table: migrate upgrades cache and storage, then waits.
    const locker = new pg.Client({connectionString: url})
    locker.on('error', () => {})
    await locker.connect()
    await locker.query('BEGIN')
    await locker.query('LOCK TABLE access_control_entries IN ACCESS EXCLUSIVE MODE')
    const ini = writeIni(url)
    const run = runCli(['migrate', '--ini', ini], {timeoutMs: 60_000})
    const waiting = await until(async () => {
      const rows = await cluster.sql<{n: number}>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'cut' AND wait_event_type = 'Lock' AND pid <> $1`,
        [(locker as unknown as {processID: number}).processID],
      )
      return rows[0].n > 0
    }, 30_000, 100)
    expect(waiting, 'migrate waits on the held table').toBe(true)
    await cluster.restart('fast')
    const cut = await run
    expect(cut.code, cut.stdout + cut.stderr).not.toBe(0)
    expect(cut.code).not.toBeNull()
    expectClearError(cut.stderr, /Cannot connect to PostgreSQL .*ended the connection/)
    console.log(`FIGURES migrate cut: exit ${cut.code}: ${cut.stderr.split('\n').find((l) => l.startsWith('Error:'))}`)
    // Each backend is at its old or its new version, never in between.
    const db = openDatabase(url)
    try {
      for (const backend of ['storage', 'permission'] as const) {
        const v = (await detectVersion(db, backend)).version
        expect([1, CURRENT_VERSIONS[backend]]).toContain(v)
      }
    } finally {
      await db.close()
    }
    const again = await runCli(['migrate', '--ini', ini], {timeoutMs: 120_000})
    expect(again.code, again.stderr).toBe(0)
    const after = openDatabase(url)
    try {
      for (const backend of ['storage', 'permission'] as const) expect((await detectVersion(after, backend)).version).toBe(CURRENT_VERSIONS[backend])
    } finally {
      await after.close()
    }
  }, 180_000)

  describe('a blackholed database', () => {
    let ini: string
    beforeAll(async () => {
      await cluster.createDatabase('holed')
      ini = writeIni(`postgresql://postgres@127.0.0.1:${proxy.port}/holed`, {
        'kinto.storage_connect_timeout': '3',
        'kinto.permission_connect_timeout': '3',
        'kinto.cache_connect_timeout': '3',
      })
      proxy.setMode('blackhole')
    })
    afterAll(() => proxy.setMode('pass'))

    it('kinto migrate gives up after the connect timeout', async () => {
      const [r, ms] = await timed(() => runCli(['migrate', '--ini', ini], {timeoutMs: 90_000}))
      expect(r.code).toBe(1)
      expectClearError(r.stderr, /Cannot connect to PostgreSQL .*timed out/)
      expect(ms).toBeLessThan(50_000)
      console.log(`FIGURES migrate, blackholed database: exit 1 after ${ms} ms`)
    }, 120_000)

    it('kinto check reports it unreachable within its --timeout', async () => {
      const [r, ms] = await timed(() => runCli(['check', '--ini', ini, '--timeout', '3', '--json'], {timeoutMs: 90_000}))
      expect(r.code).toBe(1)
      expect(r.stdout + r.stderr).toMatch(/timed out|Cannot connect/)
      expect(ms).toBeLessThan(50_000)
      console.log(`FIGURES check, blackholed database: exit 1 after ${ms} ms`)
    }, 120_000)
  })

  it('kinto flush-cache and purge-deleted give up on a lock another transaction holds, with exit 4 and one clear line', async () => {
    const url = await cluster.createDatabase('locked')
    const ini = writeIni(url)
    const migrated = await runCli(['migrate', '--ini', ini], {timeoutMs: 90_000})
    expect(migrated.code, migrated.stderr).toBe(0)
    const holder = new pg.Client({connectionString: url})
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE cache, objects IN ACCESS EXCLUSIVE MODE')
      for (const [args, tables] of [[['flush-cache'], 'cache'], [['purge-deleted', 'record', '10'], 'storage']] as const) {
        // Without a lock timeout they wait for as long as the transaction lives: killed at 60 s.
        const command = args[0]
        const r = await runCli([...args, '--ini', ini], {timeoutMs: 60_000})
        expect(r.signal, `${command}: ${r.stderr}`).toBeNull()
        expect(r.code, r.stderr).toBe(4)
        expectClearError(r.stderr, new RegExp(`Waited 10 s for a lock on the ${tables} tables of .*another session's transaction holds it`))
      }
    } finally {
      await holder.end()
    }
  }, 180_000)

  describe('a server that accepts connections and never answers', () => {
    it('kinto wait-ready gives up at --timeout', async () => {
      const [r, ms] = await timed(() => runCli(['wait-ready', '--url', silentUrl, '--timeout', '3'], {timeoutMs: 90_000}))
      expect(r.code).toBe(1)
      expectClearError(r.stderr, /was not ready after/)
      expect(ms).toBeLessThan(50_000)
    }, 120_000)

    it('kinto status says it does not answer', async () => {
      const [r, ms] = await timed(() => runCli(['status', '--url', silentUrl, '--timeout', '2', '--json'], {timeoutMs: 90_000}))
      expect(r.signal).toBeNull()
      const out = JSON.parse(r.stdout) as {remote: {reachable: boolean; error?: string}}
      expect(out.remote.reachable).toBe(false)
      expect(out.remote.error).toMatch(/time/i)
      expect(ms).toBeLessThan(50_000)
    }, 120_000)

    it('kinto check --url reports it within its --timeout', async () => {
      const [r, ms] = await timed(() => runCli(['check', '--url', silentUrl, '--timeout', '2', '--json'], {timeoutMs: 90_000}))
      expect(r.code).toBe(1)
      expect(r.stdout + r.stderr).toMatch(/time/i)
      expect(ms).toBeLessThan(50_000)
    }, 120_000)
  })
})

/**
 * A private PostgreSQL 15 cluster for one test file: initdb + pg_ctl in a temporary folder, on a
 * free port, listening on 127.0.0.1 only, trust authentication. Fault tests restart, stop and crash
 * it without touching the machine's shared server. The binaries refuse to run as root: as root
 * they run as the `postgres` user (runuser) in a folder that user owns.
 */
import {execFile, execFileSync} from 'node:child_process'
import {chownSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'

import {findBinary} from './deploy-servers.js'

/**
 * The folder of the server binaries: KINTO_TEST_PG_BIN, else Debian's PostgreSQL 15 (the version CI
 * and docs/reliability.md use), else the newest Debian version installed, else the folder `initdb`
 * on the PATH resolves to. A machine whose server is not 15 runs the fault tests instead of
 * skipping them.
 */
function serverBinaries(): string {
  if (process.env.KINTO_TEST_PG_BIN) return process.env.KINTO_TEST_PG_BIN
  const debian = '/usr/lib/postgresql'
  const versions = existsSync(debian) ? readdirSync(debian).filter((v) => /^\d+$/.test(v)) : []
  const ordered = [...versions.filter((v) => v === '15'), ...versions.filter((v) => v !== '15').sort((a, b) => Number(b) - Number(a))]
  for (const v of ordered) if (existsSync(path.join(debian, v, 'bin', 'initdb'))) return path.join(debian, v, 'bin')
  const initdb = findBinary('initdb')
  return initdb ? path.dirname(realpathSync(initdb)) : path.join(debian, '15', 'bin')
}

export const PG_BIN = serverBinaries()

/** Why a private cluster cannot be made here, or null. */
export function clusterUnavailable(): string | null {
  for (const b of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(path.join(PG_BIN, b))) return `${path.join(PG_BIN, b)} is missing (PostgreSQL server binaries; KINTO_TEST_PG_BIN names their folder)`
  }
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres'], {stdio: 'ignore'})
    } catch {
      return 'running as root and there is no `postgres` user to run initdb as'
    }
  }
  return null
}

/** A port nobody listens on now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
}

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{stdout: string; stderr: string}> {
  const [file, argv] = asPostgres(cmd, args)
  return new Promise((resolve, reject) => {
    execFile(file, argv, {timeout: timeoutMs, env: {...process.env, LC_ALL: 'C'}}, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${error.message}\n${stderr}`))
      else resolve({stdout, stderr})
    })
  })
}

export interface PgCluster {
  port: number
  /** The folder of its Unix socket (`.s.PGSQL.<port>`). */
  socketDir: string
  /** Superuser URL of `database` (default `postgres`). */
  url(database?: string): string
  /** A fresh UTF8/UTC database; returns its URL. */
  createDatabase(name: string): Promise<string>
  /** pg_ctl restart -m MODE (waits until it accepts connections). */
  restart(mode?: 'fast' | 'immediate' | 'smart'): Promise<void>
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  start(): Promise<void>
  /** Runs one statement as superuser on a short-lived connection. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<T[]>
  /** Stops the cluster and removes its folder. */
  destroy(): Promise<void>
}

export interface ClusterOptions {
  /** Extra postgresql.conf lines. */
  conf?: Record<string, string | number>
  /** Files written into the data folder before the start, the server's own, mode 0600 (e.g. a TLS key). */
  files?: Record<string, string>
}

/** initdb + start a cluster. The caller destroys it (afterAll). */
export async function createCluster(options: ClusterOptions = {}): Promise<PgCluster> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kinto-pgcluster-'))
  const data = path.join(root, 'data')
  const log = path.join(root, 'server.log')
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    chownSync(root, uid, gid)
  }
  const port = await freePort()
  await run(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const conf: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${root}'`,
    // Only PostgreSQL crashes here, never the machine: the OS cache keeps what fsync would force,
    // so commits stay durable across a crash restart (synchronous_commit stays on: it is not).
    fsync: 'off',
    shared_buffers: "'16MB'",
    max_connections: 40,
    timezone: "'UTC'",
    log_min_messages: 'warning',
    ...options.conf,
  }
  const confPath = path.join(data, 'postgresql.auto.conf')
  writeFileSync(confPath, Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', confPath])
  for (const [name, text] of Object.entries(options.files ?? {})) {
    const file = path.join(data, name)
    writeFileSync(file, text, {mode: 0o600})
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', file])
  }
  const pgCtl = (args: string[]) => run(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '30', ...args])
  await pgCtl(['start'])
  const url = (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`
  let running = true
  const cluster: PgCluster = {
    port,
    socketDir: root,
    url,
    async createDatabase(name) {
      await cluster.sql(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`)
      await cluster.sql(`ALTER DATABASE ${name} SET TIMEZONE TO 'UTC'`)
      return url(name)
    },
    async restart(mode = 'fast') {
      await pgCtl(['restart', '-m', mode])
      running = true
    },
    async stop(mode = 'fast') {
      await pgCtl(['stop', '-m', mode])
      running = false
    },
    async start() {
      await pgCtl(['start'])
      running = true
    },
    async sql<T>(text: string, params: unknown[] = [], database = 'postgres') {
      // While a test fills every connection slot, connection attempts that are still starting up
      // hold the superuser-reserved slots for an instant too: a refusal (53300) is retried.
      for (let attempt = 1; ; attempt++) {
        const client = new pg.Client({connectionString: url(database), connectionTimeoutMillis: 5000})
        client.on('error', () => {})
        try {
          await client.connect()
        } catch (error) {
          await client.end().catch(() => {})
          if ((error as {code?: string}).code !== '53300' || attempt >= 20) throw error
          await new Promise((resolve) => setTimeout(resolve, 250))
          continue
        }
        try {
          return (await client.query(text, params)).rows as T[]
        } finally {
          await client.end().catch(() => {})
        }
      }
    },
    async destroy() {
      if (running) await pgCtl(['stop', '-m', 'immediate']).catch(() => {})
      running = false
      rmSync(root, {recursive: true, force: true})
    },
  }
  return cluster
}

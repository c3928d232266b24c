/**
 * `kinto start`: builds the backends and the app from a loaded config, checks that PostgreSQL
 * schemas are installed, listens as [server:main] says (flags override), and closes gracefully:
 * stop accepting, finish in-flight requests (up to a deadline), close the pools.
 *
 * An embedded database folder is locked for the server's whole life (the lock file of
 * src/lib/schema/lock.ts, marked as held by a server), so `kinto migrate` and friends fail at once
 * naming this pid instead of opening the folder twice. reload() re-reads the ini and takes what
 * can change live (see Runtime.applySettings); the run registry (src/lib/runs/registry.ts) tells
 * the CLI what this process applied.
 */
import {createHash} from 'node:crypto'
import {chmodSync, lstatSync, readFileSync, statSync, unlinkSync} from 'node:fs'
import {connect, Server} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import type {FastifyInstance} from 'fastify'

import {createBackends} from '../backends.js'
import {backendKind, loadConfig, type KintoConfig, type ServerConfig} from '../config/index.js'
import {asString, type Settings} from '../config/settings.js'
import {startAutoAnalyze} from '../db/auto-analyze.js'
import {DatabaseRegistry, maskUrl, parseDbUrl, type SqlClient} from '../db/index.js'
import {isKintoError, KintoError} from '../errors.js'
import {bracketHost} from '../net.js'
import {RunRecord, sha256File, type AppliedToggles, type RunRole} from '../runs/registry.js'
import {EXPIRY_KEYS, serviceStateFrom} from '../state/toggles.js'
import {acquireFileLock, pgliteLockPath} from '../schema/lock.js'
import {migrate} from '../schema/migrate.js'
import {requireSchema} from '../schema/require.js'
import {configuredBackends} from '../schema/targets.js'
import {packageVersion} from '../version.js'
import {createLogging, loggingOf} from '../monitoring/index.js'
import {createApp} from './app.js'
import {migrateWhenReachable, migrationReport, unreachableDatabase} from './deferred-migration.js'

export {unreachableDatabase}
import type {Logger} from '../logger.js'
import type {ConfigInfo} from './runtime.js'

export interface StartServerOptions {
  /** Overrides [server:main] host. */
  host?: string
  /** Overrides [server:main] port (0: any free port). */
  port?: number
  /** Default: the ini's logging sections (createLogging: mozlog JSON when they ask for it; readable lines on stderr without them). */
  logger?: Logger & object
  /** The runtime's clock for deadlines (RuntimeOptions.clock); default Date.now. */
  clock?: () => number
  /** Skip the schema check (tests that install the schema themselves do not need it). */
  skipSchemaCheck?: boolean
  /**
   * A database the schema check cannot reach is warned about, and the server serves (503 errno
   * 201 until the database answers) instead of refusing to start. For a worker that replaces one
   * that died: its deployment checked the schemas when it started, and a replacement that exited
   * during a database outage would be replaced again and again until the primary gave up. And
   * for `kinto start --serve-unreachable`, a deployment whose database starts beside it.
   */
  serveWhileUnreachable?: boolean
  /** Install or upgrade the PostgreSQL schemas before serving (`kinto start --migrate`). */
  migrate?: boolean
  /** Record this runtime in the run registry (what `kinto start` does; embedded test servers need not). */
  record?: {role: Exclude<RunRole, 'primary'>; primaryPid?: number}
  /** `%(http_port)s` and environment for reloads: the same as the config was loaded with. */
  httpPort?: number
  env?: NodeJS.ProcessEnv
  /** How long close() lets requests in flight finish before cutting them (default 30 s). */
  shutdownTimeoutMs?: number
  /**
   * Unix socket: remove a stale socket file first (default true). Cluster workers leave it to
   * their primary, which owns the socket.
   */
  prepareSocket?: boolean
}

/** What a reload did; setting names only, never values. */
export interface ReloadReport {
  ok: boolean
  /** sha256 of the ini read. */
  configHash: string
  /** Settings taken live. */
  applied: string[]
  /** Settings that differ from what runs and need a restart (cumulative since start). */
  needRestart: string[]
  error?: string
}

export interface CloseReport {
  /** Requests were still running at the deadline and their connections were cut. */
  forced: boolean
}

export interface RunningServer {
  app: FastifyInstance
  /** Base URL of the API (`http://127.0.0.1:8888/v1/`), or the unix socket path. */
  url: string
  /** The run registry entry (when options.record was given). */
  record?: RunRecord
  /** The databases the server serves from (its embedded folders stay open and locked while it runs). */
  registry: DatabaseRegistry
  /** Re-reads the ini and applies what can change live. Never throws; never drops a request. */
  reload(): ReloadReport
  /** Stops accepting, waits for in-flight requests (up to the deadline), closes the backends. Idempotent. */
  close(): Promise<CloseReport>
  /**
   * During close(), its drain of kept-alive connections included: reach its deadline now (a second
   * Ctrl-C): the requests still running are cut. Before close(): the coming close() cuts at once.
   */
  cutNow(reason: string): void
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000

/** How long a stopping server tells kept-alive connections to close before it closes the idle ones. */
export const DRAIN_GRACE_MS = 1000

/** hello's `config` block: path, sha256 of the file and its modification time (local, as upstream). */
export function configAttributes(iniPath: string): ConfigInfo | null {
  try {
    const content = readFileSync(iniPath)
    const mtime = statSync(iniPath).mtime
    return {path: iniPath, hash: createHash('sha256').update(content).digest('hex'), modified: localIso(mtime)}
  } catch {
    return null
  }
}

function localIso(d: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return d.getMilliseconds() ? `${base}.${pad(d.getMilliseconds() * 1000, 6)}` : base
}

/** Refuses to serve a database whose schema is missing or not the version we serve. */
async function checkSchemas(config: KintoConfig, registry: DatabaseRegistry, unreachable?: (error: KintoError) => void): Promise<void> {
  const unreached = new Set<SqlClient>()
  for (const backend of ['storage', 'permission', 'cache'] as const) {
    if (backendKind(config.settings[`${backend}_backend`]) !== 'postgresql') continue
    const url = asString(config.settings, `${backend}_url`) ?? ''
    const client: SqlClient = registry.get(url)
    // One warning per database, not one per backend on it.
    if (unreached.has(client)) continue
    try {
      const parsed = parseDbUrl(url, config.dir)
      const inMemory = parsed.driver === 'pglite' && parsed.dataDir === null
      await requireSchema(client, backend, `${maskUrl(url)} (${backend})`, config.path, {inMemory})
    } catch (error) {
      if (!unreachable || !isKintoError(error) || error.code !== 'KINTO_DB_UNREACHABLE') throw error
      unreached.add(client)
      unreachable(error)
    }
  }
}

/** Embedded folders of the config (one lock each). */
function embeddedFolders(config: KintoConfig): string[] {
  return [...new Set(configuredBackends(config.settings, config.dir).flatMap((b) => (b.pgliteDir ? [b.pgliteDir] : [])))]
}

/** The databases the server serves from (one client per database, whatever serves it). */
function serverClients(config: KintoConfig, registry: DatabaseRegistry): SqlClient[] {
  const clients = new Set<SqlClient>()
  for (const backend of ['storage', 'permission', 'cache'] as const) {
    if (backendKind(config.settings[`${backend}_backend`]) !== 'postgresql') continue
    clients.add(registry.get(asString(config.settings, `${backend}_url`) ?? ''))
  }
  return [...clients]
}

/** Takes the lock of every embedded folder for the server's life; waits for a migration, not for a server. */
async function lockEmbedded(config: KintoConfig, logger: Logger): Promise<Array<() => void>> {
  const releases: Array<() => void> = []
  try {
    for (const folder of embeddedFolders(config)) {
      releases.push(
        await acquireFileLock(pgliteLockPath(folder), {
          target: `embedded database in ${folder}`,
          timeoutMs: 60_000,
          owner: {command: 'kinto start', serves: true, detail: config.path},
          onWait: (holder) => logger.warn({folder, holder}, `Waiting for ${holder} to release the embedded database ${folder}.`),
        }),
      )
    }
  } catch (err) {
    for (const release of releases) release()
    throw err
  }
  return releases
}

/** Removes a socket file no process listens on; refuses a live socket and anything that is not a socket. */
/** Why `kinto start` could not listen on --host/--port, in words (node says "listen EADDRNOTAVAIL: address not available 203.0.113.5:80"). */
const LISTEN_FAILURES: Record<string, {reason: string; hint: string}> = {
  EADDRINUSE: {reason: 'the address is already in use', hint: 'Choose another --port or --host, or stop the process using it.'},
  EACCES: {reason: 'permission denied (ports below 1024 need privileges)', hint: 'Choose a --port of 1024 or more (behind a proxy), or give the runtime the right to bind it.'},
  EADDRNOTAVAIL: {reason: 'no network interface of this machine has that address', hint: 'Choose a --host this machine has (127.0.0.1, 0.0.0.0 for every interface), or [server:main] host in the ini.'},
  ENOTFOUND: {reason: 'the host name is unknown', hint: 'Choose a --host this machine has (127.0.0.1, 0.0.0.0 for every interface), or [server:main] host in the ini.'},
  EAI_AGAIN: {reason: 'the host name could not be resolved (DNS did not answer)', hint: 'Give --host as an IP address, or check the resolver.'},
  // getaddrinfo's answer to a name no resolver takes (over 253 characters, a label over 63)
  EINVAL: {reason: 'the host is no address or host name', hint: 'Choose a --host this machine has (127.0.0.1, 0.0.0.0 for every interface), or [server:main] host in the ini.'},
}

export async function clearStaleSocket(file: string): Promise<void> {
  let stat
  try {
    stat = lstatSync(file)
  } catch {
    return
  }
  const inUse = () =>
    new KintoError(`Cannot listen on ${file}: another process is listening on it.`, {
      code: 'KINTO_LISTEN_FAILED',
      hint: 'Stop that process, or set another [server:main] unix_socket.',
    })
  if (!stat.isSocket()) {
    throw new KintoError(`Cannot listen on ${file}: it exists and is not a socket.`, {
      code: 'KINTO_LISTEN_FAILED',
      hint: 'Remove it, or set another [server:main] unix_socket.',
    })
  }
  const live = await new Promise<boolean>((resolve) => {
    const socket = connect(file)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
  if (live) throw inUse()
  unlinkSync(file)
}

/** The toggles as this runtime holds them (for the run registry and `kinto status`). */
export function appliedToggles(settings: Settings): AppliedToggles {
  const state = serviceStateFrom(settings)
  const text = (key: string) => (settings[key] === undefined || settings[key] === null || settings[key] === '' ? null : String(settings[key]))
  return {
    backoff: state.backoff,
    backoffPercentage: state.backoffPercentage,
    backoffExpires: text(EXPIRY_KEYS.backoff),
    readonly: state.readonly,
    readonlyExpires: text(EXPIRY_KEYS.readonly),
    maintenance: state.maintenance,
    maintenanceExpires: text(EXPIRY_KEYS.maintenance),
  }
}

/** [server:main] fields whose change needs a restart. */
function serverChanges(before: ServerConfig, after: ServerConfig): string[] {
  const keys: Array<[keyof ServerConfig, string]> = [
    ['host', 'server:main host'],
    ['port', 'server:main port'],
    ['unixSocket', 'server:main unix_socket'],
    ['unixSocketMode', 'server:main unix_socket_perms'],
  ]
  return keys.filter(([k]) => before[k] !== after[k]).map(([, name]) => name)
}

export async function startServer(config: KintoConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogging(config).root
  // Registered from the start (url null until listening): `kinto wait-ready` then waits for this
  // server instead of polling [server:main]'s address, where another server may answer.
  const record = options.record
    ? new RunRecord({
        role: options.record.role,
        primaryPid: options.record.primaryPid,
        ini: config.path,
        url: null,
        configHash: hashOf(config.path),
        toggles: appliedToggles(config.settings),
        needRestart: [],
        version: packageVersion(),
      })
    : undefined
  let releaseLocks: Array<() => void>
  try {
    releaseLocks = await lockEmbedded(config, logger)
  } catch (err) {
    record?.remove()
    throw err
  }
  const registry = new DatabaseRegistry(config.dir)
  const cleanup = async () => {
    record?.remove()
    await registry.closeAll()
    for (const release of releaseLocks) release()
  }
  let backends
  let unmigrated: Error | undefined
  try {
    backends = createBackends(config.settings, {registry, baseDir: config.dir})
    if (options.migrate) {
      try {
        // On the clients the server serves from (made first, with its pool sizes): an in-memory
        // database (pglite:memory:) is the one migrated, and an embedded folder is not reopened.
        await migrate({settings: config.settings, dir: config.dir, mode: 'apply', report: migrationReport(logger), registry})
      } catch (error) {
        // --serve-unreachable: migrated once the database answers (deferred-migration.ts).
        if (!options.serveWhileUnreachable || !unreachableDatabase(error)) throw error
        unmigrated = error as Error
      }
    }
    if (!options.skipSchemaCheck && !unmigrated) {
      const unreachable = options.serveWhileUnreachable
        ? (error: KintoError) => logger.warn({}, `Serving without checking the schema: ${error.message} Requests that need it get 503 until it answers.`)
        : undefined
      await checkSchemas(config, registry, unreachable)
    }
  } catch (err) {
    await backends?.close().catch(() => {})
    await cleanup()
    throw err
  }
  let app: FastifyInstance
  try {
    // Write views are registered even in readonly mode (the runtime answers writes 405 while it
    // is on), so that a reload can switch readonly off; the settings are then applied as a reload.
    app = createApp({
      settings: {...config.settings, readonly: false},
      backends,
      configInfo: () => configAttributes(config.path),
      logger,
      clock: options.clock,
      baseDir: config.dir,
    })
    app.kinto.applySettings(config.settings)
  } catch (err) {
    await backends.close().catch(() => {})
    await cleanup()
    throw err
  }
  const host = options.host ?? config.server.host
  const port = options.port ?? config.server.port
  let url: string
  try {
    if (config.server.unixSocket && options.host === undefined && options.port === undefined) {
      const socket = config.server.unixSocket
      if (options.prepareSocket !== false) await clearStaleSocket(socket)
      await app.listen({path: socket})
      if (config.server.unixSocketMode) chmodSync(socket, Number.parseInt(config.server.unixSocketMode, 8))
      url = socket
    } else {
      await app.listen({host, port})
      const address = app.server.address()
      const actualPort = typeof address === 'object' && address ? address.port : port
      url = `http://${bracketHost(host)}:${actualPort}/v1/`
    }
  } catch (err) {
    await app.close().catch(() => {})
    await backends.close().catch(() => {})
    await cleanup()
    const e = err as NodeJS.ErrnoException
    const failure = LISTEN_FAILURES[e.code ?? '']
    if (failure) {
      throw new KintoError(`Cannot listen on ${bracketHost(host)}:${port}: ${failure.reason}.`, {code: 'KINTO_LISTEN_FAILED', hint: failure.hint})
    }
    throw err
  }
  logger.info({url}, `Running ${String(config.settings.project_name ?? 'kinto')} on ${url}`)

  // The embedded engine has no autovacuum: the server gathers its planner statistics.
  const analyzers = serverClients(config, registry).filter((client) => client.kind === 'pglite').map((client) =>
    startAutoAnalyze(client, {
      onError: (err) => logger.warn({database: client.displayUrl, error: (err as Error).message}, 'Could not gather the planner statistics of the embedded database; trying again in a minute.'),
      onAnalyzed: (tables) => logger.debug?.({database: client.displayUrl, tables}, 'Gathered planner statistics (ANALYZE).'),
    }),
  )

  const deferred = unmigrated ? migrateWhenReachable(config, serverClients(config, registry), logger, unmigrated) : undefined

  const runtime = app.kinto
  const startedHash = hashOf(config.path)
  record?.update({url, configHash: startedHash, toggles: appliedToggles(runtime.settings)})
  if (record?.error) logger.warn({error: record.error}, 'Cannot write the run registry entry: kinto backoff/readonly/maintenance will not find this server.')

  const reload = (): ReloadReport => {
    // SIGHUP is also logrotate's `postrotate kill -HUP`: the log files are reopened first, whatever the ini says.
    loggingOf(logger)?.reopenFiles()
    const configHash = hashOf(config.path)
    try {
      const next = loadConfig(config.path, {httpPort: options.httpPort, env: options.env ?? process.env})
      const change = runtime.applySettings(next.settings)
      const needRestart = [...change.needRestart, ...serverChanges(config.server, next.server)]
      record?.update({configHash, reloadedAt: new Date().toISOString(), reloadError: undefined, toggles: appliedToggles(runtime.settings), needRestart})
      logger.info({applied: change.applied, needRestart}, 'Configuration reloaded.')
      return {ok: true, configHash, applied: change.applied, needRestart}
    } catch (err) {
      const message = (err as Error).message
      record?.update({reloadError: {configHash, message, at: new Date().toISOString()}})
      logger.error({error: message}, 'Configuration reload failed; the settings in force are kept.')
      return {ok: false, configHash, applied: [], needRestart: record?.entry.needRestart ?? [], error: message}
    }
  }

  // While stopping, every answer says `Connection: close` (see close()).
  let draining = false
  app.server.prependListener('request', (_req, res) => {
    if (draining && !res.headersSent) res.setHeader('Connection', 'close')
  })

  let closing: Promise<CloseReport> | undefined
  let cut: ((reason: string) => void) | undefined
  // A cut asked for before close() began (a second signal while the control socket closes).
  let cutBeforeClose: string | undefined
  return {
    app,
    url,
    record,
    registry,
    reload,
    close() {
      closing ??= (async () => {
        let forced = false
        let deadline: NodeJS.Timeout | undefined
        let wasCut: () => void = () => {}
        const cutDone = new Promise<void>((resolve) => (wasCut = resolve))
        // Ready before the drain: a cut asked for during it (a second SIGTERM within its grace)
        // closes every connection, which also ends the drain.
        cut = (reason) => {
          if (forced) return
          forced = true
          clearTimeout(deadline)
          logger.error({}, `${reason}: cutting the requests still running.`)
          app.server.closeAllConnections?.()
          // Requests waiting on a database that stopped answering would hold the process until the
          // driver gives up on their connections (statement + connect timeout): cut those too.
          backends.abort?.()
          wasCut()
        }
        await drainKeptAlive(app, options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS, () => {
          draining = true
          if (cutBeforeClose !== undefined) cut?.(cutBeforeClose)
        })
        // Node closes idle keep-alive connections only when close() starts; connections whose
        // request finishes later would hold the close for the whole keep-alive timeout.
        const sweep = setInterval(() => app.server.closeIdleConnections?.(), 100)
        if (!forced) deadline = setTimeout(() => cut?.('Shutdown deadline reached'), options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS)
        try {
          await app.close()
          // Handlers of requests whose clients went away still run (runtime.settled()): closing
          // the pools under them failed them with a stack trace. Under the same deadline; once cut,
          // the aborted queries end them soon (bounded anyway, as the pools' close below).
          await Promise.race([app.kinto.settled(), cutDone.then(() => sleep(5000, undefined, {ref: false}))])
        } finally {
          clearInterval(sweep)
          clearTimeout(deadline)
          cut = undefined
        }
        record?.remove()
        await Promise.all([...analyzers.map((a) => a.stop()), deferred?.stop()])
        // Requests cut at the deadline may still hold connections: closing the pools waits for
        // them, so that wait is bounded too.
        const backendsClosed = backends.close().catch((err) => logger.error({err}, 'Closing the backends failed.'))
        const bounded = forced ? Promise.race([backendsClosed, sleep(5000, undefined, {ref: false})]) : backendsClosed
        await bounded
        await cleanup()
        return {forced}
      })()
      return closing
    },
    cutNow(reason) {
      if (cut) cut(reason)
      else if (!closing) cutBeforeClose ??= reason
    },
  }
}

/**
 * The first step of a graceful stop. Node's server.close() closes idle kept-alive connections at
 * once, which races a client reusing one at that moment: its request fails with ECONNRESET (a
 * rolling restart under load broke requests that way). Here the server stops accepting, answers
 * each request on an open connection with `Connection: close` (its client then closes it), and
 * only after a short grace (or once every connection is gone) lets the usual close reap what is
 * still idle. The later server.close() (Fastify's) then waits for the same drain.
 */
async function drainKeptAlive(app: FastifyInstance, limitMs: number, startDraining: () => void): Promise<void> {
  const server = app.server
  if (!server.listening) return
  const drained = new Promise<void>((resolve) => server.once('close', () => resolve()))
  // net.Server's close: stops accepting; unlike http.Server's, it leaves the connections open.
  Server.prototype.close.call(server)
  server.close = ((callback?: (err?: Error) => void) => {
    void drained.then(() => callback?.())
    return server
  }) as typeof server.close
  startDraining()
  await Promise.race([drained, sleep(Math.min(DRAIN_GRACE_MS, limitMs), undefined, {ref: false})])
}

function hashOf(file: string): string {
  try {
    return sha256File(file)
  } catch {
    return ''
  }
}

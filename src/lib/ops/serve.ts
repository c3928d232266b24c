/**
 * The `kinto start` process: one server, or a primary keeping N workers (node:cluster) that share
 * the listening socket so that one machine's cores are used.
 *
 * Signals (to the single server, or to the primary, which passes them on to every worker):
 * - SIGHUP: reload the ini (src/lib/server/start.ts reload()); nothing is refused or dropped;
 * - SIGTERM / SIGINT: stop accepting, finish requests in flight (bounded), close the pools, exit 0
 *   (1 when requests had to be cut at the deadline);
 * - SIGUSR2 (workers only): rolling restart, one worker at a time (a new one listens before the old
 *   one stops), so new code and settings that need a restart are taken without downtime.
 *
 * This is the one place below src/commands that handles process signals and exit codes: it is the
 * process's main loop. It returns the exit code; the command sets it.
 */
import cluster, {type Worker} from 'node:cluster'

import {loadConfig, type KintoConfig} from '../config/index.js'
import {backendKind} from '../config/backend-modules.js'
import {ExitCode, KintoError, UsageError} from '../errors.js'
import {primaryScrapeRelay} from '../monitoring/prometheus.js'
import {migrate} from '../schema/migrate.js'
import {configuredBackends} from '../schema/targets.js'
import {appliedToggles, clearStaleSocket, startServer, type RunningServer} from '../server/start.js'
import {packageVersion} from '../version.js'
import {type ControlServer, controlSocketPath, startControlServer} from './control.js'
import {controlOperations} from './control-ops.js'
import {RunRecord, sha256File} from './registry.js'

export interface ServeOptions {
  config: KintoConfig
  host?: string
  port?: number
  /** `%(http_port)s` the config was loaded with (reloads use it again). */
  httpPort?: number
  /** From --workers; undefined: the ini's [uwsgi] processes, else 1. */
  workers?: number
  migrate?: boolean
  shutdownTimeoutMs?: number
  /** Lines for the operator (stderr). */
  log: (line: string) => void
}

/** Workers from the ini: `[uwsgi] processes` (or its alias `workers`), as a uwsgi deployment says. */
export function workersFromIni(config: KintoConfig): number | undefined {
  const section = config.ini.sectionNames().find((n) => n.trim() === 'uwsgi')
  if (!section) return undefined
  for (const key of ['processes', 'workers']) {
    const raw = config.ini.get(section, key)?.trim()
    if (raw === undefined || raw === '') continue
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
    if (!(n >= 1 && n <= 256)) {
      throw new KintoError(`${config.path}: [uwsgi] ${key} = ${JSON.stringify(raw)} is not a number of processes (1 to 256).`, {
        code: 'KINTO_CONFIG_INVALID',
        hint: 'Fix the value, or give --workers.',
      })
    }
    return n
  }
  return undefined
}

/** Why N processes cannot serve this config, or null. */
export function workersRefusal(config: KintoConfig, workers: number): string | null {
  if (workers <= 1) return null
  for (const b of configuredBackends(config.settings, config.dir)) {
    if (b.pgliteDir !== undefined) {
      return `the ${b.backend} backend uses the ${b.database}, which one process at a time may open`
    }
  }
  for (const family of ['storage', 'permission'] as const) {
    if (backendKind(config.settings[`${family}_backend`]) === 'memory') {
      return `the ${family} backend is memory: each process would hold its own data`
    }
  }
  return null
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

/** Runs until a stop signal; returns the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  if (cluster.isWorker) return serveWorker(options)
  const workers = options.workers ?? workersFromIni(options.config) ?? 1
  if (workers > 1) {
    const refusal = workersRefusal(options.config, workers)
    if (refusal) {
      throw new UsageError(`Cannot serve with ${workers} workers: ${refusal}.`, {
        code: 'KINTO_WORKERS_REFUSED',
        hint: 'Use PostgreSQL for storage and permission (kinto.*_url = postgresql://…), or --workers 1.',
      })
    }
    return servePrimary(options, workers)
  }
  return serveSingle(options)
}

/** Signal handlers installed before anything starts: a signal while starting is not lost. */
function signalQueue() {
  let stop: NodeJS.Signals | undefined
  let wake: (() => void) | undefined
  const handlers: Array<[NodeJS.Signals, (s: NodeJS.Signals) => void]> = []
  const on = (signal: NodeJS.Signals, fn: (s: NodeJS.Signals) => void) => {
    process.on(signal, fn)
    handlers.push([signal, fn])
  }
  for (const s of STOP_SIGNALS) {
    on(s, (signal) => {
      stop ??= signal
      wake?.()
    })
  }
  return {
    on,
    get stopSignal() {
      return stop
    },
    stopped: () => new Promise<NodeJS.Signals>((resolve) => (stop ? resolve(stop) : (wake = () => resolve(stop!)))),
    dispose() {
      for (const [s, fn] of handlers) process.off(s, fn)
    },
  }
}

async function serveSingle(options: ServeOptions): Promise<number> {
  const {config, log} = options
  const signals = signalQueue()
  let server: RunningServer | undefined
  let control: ControlServer | undefined
  let pendingReload = false
  // Until the server runs, a SIGHUP is remembered (the default action would kill the process).
  signals.on('SIGHUP', () => {
    if (!server) {
      pendingReload = true
      return
    }
    reloadAndLog(server, log)
  })
  try {
    server = await startServer(config, {
      host: options.host,
      port: options.port,
      httpPort: options.httpPort,
      migrate: options.migrate,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
      record: {role: 'server'},
    })
    control = await openControl(server, config, log)
    log(`Serving ${server.url} (${config.path}, pid ${process.pid}); SIGHUP reloads, SIGINT or SIGTERM stops.`)
    if (pendingReload) reloadAndLog(server, log)
    const signal = await signals.stopped()
    log(`${signal}: finishing requests in flight, then stopping.`)
    await control?.close()
    const {forced} = await server.close()
    return forced ? ExitCode.FAILED : ExitCode.OK
  } finally {
    await control?.close()
    signals.dispose()
  }
}

/**
 * The control channel of a single server (workers serve PostgreSQL only, which every command
 * reaches directly): its socket beside the run registry entry, recorded there. A server that
 * cannot offer one still serves, and says so.
 */
async function openControl(server: RunningServer, config: KintoConfig, log: (line: string) => void): Promise<ControlServer | undefined> {
  const socketPath = server.record ? controlSocketPath(server.record.path) : null
  if (!socketPath || !server.record) return undefined
  try {
    const operations = controlOperations({
      iniPath: config.path,
      dir: config.dir,
      settings: () => server.app.kinto.settings,
      registry: server.registry,
      cache: server.app.kinto.backends.cache,
    })
    const control = await startControlServer(socketPath, operations)
    server.record.update({control: control.path})
    return control
  } catch (error) {
    log(`Warning: no control socket (${(error as Error).message}): maintenance commands cannot reach this server's embedded database while it runs.`)
    return undefined
  }
}

function reloadAndLog(server: RunningServer, log: (line: string) => void, who = ''): void {
  const r = server.reload()
  if (!r.ok) {
    log(`SIGHUP${who}: the ini was not reloaded (${r.error}); the settings in force are kept.`)
    return
  }
  const parts = [r.applied.length ? `applied ${r.applied.join(', ')}` : 'nothing changed']
  if (r.needRestart.length) parts.push(`needs a restart for ${r.needRestart.join(', ')}`)
  log(`SIGHUP${who}: reloaded; ${parts.join('; ')}.`)
}

// -------------------------------------------------------------------------------------------------
// Workers

interface WorkerMessage {
  kind: 'kinto-worker-failed'
  message: string
  hint?: string
}

async function serveWorker(options: ServeOptions): Promise<number> {
  const {config, log} = options
  const signals = signalQueue()
  let server: RunningServer | undefined
  let pendingReload = false
  signals.on('SIGHUP', () => {
    if (!server) pendingReload = true
    else reloadAndLog(server, log, ` (worker ${process.pid})`)
  })
  // The primary is gone (killed): stop as if told to.
  const orphaned = () => process.emit('SIGTERM', 'SIGTERM')
  process.on('disconnect', orphaned)
  try {
    try {
      server = await startServer(config, {
        host: options.host,
        port: options.port,
        httpPort: options.httpPort,
        shutdownTimeoutMs: options.shutdownTimeoutMs,
        record: {role: 'worker', primaryPid: process.ppid},
        prepareSocket: false,
      })
    } catch (error) {
      // The primary reports it once, instead of N workers printing the same line.
      const e = error as KintoError
      const message: WorkerMessage = {kind: 'kinto-worker-failed', message: e.message, hint: e.hint}
      if (process.send) {
        await new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()))
        return ExitCode.FAILED
      }
      throw error
    }
    if (pendingReload) reloadAndLog(server, log, ` (worker ${process.pid})`)
    await signals.stopped()
    const {forced} = await server.close()
    return forced ? ExitCode.FAILED : ExitCode.OK
  } finally {
    process.off('disconnect', orphaned)
    signals.dispose()
    // The IPC channel would keep this process alive: let go of the primary.
    cluster.worker?.disconnect()
  }
}

async function servePrimary(options: ServeOptions, count: number): Promise<number> {
  const {config, log} = options
  const signals = signalQueue()
  if (options.migrate) {
    // Once, before the workers start (they would otherwise queue on the migration lock).
    await migrate({settings: config.settings, dir: config.dir, mode: 'apply'})
  }
  const usesSocket = Boolean(config.server.unixSocket && options.host === undefined && options.port === undefined)
  if (usesSocket) await clearStaleSocket(config.server.unixSocket!)

  const record = new RunRecord({
    role: 'primary',
    ini: config.path,
    url: null,
    configHash: sha256File(config.path),
    toggles: appliedToggles(config.settings),
    needRestart: [],
    workers: count,
    version: packageVersion(),
  })
  const current = new Set<Worker>()
  const retiring = new Set<Worker>()
  let url: string | null = null
  let stopping = false
  let failure: WorkerMessage | undefined
  const crashes: number[] = []
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((r) => (resolveDone = r))
  let anyForced = false

  const urlOf = (address: {address: string | null; port: number; addressType: number | string}): string => {
    if (usesSocket) return config.server.unixSocket!
    const host = options.host ?? config.server.host
    const shown = host.includes(':') ? `[${host}]` : host
    return `http://${shown}:${address.port}/v1/`
  }

  // kinto.plugins.prometheus: a worker answering a scrape asks here for every worker's metrics.
  const scrapeRelay = primaryScrapeRelay(config.settings)
  const fork = (): Worker => {
    const worker = cluster.fork()
    current.add(worker)
    worker.on('message', (msg: WorkerMessage) => {
      if (scrapeRelay?.(worker, msg)) return
      if (msg?.kind === 'kinto-worker-failed') failure ??= msg
    })
    worker.on('exit', (code, signal) => {
      current.delete(worker)
      const wasRetiring = retiring.delete(worker)
      if (code !== 0 && code !== null) anyForced ||= stopping
      if (stopping || wasRetiring) {
        if (current.size === 0 && stopping) resolveDone(anyForced ? ExitCode.FAILED : ExitCode.OK)
        return
      }
      if (url === null) {
        // A worker that never served: the configuration cannot start; stop everything.
        stopAll()
        log(`Error: ${failure?.message ?? `a worker exited (${signal ?? code}) before serving.`}`)
        if (failure?.hint) log(`Hint: ${failure.hint}`)
        return
      }
      const now = Date.now()
      crashes.push(now)
      while (crashes.length && crashes[0] < now - 60_000) crashes.shift()
      if (crashes.length > 5) {
        log(`Error: workers keep exiting (${crashes.length} in a minute; last: ${signal ?? code}); stopping.`)
        anyForced = true
        stopAll()
        return
      }
      log(`Worker ${worker.process.pid} exited (${signal ?? code}); starting another.`)
      fork()
    })
    return worker
  }

  const stopAll = () => {
    if (stopping) return
    stopping = true
    if (current.size === 0) resolveDone(url === null ? ExitCode.FAILED : anyForced ? ExitCode.FAILED : ExitCode.OK)
    for (const w of current) w.process.kill('SIGTERM')
    // Bounded: workers cut their requests at the shutdown deadline; past it, kill what is left.
    setTimeout(() => {
      for (const w of current) w.process.kill('SIGKILL')
    }, (options.shutdownTimeoutMs ?? 30_000) + 10_000).unref()
  }

  const listening = (worker: Worker) =>
    new Promise<boolean>((resolve) => {
      const onListen = () => {
        worker.off('exit', onExit)
        resolve(true)
      }
      const onExit = () => {
        worker.off('listening', onListen)
        resolve(false)
      }
      worker.once('listening', onListen)
      worker.once('exit', onExit)
    })

  let restarting = false
  const rollingRestart = async () => {
    if (restarting || stopping) return
    restarting = true
    log(`SIGUSR2: restarting ${current.size} workers one at a time.`)
    try {
      for (const old of [...current]) {
        if (stopping) return
        const fresh = fork()
        if (!(await listening(fresh))) {
          log(`Error: a new worker did not start; the rolling restart stops and the running workers stay.`)
          return
        }
        retiring.add(old)
        current.delete(old)
        old.process.kill('SIGTERM')
      }
      record.update({configHash: sha256File(config.path), needRestart: [], reloadedAt: new Date().toISOString()})
      log('SIGUSR2: every worker was restarted.')
    } finally {
      restarting = false
    }
  }

  signals.on('SIGHUP', () => {
    // The primary serves nothing: it re-reads the ini to report it, and passes the signal on.
    try {
      const next = loadConfig(config.path, {httpPort: options.httpPort})
      const needRestart = (workersFromIni(next) ?? count) !== count && options.workers === undefined ? ['uwsgi processes'] : []
      record.update({configHash: sha256File(config.path), toggles: appliedToggles(next.settings), needRestart, reloadError: undefined, reloadedAt: new Date().toISOString()})
    } catch (error) {
      record.update({reloadError: {configHash: sha256File(config.path), message: (error as Error).message, at: new Date().toISOString()}})
    }
    for (const w of current) w.process.kill('SIGHUP')
    log(`SIGHUP: reloading ${current.size} workers.`)
  })
  signals.on('SIGUSR2', () => void rollingRestart())

  cluster.on('listening', (worker, address) => {
    if (url !== null) return
    url = urlOf(address)
    record.update({url})
    log(`Serving ${url} (${config.path}) with ${count} workers, primary pid ${process.pid}; SIGHUP reloads, SIGUSR2 restarts the workers one by one, SIGINT or SIGTERM stops.`)
    void worker
  })

  try {
    for (let i = 0; i < count; i++) fork()
    const stopSignal = signals.stopped().then((signal) => {
      log(`${signal}: the workers finish requests in flight, then stop.`)
      stopAll()
    })
    const code = await done
    void stopSignal
    return url === null && !signals.stopSignal ? ExitCode.FAILED : code
  } finally {
    record.remove()
    signals.dispose()
    cluster.removeAllListeners('listening')
  }
}

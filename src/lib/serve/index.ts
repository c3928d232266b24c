/**
 * The `kinto start` process: one server, or a primary keeping N workers (node:cluster) that share
 * the listening socket so that one machine's cores are used.
 *
 * Signals (to the single server, or to the primary, which passes them on to every worker):
 * - SIGHUP: reopen the log files (logrotate's postrotate) and reload the ini
 *   (src/lib/server/start.ts reload()); nothing is refused or dropped; with --reload, a change of
 *   the ini's content does the same;
 * - SIGTERM / SIGINT: stop accepting, finish requests in flight (bounded), close the pools, exit 0
 *   (1 when requests had to be cut at the deadline);
 * - SIGUSR2 (workers only): rolling restart, one worker at a time (a new one listens before the old
 *   one stops), so new code and settings that need a restart are taken without downtime. A single
 *   server and the workers themselves (a signal to the process group) say so or ignore it: its
 *   default action would kill them.
 *
 * This is the one place below src/commands that handles process signals and exit codes: it is the
 * process's main loop. It returns the exit code; the command sets it.
 */
import cluster from 'node:cluster'

import type {KintoConfig} from '../config/index.js'
import {asList, EMPTY_POLICIES_MEANING} from '../config/settings.js'
import {ExitCode, UsageError} from '../errors.js'
import {type ControlServer, controlSocketPath, startControlServer} from '../ops/control.js'
import {startServer, type RunningServer} from '../server/start.js'
import {controlOperations} from './control-ops.js'
import {workersFromIni, workersRefusal, type ServeOptions} from './options.js'
import {Primary} from './primary.js'
import {reloadAndLog, signalQueue} from './signals.js'
import {watchIni} from './watch-ini.js'
import {serveWorker} from './worker.js'

export type {ServeOptions} from './options.js'

/** Runs until a stop signal; returns the exit code. */
export async function serve(options: ServeOptions): Promise<number> {
  if (cluster.isWorker) return serveWorker(options)
  if (asList(options.config.settings, 'multiauth.policies').length === 0) {
    options.log(`Warning: multiauth.policies is empty: ${EMPTY_POLICIES_MEANING}`)
  }
  const workers = options.workers ?? workersFromIni(options.config) ?? 1
  if (workers > 1) {
    const refusal = workersRefusal(options.config, workers)
    if (refusal) {
      throw new UsageError(`Cannot serve with ${workers} workers: ${refusal}.`, {
        code: 'KINTO_WORKERS_REFUSED',
        hint: 'Use PostgreSQL for storage and permission (kinto.*_url = postgresql://…), or --workers 1.',
      })
    }
  }
  const stopWatching = options.reload ? watchIniAndReload(options) : undefined
  try {
    return workers > 1 ? await new Primary(options, workers).run() : await serveSingle(options)
  } finally {
    stopWatching?.()
  }
}

/**
 * --reload: a change of the ini's content is taken as a SIGHUP is (the same handlers: the single
 * server's, or the primary's, which passes it on to the workers).
 */
function watchIniAndReload({config, log}: ServeOptions): () => void {
  return watchIni(
    config.path,
    () => {
      log(`${config.path} changed (--reload): reloading it as on SIGHUP.`)
      process.emit('SIGHUP', 'SIGHUP')
    },
    (error) => log(`Warning: --reload stopped watching ${config.path} (${error.message}); SIGHUP still reloads it.`),
  )
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
  // Its default action kills the process: a signal meant for a deployment with workers (a unit's
  // ExecReload, kill -USR2 in a script) would cut this server's requests and leave its run record.
  signals.on('SIGUSR2', () => {
    log('SIGUSR2: a single-process server cannot restart itself (no --workers); restart it with its process manager. Still serving.')
  })
  try {
    server = await startServer(config, {
      host: options.host,
      port: options.port,
      httpPort: options.httpPort,
      migrate: options.migrate,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
      record: {role: 'server'},
      serveWhileUnreachable: options.serveUnreachable,
    })
    control = await openControl(server, config, log)
    log(`Serving ${server.url} (${config.path}, pid ${process.pid}); SIGHUP reloads, SIGINT or SIGTERM stops.`)
    if (pendingReload) reloadAndLog(server, log)
    const signal = await signals.stopped()
    log(`${signal}: finishing requests in flight, then stopping (${signal} again: at once).`)
    signals.onRepeatedStop((again) => server?.cutNow(`${again} again`))
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

/** A worker process of `kinto start --workers N`: one server on the socket the primary shares. */
import cluster from 'node:cluster'

import {ExitCode, type KintoError} from '../errors.js'
import {startServer, type RunningServer} from '../server/start.js'
import type {ServeOptions} from './options.js'
import {reloadAndLog, signalQueue} from './signals.js'

/**
 * Set by the primary in the environment of a worker it forks once the deployment serves (a
 * replacement, or a rolling restart's new worker): such a worker serves through a database outage
 * (503 until the database answers) instead of exiting on the schema check.
 */
export const REPLACEMENT_ENV = 'KINTO_WORKER_REPLACEMENT'
/** Set by the primary when `--migrate` could not reach the database: the worker migrates (deferred-migration.ts). */
export const MIGRATE_ENV = 'KINTO_WORKER_MIGRATE'

/** What a worker that could not start tells the primary (which reports it once). */
export interface WorkerMessage {
  kind: 'kinto-worker-failed'
  message: string
  hint?: string
}

/** A serving worker's sign of life, sent every WORKER_ALIVE_MS: its event loop runs. */
export interface WorkerAlive {
  kind: 'kinto-worker-alive'
}

export const WORKER_ALIVE_MS = 1000

export async function serveWorker(options: ServeOptions): Promise<number> {
  const {config, log} = options
  const signals = signalQueue()
  let server: RunningServer | undefined
  let pendingReload = false
  signals.on('SIGHUP', () => {
    if (!server) pendingReload = true
    else reloadAndLog(server, log, ` (worker ${process.pid})`)
  })
  // A rolling restart is the primary's: a worker that also got SIGUSR2 (sent to the process group)
  // must not die of its default action, all workers at once.
  signals.on('SIGUSR2', () => {})
  // The primary is gone (killed): stop as if told to, finishing the requests in flight. node:cluster
  // exits a worker at once when its channel to the primary closes unless the worker disconnected
  // itself (its exitedAfterDisconnect): that cut every request the worker was serving, and left
  // its run record and database connections behind. The flag is node:cluster's own, on this
  // process's side only (the primary keeps its own for this worker).
  if (cluster.worker) cluster.worker.exitedAfterDisconnect = true
  const orphaned = () => process.emit('SIGTERM', 'SIGTERM')
  process.on('disconnect', orphaned)
  // Timer callbacks run only while the event loop does: a worker stuck in a request stops sending.
  const alive: WorkerAlive = {kind: 'kinto-worker-alive'}
  const heartbeat = setInterval(() => {
    // With a callback: the primary gone between the check and the write is no uncaught error.
    if (process.connected) process.send?.(alive, undefined, {}, () => {})
  }, WORKER_ALIVE_MS).unref()
  try {
    try {
      server = await startServer(config, {
        host: options.host,
        port: options.port,
        httpPort: options.httpPort,
        shutdownTimeoutMs: options.shutdownTimeoutMs,
        record: {role: 'worker', primaryPid: process.ppid},
        prepareSocket: false,
        serveWhileUnreachable: options.serveUnreachable || process.env[REPLACEMENT_ENV] === '1',
        migrate: process.env[MIGRATE_ENV] === '1',
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
    clearInterval(heartbeat)
    process.off('disconnect', orphaned)
    signals.dispose()
    // The IPC channel would keep this process alive: let go of the primary (if it is still there:
    // disconnecting a closed channel is an error).
    if (process.connected) cluster.worker?.disconnect()
  }
}

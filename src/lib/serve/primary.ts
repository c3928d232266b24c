/**
 * The primary of `kinto start --workers N`. It serves nothing itself: it forks the workers (which
 * share its listening socket), replaces one that crashes (and stops when none ever served or they
 * keep crashing), passes SIGHUP on, restarts them one at a time on SIGUSR2 and stops them on
 * SIGINT/SIGTERM. Its run record tells `kinto status` and `kinto reload` about the deployment.
 */
import cluster, {type Worker} from 'node:cluster'

import {loadConfig} from '../config/index.js'
import {ExitCode} from '../errors.js'
import {primaryScrapeRelay} from '../monitoring/prometheus.js'
import {bracketHost} from '../net.js'
import {RunRecord, sha256File} from '../runs/registry.js'
import {migrate} from '../schema/migrate.js'
import {appliedToggles, clearStaleSocket, unreachableDatabase} from '../server/start.js'
import {packageVersion} from '../version.js'
import {workersFromIni, type ServeOptions} from './options.js'
import {signalQueue, type SignalQueue} from './signals.js'
import {MIGRATE_ENV, REPLACEMENT_ENV, WORKER_ALIVE_MS, type WorkerAlive, type WorkerMessage} from './worker.js'

/** Worker exits within a minute (after serving began) past which the primary gives up. */
const MAX_CRASHES_PER_MINUTE = 5

/** How long a serving worker may stay silent before it is killed (ServeOptions.workerTimeoutMs). */
export const DEFAULT_WORKER_TIMEOUT_MS = 30_000

export class Primary {
  /** Taken at once: a signal while the primary starts is not lost. */
  private readonly signals: SignalQueue
  /** Listening on the ini's unix socket (no --host/--port given). */
  private readonly usesSocket: boolean
  /** Workers serving (or starting); those a rolling restart is replacing. */
  private readonly current = new Set<Worker>()
  private readonly retiring = new Set<Worker>()
  /** New workers of a rolling restart until they listen: one that exits first is not replaced. */
  private readonly candidates = new Set<Worker>()
  /** Why the last such candidate could not start. */
  private candidateFailure: string | undefined
  /** Set when the first worker listens. */
  private url: string | null = null
  private stopping = false
  private restarting = false
  /** A SIGUSR2 came during a rolling restart: another one runs when it ends. */
  private restartAgain = false
  /** A worker exited non-zero while stopping (requests cut), or workers kept crashing. */
  private anyForced = false
  /** The first start failure a worker reported. */
  private failure: WorkerMessage | undefined
  /** Why a worker could not start, as it reported it (until it exits). */
  private readonly failures = new Map<Worker, WorkerMessage>()
  /** Times of recent unexpected worker exits. */
  private readonly crashes: number[] = []
  /** kinto.plugins.prometheus: a worker answering a scrape asks here for every worker's metrics. */
  private scrapeRelay: ReturnType<typeof primaryScrapeRelay> = null
  /** Workers that listen (until they exit): a scrape sums theirs, never waits for one starting. */
  private readonly serving = new Set<Worker>()
  /**
   * When each serving worker last showed that its event loop runs. One that is blocked (a request
   * in an endless loop, a process stopped) accepts no new connection, but those it holds (a
   * proxy's kept alive among them) would hang until their clients give up, and the worker would
   * never be replaced, so the primary kills it past the worker timeout (as gunicorn's `timeout`).
   */
  private readonly lastAlive = new Map<Worker, number>()
  /** Workers still starting when a SIGHUP came: they get it once they listen (see reload). */
  private readonly reloadOnListen = new Set<Worker>()
  /** The watchdog's previous run (killSilent). */
  private lastCheck = Date.now()
  /** The migration --migrate asked for could not reach the database: the workers run it. */
  private migrateInWorkers = false
  private readonly done: Promise<number>
  private resolveDone: (code: number) => void = () => {}

  constructor(
    private readonly options: ServeOptions,
    private readonly count: number,
  ) {
    this.signals = signalQueue()
    const {config} = options
    this.usesSocket = Boolean(config.server.unixSocket && options.host === undefined && options.port === undefined)
    this.done = new Promise<number>((resolve) => (this.resolveDone = resolve))
  }

  /** Runs until the workers have stopped; returns the exit code. */
  async run(): Promise<number> {
    const {config, log} = this.options
    if (this.options.migrate) {
      try {
        // Once, before the workers start (they would otherwise queue on the migration lock).
        await migrate({settings: config.settings, dir: config.dir, mode: 'apply'})
      } catch (error) {
        // --serve-unreachable: each worker migrates once the database answers (the lock lets one do it).
        if (!this.options.serveUnreachable || !unreachableDatabase(error)) throw error
        this.migrateInWorkers = true
      }
    }
    if (this.usesSocket) await clearStaleSocket(config.server.unixSocket!)

    const record = new RunRecord({
      role: 'primary',
      ini: config.path,
      url: null,
      configHash: sha256File(config.path),
      toggles: appliedToggles(config.settings),
      needRestart: [],
      workers: this.count,
      version: packageVersion(),
    })
    this.scrapeRelay = primaryScrapeRelay(config.settings, () => this.serving)
    this.signals.on('SIGHUP', () => this.reload(record))
    this.signals.on('SIGUSR2', () => void this.rollingRestart(record))
    cluster.on('listening', (_worker, address) => {
      if (this.url !== null) return
      this.url = this.urlOf(address)
      record.update({url: this.url})
      log(
        `Serving ${this.url} (${config.path}) with ${this.count} workers, primary pid ${process.pid}; SIGHUP reloads, SIGUSR2 restarts the workers one by one, SIGINT or SIGTERM stops.`,
      )
    })

    const timeoutMs = this.options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS
    this.lastCheck = Date.now()
    const watchdog = timeoutMs > 0 ? setInterval(() => this.killSilent(timeoutMs), Math.min(WORKER_ALIVE_MS, timeoutMs)) : undefined
    try {
      useSharedAccept()
      for (let i = 0; i < this.count; i++) this.fork()
      const stopSignal = this.signals.stopped().then((signal) => {
        log(`${signal}: the workers finish requests in flight, then stop (${signal} again: at once).`)
        this.stopAll()
        // A second stop signal: the primary ends the workers at once. (The workers do not act on a
        // repeated signal themselves: one Ctrl-C already gives them two, the terminal's SIGINT and
        // the primary's SIGTERM.)
        this.signals.onRepeatedStop((again) => {
          if (this.current.size === 0) return
          this.anyForced = true
          log(`${again} again: killing the workers; their requests still running are cut.`)
          for (const w of this.current) w.process.kill('SIGKILL')
        })
      })
      const code = await this.done
      void stopSignal
      return this.url === null && !this.signals.stopSignal ? ExitCode.FAILED : code
    } finally {
      clearInterval(watchdog)
      record.remove()
      this.signals.dispose()
      cluster.removeAllListeners('listening')
    }
  }

  private urlOf(address: {address: string | null; port: number; addressType: number | string}): string {
    const {config, host} = this.options
    if (this.usesSocket) return config.server.unixSocket!
    const shown = host ?? config.server.host
    return `http://${bracketHost(shown)}:${address.port}/v1/`
  }

  private fork(): Worker {
    // Once the deployment serves, a new worker must not exit because the database is down.
    const worker = cluster.fork({...(this.url === null ? {} : {[REPLACEMENT_ENV]: '1'}), ...(this.migrateInWorkers ? {[MIGRATE_ENV]: '1'} : {})})
    this.current.add(worker)
    worker.once('listening', () => {
      if (worker.isDead()) return
      this.serving.add(worker)
      this.lastAlive.set(worker, Date.now())
      if (this.reloadOnListen.delete(worker)) worker.process.kill('SIGHUP')
    })
    worker.on('message', (msg: WorkerMessage | WorkerAlive) => {
      if (msg?.kind === 'kinto-worker-alive') {
        if (this.lastAlive.has(worker)) this.lastAlive.set(worker, Date.now())
        return
      }
      if (this.scrapeRelay?.(worker, msg)) return
      if (msg?.kind === 'kinto-worker-failed') {
        this.failure ??= msg
        this.failures.set(worker, msg)
      }
    })
    // A write to a worker whose channel has just closed (it is exiting) fails after send returned;
    // node emits that on the worker, and an 'error' nobody listens to would end the primary and
    // with it the deployment. Our writes pass callbacks; node's own cluster messages (the shared
    // handle; a connection handed over under NODE_CLUSTER_SCHED_POLICY=rr) do not. Its exit follows
    // and is handled there.
    worker.on('error', (error) => this.options.log(`Worker ${worker.process.pid}: ${error.message}`))
    worker.on('exit', (code, signal) => this.exited(worker, code, signal))
    return worker
  }

  /** A worker is gone: the end of a stop or of its retirement, or a crash to recover from. */
  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const {log} = this.options
    this.current.delete(worker)
    const wasServing = this.serving.delete(worker)
    this.lastAlive.delete(worker)
    this.reloadOnListen.delete(worker)
    const wasRetiring = this.retiring.delete(worker)
    const failure = this.failures.get(worker)
    this.failures.delete(worker)
    // A worker that failed, or a serving one killed (by anyone: the OOM killer, an operator), while
    // stopping may have cut requests: the exit says so. (A serving worker ends SIGTERM with an exit
    // code; one still starting has no handler yet and dies of it, having served nothing.)
    if ((code !== 0 && code !== null) || (signal !== null && wasServing)) this.anyForced ||= this.stopping
    if (this.candidates.delete(worker)) {
      // A rolling restart's new worker that never listened: the restart stops there (see
      // rollingRestart) and the workers serving stay. Replacing it would only repeat the
      // failure until the crash limit stops the whole deployment.
      this.candidateFailure = failure?.message ?? `it exited (${signal ?? code}) before listening`
      this.stoppedAll()
      return
    }
    if (this.stopping || wasRetiring) {
      this.stoppedAll()
      return
    }
    if (this.url === null) {
      // A worker that never served: the configuration cannot start; stop everything.
      this.stopAll()
      log(`Error: ${this.failure?.message ?? `a worker exited (${signal ?? code}) before serving.`}`)
      if (this.failure?.hint) log(`Hint: ${this.failure.hint}`)
      return
    }
    // A replacement that could not start says why (the schema changed, …), not only its exit code.
    const exit = `(${signal ?? code})${failure ? `: ${failure.message}` : ''}`
    const now = Date.now()
    this.crashes.push(now)
    while (this.crashes.length && this.crashes[0] < now - 60_000) this.crashes.shift()
    if (this.crashes.length > MAX_CRASHES_PER_MINUTE) {
      log(`Error: workers keep exiting (${this.crashes.length} in a minute); stopping. The last one exited ${exit}`)
      if (failure?.hint) log(`Hint: ${failure.hint}`)
      this.anyForced = true
      this.stopAll()
      return
    }
    log(`Worker ${worker.process.pid} exited ${exit}${failure ? ' Starting another.' : '; starting another.'}`)
    this.fork()
  }

  /**
   * Kills the serving workers silent for longer than the timeout; their exit is a crash like any
   * other (replaced, counted against the crash limit). Not while stopping: the stop has its own
   * deadline, and a worker closing its connections may no longer reach the primary.
   */
  private killSilent(timeoutMs: number): void {
    if (this.stopping) return
    const now = Date.now()
    const late = now - this.lastCheck > 2 * Math.min(WORKER_ALIVE_MS, timeoutMs)
    this.lastCheck = now
    if (late) {
      // The primary itself did not run (stopped, a machine suspended): the workers' words wait
      // unread, and timers run before they are read. Count from now.
      for (const worker of this.lastAlive.keys()) this.lastAlive.set(worker, now)
      return
    }
    for (const [worker, at] of this.lastAlive) {
      if (now - at <= timeoutMs || this.retiring.has(worker)) continue
      this.lastAlive.delete(worker)
      this.options.log(
        `Worker ${worker.process.pid} has not answered for more than ${timeoutMs / 1000} s (its event loop is blocked: a request that never ends?); killing it.`,
      )
      worker.process.kill('SIGKILL')
    }
  }

  private stopAll(): void {
    if (this.stopping) return
    this.stopping = true
    if (this.current.size === 0 && this.retiring.size === 0) {
      this.resolveDone(this.url === null ? ExitCode.FAILED : this.anyForced ? ExitCode.FAILED : ExitCode.OK)
    }
    for (const w of this.current) w.process.kill('SIGTERM')
    // Bounded: workers cut their requests at the shutdown deadline; past it, kill what is left (a
    // worker stuck or stopped): whatever it was serving is cut, so the exit says so (1). Retiring
    // workers too: they have their own deadline, but this one may come first.
    setTimeout(() => {
      for (const w of [...this.current, ...this.retiring]) this.killLate(w)
    }, this.stopDeadlineMs()).unref()
  }

  /**
   * The end of a stop: every worker has exited, those a rolling restart was retiring included (one
   * left behind would keep the primary, whose channel to it stays open, from ever exiting).
   */
  private stoppedAll(): void {
    if (!this.stopping || this.current.size > 0 || this.retiring.size > 0) return
    this.resolveDone(this.anyForced ? ExitCode.FAILED : ExitCode.OK)
  }

  /** How long a worker told to stop may take: its own shutdown deadline, then some margin. */
  private stopDeadlineMs(): number {
    return (this.options.shutdownTimeoutMs ?? 30_000) + 10_000
  }

  /** A worker that did not stop when told to (stuck, or a stopped process): what it serves is cut. */
  private killLate(worker: Worker): void {
    if (worker.isDead()) return
    if (this.stopping) this.anyForced = true
    this.options.log(`Worker ${worker.process.pid} did not stop within the shutdown deadline; killing it.`)
    worker.process.kill('SIGKILL')
  }

  /**
   * A worker a rolling restart replaced: told to stop, and killed past the shutdown deadline. The
   * watchdog leaves a retiring worker alone, so without this one that never exits (a process
   * stopped, SIGSTOP) stayed forever, and with it the connections the primary kept handing it
   * (they hung) and, on SIGTERM, the primary itself.
   */
  private retire(worker: Worker): void {
    this.retiring.add(worker)
    this.current.delete(worker)
    worker.process.kill('SIGTERM')
    const deadline = setTimeout(() => this.killLate(worker), this.stopDeadlineMs()).unref()
    worker.once('exit', () => clearTimeout(deadline))
  }

  /** SIGHUP: the primary re-reads the ini to report it, and passes the signal on. */
  private reload(record: RunRecord): void {
    const {config, log} = this.options
    try {
      const next = loadConfig(config.path, {httpPort: this.options.httpPort})
      const workersChanged = (workersFromIni(next) ?? this.count) !== this.count && this.options.workers === undefined
      record.update({
        configHash: sha256File(config.path),
        toggles: appliedToggles(next.settings),
        needRestart: workersChanged ? ['uwsgi processes'] : [],
        reloadError: undefined,
        reloadedAt: new Date().toISOString(),
      })
    } catch (error) {
      record.update({reloadError: {configHash: sha256File(config.path), message: (error as Error).message, at: new Date().toISOString()}})
    }
    // A worker still starting (a replacement, a rolling restart's new one) has no handler yet:
    // SIGHUP's default action killed it, which also ended a rolling restart. It may have read the
    // ini before the change, so it reloads once it listens (its handlers are in place by then).
    for (const w of this.current) {
      if (this.serving.has(w)) w.process.kill('SIGHUP')
      else this.reloadOnListen.add(w)
    }
    log(`SIGHUP: reloading ${this.current.size} workers.`)
  }

  /** SIGUSR2: each worker replaced in turn, the new one listening before the old one stops. */
  private async rollingRestart(record: RunRecord): Promise<void> {
    const {config, log} = this.options
    if (this.stopping) return
    if (this.restarting) {
      // The workers it replaced already may have read an older ini: one more restart, after it.
      if (!this.restartAgain) log('SIGUSR2: a rolling restart is running; another one follows it.')
      this.restartAgain = true
      return
    }
    this.restarting = true
    log(`SIGUSR2: restarting ${this.current.size} workers one at a time.`)
    try {
      for (const old of [...this.current]) {
        if (this.stopping) return
        // It crashed meanwhile: exited() started its replacement (a new worker already).
        if (!this.current.has(old)) continue
        const fresh = this.fork()
        this.candidates.add(fresh)
        const started = await listening(fresh)
        this.candidates.delete(fresh)
        // Stopped meanwhile: the new worker was stopped with the others, it did not fail.
        if (this.stopping) return
        if (!started) {
          const why = this.candidateFailure ?? 'it exited before listening'
          log(`Error: a new worker did not start (${why}); the rolling restart stops and the running workers stay.`)
          record.update({restartError: {message: why, at: new Date().toISOString()}})
          return
        }
        // The old one crashed while this one started, and was replaced then: one too many.
        this.retire(this.current.has(old) ? old : fresh)
      }
      record.update({configHash: sha256File(config.path), needRestart: [], reloadedAt: new Date().toISOString(), restartError: undefined})
      log('SIGUSR2: every worker was restarted.')
    } finally {
      this.restarting = false
      // After a failed one too: the signal may have come with the ini that mends it.
      if (this.restartAgain) {
        this.restartAgain = false
        void this.rollingRestart(record)
      }
    }
  }
}

/** Whether a worker starts listening (false: it exited first). */
function listening(worker: Worker): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
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
}

/**
 * The workers accept connections themselves from the socket they share (node's SCHED_NONE), as
 * uwsgi's and gunicorn's prefork workers do, rather than the primary accepting each one and handing
 * it over (node's default on Linux, round-robin). With round-robin the primary's one core does the
 * accept and the hand-off of every new connection (clients without keep-alive: 2 workers served
 * 40-75 % of the requests they serve when they accept, bench/ANALYSIS.md round fifteen), a stopped
 * worker is handed a new connection that hangs until the watchdog kills it, and a connection
 * handed to a worker at the moment it is killed hangs for good. A worker that does not run takes
 * no new connection here.
 * `NODE_CLUSTER_SCHED_POLICY=rr` in the environment keeps node's default.
 */
function useSharedAccept(): void {
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE
}

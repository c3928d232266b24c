/**
 * The primary's scrape relay of `kinto start --workers N` (src/lib/monitoring/prometheus.ts) when
 * a worker's IPC channel closes under it. During a rolling restart a retiring worker disconnects
 * once its requests are done; a scrape gathered at that moment still saw it connected, the write
 * failed with EPIPE after `send` returned, and node emitted that error on the worker: an uncaught
 * exception that ended the primary, every worker with it, and the scrape waited 5 s for a 503
 * (CI, stop 41). A real child process makes the race: it closes its channel while the parent's
 * event loop is held, so the parent still sees it connected.
 */
import {fork, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterEach, expect, test} from 'vitest'

import {primaryScrapeRelay, type RelayWorker} from '../../src/lib/monitoring/prometheus.js'

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

/**
 * A child that closes its IPC channel when asked, writes `marker` once closed ('disconnect' comes
 * right after node closes the channel, a tick after disconnect()), and lives on for a while.
 */
const CHILD = `
const {writeFileSync} = require('node:fs')
process.on('message', (m) => {
  if (m !== 'disconnect') return
  process.once('disconnect', () => writeFileSync(process.argv[1], ''))
  process.disconnect()
  setTimeout(() => {}, 10_000)
})
process.send('ready')
`

function onceMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve) => child.once('message', resolve))
}

test('a worker whose channel closes as it is asked for its metrics ends neither the primary nor the scrape', {timeout: 20_000}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kinto-relay-'))
  const marker = join(dir, 'disconnected')
  const child = fork('-e', [CHILD, marker], {execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc']})
  cleanups.push(() => {
    child.kill('SIGKILL')
    rmSync(dir, {recursive: true, force: true})
  })
  await onceMessage(child)

  const sendErrors: Array<Error | null> = []
  const retiring: RelayWorker = {
    // node:cluster's Worker.send passes its arguments on to the child process' (as here).
    send: (msg, handle, options, callback) =>
      // (Without a callback, as node's: a failed write is an 'error' event on the child.)
      callback === undefined
        ? child.send(msg as string)
        : child.send(msg as string, handle, options, (error) => {
            sendErrors.push(error)
            callback(error)
          }),
    isConnected: () => child.connected,
    once: (event, listener) => child.once(event, listener),
    off: (event, listener) => child.off(event, listener),
  }
  const answers: unknown[] = []
  let answered: () => void = () => {}
  const answer = new Promise<void>((resolve) => (answered = resolve))
  const scraping: RelayWorker = {
    send(msg, _handle, _options, callback) {
      answers.push(msg)
      callback(null)
      answered()
      return true
    },
    isConnected: () => true,
    once: () => undefined,
    off: () => undefined,
  }
  const relay = primaryScrapeRelay({includes: 'kinto.plugins.prometheus'}, () => [retiring])!
  expect(relay).not.toBeNull()

  child.send('disconnect')
  // Hold the event loop until the child has closed its side: this process has not read the
  // close yet, so the child still looks connected when the relay asks it.
  for (const deadline = Date.now() + 10_000; !existsSync(marker) && Date.now() < deadline; ) {
    // busy wait, on purpose
  }
  expect(existsSync(marker)).toBe(true)
  expect(child.connected).toBe(true)

  expect(relay(scraping, {kind: 'kinto-metrics-request', id: 7})).toBe(true)
  await answer

  // The write to the closed channel failed into the callback (no 'error' event, no crash) …
  expect(sendErrors).toHaveLength(1)
  expect((sendErrors[0] as NodeJS.ErrnoException | null)?.code).toMatch(/^(EPIPE|ECONNRESET|ERR_IPC_CHANNEL_CLOSED)$/)
  // … and the scrape was answered without waiting for that worker's exit or the gather timeout.
  expect(child.exitCode).toBeNull()
  expect(child.signalCode).toBeNull()
  // (No worker's metrics: the registry of nothing, one line break.)
  expect(answers).toEqual([{kind: 'kinto-metrics-response', id: 7, text: '\n'}])
})

test('a worker asked for its metrics as it disconnects (stopping) still exits cleanly', {timeout: 30_000}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kinto-relay-'))
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
  const script = join(dir, 'cluster.mts')
  const module = pathToFileURL(resolve('src/lib/monitoring/prometheus.ts')).href
  const promClient = pathToFileURL(resolve('node_modules/prom-client/index.js')).href
  // A real node:cluster worker with the exporter: the primary's request is read, then the worker
  // disconnects as serveWorker does at the end of a stop, before its answer is ready (a series
  // slow to collect holds the answer until the channel has closed).
  writeFileSync(
    script,
    `
    import cluster from 'node:cluster'
    if (cluster.isPrimary) {
      cluster.setupPrimary({execArgv: ['--import', 'tsx']})
      const worker = cluster.fork()
      worker.on('exit', (code, signal) => console.log(JSON.stringify({code, signal})))
    } else {
      const {PrometheusMetrics} = await import(${JSON.stringify(module)})
      const metrics = new PrometheusMetrics({includes: 'kinto.plugins.prometheus'})
      metrics.count('requests')
      const {default: client} = await import(${JSON.stringify(promClient)})
      new client.Gauge({name: 'slow', help: 'slow', registers: [metrics.registry], collect: () => new Promise((done) => setTimeout(done, 300))})
      process.emit('message', {type: 'prom-client:getMetricsReq', requestId: 1})
      cluster.worker.disconnect()
    }
    `,
  )
  const run = spawnSync(process.execPath, ['--import', 'tsx', script], {encoding: 'utf8', timeout: 25_000})
  expect(run.stderr).not.toMatch(/ERR_IPC_CHANNEL_CLOSED|Unhandled 'error'/)
  expect(JSON.parse(run.stdout.trim()), run.stderr).toEqual({code: 0, signal: null})
})

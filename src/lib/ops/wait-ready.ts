/**
 * `kinto wait-ready`: polls the heartbeat of a Kinto until it answers 200 (every backend check
 * passed), so CI scripts need no curl loop. Connection errors and 503s are retried until the
 * deadline; the error then says what the last attempt saw.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {ExitCode, KintoError} from '../errors.js'
import {describeHttpError, EndpointClient, endpointFromIni, type Endpoint} from './endpoint.js'
import {listRuns} from '../runs/registry.js'

/** Where to poll now, and why there; `endpoint` null: nothing to poll yet (a server is starting). */
export interface WaitTarget {
  endpoint: Endpoint | null
  why: string
}

export interface WaitReadyOptions {
  /** A fixed endpoint (--url), or a target resolved again before each attempt (the run registry). */
  endpoint: Endpoint | (() => WaitTarget)
  timeoutMs: number
  /** Called when the target changes (first one included). */
  onTarget?: (target: WaitTarget) => void
  /** Pause between attempts (default 250 ms). */
  intervalMs?: number
  /** Called after each failed attempt. */
  onAttempt?: (attempt: number, observed: string) => void
}

export interface WaitReadyResult {
  url: string
  ready: true
  attempts: number
  elapsedMs: number
  /** The heartbeat body (`{storage: true, …}`; `maintenance: true` while in maintenance). */
  heartbeat: unknown
}

export async function waitReady(options: WaitReadyOptions): Promise<WaitReadyResult> {
  const started = Date.now()
  const deadline = started + options.timeoutMs
  const interval = options.intervalMs ?? 250
  const fixed = typeof options.endpoint === 'function' ? undefined : options.endpoint
  const resolve = typeof options.endpoint === 'function' ? options.endpoint : () => ({endpoint: fixed!, why: 'given with --url'})
  const timeout = Math.max(500, Math.min(options.timeoutMs, 10_000))
  const clients = new Map<string, EndpointClient>()
  let attempts = 0
  let observed = 'no attempt'
  let last: WaitTarget | undefined
  let shown = 'nothing'
  try {
    for (;;) {
      attempts++
      const target = resolve()
      if (target.endpoint?.display !== last?.endpoint?.display || target.why !== last?.why) options.onTarget?.(target)
      last = target
      const remaining = Math.max(100, deadline - Date.now())
      if (!target.endpoint) {
        observed = target.why
      } else {
        shown = target.endpoint.display
        let client = clients.get(target.endpoint.display)
        if (!client) clients.set(target.endpoint.display, (client = new EndpointClient(target.endpoint, timeout)))
        try {
          const res = await client.get('__heartbeat__', Math.min(remaining, 10_000))
          if (res.status === 200) {
            return {url: target.endpoint.display, ready: true, attempts, elapsedMs: Date.now() - started, heartbeat: res.json ?? res.body}
          }
          const failing =
            res.json && typeof res.json === 'object'
              ? Object.entries(res.json as Record<string, unknown>)
                  .filter(([, v]) => v === false)
                  .map(([k]) => k)
              : []
          observed = `HTTP ${res.status}${failing.length ? ` (failing: ${failing.join(', ')})` : ''}`
        } catch (error) {
          observed = describeHttpError(error)
        }
      }
      options.onAttempt?.(attempts, observed)
      const left = deadline - Date.now()
      if (left <= 0) break
      await sleep(Math.min(interval, left))
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()))
  }
  throw new KintoError(
    `${last?.endpoint?.display ?? shown} was not ready after ${Math.round((Date.now() - started) / 100) / 10} s (${attempts} attempt${attempts === 1 ? '' : 's'}; last: ${observed}).`,
    {
      code: 'KINTO_NOT_READY',
      exit: ExitCode.FAILED,
      hint: 'Check that the server runs (kinto status) and its logs; raise --timeout if it is only slow to start.',
    },
  )
}

/**
 * Where the server of an ini answers, decided again at each attempt: a registered server that
 * listens, else nothing while one is starting (registered, not listening yet), else [server:main].
 */
export function targetFromIni(iniPath: string, env: NodeJS.ProcessEnv = process.env): WaitTarget {
  const runs = listRuns(iniPath, env)
  const listening = runs.find((e) => e.url)
  if (listening) return {endpoint: endpointFromIni(iniPath, env), why: `server pid ${listening.pid} of this ini, from the run registry`}
  if (runs.length > 0) return {endpoint: null, why: `server pid ${runs[0].pid} of this ini is starting (registered, not listening yet)`}
  return {endpoint: endpointFromIni(iniPath, env), why: 'no server of this ini registered yet: [server:main] of the ini'}
}

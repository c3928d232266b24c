/**
 * `kinto wait-ready`: polls the heartbeat of a Kinto until it answers 200 (every backend check
 * passed), so CI scripts need no curl loop. Connection errors and 503s are retried until the
 * deadline; the error then says what the last attempt saw.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {ExitCode, KintoError} from '../errors.js'
import {describeHttpError, EndpointClient, type Endpoint} from './endpoint.js'

export interface WaitReadyOptions {
  endpoint: Endpoint
  timeoutMs: number
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
  const client = new EndpointClient(options.endpoint, Math.max(500, Math.min(options.timeoutMs, 10_000)))
  let attempts = 0
  let observed = 'no attempt'
  try {
    for (;;) {
      attempts++
      const remaining = Math.max(100, deadline - Date.now())
      try {
        const res = await client.get('__heartbeat__', Math.min(remaining, 10_000))
        if (res.status === 200) {
          return {url: options.endpoint.display, ready: true, attempts, elapsedMs: Date.now() - started, heartbeat: res.json ?? res.body}
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
      options.onAttempt?.(attempts, observed)
      const left = deadline - Date.now()
      if (left <= 0) break
      await sleep(Math.min(interval, left))
    }
  } finally {
    await client.close()
  }
  throw new KintoError(
    `${options.endpoint.display} was not ready after ${Math.round((Date.now() - started) / 100) / 10} s (${attempts} attempts; last: ${observed}).`,
    {
      code: 'KINTO_NOT_READY',
      exit: ExitCode.FAILED,
      hint: 'Check that the server runs (kinto status) and its logs; raise --timeout if it is only slow to start.',
    },
  )
}

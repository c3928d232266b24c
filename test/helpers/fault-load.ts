/**
 * The load of the fault tests: several writers and readers against a running `kinto start`,
 * every response recorded (when, what, how long), so that a test can say what the server did
 * before, during and after a fault, and check afterwards that every acknowledged write is there.
 */
import {setTimeout as sleep} from 'node:timers/promises'

export const AUTH = 'Basic ' + Buffer.from('fault:tests').toString('base64')

export interface Sample {
  /** ms since the load started */
  start: number
  end: number
  kind: 'write' | 'read' | 'heartbeat' | 'lbheartbeat'
  /** HTTP status; 0: no answer (connection refused/reset, or the client timeout). */
  status: number
  errno?: number
  retryAfter?: string | null
  body?: unknown
  error?: string
  /** For writes: the record id and the value written. */
  id?: string
  value?: number
}

export interface LoadOptions {
  /** Base URL of the API (`http://127.0.0.1:PORT/v1/`). */
  url: string
  bucket: string
  collection: string
  writers?: number
  readers?: number
  /** Pause between two requests of one client (ms). */
  pauseMs?: number
  /** A request that takes longer is given up on and counted as a hang (ms). */
  requestTimeoutMs?: number
  /** Also poll __heartbeat__ and __lbheartbeat__ (every pauseMs * 4). */
  heartbeats?: boolean
}

export interface Load {
  samples: Sample[]
  /** ms since the load started */
  now(): number
  stop(): Promise<void>
  /** Every write that was acknowledged (2xx). */
  acknowledged(): Sample[]
}

async function call(url: string, init: RequestInit, timeoutMs: number): Promise<{status: number; headers?: Headers; body?: unknown; error?: string}> {
  try {
    const res = await fetch(url, {...init, signal: AbortSignal.timeout(timeoutMs)})
    const text = await res.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON: kept as text
    }
    return {status: res.status, headers: res.headers, body}
  } catch (error) {
    const e = error as Error & {cause?: {code?: string}}
    return {status: 0, error: e.cause?.code ?? e.name ?? e.message}
  }
}

/** Creates the bucket and collection (retrying while the server is not ready), then starts the load. */
export async function startLoad(options: LoadOptions): Promise<Load> {
  const {url, bucket, collection} = options
  const timeoutMs = options.requestTimeoutMs ?? 20_000
  const pause = options.pauseMs ?? 20
  const headers = {Authorization: AUTH, 'Content-Type': 'application/json'}
  for (const path of [`buckets/${bucket}`, `buckets/${bucket}/collections/${collection}`]) {
    const res = await call(url + path, {method: 'PUT', headers, body: '{}'}, timeoutMs)
    if (res.status >= 300) throw new Error(`setting up ${path}: ${res.status} ${JSON.stringify(res.body ?? res.error)}`)
  }
  const t0 = Date.now()
  const now = () => Date.now() - t0
  const samples: Sample[] = []
  let stopped = false
  let seq = 0
  const record = async (kind: Sample['kind'], path: string, init: RequestInit, extra: Partial<Sample> = {}) => {
    const start = now()
    const res = await call(url + path, init, timeoutMs)
    const body = res.body as {errno?: number} | undefined
    samples.push({
      start,
      end: now(),
      kind,
      status: res.status,
      errno: typeof body === 'object' && body ? body.errno : undefined,
      retryAfter: res.headers?.get('retry-after') ?? null,
      body: res.status >= 300 || kind === 'heartbeat' ? res.body : undefined,
      error: res.error,
      ...extra,
    })
  }
  const records = `buckets/${bucket}/collections/${collection}/records`
  const writer = async (w: number) => {
    while (!stopped) {
      const id = `w${w}-${seq++}`
      const value = Math.floor(Math.random() * 1e9)
      await record('write', `${records}/${id}`, {method: 'PUT', headers, body: JSON.stringify({data: {value}})}, {id, value})
      await sleep(pause)
    }
  }
  const reader = async () => {
    while (!stopped) {
      await record('read', `${records}?_limit=5&_sort=-last_modified`, {headers})
      await sleep(pause)
    }
  }
  const prober = async () => {
    while (!stopped) {
      await record('heartbeat', '__heartbeat__', {})
      await record('lbheartbeat', '__lbheartbeat__', {})
      await sleep(pause * 4)
    }
  }
  const loops = [
    ...Array.from({length: options.writers ?? 4}, (_, i) => writer(i)),
    ...Array.from({length: options.readers ?? 2}, () => reader()),
    ...(options.heartbeats === false ? [] : [prober()]),
  ]
  return {
    samples,
    now,
    async stop() {
      stopped = true
      await Promise.all(loops)
    },
    acknowledged: () => samples.filter((s) => s.kind === 'write' && s.status >= 200 && s.status < 300),
  }
}

/** Waits until fn() is true (polling), at most timeoutMs; returns whether it became true. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return true
    await sleep(everyMs)
  }
  return fn()
}

export interface FaultFigures {
  requests: number
  /** Requests answered with something other than 2xx/4xx (503s, no answer). */
  failed: number
  /** 503 errno 201 answers. */
  unavailable: number
  /** 5xx other than 503, and requests that got no answer at all. */
  broken: number
  acknowledgedWrites: number
  /** ms from the database accepting connections again to the first write that succeeded after it. */
  recoveryMs: number | null
  /** The longest request (ms). */
  longestMs: number
}

/** Figures of a load around a fault whose end (the database accepting again) is at `upAt` (load ms). */
export function figures(load: Load, upAt: number): FaultFigures {
  const api = load.samples.filter((s) => s.kind === 'write' || s.kind === 'read')
  const firstOk = load.samples.find((s) => s.kind === 'write' && s.start >= upAt && s.status < 300 && s.status >= 200)
  return {
    requests: api.length,
    failed: api.filter((s) => !(s.status >= 200 && s.status < 500)).length,
    unavailable: api.filter((s) => s.status === 503 && s.errno === 201).length,
    broken: api.filter((s) => s.status === 0 || (s.status >= 500 && s.status !== 503)).length,
    acknowledgedWrites: load.acknowledged().length,
    recoveryMs: firstOk ? firstOk.end - upAt : null,
    longestMs: Math.max(0, ...api.map((s) => s.end - s.start)),
  }
}

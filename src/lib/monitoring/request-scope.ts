/**
 * What the logs and metrics of one top-level request share while it is served: its request id
 * (upstream's `rid`: the X-Request-Id header, or a new UUID4), the fields of its request.summary
 * once logged, and the size of a batch. Carried by AsyncLocalStorage, as upstream carries `rid`
 * in a context variable, so every log line of the request gets it.
 */
import {AsyncLocalStorage} from 'node:async_hooks'
import {randomUUID} from 'node:crypto'

export interface RequestScope {
  rid: string
  /** The request.summary fields, set when the line was written. */
  summary?: Record<string, unknown>
  /** Number of sub-requests of a batch (`batch_size`). */
  batchSize?: number
}

const storage = new AsyncLocalStorage<RequestScope>()

/** The scope of the request being served, if any. */
export function currentScope(): RequestScope | undefined {
  return storage.getStore()
}

/** Runs fn with a new request scope. */
export function runInScope<T>(scope: RequestScope, fn: () => T): T {
  return storage.run(scope, fn)
}

/**
 * The client's X-Request-Id when it is a reasonable id (printable ASCII, at most 128 characters:
 * it is copied into every log line), else a new UUID4.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header
  if (value && value.length <= 128 && /^[\x21-\x7e]+$/.test(value)) return value
  return randomUUID()
}

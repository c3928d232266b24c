/**
 * What the logs and metrics of one top-level request share while it is served: its request id
 * (upstream's `rid`: the X-Request-Id header, or a new UUID4), the fields of its request.summary
 * once logged, and the size of a batch. It travels with the request (KintoRequest.scope; a batch's
 * sub-requests carry their batch's), and the runtime puts its `rid` on every line it logs while
 * serving the request. Not AsyncLocalStorage: on Node 20 that hooks every promise the process
 * creates, measured at about a tenth of the CPU time of a record GET.
 */
import {randomUUID} from 'node:crypto'

export interface RequestScope {
  rid: string
  /** The request.summary fields, set when the line was written. */
  summary?: Record<string, unknown>
  /**
   * False when the request was served without needing its caller's identity (a batch, a flush):
   * its metrics then count no user, as upstream's (RequestContext.identityUsed).
   */
  identityUsed?: boolean
  /** Number of sub-requests of a batch (`batch_size`). */
  batchSize?: number
}

/** A request's scope (request id from its X-Request-Id header, or a new one). */
export function newRequestScope(headers: Record<string, string | string[] | undefined>): RequestScope {
  return {rid: requestIdFrom(headers['x-request-id'])}
}

/**
 * Where the runtime hands a request's scope to the summary logger along with the summary's fields
 * (a symbol: never a log field, never serialised).
 */
export const REQUEST_SCOPE: unique symbol = Symbol('kinto-ops.requestScope')

/**
 * The client's X-Request-Id when it is a reasonable id (printable ASCII, at most 128 characters:
 * it is copied into every log line), else a new UUID4.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header
  if (value && value.length <= 128 && /^[\x21-\x7e]+$/.test(value)) return value
  return randomUUID()
}

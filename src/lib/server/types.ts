/** Shared types of the HTTP runtime. */
import type {Backends as CreatedBackends, TransactionBackends} from '../backends.js'
import type {RawQuery} from './querystring.js'
import type {RequestScope} from '../monitoring/request-scope.js'
import type {MultipartBody} from './plugins/attachment/upload.js'

/**
 * Storage and permission as one request sees them: bound to its transaction. The cache is not
 * part of it (upstream: it commits on its own) and, on PGlite's single connection, must not be
 * called while a transaction is open: views reach it before (`beforeTransaction`) or after
 * (`BoundData.afterTransaction`) the transaction.
 */
export type TxBackends = TransactionBackends

/** What `createBackends()` (src/lib/backends.ts) returns. */
export type Backends = Pick<CreatedBackends, 'storage' | 'permission' | 'cache' | 'transaction' | 'close' | 'prefetch'>

/** One HTTP request as the dispatcher sees it (also built for batch sub-requests). */
export interface KintoRequest {
  /** Upper-case method. */
  method: string
  /** Decoded path, e.g. `/v1/buckets/b1`. */
  path: string
  /** The path as received (percent-encoded), for redirects and Next-Page URLs. */
  rawPath: string
  /** Raw querystring without `?`. */
  rawQuery: string
  query: RawQuery
  /** Lower-case header names. */
  headers: Record<string, string | undefined>
  body: Buffer | null
  /** A multipart body left unread by the HTTP layer (attachment uploads stream it to disk). */
  multipart?: MultipartBody
  /** For absolute URLs (hello `url`, Next-Page): from http_scheme/http_host or the request. */
  scheme: string
  host: string
  /** What the request's log lines and metrics share (its `rid`); a batch's sub-requests carry the batch's. */
  scope?: RequestScope
}

/**
 * A body sent as it is instead of as JSON (the admin console's files); the view sets its
 * Content-Type. In a batch response it stands as its text.
 */
export class RawBody {
  constructor(readonly bytes: Buffer) {}

  toJSON(): string {
    return this.bytes.toString('utf8')
  }
}

/** What a view returns; the dispatcher adds the common headers. */
export interface ViewResult {
  status?: number
  /** JSON body (or a RawBody); undefined for none (304, HEAD). */
  body?: unknown
  headers?: Record<string, string>
}

/** The response that leaves the dispatcher. */
export interface KintoResponse {
  status: number
  headers: Record<string, string>
  /** JSON value to serialise (a RawBody as it is), or undefined for an empty body. */
  body?: unknown
}


/**
 * The attempts of a request's transaction (Runtime.inTransaction): which failures may run it
 * again, and the request state each new attempt starts from.
 */
import {BackendError, IntegrityError} from '../storage/types.js'
import type {RequestContext} from './context.js'
import {EventCollector} from './events.js'
import type {ViewResult} from './types.js'

/** Runs of a request transaction aborted by a deadlock or serialisation failure, at most. */
export const TRANSACTION_ATTEMPTS = 4

/**
 * What a transaction attempt may change in the request's state (caches of objects read, events,
 * queued post-commit work, plugin data, response headers), and a function putting it back as it
 * was before the first attempt; what came before the transaction (identities, nonces taken from
 * the cache, parsed batch specs, work queued by authentication) stays.
 */
export function attemptSnapshot(ctx: RequestContext): () => void {
  const bound = ctx.bound
  const locals = new Map(ctx.locals)
  const extra = new Map(bound.extra)
  const collections = new Map(bound.collections)
  const queued = bound.afterTransaction.length
  const headers = {...ctx.responseHeaders}
  return () => {
    ctx.locals.clear()
    for (const [k, v] of locals) ctx.locals.set(k, v)
    bound.extra.clear()
    for (const [k, v] of extra) bound.extra.set(k, v)
    bound.collections.clear()
    for (const [k, v] of collections) bound.collections.set(k, v)
    bound.afterTransaction.length = queued
    bound.events = new EventCollector()
    bound.abort = false
    bound.abortRetryable = false
    ctx.sharedIds = null
    for (const k of Object.keys(ctx.responseHeaders)) delete ctx.responseHeaders[k]
    Object.assign(ctx.responseHeaders, headers)
  }
}

/** Thrown to roll back a transaction while still answering with a result (409 in a batch). */
export class AbortTransaction extends Error {
  constructor(
    readonly result: ViewResult,
    /** The 409 was a timestamp taken by a writer outside our locks: the batch may run again. */
    readonly retryable = false,
  ) {
    super('transaction aborted')
  }
}

/** Whether running the whole transaction again may succeed. */
export function isRetryable(err: unknown): boolean {
  return (err instanceof BackendError || err instanceof IntegrityError || err instanceof AbortTransaction) && err.retryable
}

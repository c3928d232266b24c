/** Maps any failure of a request to the Kinto error it is answered with, logging what is not the client's fault. */
import {asString, type Settings} from '../config/settings.js'
import {isKintoError} from '../errors.js'
import type {Logger} from '../logger.js'
import {
  BackendError,
  IntegrityError,
  ObjectNotFoundError,
  PreconditionFailedError,
  ReadonlyTimestampError,
  UnicityError,
} from '../storage/types.js'
import {
  ERRNO,
  HttpError,
  MESSAGES,
  integrityError,
  internalError,
  isHttpError,
  notFoundObject,
  serviceUnavailable,
} from './errors.js'
import {timestampHeaders} from './headers.js'
import type {KintoRequest} from './types.js'

export interface ErrorMappingOptions {
  logger: Logger
  retryAfter: number
  /** Read for `error_info_link`, shown in 500 responses. */
  settings: Settings
}

/**
 * Conditions of the machine whose message says all an operator needs (a database or a cache that
 * cannot be reached: server, database, reason; an attachment folder that cannot be written: folder,
 * reason). They are logged without their stack, the same for every request (and heartbeat) until
 * the operator acts: tens of thousands of lines for a few seconds under load.
 */
const SAID_WHOLE = new Set(['KINTO_DB_UNREACHABLE', 'KINTO_ATTACHMENT_STORE_FAILED'])

/** Whether a failure is logged by its message alone, without its stack (SAID_WHOLE). */
export function saidWhole(err: unknown): boolean {
  return (isKintoError(err) && SAID_WHOLE.has(err.code)) || (err instanceof BackendError && err.unreachable)
}

/** The HTTP error a failure is answered with. */
export function httpErrorFor(err: unknown, req: KintoRequest, options: ErrorMappingOptions): HttpError {
  const {logger, retryAfter} = options
  if (isHttpError(err)) return err
  if (err instanceof ObjectNotFoundError) return notFoundObject(err.resourceName, err.objectId)
  if (err instanceof IntegrityError || err instanceof UnicityError) return integrityError(retryAfter)
  if (err instanceof PreconditionFailedError) {
    const details = err.existing ? {existing: err.existing} : undefined
    const error = new HttpError(412, {errno: ERRNO.MODIFIED_MEANWHILE, message: MESSAGES.modifiedMeanwhile, details})
    if (err.existing) Object.assign(error.headers, timestampHeaders(err.existing.last_modified))
    return error
  }
  if (err instanceof ReadonlyTimestampError) return serviceUnavailable(retryAfter, MESSAGES.readonlyTimestamp)
  if (isBackendFailure(err)) {
    // A database that cannot be reached (down, restarting, out of connections) is the backend's
    // failure, not a bug: 503 errno 201 with Retry-After, so clients back off and retry. Logged
    // CRITICAL as upstream logs backend errors (what log-based alerts on an outage look for).
    // Other backend failures than an unreachable database keep their stack.
    const fields = {rid: req.scope?.rid, ...(saidWhole(err) ? {} : {err}), ...requestFields(req), errno: ERRNO.BACKEND}
    if (logger.fatal) logger.fatal(fields, (err as Error).message)
    else logger.error(fields, (err as Error).message)
    return serviceUnavailable(retryAfter)
  }
  logger.error({rid: req.scope?.rid, ...(saidWhole(err) ? {} : {err}), ...requestFields(req), errno: ERRNO.UNDEFINED}, (err as Error)?.message ?? String(err))
  return internalError(asString(options.settings, 'error_info_link') ?? '')
}

/** What upstream's error view logs of the request: path, method and the querystring when there is one. */
function requestFields(req: KintoRequest): {path: string; method: string; querystring?: Record<string, unknown>} {
  return {path: req.path, method: req.method, ...(req.rawQuery ? {querystring: Object.fromEntries(req.query)} : {})}
}

/** A failure of a backend (answered 503 errno 201): a BackendError, or a database that cannot be reached. */
export function isBackendFailure(err: unknown): boolean {
  return err instanceof BackendError || (isKintoError(err) && err.code === 'KINTO_DB_UNREACHABLE')
}

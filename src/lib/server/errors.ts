/**
 * The HTTP runtime's errors: one error type carrying Kinto's errno table.
 * Every failure leaves the server as Kinto's JSON error body:
 *   {code, errno, error, message?, info?, details?}
 * Validation failures all use errno 107 "Invalid parameters" with a list of
 * {location, name, description} details, sorted by name, the first one giving the message.
 */
import {CONTENT_SECURITY_POLICY} from './headers.js'
import {pyRepr} from './py-repr.js'

/** Kinto's errno values. Stable: clients test them. */
export const ERRNO = {
  MISSING_AUTH_TOKEN: 104,
  INVALID_AUTH_TOKEN: 105,
  BADJSON: 106,
  INVALID_PARAMETERS: 107,
  MISSING_PARAMETERS: 108,
  INVALID_POSTED_DATA: 109,
  INVALID_RESOURCE_ID: 110,
  MISSING_RESOURCE: 111,
  MISSING_CONTENT_LENGTH: 112,
  REQUEST_TOO_LARGE: 113,
  MODIFIED_MEANWHILE: 114,
  METHOD_NOT_ALLOWED: 115,
  VERSION_NOT_AVAILABLE: 116,
  CLIENT_REACHED_CAPACITY: 117,
  FORBIDDEN: 121,
  CONSTRAINT_VIOLATED: 122,
  BACKEND: 201,
  SERVICE_DEPRECATED: 202,
  UNDEFINED: 999,
} as const
/** Reason phrases as the reference server spells them in the `error` field. */
export const STATUS_TITLES: Record<number, string> = {
  304: 'Not Modified',
  307: 'Temporary Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

export const MESSAGES = {
  authRequired: 'Please authenticate yourself to use this endpoint.',
  forbidden: 'This user cannot access this resource.',
  notFound: 'The resource you are looking for could not be found.',
  versionNotAvailable: 'The requested API version is not available on this server.',
  methodNotAllowed: 'Method not allowed on this endpoint.',
  modifiedMeanwhile: 'Resource was modified meanwhile',
  integrity: 'Integrity constraint violated, please retry.',
  backend: 'Service temporary unavailable due to overloading or maintenance, please retry later.',
  programmatic: 'A programmatic error occurred, developers have been informed.',
  deprecated: 'The service you are trying to connect no longer exists at this location.',
  readonlyTimestamp:
    'Resource timestamp cannot be written. Plural endpoint must be hit at least once from a writable instance.',
} as const

export interface ErrorBody {
  code: number
  errno: number
  error: string
  message?: string
  info?: string
  details?: unknown
}

export interface HttpErrorOptions {
  errno?: number
  error?: string
  message?: string
  info?: string
  details?: unknown
  headers?: Record<string, string>
}

/** An HTTP failure rendered as Kinto's JSON error body. */
export class HttpError extends Error {
  readonly status: number
  readonly errno: number
  readonly error: string
  readonly info?: string
  readonly details?: unknown
  readonly headers: Record<string, string>
  /** The message as sent to the client (may be absent, as for 404 errno 110). */
  readonly publicMessage?: string

  constructor(status: number, options: HttpErrorOptions = {}) {
    super(options.message ?? options.error ?? STATUS_TITLES[status] ?? `HTTP ${status}`)
    this.name = 'HttpError'
    this.status = status
    this.errno = options.errno ?? ERRNO.UNDEFINED
    this.error = options.error ?? STATUS_TITLES[status] ?? 'Error'
    this.publicMessage = options.message
    this.info = options.info
    this.details = options.details
    this.headers = {...options.headers}
  }

  body(): ErrorBody {
    const body: ErrorBody = {code: this.status, errno: this.errno, error: this.error}
    if (this.publicMessage) body.message = this.publicMessage
    if (this.info) body.info = this.info
    if (this.details !== undefined && this.details !== null && !isEmpty(this.details)) body.details = this.details
    return body
  }
}

function isEmpty(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0
  if (typeof value === 'object' && value !== null) return Object.keys(value).length === 0
  return value === ''
}

/** One validation failure: where (`body`, `querystring`, `header`, `path`), which field, what. */
/** What a detail names: a field, or (a JSON schema's error, as upstream) a list index or a subschema. */
export type IssueName = string | number | boolean | object | null

export interface ValidationIssue {
  location: string
  name: IssueName
  description: string
  /** Kept in the detail, as upstream's raise_invalid(errno=…) keeps it (the answer's errno stays 107). */
  errno?: number
}

/**
 * 400 errno 107 "Invalid parameters" (or another status such as 406/415), as upstream's
 * json_error_handler renders it: details sorted by name; the message from the first detail.
 */
export function invalidParameters(issues: ValidationIssue[] | ValidationIssue, status = 400): HttpError {
  const list = (Array.isArray(issues) ? issues : [issues]).map((i) => ({
    location: i.location,
    name: i.name,
    description: i.description,
    ...(i.errno === undefined ? {} : {errno: i.errno}),
  }))
  // Python's str() of each name: sorted by it, and the message shows it.
  list.sort((a, b) => compareNames(pyRepr(a.name ?? 'None'), pyRepr(b.name ?? 'None')))
  const first = list[0]
  let message: string
  if (first.name !== null && first.name !== undefined) {
    message = first.description.includes(pyRepr(first.name))
      ? first.description
      : `${pyRepr(first.name)} in ${first.location}: ${first.description}`
  } else {
    message = `${first.location}: ${first.description}`
  }
  return new HttpError(status, {errno: ERRNO.INVALID_PARAMETERS, error: 'Invalid parameters', message, details: list})
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Shortcut for one failing field. */
export function invalid(location: string, name: IssueName, description: string): HttpError {
  return invalidParameters({location, name, description})
}

export function notFoundObject(resourceName: string, id: string): HttpError {
  return new HttpError(404, {errno: ERRNO.INVALID_RESOURCE_ID, details: {id, resource_name: resourceName}})
}

export function missingParent(resourceName: string, id: string): HttpError {
  return new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, details: {id, resource_name: resourceName}})
}

export function notFound(): HttpError {
  return new HttpError(404, {errno: ERRNO.MISSING_RESOURCE, message: MESSAGES.notFound})
}

export function methodNotAllowed(allow?: string[]): HttpError {
  return new HttpError(405, {
    errno: ERRNO.METHOD_NOT_ALLOWED,
    message: MESSAGES.methodNotAllowed,
    headers: allow ? {Allow: allow.join(', ')} : undefined,
  })
}

export function unauthorized(): HttpError {
  return new HttpError(401, {
    errno: ERRNO.MISSING_AUTH_TOKEN,
    message: MESSAGES.authRequired,
    headers: {'WWW-Authenticate': 'Basic realm="Realm"'},
  })
}

export function forbidden(): HttpError {
  return new HttpError(403, {errno: ERRNO.FORBIDDEN, message: MESSAGES.forbidden})
}

export function serviceUnavailable(retryAfterSeconds: number, message: string = MESSAGES.backend): HttpError {
  return new HttpError(503, {errno: ERRNO.BACKEND, message, headers: {'Retry-After': String(retryAfterSeconds)}})
}

export function integrityError(retryAfterSeconds: number): HttpError {
  return new HttpError(409, {
    errno: ERRNO.CONSTRAINT_VIOLATED,
    message: MESSAGES.integrity,
    headers: {'Retry-After': String(retryAfterSeconds)},
  })
}

export function internalError(infoLink: string): HttpError {
  return new HttpError(500, {errno: ERRNO.UNDEFINED, message: MESSAGES.programmatic, info: infoLink})
}

export function requestTooLarge(): HttpError {
  return new HttpError(413, {errno: ERRNO.REQUEST_TOO_LARGE, message: 'Request body is too large.'})
}

export function isHttpError(err: unknown): err is HttpError {
  return err instanceof HttpError
}

/**
 * What a request that never became a request gets (Node's HTTP parser refused it: a malformed
 * request line or header, headers over the size limit, a timeout): Kinto's JSON error body on a
 * raw HTTP/1.1 response, the connection then closed. Fastify's `clientErrorHandler`.
 */
export function clientErrorResponse(err: {code?: string}): string {
  let error: HttpError
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    error = new HttpError(431, {errno: ERRNO.INVALID_PARAMETERS, error: 'Request Header Fields Too Large', message: 'Request headers are too large.'})
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    error = new HttpError(408, {errno: ERRNO.UNDEFINED, error: 'Request Timeout', message: 'The request was not received in time.'})
  } else {
    error = new HttpError(400, {errno: ERRNO.INVALID_PARAMETERS, message: 'Malformed HTTP request.'})
  }
  return rawHttpResponse(error)
}

/** An HttpError as a complete HTTP/1.1 response (for sockets outside Fastify: parser errors, CONNECT). */
export function rawHttpResponse(error: HttpError): string {
  const body = JSON.stringify(error.body())
  const headers = [
    `HTTP/1.1 ${error.status} ${error.error}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Content-Security-Policy: ${CONTENT_SECURITY_POLICY}`,
    'X-Content-Type-Options: nosniff',
    ...Object.entries(error.headers).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
  ]
  return `${headers.join('\r\n')}\r\n\r\n${body}`
}

/** Writes clientErrorResponse() on a socket the parser gave up on, then closes it. */
export function writeClientError(err: Error & {code?: string}, socket: {writable: boolean; destroyed: boolean; end(data: string): void; destroy(): void}): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable) socket.end(clientErrorResponse(err))
  else socket.destroy()
}

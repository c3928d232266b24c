/** What every cache backend does with values: JSON text in, a fresh copy out, sizes checked. */
import {BackendError} from '../storage/types.js'

/** Which server a cache talks to, for messages (never with credentials). */
export interface CacheAddress {
  backend: string
  where: string
}

/** Raised when a value is larger than the backend accepts: the caller's value, not an outage. */
export class CacheValueTooLarge extends BackendError {
  constructor(message: string) {
    super(message)
    this.name = 'CacheValueTooLarge'
  }
}

/** The JSON text stored for a value; TypeError for what JSON cannot hold (undefined, functions). */
export function encodeJson(value: unknown): string {
  const json = JSON.stringify(value)
  if (json === undefined) throw new TypeError('A cache value must be JSON-serialisable.')
  return json
}

/** Reasons that say the server could not be reached or did not answer (not a refusal of the call). */
const UNREACHABLE = /cannot connect|No servers available|no answer within|Command timed out|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE/

/**
 * The BackendError for a failed call (`what`) of a network cache: names the server and the reason,
 * never the credentials; marked `unreachable` (logged without its stack) when the server could not
 * be reached.
 */
export function cacheFailure(address: CacheAddress, what: string, reason: string, cause: unknown): BackendError {
  return new BackendError(`Cache backend failure (${address.backend} ${address.where}, ${what}): ${reason}`, {cause, unreachable: UNREACHABLE.test(reason)})
}

export function decodeJson<T>(text: string, address: CacheAddress, key: string): T {
  try {
    return JSON.parse(text) as T
  } catch (cause) {
    throw new BackendError(`Cache backend (${address.backend} ${address.where}) holds a value for ${JSON.stringify(key)} that is not JSON.`, {cause})
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / (1024 * 1024)) * 10) / 10} MB`
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KB`
  return `${n} bytes`
}

/** Throws CacheValueTooLarge when `bytes` exceeds `limit`. */
export function checkValueSize(bytes: number, limit: number, address: CacheAddress, key: string, limitName: string): void {
  if (bytes <= limit) return
  throw new CacheValueTooLarge(tooLargeMessage(bytes, address, key, `${limitName}, ${formatBytes(limit)}`))
}

export function tooLargeMessage(bytes: number, address: CacheAddress, key: string, limit: string): string {
  return `The cache value for ${JSON.stringify(key)} is ${formatBytes(bytes)}, more than ${address.backend} at ${address.where} accepts (${limit}).`
}

/**
 * Kinto accounts: what the `kinto.plugins.accounts` plugin and
 * `kinto create-user` share — the id rule, bcrypt hashes as upstream stores them (`$2b$`, cost 12,
 * so an account written by upstream Kinto logs in here and the other way round) and the
 * verification cache keys.
 */
import {createHmac} from 'node:crypto'

import {asBool, asInt, asString, type Settings} from '../config/settings.js'

/** Resource name and user id prefix of accounts. */
export const ACCOUNT_RESOURCE = 'account'
export const ACCOUNT_POLICY_NAME = 'account'

/** Account ids (upstream's AccountIdGenerator): `@`, `+` and `.` allowed after the first character. */
export const ACCOUNT_ID_PATTERN = /^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$/

/** bcrypt cost upstream uses (Python bcrypt's gensalt() default). */
export const BCRYPT_ROUNDS = 12

/** Hex HMAC-SHA256 (upstream's hmac_digest). */
function hmacDigest(secret: string, message: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(message, 'utf8').digest('hex')
}

/** Upstream's cache key template, `accounts:<username>:verified`, HMAC'ed with userid_hmac_secret. */
export function accountCacheKey(settings: Settings, username: string): string {
  return hmacDigest(asString(settings, 'userid_hmac_secret') ?? '', `accounts:${username}:verified`)
}

/** The value cached for a verified (username, password): HMAC of the password keyed by the cache key. */
export function verifiedCacheValue(cacheKey: string, password: string): string {
  return hmacDigest(cacheKey, password)
}

export function accountCacheTtl(settings: Settings): number {
  return asInt(settings, 'account_cache_ttl_seconds', 30) ?? 30
}

/** bcrypt reads this many bytes of a password; the rest would be ignored. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72

/**
 * Why a new password cannot be hashed, or undefined: longer than bcrypt reads. Upstream's bcrypt
 * (pyca 5) refuses such a password; older versions cut it, so that any password sharing its first
 * 72 bytes logged in. Logging in still cuts (verifyPassword), for the hashes those versions wrote.
 */
export function passwordLengthError(password: string): string | undefined {
  if (Buffer.byteLength(password, 'utf8') <= BCRYPT_MAX_PASSWORD_BYTES) return undefined
  return `Longer than ${BCRYPT_MAX_PASSWORD_BYTES} bytes (UTF-8): bcrypt would ignore the rest`
}

/** A `$2b$` bcrypt hash of the password (UTF-8), cost 12, as upstream stores it. */
export async function hashPassword(password: string): Promise<string> {
  const {default: bcrypt} = await import('bcryptjs')
  return bcrypt.hash(password, BCRYPT_ROUNDS)
}

/**
 * Whether the password matches a stored bcrypt hash (`$2a$`, `$2b$` or `$2y$`). Anything that is
 * not a bcrypt hash never matches (upstream would fail with a 500).
 */
export async function verifyPassword(password: string, hash: unknown): Promise<boolean> {
  if (typeof hash !== 'string' || !/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) return false
  try {
    const {default: bcrypt} = await import('bcryptjs')
    return await bcrypt.compare(password, hash)
  } catch {
    return false
  }
}

/** The ACE upstream gives an account: its owner may write it. */
export function accountUri(username: string): string {
  return `/accounts/${username}`
}

export function accountPrincipal(username: string): string {
  return `${ACCOUNT_POLICY_NAME}:${username}`
}

/**
 * What `kinto.account_validation = true` means now, or null when it is not set: Kinto 20 removed
 * account validation (and so does kinto-ops), so nothing stops an account that was never
 * validated from logging in. Said by the server at startup and by `kinto check`.
 */
export function accountValidationWarning(settings: Settings): string | null {
  if (!asBool(settings, 'account_validation')) return null
  return (
    'kinto.account_validation is true, but Kinto 20 and later (and kinto-ops) have no account validation: ' +
    'an account can log in as soon as it is created, and so can the accounts an older Kinto left unvalidated (data.validated false).'
  )
}

/**
 * The JWT check upstream makes when a policy has an `audience` (PyJWT's PyJWKClient + decode):
 * the access token must be a JWS signed by a key of the provider's JWKS (found by `kid`), with
 * `iss` equal to the configured issuer, the audience among `aud`, and `exp`/`nbf`/`iat` in range
 * (no leeway). Asymmetric algorithms only: an `HS*` or `none` token is refused.
 */
import {createPublicKey, constants, verify, type KeyObject, type VerifyKeyObjectInput} from 'node:crypto'

import {fetchJwks} from './discovery.js'

/** How long a fetched key set is used before it is read again (PyJWKClient's lifespan). */
const JWKS_LIFESPAN_MS = 300_000

const HASHES: Record<string, string> = {'256': 'sha256', '384': 'sha384', '512': 'sha512'}

export interface JwtCheck {
  issuer: string
  audience: string
  jwksUri: string
}

interface CachedKeys {
  at: number
  keys: Array<{kid?: string; key: KeyObject}>
}

/** Key sets by JWKS URL. */
const keySets = new Map<string, CachedKeys>()

function base64url(part: string): Buffer | null {
  return /^[A-Za-z0-9_-]*$/.test(part) ? Buffer.from(part, 'base64url') : null
}

function jsonPart(part: string): Record<string, unknown> | null {
  const bytes = base64url(part)
  if (!bytes) return null
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

async function loadKeys(jwksUri: string): Promise<CachedKeys> {
  const keys: CachedKeys['keys'] = []
  for (const jwk of await fetchJwks(jwksUri)) {
    if (jwk === null || typeof jwk !== 'object') continue
    const {kid, use} = jwk as {kid?: unknown; use?: unknown}
    if (use !== undefined && use !== 'sig') continue
    try {
      keys.push({kid: typeof kid === 'string' ? kid : undefined, key: createPublicKey({key: jwk as import('node:crypto').JsonWebKey, format: 'jwk'})})
    } catch {
      // A key type Node cannot import is not one a token can be checked with.
    }
  }
  const entry = {at: Date.now(), keys}
  keySets.set(jwksUri, entry)
  return entry
}

/** The key for a `kid`: from the cached set, else from a fresh one (keys rotate). */
async function signingKey(jwksUri: string, kid: string | undefined): Promise<KeyObject | null> {
  let set = keySets.get(jwksUri)
  const find = (s: CachedKeys) => s.keys.find((k) => k.kid === kid)?.key ?? null
  if (set && Date.now() - set.at < JWKS_LIFESPAN_MS) {
    const key = find(set)
    if (key) return key
  }
  set = await loadKeys(jwksUri)
  return find(set)
}

function verifyInput(alg: string, key: KeyObject): {hash: string | null; input: VerifyKeyObjectInput | KeyObject} | null {
  if (alg === 'EdDSA') return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? {hash: null, input: key} : null
  const m = /^(RS|PS|ES)(256|384|512)$/.exec(alg)
  if (!m) return null
  const hash = HASHES[m[2]]
  if (m[1] === 'ES') return key.asymmetricKeyType === 'ec' ? {hash, input: {key, dsaEncoding: 'ieee-p1363'}} : null
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') return null
  if (m[1] === 'PS') return {hash, input: {key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST}}
  return {hash, input: key}
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * The token's claims when it passes the check, or null (not a JWT, unknown key, bad signature,
 * wrong issuer or audience, expired, not yet valid). An unreachable JWKS endpoint throws.
 */
export async function verifyJwt(token: string, check: JwtCheck, now = Date.now() / 1000): Promise<Record<string, unknown> | null> {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const header = jsonPart(parts[0])
  const claims = jsonPart(parts[1])
  const signature = base64url(parts[2])
  if (!header || !claims || !signature) return null
  const alg = typeof header.alg === 'string' ? header.alg : ''
  const kid = typeof header.kid === 'string' ? header.kid : undefined
  if (!/^(RS|PS|ES)(256|384|512)$|^EdDSA$/.test(alg)) return null
  const key = await signingKey(check.jwksUri, kid)
  if (!key) return null
  const how = verifyInput(alg, key)
  if (!how) return null
  let valid: boolean
  try {
    valid = verify(how.hash, Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), how.input, signature)
  } catch {
    return null
  }
  if (!valid) return null
  if (claims.iss !== check.issuer) return null
  const aud = claims.aud
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : null
  if (!audiences || !audiences.includes(check.audience)) return null
  if ('exp' in claims && (!isNumber(claims.exp) || claims.exp <= now)) return null
  if ('nbf' in claims && (!isNumber(claims.nbf) || claims.nbf > now)) return null
  if ('iat' in claims && (!isNumber(claims.iat) || claims.iat > now)) return null
  return claims
}

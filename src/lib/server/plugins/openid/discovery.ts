/**
 * An OpenID Connect provider as Kinto talks to it: its discovery document (read once per issuer
 * and process, as upstream's fetch_openid_config), its userinfo endpoint, its token endpoint and
 * its JWKS. Every call goes through one small undici client with timeouts; tokens and secrets
 * never appear in the errors raised here.
 */
import {describeHttpError, HttpClient, type HttpResponse} from '../../../http.js'
import {KintoError} from '../../../errors.js'
import {packageVersion} from '../../../version.js'

/** The members of a discovery document Kinto uses (the rest is kept as received). */
export interface OpenIdConfiguration {
  issuer: string
  authorization_endpoint: string
  token_endpoint: string
  userinfo_endpoint: string
  jwks_uri?: string
  [key: string]: unknown
}

/** Seconds allowed for each call to a provider (connect, headers, body). */
export const PROVIDER_TIMEOUT_SECONDS = 10

let sharedClient: HttpClient | null = null

/**
 * The client every provider call uses, created on first use and shared by the process (undici
 * lets idle keep-alive sockets go: it never holds the process open).
 */
export function providerClient(): HttpClient {
  sharedClient ??= new HttpClient({
    timeoutMs: PROVIDER_TIMEOUT_SECONDS * 1000,
    maxBodyBytes: 1024 * 1024,
    // Same-host redirects only, and only where no token is sent (discovery, JWKS).
    maxRedirects: 3,
    userAgent: `kinto-ops/${packageVersion()}`,
  })
  return sharedClient
}

/** `<issuer>/.well-known/openid-configuration`, as upstream builds it. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
}

const configurations = new Map<string, Promise<OpenIdConfiguration>>()

/**
 * The issuer's discovery document, fetched once per process (a failed fetch is not remembered,
 * so a restart or the next start-up tries again). Throws a KintoError naming the URL.
 */
export function fetchOpenIdConfiguration(issuer: string): Promise<OpenIdConfiguration> {
  let pending = configurations.get(issuer)
  if (!pending) {
    pending = loadConfiguration(issuer)
    configurations.set(issuer, pending)
    pending.catch(() => configurations.delete(issuer))
  }
  return pending
}

async function loadConfiguration(issuer: string): Promise<OpenIdConfiguration> {
  const url = discoveryUrl(issuer)
  const fail = (why: string) =>
    new KintoError(`Cannot read the OpenID Connect discovery document ${url}: ${why}.`, {
      code: 'KINTO_OPENID_DISCOVERY',
      hint: 'Check the multiauth.policy.<name>.issuer setting and that the provider is reachable from this host.',
    })
  let res: HttpResponse
  try {
    res = await providerClient().request(url)
  } catch (err) {
    throw fail(describeHttpError(err))
  }
  if (res.status !== 200) throw fail(`the provider answered HTTP ${res.status}`)
  let doc: unknown
  try {
    doc = JSON.parse(res.body)
  } catch {
    throw fail('the response is not JSON')
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw fail('the response is not a JSON object')
  const config = doc as Record<string, unknown>
  const missing = ['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint'].filter((k) => typeof config[k] !== 'string')
  if (missing.length > 0) throw fail(`it has no ${missing.join(', ')}`)
  return config as OpenIdConfiguration
}

/**
 * The userinfo profile for an access token (upstream: a GET with `Authorization: Bearer`), or
 * null when the provider refuses the token. A provider that cannot be reached throws.
 */
export async function fetchUserInfo(config: OpenIdConfiguration, accessToken: string): Promise<Record<string, unknown> | null> {
  const res = await providerClient().request(config.userinfo_endpoint, {
    headers: {authorization: `Bearer ${accessToken}`},
    followRedirects: false,
  })
  if (res.status >= 500) throw new Error(`the userinfo endpoint answered HTTP ${res.status}`)
  if (res.status !== 200) return null
  try {
    const profile = JSON.parse(res.body) as unknown
    return profile !== null && typeof profile === 'object' && !Array.isArray(profile) ? (profile as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** The token endpoint's answer to an authorization-code exchange, as text (upstream forwards it as is). */
export async function exchangeCode(
  config: OpenIdConfiguration,
  form: {code: string; client_id: string; client_secret: string; redirect_uri: string},
): Promise<string> {
  const body = new URLSearchParams({...form, grant_type: 'authorization_code'}).toString()
  const res = await providerClient().request(config.token_endpoint, {
    method: 'POST',
    headers: {'content-type': 'application/x-www-form-urlencoded'},
    body,
  })
  return res.body
}

/** The provider's JSON Web Key Set. */
export async function fetchJwks(jwksUri: string): Promise<unknown[]> {
  const res = await providerClient().request(jwksUri)
  if (res.status !== 200) throw new Error(`the JWKS endpoint answered HTTP ${res.status}`)
  const doc = JSON.parse(res.body) as {keys?: unknown}
  if (!Array.isArray(doc.keys)) throw new Error('the JWKS document has no keys')
  return doc.keys
}

/**
 * upstream's kinto.plugins.openid.OpenIDConnectPolicy: `Authorization: <header_type> <token>`
 * checked with the provider (the JWT check first when an audience is set, then the userinfo
 * endpoint), the profile kept in the cache for `verification_ttl_seconds` under
 * `openid:verify:<HMAC(userid_hmac_secret, issuer:client_id:audience:token)>` (never the token),
 * the ttl renewed on every use. The user id is the profile's `userid_field` (default `sub`),
 * prefixed with the policy's name.
 */
import {asString, type Settings} from '../../../config/settings.js'
import {KintoError} from '../../../errors.js'
import {hmacDigest, type AuthenticationEnv, type AuthenticationPolicy} from '../../auth.js'
import type {Cache} from '../../../cache/types.js'
import {ERRNO, HttpError} from '../../errors.js'
import {describeHttpError} from '../../../http.js'
import {fetchOpenIdConfiguration, fetchUserInfo, type OpenIdConfiguration} from './discovery.js'
import {verifyJwt} from './jwt.js'
import {docsFile} from '../../../version.js'

export const OPENID_POLICY_CLASS = 'kinto.plugins.openid.OpenIDConnectPolicy'

const DEFAULT_VERIFICATION_TTL = 86400

/** What hello's `openid` capability says of a provider (upstream's providers_infos entry). */
export interface ProviderInfo {
  name: string
  issuer: string
  auth_path: string
  client_id: string
  audience: string
  header_type: string
  userinfo_endpoint: string
}

function option(options: Record<string, unknown>, key: string, fallback: string): string {
  const value = options[key]
  return typeof value === 'string' ? value.trim() : value === undefined || value === null ? fallback : String(value)
}

/** A provider that cannot be reached: a 503 unless another policy recognises the request. */
class ProviderUnreachable extends HttpError {}

/**
 * The verified profiles of a request, by its scope (the bound data a batch shares with its
 * sub-requests, as upstream's bound_data) and Authorization header.
 */
const scopedProfiles = new WeakMap<object, Map<string, Record<string, unknown>>>()

/** The profile an OpenID policy verified for this request's credentials, if one did. */
export function requestProfile(scope: object, headers: Record<string, string | undefined>): Record<string, unknown> | undefined {
  return scopedProfiles.get(scope)?.get(headers.authorization ?? '')
}

export class OpenIdConnectPolicy implements AuthenticationPolicy {
  /** The user-id prefix and `authn_type` (upstream: the configured name, lower-cased). */
  readonly name: string
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  readonly audience: string
  readonly headerType: string
  readonly useridField: string
  /** The realm of its 401 challenge (upstream's `realm` argument). */
  readonly realm: string
  readonly verificationTtl: number
  /** Filled by ready(): the capability's entry for this provider. */
  readonly info: ProviderInfo
  private config: OpenIdConfiguration | null = null

  constructor(
    /** The name as configured (`multiauth.policy.<configuredName>.*`, `/openid/<configuredName>/…`). */
    readonly configuredName: string,
    options: Record<string, unknown>,
  ) {
    this.name = configuredName.toLowerCase()
    const required = (key: string) => {
      const value = option(options, key, '')
      if (!value) {
        throw new KintoError(`The OpenID Connect policy '${configuredName}' has no multiauth.policy.${configuredName}.${key} setting.`, {
          code: 'KINTO_CONFIG_INVALID',
          hint: `Set multiauth.policy.${configuredName}.issuer and multiauth.policy.${configuredName}.client_id (see ${docsFile('auth.md')}).`,
        })
      }
      return value
    }
    this.issuer = required('issuer')
    this.clientId = required('client_id')
    this.clientSecret = option(options, 'client_secret', '')
    this.audience = option(options, 'audience', '')
    this.headerType = option(options, 'header_type', 'Bearer')
    this.useridField = option(options, 'userid_field', 'sub')
    this.realm = option(options, 'realm', 'Realm')
    const ttl = option(options, 'verification_ttl_seconds', String(DEFAULT_VERIFICATION_TTL))
    if (!/^\d+$/.test(ttl)) {
      throw new KintoError(`multiauth.policy.${configuredName}.verification_ttl_seconds must be a whole number of seconds, not '${ttl}'.`, {
        code: 'KINTO_CONFIG_INVALID',
      })
    }
    this.verificationTtl = Number(ttl)
    this.info = {
      name: configuredName,
      issuer: this.issuer,
      auth_path: `/openid/${configuredName}/login`,
      client_id: this.clientId,
      audience: this.audience,
      header_type: this.headerType,
      userinfo_endpoint: '',
    }
  }

  /** Reads the discovery document (at start-up: a provider that cannot be read stops the start). */
  async ready(): Promise<OpenIdConfiguration> {
    if (!this.config) {
      const config = await fetchOpenIdConfiguration(this.issuer)
      this.config = config
      this.info.issuer = config.issuer
      this.info.userinfo_endpoint = config.userinfo_endpoint
    }
    return this.config
  }

  /** The access token of a request for this policy, or null. */
  accessToken(headers: Record<string, string | undefined>): string | null {
    const authorization = headers.authorization ?? ''
    const space = authorization.indexOf(' ')
    if (space < 0) return null
    if (authorization.slice(0, space).toLowerCase() !== this.headerType.toLowerCase()) return null
    const token = authorization.slice(space + 1)
    return token === '' ? null : token
  }

  cacheKey(settings: Settings, accessToken: string): string {
    const secret = asString(settings, 'userid_hmac_secret') ?? ''
    return `openid:verify:${hmacDigest(secret, `${this.issuer}:${this.clientId}:${this.audience}:${accessToken}`)}`
  }

  async authenticate(headers: Record<string, string | undefined>, env: AuthenticationEnv): Promise<string | null> {
    const profile = await this.profile(headers, env.settings, env.cache)
    const id = profile?.[this.useridField]
    if (id === undefined || id === null || id === '') return null
    // upstream's request.bound_data["user_profile"]: what hello shows as `user.profile`.
    let profiles = scopedProfiles.get(env.scope)
    if (!profiles) scopedProfiles.set(env.scope, (profiles = new Map()))
    profiles.set(headers.authorization ?? '', profile!)
    return typeof id === 'string' ? id : JSON.stringify(id)
  }

  /**
   * The verified profile of the request's token (from the cache, else from the provider), or
   * null. The cache entry's ttl is renewed, as upstream does on every request.
   */
  async profile(headers: Record<string, string | undefined>, settings: Settings, cache: Cache): Promise<Record<string, unknown> | null> {
    const token = this.accessToken(headers)
    if (token === null) return null
    const key = this.cacheKey(settings, token)
    let profile = await cache.get<Record<string, unknown>>(key)
    if (profile === undefined || profile === null) {
      profile = (await this.verify(token)) ?? undefined
      if (!profile) return null
    }
    await cache.set(key, profile, this.verificationTtl)
    return profile
  }

  /** upstream's _verify_token: the JWT check when an audience is set, then userinfo. */
  private async verify(token: string): Promise<Record<string, unknown> | null> {
    try {
      const config = await this.ready()
      if (this.audience !== '') {
        if (typeof config.jwks_uri !== 'string') return null
        const claims = await verifyJwt(token, {issuer: this.issuer, audience: this.audience, jwksUri: config.jwks_uri})
        if (!claims) return null
      }
      return await fetchUserInfo(config, token)
    } catch (err) {
      // The provider is down or slow: not the caller's fault, and not a reason to drop their token.
      // A 503 like a backend's: the runtime adds Retry-After (retry_after_seconds).
      throw new ProviderUnreachable(503, {
        errno: ERRNO.BACKEND,
        message: `The OpenID Connect provider ${this.issuer} cannot be reached (${describeHttpError(err)}); please retry later.`,
      })
    }
  }

  /** Its provider could not be asked: the token may be another provider's, so the next policies are tried. */
  isOutage(err: unknown): boolean {
    return err instanceof ProviderUnreachable
  }

  /**
   * Each provider in /__api__, as upstream: an OAuth2 method named as configured, with its
   * authorization endpoint; and what Swagger 2.0 requires of one, which upstream omits (its flow,
   * the authorization code one the login endpoint runs, its token endpoint and its scopes).
   */
  securityDefinition(): {name: string; definition: Record<string, unknown>} {
    const config = this.config
    return {
      name: this.configuredName,
      definition: {type: 'oauth2', flow: 'accessCode', authorizationUrl: config?.authorization_endpoint ?? '', tokenUrl: config?.token_endpoint ?? '', scopes: {}},
    }
  }

  challenge(): Record<string, string> {
    return {'WWW-Authenticate': `${this.headerType} realm="${this.realm}"`}
  }
}

/** The policy factory registered for `multiauth.policy.<n>.use = kinto.plugins.openid.OpenIDConnectPolicy`. */
export function openIdPolicy(name: string, options: Record<string, unknown>): OpenIdConnectPolicy {
  return new OpenIdConnectPolicy(name, options)
}

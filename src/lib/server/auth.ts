/**
 * Authentication: the `multiauth.policies` list, tried in order; the first
 * policy that recognises the request gives the user id, prefixed with the policy name
 * (`basicauth:<hmac>`). Plugins register more policies (accounts, openid…) by their dotted
 * `multiauth.policy.<name>.use` value.
 */
import {createHmac} from 'node:crypto'

import {KintoError} from '../errors.js'
import {asList, asString, type Settings} from '../config/settings.js'
import type {Cache} from '../cache/types.js'
import type {Permission} from '../permission/types.js'
import type {Storage} from '../storage/types.js'
import type {RuntimeHooks} from './hooks.js'

/** What a policy may use while authenticating (the request's transaction-bound backends). */
export interface AuthenticationEnv {
  settings: Settings
  storage: Storage
  permission: Permission
  cache: Cache
  /** Where each policy's authenticate() duration is reported (the authentication hook). */
  hooks?: RuntimeHooks
  /**
   * The request's bound data (shared by a batch and its sub-requests): what a policy learns of the
   * request (an OpenID profile) is kept under it, so a sub-request that reuses an identity finds it.
   */
  scope: object
}

export interface AuthenticationPolicy {
  /** Prefix of the user ids it gives (`basicauth`, `account`). */
  readonly name: string
  /** The un-prefixed user id, or null when the request is not for this policy. */
  authenticate(headers: Record<string, string | undefined>, env: AuthenticationEnv): Promise<string | null>
  /** Headers for a 401 (WWW-Authenticate). */
  challenge?(): Record<string, string>
  /**
   * Whether these credentials depend on what a write of the same batch made (the account an
   * earlier sub-request creates or gives a new password). A batch authenticates its sub-requests
   * before its transaction opens; such a one is authenticated at its turn instead, inside the
   * transaction, where that write is seen (as upstream authenticates every sub-request).
   */
  readsBatchWrites?(headers: Record<string, string | undefined>, earlier: readonly BatchWrite[]): boolean
  /**
   * True for an error of authenticate() meaning the policy could not check the credentials (its
   * OpenID provider is down): the next policies are still tried, and the error is raised only
   * when none of them recognises the request.
   */
  isOutage?(err: unknown): boolean
  /** The policy's entry in `/__api__`'s securityDefinitions, when it exposes one of its own. */
  securityDefinition?(): {name: string; definition: Record<string, unknown>}
  /**
   * Start-up work before the first request (an OpenID provider's discovery document). The app
   * runs it when it gets ready (listen, inject); a rejection stops the start.
   */
  ready?(): Promise<unknown>
}

/** A write sub-request of a batch, as its spec gives it (path without the host, maybe with /v1). */
export interface BatchWrite {
  method: string
  path: string
  body?: Record<string, unknown>
}

export type PolicyFactory = (name: string, options: Record<string, unknown>, settings: Settings) => AuthenticationPolicy

export function hmacDigest(secret: string, message: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(message, 'utf8').digest('hex')
}

// ignoreBOM keeps a leading U+FEFF in the name, as Python's decoder: \ufeffbob is not bob.
const strictUtf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

/** `Authorization: Basic …` credentials, or null (malformed headers are simply not credentials). */
export function basicCredentials(header: string | undefined): {username: string; password: string} | null {
  if (!header) return null
  const m = /^\s*basic\s+(\S+)\s*$/i.exec(header)
  if (!m) return null
  const encoded = m[1]
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 === 1) return null
  const bytes = Buffer.from(encoded, 'base64')
  let decoded: string
  try {
    decoded = strictUtf8.decode(bytes)
  } catch {
    decoded = bytes.toString('latin1')
  }
  const colon = decoded.indexOf(':')
  if (colon < 0) return null
  return {username: decoded.slice(0, colon), password: decoded.slice(colon + 1)}
}

/**
 * Authorization headers whose basicauth id a policy remembers, at most: a client sends the same
 * header with every request, and its HMAC (~3 µs) was a few per cent of a GET's CPU. Past the
 * bound the memory is emptied (no LRU bookkeeping per request).
 */
export const BASIC_IDS_REMEMBERED = 1024
/** Longer headers are not remembered (the memory stays under ~0.5 MB per policy). */
const REMEMBERED_HEADER_LENGTH = 512

/** upstream's BasicAuthAuthenticationPolicy: any credentials; the id is their HMAC. */
export function basicAuthPolicy(name = 'basicauth'): AuthenticationPolicy {
  // header -> its id under `secret` (null: not credentials); the secret may change on reload.
  let remembered = new Map<string, string | null>()
  let rememberedSecret: string | undefined
  return {
    name,
    async authenticate(headers, env) {
      const header = headers.authorization
      if (!header) return null
      const secret = asString(env.settings, 'userid_hmac_secret') ?? ''
      if (secret !== rememberedSecret || remembered.size >= BASIC_IDS_REMEMBERED) {
        remembered = new Map()
        rememberedSecret = secret
      }
      const known = remembered.get(header)
      if (known !== undefined) return known
      const credentials = basicCredentials(header)
      const id = !credentials || !credentials.username ? null : hmacDigest(secret, `${credentials.username}:${credentials.password}`)
      if (header.length <= REMEMBERED_HEADER_LENGTH) remembered.set(header, id)
      return id
    },
    challenge: () => ({'WWW-Authenticate': 'Basic realm="Realm"'}),
  }
}

const POLICY_FACTORIES = new Map<string, PolicyFactory>([
  ['kinto.core.authentication.BasicAuthAuthenticationPolicy', (name) => basicAuthPolicy(name.toLowerCase())],
  ['pyramid.authentication.BasicAuthAuthenticationPolicy', (name) => basicAuthPolicy(name.toLowerCase())],
])

/** Plugins register their policy classes by the dotted name used in `multiauth.policy.<n>.use`. */
export function registerAuthenticationPolicy(dottedName: string, factory: PolicyFactory): void {
  POLICY_FACTORIES.set(dottedName, factory)
}

/** A configured policy before it is built: its name, its class's factory and its other settings. */
export interface PolicyDefinition {
  name: string
  factory: PolicyFactory
  options: Record<string, unknown>
}

/**
 * The configured policies, in order, resolved to their factories but not built (`kinto check`
 * runs this: it throws the KintoError the start would for a policy kinto-ops does not know).
 * An empty `multiauth.policies` means `basicauth` (so a default configuration accepts Basic
 * Auth users, as the reference checks expect).
 */
/** The `multiauth.policy.<name>.*` settings of one policy, by their last part (`use`, `issuer`…). */
export function policyOptions(settings: Settings, name: string): Record<string, unknown> {
  const prefix = `multiauth.policy.${name}.`
  const options: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(settings)) {
    if (key.startsWith(prefix)) options[key.slice(prefix.length)] = value
  }
  return options
}

export function policyDefinitions(settings: Settings): PolicyDefinition[] {
  let names = asList(settings, 'multiauth.policies')
  if (names.length === 0) names = ['basicauth']
  return names.map((name) => {
    const options = policyOptions(settings, name)
    const use = typeof options.use === 'string' ? options.use : undefined
    // Pyramid resolves `package.module:Class` as it does `package.module.Class`.
    const factory = use ? POLICY_FACTORIES.get(use.trim().replace(':', '.')) : name === 'basicauth' ? POLICY_FACTORIES.get('kinto.core.authentication.BasicAuthAuthenticationPolicy') : undefined
    if (!factory) {
      throw new KintoError(
        use
          ? `Unknown authentication policy '${use}' for '${name}' (setting multiauth.policy.${name}.use).`
          : `Authentication policy '${name}' in multiauth.policies has no multiauth.policy.${name}.use setting.`,
        {
          code: 'KINTO_CONFIG_INVALID',
          hint: `Known policies: ${[...POLICY_FACTORIES.keys()].join(', ')}. Plugin policies need their plugin in kinto.includes.`,
        },
      )
    }
    delete options.use
    return {name, factory, options}
  })
}

/** Upstream's classes for the pyramid_multiauth hooks kinto-ops implements itself. */
const BUILTIN_HOOKS: Record<string, string[]> = {
  'multiauth.authorization_policy': ['kinto.authorization.AuthorizationPolicy', 'kinto.core.authorization.AuthorizationPolicy'],
  'multiauth.groupfinder': ['kinto.core.authorization.groupfinder'],
}

/**
 * Refuses a custom authorization policy or group finder: kinto-ops checks permissions and finds
 * groups as upstream's own classes do and cannot load another, and serving without it would grant
 * what the custom class refuses (or the reverse).
 */
export function checkAuthorizationHooks(settings: Settings): void {
  for (const [key, builtin] of Object.entries(BUILTIN_HOOKS)) {
    const value = asString(settings, key)?.trim()
    if (!value || builtin.includes(value)) continue
    throw new KintoError(`${key} = ${value}: kinto-ops uses upstream's own ${builtin[0]} and cannot load another.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: `Remove ${key} to serve with upstream's default, or keep serving this ini with upstream Kinto.`,
    })
  }
}

/** The configured policies, in order, built. */
export function policiesFromSettings(settings: Settings): AuthenticationPolicy[] {
  return policyDefinitions(settings).map(({name, factory, options}) => factory(name, options, settings))
}

export interface Identity {
  /** `basicauth:<hmac>`, or null when anonymous. */
  userId: string | null
  authnType: string | null
  /** The prefixed user id first, then system.Everyone, system.Authenticated and groups. */
  principals: string[]
}

export const ANONYMOUS: Identity = Object.freeze({userId: null, authnType: null, principals: ['system.Everyone']}) as Identity

/** Runs the policies: the first that recognises the request gives the (prefixed) user id. */
export async function authenticate(
  policies: AuthenticationPolicy[],
  headers: Record<string, string | undefined>,
  env: AuthenticationEnv,
): Promise<{userId: string; authnType: string} | null> {
  const hooks = env.hooks?.has('authentication') ? env.hooks : undefined
  let outage: unknown
  for (const policy of policies) {
    const started = hooks ? performance.now() : 0
    let id: string | null
    try {
      id = await policy.authenticate(headers, env)
    } catch (err) {
      // One provider down must not lock out the users of the others.
      if (!policy.isOutage?.(err)) throw err
      outage ??= err
      continue
    } finally {
      hooks?.emit('authentication', {policy: policy.name, elapsedMs: performance.now() - started})
    }
    if (id === null || id === undefined) continue
    return {userId: `${policy.name}:${id}`, authnType: policy.name}
  }
  if (outage !== undefined) throw outage
  return null
}

/** The identity of an authenticated user with their group principals (null: anonymous). */
export function identityFor(user: {userId: string; authnType: string} | null, groups: Iterable<string>): Identity {
  if (!user) return ANONYMOUS
  const principals = [user.userId, 'system.Everyone', 'system.Authenticated']
  for (const g of groups) if (!principals.includes(g)) principals.push(g)
  return {userId: user.userId, authnType: user.authnType, principals}
}

/** Runs the policies and, for a user, adds group principals from the permission backend. */
export async function identify(
  policies: AuthenticationPolicy[],
  headers: Record<string, string | undefined>,
  env: AuthenticationEnv,
): Promise<Identity> {
  const user = await authenticate(policies, headers, env)
  if (!user) return ANONYMOUS
  return identityFor(user, await env.permission.getUserPrincipals(user.userId))
}

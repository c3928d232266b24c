/**
 * kinto.plugins.openid (upstream's plugin): the `openid` capability listing the configured
 * providers, `user.profile` in hello, and the login dance:
 * - `GET /openid/<provider>/login?callback=<url>&scope=<scopes>[&prompt=none]` keeps the callback in
 *   the cache under a random state and redirects (307) to the provider's authorization endpoint;
 * - `GET /openid/<provider>/token?code=…&state=…` takes the state back (once), trades the code at
 *   the provider's token endpoint and redirects (307) to the callback followed by the provider's
 *   answer, base64-encoded.
 * The policy itself (./policy.ts) works with or without this plugin, as upstream.
 */
import {randomBytes} from 'node:crypto'

import {asString, type Settings} from '../../../config/settings.js'
import {describeHttpError} from '../../../http.js'
import {registerAuthenticationPolicy} from '../../auth.js'
import type {RequestContext} from '../../context.js'
import {ERRNO, invalidParameters, serviceUnavailable, type ValidationIssue} from '../../errors.js'
import {redirect, urlOrigin} from '../../headers.js'
import type {Service, ViewDef} from '../../router.js'
import type {KintoPlugin} from '../index.js'
import {exchangeCode, fetchOpenIdConfiguration} from './discovery.js'
import {OPENID_POLICY_CLASS, OpenIdConnectPolicy, openIdPolicy, requestProfile} from './policy.js'

registerAuthenticationPolicy(OPENID_POLICY_CLASS, openIdPolicy)

const DEFAULT_STATE_TTL_SECONDS = 3600
const DEFAULT_STATE_LENGTH = 32

/**
 * colander.url, which upstream's `callback` must match (scheme optional; a domain, localhost,
 * an IPv6 or IPv4 address; optional port; then nothing, `/` or a path/query without spaces).
 */
const URL_PATTERN =
  /^((?:http|ftp)s?:\/\/)?(?:(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+(?:[A-Z]{2,6}\.?|[A-Z0-9-]{2,}\.?)|localhost|\[[a-f0-9:]+\]|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?::\d+)?(?:\/?|[/?]\S+)$/i

/** The configured name of an OpenID policy (upstream: its `use` ends with OpenIDConnectPolicy). */
function isOpenIdProvider(settings: Settings, name: string): boolean {
  return (asString(settings, `multiauth.policy.${name}.use`) ?? '').endsWith('OpenIDConnectPolicy')
}

function queryValue(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.query.get(name)
  // webob's request.GET[name]: the last of repeated values.
  return Array.isArray(value) ? value[value.length - 1] : value
}

/** A colander String: missing or empty is "Required". */
function required(ctx: RequestContext, name: string, issues: ValidationIssue[]): string {
  const value = queryValue(ctx, name)
  if (value === undefined || value === '') {
    issues.push({location: 'querystring', name, description: 'Required'})
    return ''
  }
  return value
}

function providerIssue(ctx: RequestContext, issues: ValidationIssue[]): void {
  const provider = ctx.params.provider
  if (!isOpenIdProvider(ctx.settings, provider)) {
    issues.push({location: 'path', name: 'provider', description: `Unknown provider '${provider.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`})
  }
}

/** The policy object serving a provider name (null when the name is not in multiauth.policies). */
function policyFor(ctx: RequestContext, provider: string): OpenIdConnectPolicy | null {
  for (const policy of ctx.runtime.policies) {
    if (policy instanceof OpenIdConnectPolicy && policy.configuredName === provider) return policy
  }
  return null
}

function providerSettings(ctx: RequestContext, provider: string): {issuer: string; clientId: string; clientSecret: string; audience: string} {
  const policy = policyFor(ctx, provider)
  if (policy) return {issuer: policy.issuer, clientId: policy.clientId, clientSecret: policy.clientSecret, audience: policy.audience}
  // A provider configured but not listed in multiauth.policies: upstream serves it from the settings.
  const get = (key: string) => (asString(ctx.settings, `multiauth.policy.${provider}.${key}`) ?? '').trim()
  return {issuer: get('issuer'), clientId: get('client_id'), clientSecret: get('client_secret'), audience: get('audience')}
}

async function providerConfiguration(ctx: RequestContext, issuer: string) {
  try {
    return await fetchOpenIdConfiguration(issuer)
  } catch (err) {
    throw serviceUnavailable(ctx.runtime.retryAfter, `${(err as Error).message} Please retry later.`)
  }
}

function tokenUrl(ctx: RequestContext, provider: string): string {
  return ctx.absoluteUrl(`/openid/${encodeURIComponent(provider)}/token`)
}

/** Python's urllib.parse.quote (safe `/`) over base64 text: `+` and `=` escaped, `/` kept. */
function quoteBase64(text: string): string {
  return text.replace(/\+/g, '%2B').replace(/=/g, '%3D')
}

/**
 * The callback as a Location header can carry it: what is not printable ASCII (`é`, `€`, a control
 * character) percent-encoded as UTF-8, as a browser sends such a URL. Node refuses those characters
 * in a header (a 500 after the user signed in, the state already spent).
 */
function headerSafeUrl(url: string): string {
  return url.replace(/[^\x21-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''))
}

/**
 * The authorization endpoint with the login parameters added to its query. Upstream writes
 * `<endpoint>?<params>`, which breaks an endpoint that has a query of its own (Azure AD B2C's
 * `…/authorize?p=<policy>`): the provider then reads `p=<policy>?client_id=…` and no client id.
 */
function withQuery(endpoint: string, params: URLSearchParams): string {
  if (!endpoint.includes('?')) return `${endpoint}?${params.toString()}`
  return `${endpoint}${/[?&]$/.test(endpoint) ? '' : '&'}${params.toString()}`
}

function positiveInt(ctx: RequestContext, key: string, fallback: number): number {
  const raw = (asString(ctx.settings, key) ?? '').trim()
  return /^\d+$/.test(raw) ? Number(raw) : fallback
}

/**
 * Whether the tokens may be sent to this callback. Upstream sends them to any: a crafted login
 * link (`callback=https://elsewhere/`) hands the signed-in user's tokens to another site. With
 * kinto.cors_origins restricted (no `*`), the callback must be on this server's origin (the admin
 * console) or on an origin cors_origins allows: a page of any other origin could not call the API
 * with the tokens (its browser refuses it), only carry them away. With `*`, the default, any
 * callback, as upstream. The origin is the one a browser goes to: the callback read against this
 * request's URL (`//elsewhere/…` is elsewhere, `elsewhere/…` a path here).
 */
function callbackAllowed(ctx: RequestContext, callback: string): boolean {
  const cors = ctx.runtime.cors
  if (cors.hasWildcard) return true
  const here = urlOrigin(ctx.req)
  let origin: string
  try {
    origin = new URL(callback, `${here}${ctx.req.path}`).origin
  } catch {
    return false
  }
  return origin === here || cors.matches(origin)
}

const loginView: ViewDef = {
  method: 'GET',
  permission: 'public',
  async handler(ctx) {
    const provider = ctx.params.provider
    const issues: ValidationIssue[] = []
    const rawCallback = required(ctx, 'callback', issues)
    const callback = rawCallback.trim()
    const scope = required(ctx, 'scope', issues)
    const prompt = queryValue(ctx, 'prompt')
    if (rawCallback !== '') {
      if (callback === '') issues.push({location: 'querystring', name: 'callback', description: 'Shorter than minimum length 1'})
      else if (callback.length > 2048) issues.push({location: 'querystring', name: 'callback', description: 'Longer than maximum length 2048'})
      else if (!URL_PATTERN.test(callback)) issues.push({location: 'querystring', name: 'callback', description: 'Must be a URL'})
    }
    // colander.Regex("none") matches at the start of the value, as re.match does.
    if (prompt !== undefined && prompt !== '' && !prompt.startsWith('none')) {
      issues.push({location: 'querystring', name: 'prompt', description: 'String does not match expected pattern'})
    }
    providerIssue(ctx, issues)
    if (issues.length === 0 && !callbackAllowed(ctx, callback)) {
      issues.push({location: 'querystring', name: 'callback', description: 'Not on an origin allowed by kinto.cors_origins'})
    }
    if (issues.length > 0) throw invalidParameters(issues)

    const prefix = `multiauth.policy.${provider}.`
    const {issuer, clientId, audience} = providerSettings(ctx, provider)
    if (asString(ctx.settings, `${prefix}userid_field`) === 'email' && !scope.includes('email')) {
      throw invalidParameters({location: 'body', name: 'scope', description: `Provider ${provider} requires 'email' scope`})
    }
    const config = await providerConfiguration(ctx, issuer)
    const stateTtl = positiveInt(ctx, `${prefix}state_ttl_seconds`, DEFAULT_STATE_TTL_SECONDS)
    const stateLength = positiveInt(ctx, `${prefix}state_length`, DEFAULT_STATE_LENGTH)
    const state = randomBytes(stateLength).toString('hex')
    await ctx.runtime.backends.cache.set(`openid:state:${state}`, callback, stateTtl)

    const params = new URLSearchParams({client_id: clientId, response_type: 'code', scope, redirect_uri: tokenUrl(ctx, provider), state})
    if (prompt) params.set('prompt', prompt)
    if (audience !== '') params.set('audience', audience)
    return redirect(ctx.req, withQuery(config.authorization_endpoint, params), -1)
  },
}

const tokenView: ViewDef = {
  method: 'GET',
  permission: 'public',
  async handler(ctx) {
    const provider = ctx.params.provider
    const issues: ValidationIssue[] = []
    const code = required(ctx, 'code', issues)
    const state = required(ctx, 'state', issues)
    providerIssue(ctx, issues)
    if (issues.length > 0) throw invalidParameters(issues)

    const {issuer, clientId, clientSecret} = providerSettings(ctx, provider)
    const config = await providerConfiguration(ctx, issuer)
    // A state is used once.
    const callback = await ctx.runtime.backends.cache.delete<string>(`openid:state:${state}`)
    if (callback === undefined || callback === null) {
      // Upstream's answer: errno 105 in the detail only, errno 107 for the answer.
      throw invalidParameters({location: 'body', name: 'state', description: 'Invalid state', errno: ERRNO.INVALID_AUTH_TOKEN})
    }
    let answer: string
    try {
      answer = await exchangeCode(config, {code, client_id: clientId, client_secret: clientSecret, redirect_uri: tokenUrl(ctx, provider)})
    } catch (err) {
      throw serviceUnavailable(ctx.runtime.retryAfter, `The OpenID Connect provider ${issuer} cannot be reached (${describeHttpError(err)}); please retry later.`)
    }
    // The provider's answer (tokens, or its error) goes to the client in the callback URL.
    const encoded = Buffer.from(answer, 'utf8').toString('base64')
    return redirect(ctx.req, `${headerSafeUrl(String(callback))}${quoteBase64(encoded)}`, -1)
  },
}

function openidServices(): Service[] {
  return [
    {
      name: 'openid_login',
      pattern: '/openid/{provider}/login',
      views: new Map([['GET', loginView]]),
      noTransaction: true,
      openapi: {
        query: [
          {name: 'callback', type: 'string', format: 'uri', required: true},
          {name: 'scope', type: 'string', required: true},
          {name: 'prompt', type: 'string', enum: ['none'], required: false},
        ],
        responses: {'307': "To the provider's sign-in page.", '400': 'The request is invalid.'},
      },
    },
    {
      name: 'openid_token',
      pattern: '/openid/{provider}/token',
      views: new Map([['GET', tokenView]]),
      noTransaction: true,
      openapi: {
        query: [
          {name: 'code', type: 'string', required: true},
          {name: 'state', type: 'string', required: true},
        ],
      },
    },
  ]
}

export const openidPlugin: KintoPlugin = {
  name: 'kinto.plugins.openid',
  includeme(api) {
    for (const service of openidServices()) api.addService(service)
    const policies = api.runtime.policies.filter((p): p is OpenIdConnectPolicy => p instanceof OpenIdConnectPolicy)
    // As upstream: no capability (and no profile) without an OpenID policy in multiauth.policies.
    if (policies.length === 0) return
    api.runtime.addCapability('openid', {
      description: 'OpenID connect support.',
      url: 'http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html',
      // Each entry gets the issuer's `issuer` and `userinfo_endpoint` when its policy is ready (start-up).
      providers: policies.map((p) => p.info),
    })
    api.addUserInfo(async (ctx, info) => {
      info.profile = requestProfile(ctx.bound, ctx.req.headers) ?? {}
    })
  },
}

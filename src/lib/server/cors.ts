/**
 * CORS as upstream's services do it: `cors_origins` glob patterns, the
 * exposed headers per method, and the preflight answer.
 */
import {asInt, asList, type Settings} from '../config/settings.js'
import {ERRNO, type HttpError, invalid, invalidParameters, isHttpError, type ValidationIssue} from './errors.js'
import {allowedMethods, type Service, type ViewDef} from './router.js'
import type {KintoRequest, KintoResponse} from './types.js'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Exposed on every response (upstream's Service.default_cors_headers). */
export const DEFAULT_EXPOSED_HEADERS = ['Backoff', 'Retry-After', 'Alert', 'Content-Length', 'Content-Type']

/** fnmatch-style glob (`*`, `?`, `[...]`), case-sensitive, whole string. */
export function globToRegExp(pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*') re += '[\\s\\S]*'
    else if (c === '?') re += '[\\s\\S]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) {
        re += '\\['
        continue
      }
      let body = pattern.slice(i + 1, end)
      let negate = false
      if (body.startsWith('!')) {
        negate = true
        body = body.slice(1)
      }
      body = body.replace(/[\\\]^]/g, '\\$&')
      re += `[${negate ? '^' : ''}${body}]`
      i = end
    } else re += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

export class CorsPolicy {
  private readonly patterns: RegExp[]
  readonly hasWildcard: boolean
  /** Whether answers depend on the request's Origin: origins are allowed, and not all of them. */
  readonly variesOnOrigin: boolean
  /**
   * False when `cors_origins` is empty: as upstream's services then, no Origin is checked, no
   * preflight answered (OPTIONS is a 405) and no CORS header sent.
   */
  readonly enabled: boolean

  constructor(
    readonly origins: string[],
    readonly maxAgeSeconds: number | null,
  ) {
    this.patterns = origins.map(globToRegExp)
    this.hasWildcard = origins.includes('*')
    this.variesOnOrigin = origins.length > 0 && !this.hasWildcard
    this.enabled = origins.length > 0
  }

  matches(origin: string): boolean {
    return this.patterns.some((p) => p.test(origin))
  }

  /** The 400's detail for a request whose Origin is not allowed; null when it has none or is. */
  refusal(req: KintoRequest): ValidationIssue | null {
    const origin = req.headers.origin
    if (!origin || !this.enabled || this.matches(origin)) return null
    return {location: 'header', name: 'Origin', description: `${origin} not allowed`}
  }

  /** Refuses (400) a request whose Origin is not allowed. */
  checkOrigin(req: KintoRequest): void {
    const refusal = this.refusal(req)
    if (refusal) throw invalidParameters(refusal)
  }

  /**
   * Adds `Vary: Origin` when answers depend on the Origin (its Allow-Origin, or none), which a
   * cache must know not to give one origin's answer to another. Upstream omits it.
   */
  addVary(headers: Record<string, string>): void {
    if (this.variesOnOrigin && !/\bOrigin\b/.test(headers.Vary ?? '')) headers.Vary = headers.Vary ? `${headers.Vary}, Origin` : 'Origin'
  }

  /** Access-Control-Allow-Origin value for an allowed origin. */
  allowOrigin(origin: string): string {
    return this.hasWildcard ? '*' : origin
  }

  /** For responses outside of any service (404s, redirects): exact or `*` match only. */
  allowOriginOutsideServices(origin: string): string | null {
    if (this.origins.includes('*')) return '*'
    if (this.origins.includes(origin)) return origin
    return null
  }
}

/**
 * The 400 of a request from a refused Origin, once its view is set up: upstream's CORS validator
 * only notes the refusal and the view's request schema is still validated, so the answer lists
 * every invalid parameter with it (sorted by name, as any 400).
 */
export function originRefused(refusal: ValidationIssue, validate: () => unknown): HttpError {
  try {
    validate()
  } catch (err) {
    if (isHttpError(err) && err.status === 400 && err.errno === ERRNO.INVALID_PARAMETERS && Array.isArray(err.details)) {
      return invalidParameters([refusal, ...(err.details as ValidationIssue[])])
    }
  }
  return invalidParameters(refusal)
}

/** The CORS policy of `cors_origins` and `cors_max_age_seconds`. */
export function corsPolicyFrom(settings: Settings): CorsPolicy {
  const maxAge = asInt(settings, 'cors_max_age_seconds', null)
  return new CorsPolicy(asList(settings, 'cors_origins'), maxAge || null)
}

/** The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method) on a service. */
export function preflight(req: KintoRequest, service: Service, cors: CorsPolicy, readonly: boolean): KintoResponse {
  const origin = req.headers.origin
  const requestedMethod = req.headers['access-control-request-method']
  // Upstream checks a given Origin first (its CORS validator), and stops there when refused.
  if (origin && !cors.matches(origin)) throw invalid('header', 'Origin', `${origin} not allowed`)
  const issues = []
  if (!origin) issues.push({location: 'header', name: 'Origin', description: 'this header is mandatory'})
  if (!requestedMethod) {
    issues.push({location: 'header', name: 'Access-Control-Request-Method', description: 'this header is mandatory'})
  }
  if (issues.length > 0) throw invalidParameters(issues)
  // Write views stay registered so that readonly can be switched off live; preflights hide them.
  const methods = allowedMethods(service).filter((m) => !readonly || READ_METHODS.has(m))
  if (!methods.includes(requestedMethod!)) {
    throw invalid('header', 'Access-Control-Request-Method', 'Method not allowed')
  }
  const requestedHeaders = (req.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
  const supported = new Set<string>()
  for (const view of service.views.values()) for (const h of exposedHeaders(view)) supported.add(h)
  for (const h of requestedHeaders) supported.add(h)
  const headers: Record<string, string> = {
    'Access-Control-Allow-Headers': [...supported].join(','),
    'Access-Control-Allow-Methods': methods.join(','),
  }
  if (cors.maxAgeSeconds !== null) headers['Access-Control-Max-Age'] = String(cors.maxAgeSeconds)
  // Upstream's preflight view renders None: the JSON `null`.
  return {status: 200, headers, body: null}
}

/** The headers exposed to browsers on responses of a view. */
export function exposedHeaders(view: ViewDef): string[] {
  return [...DEFAULT_EXPOSED_HEADERS, ...(view.corsHeaders ?? [])]
}

const exposedValues = new WeakMap<ViewDef, {of: string[] | undefined; value: string}>()
const DEFAULT_EXPOSED_VALUE = DEFAULT_EXPOSED_HEADERS.join(', ')

/**
 * The Access-Control-Expose-Headers value of a view's answers (no view: the default headers),
 * joined once per view and list of headers instead of on every response.
 */
export function exposedHeadersValue(view: ViewDef | undefined): string {
  if (!view) return DEFAULT_EXPOSED_VALUE
  const known = exposedValues.get(view)
  if (known && known.of === view.corsHeaders) return known.value
  const value = exposedHeaders(view).join(', ')
  exposedValues.set(view, {of: view.corsHeaders, value})
  return value
}

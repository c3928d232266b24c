/**
 * CORS as upstream's services do it (kinto-reference §4.9): `cors_origins` glob patterns, the
 * exposed headers per method, and the preflight answer.
 */

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

  constructor(
    readonly origins: string[],
    readonly maxAgeSeconds: number | null,
  ) {
    this.patterns = origins.map(globToRegExp)
    this.hasWildcard = origins.includes('*')
  }

  matches(origin: string): boolean {
    return this.patterns.some((p) => p.test(origin))
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

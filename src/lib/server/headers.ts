/** Response header helpers shared by the runtime and the resources. */
import {stringifyJson} from '../json.js'
import {PeriodText, pad} from '../time-text.js'
import {RawBody, type KintoRequest, type KintoResponse} from './types.js'

/**
 * `scheme://host` of the absolute URLs the API builds (hello's url, Next-Page, Location), without
 * the scheme's default port, as upstream's web framework (webob) writes them: a request with
 * `Host: kinto.example.com:443` (or `kinto.http_host = kinto.example.com:443`) over https gets
 * `https://kinto.example.com/v1/`.
 */
export function urlOrigin(req: Pick<KintoRequest, 'scheme' | 'host'>): string {
  const defaultPort = req.scheme === 'https' ? ':443' : req.scheme === 'http' ? ':80' : ''
  const host = defaultPort && req.host.endsWith(defaultPort) ? req.host.slice(0, -defaultPort.length) : req.host
  return `${req.scheme}://${host}`
}

/** The Content-Security-Policy of every answer of the API (the admin's pages set their own). */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "

const MAX_DELTA_SECONDS = 2 ** 31

/**
 * `Cache-Control: max-age=N` + `Expires`, or the "expire now" set for 0 (webob's cache_expires).
 * An answer that may be kept also says `Vary: Authorization`: what the API answers depends on who
 * asks (hello's `user`, lists filtered by permissions), and a browser that kept an anonymous answer
 * would otherwise give it to a signed-in request for the same URL (on a readonly server, the
 * admin console's sign-in read the anonymous hello from the cache and failed).
 */
export function cacheExpiresHeaders(seconds: number): Record<string, string> {
  const now = Date.now()
  // RFC 9111's cap for delta-seconds: what a cache must read a bigger value as (a bigger one, such
  // as a collection's cache_expires of 1e300, would also overflow Expires; upstream fails with a 500).
  seconds = Math.min(seconds, MAX_DELTA_SECONDS)
  if (seconds === 0) {
    return {
      'Cache-Control': 'max-age=0, must-revalidate, no-cache, no-store',
      Expires: new Date(now).toUTCString(),
      Pragma: 'no-cache',
    }
  }
  return {'Cache-Control': `max-age=${seconds}`, Expires: new Date(now + seconds * 1000).toUTCString(), Vary: 'Authorization'}
}

/** ETag (the quoted timestamp) and Last-Modified (HTTP date, seconds) for a timestamp in ms. */
export function timestampHeaders(timestamp: number): Record<string, string> {
  return {ETag: `"${timestamp}"`, 'Last-Modified': httpDate(Math.floor(timestamp / 1000))}
}

// Most responses in a row carry the same few Last-Modified seconds: the last one is kept. A
// record read at random has a second of its own, but shares its day with many: the date part is
// kept per day and the time of day written from the seconds.
const utcDay = new PeriodText(86_400, (start) => new Date(start * 1000).toUTCString().slice(0, -12))
const utcSecond = new PeriodText(1, (seconds) => {
  // `Sat, 05 Dec 2026 ` + `15:00:49 GMT`
  const day = utcDay.at(seconds)
  const inDay = seconds - utcDay.start
  return `${day}${pad(Math.floor(inDay / 3600))}:${pad(Math.floor((inDay % 3600) / 60))}:${pad(inDay % 60)} GMT`
})

/** The HTTP date (RFC 9110 IMF-fixdate, what Date#toUTCString writes) of a Unix time in seconds. */
export function httpDate(seconds: number): string {
  return utcSecond.at(seconds)
}

/**
 * The `Backoff` header value for one response, or null: the configured seconds on every response,
 * or at random on `backoff_percentage` % of them (upstream's setup_backoff).
 */
export function backoffHeader(active: {backoff: number | null; backoffPercentage: number | null}, random: () => number = Math.random): string | null {
  if (active.backoff === null) return null
  if (active.backoffPercentage !== null && !(random() < active.backoffPercentage / 100)) return null
  return String(active.backoff)
}

/** A HEAD answer's Content-Length: that of the body a GET would get, as upstream's (unsent). */
export function headLength(body: unknown): string {
  return String(body instanceof RawBody ? body.bytes.length : Buffer.byteLength(stringifyJson(body)))
}

const HTML_ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;'}

/**
 * A 307 as upstream's web framework (webob) answers it: an absolute Location and a body naming the
 * target as given (a path of this server, or an absolute URL: the OpenID provider, the login
 * callback): JSON for a client that accepts JSON, an HTML page for one that accepts HTML (any type
 * included), plain text otherwise (no Accept header included). ttlSeconds < 0: no cache headers.
 */
export function redirect(req: KintoRequest, location: string, ttlSeconds: number): KintoResponse {
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(location)
  const headers: Record<string, string> = {Location: absolute ? location : `${urlOrigin(req)}${location}`}
  if (ttlSeconds >= 0) Object.assign(headers, cacheExpiresHeaders(ttlSeconds))
  const title = '307 Temporary Redirect'
  const message = `The resource has been moved to ${location}; you should be redirected automatically.\n\n`
  const accept = req.headers.accept ?? ''
  if (accept.includes('application/json')) return {status: 307, headers, body: {message, code: title, title: 'Temporary Redirect'}}
  let text = `${title}\n\n${message}`
  if (/text\/html|text\/\*|\*\/\*/.test(accept)) {
    const escaped = message.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c])
    text = `<html>\n <head>\n  <title>${title}</title>\n </head>\n <body>\n  <h1>${title}</h1>\n  ${escaped}\n </body>\n</html>`
    headers['Content-Type'] = 'text/html; charset=UTF-8'
  } else headers['Content-Type'] = 'text/plain; charset=UTF-8'
  return {status: 307, headers, body: new RawBody(Buffer.from(text))}
}

/** Response header helpers shared by the runtime and the resources. */

/** `Cache-Control: max-age=N` + `Expires`, or the "expire now" set for 0 (webob's cache_expires). */
export function cacheExpiresHeaders(seconds: number): Record<string, string> {
  const now = Date.now()
  if (seconds === 0) {
    return {
      'Cache-Control': 'max-age=0, must-revalidate, no-cache, no-store',
      Expires: new Date(now).toUTCString(),
      Pragma: 'no-cache',
    }
  }
  return {'Cache-Control': `max-age=${seconds}`, Expires: new Date(now + seconds * 1000).toUTCString()}
}

/** ETag (the quoted timestamp) and Last-Modified (HTTP date, seconds) for a timestamp in ms. */
export function timestampHeaders(timestamp: number): Record<string, string> {
  return {ETag: `"${timestamp}"`, 'Last-Modified': httpDate(Math.floor(timestamp / 1000))}
}

// Most responses in a row carry the same few Last-Modified seconds: the last one is kept.
let lastSeconds = Number.NaN
let lastDate = ''

/** The HTTP date of a Unix time in seconds. */
function httpDate(seconds: number): string {
  if (seconds !== lastSeconds) {
    lastDate = new Date(seconds * 1000).toUTCString()
    lastSeconds = seconds
  }
  return lastDate
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

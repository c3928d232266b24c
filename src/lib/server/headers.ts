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

// Most responses in a row carry the same few Last-Modified seconds: the last one is kept. A
// record read at random has a second of its own, but shares its day with many: the date part is
// kept per day and the time written from the seconds (Date#toUTCString costs ~2 µs a call).
let lastSeconds = Number.NaN
let lastDate = ''
let lastDay = Number.NaN
let dayPrefix = ''

/** The HTTP date (RFC 9110 IMF-fixdate, what Date#toUTCString writes) of a Unix time in seconds. */
export function httpDate(seconds: number): string {
  if (seconds !== lastSeconds) {
    const day = Math.floor(seconds / 86_400)
    if (day !== lastDay) {
      // `Sat, 05 Dec 2026 00:00:00 GMT` without its time of day.
      const midnight = new Date(day * 86_400_000).toUTCString()
      dayPrefix = midnight.slice(0, midnight.length - 12)
      lastDay = day
    }
    const inDay = seconds - day * 86_400
    const h = Math.floor(inDay / 3600)
    const m = Math.floor((inDay % 3600) / 60)
    lastDate = `${dayPrefix}${twoDigits(h)}:${twoDigits(m)}:${twoDigits(inDay % 60)} GMT`
    lastSeconds = seconds
  }
  return lastDate
}

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : String(n)
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

// The load generator: autocannon, in the bench process (the server under test is another
// process), over loopback, bounded in time.
import autocannon from 'autocannon'

/**
 * Runs one load: `requests` as autocannon takes them (setupRequest / onResponse allowed).
 * Returns requests/s (all, and 2xx only), p50/p99 latency (ms), counts of errors, non-2xx and the status codes.
 */
export function runLoad({origin, connections, durationS, requests, headers = {}}) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {url: origin, connections, duration: durationS, pipelining: 1, timeout: 30, headers, requests},
      (err, result) => {
        if (err) return reject(err)
        const codes = {}
        for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) codes[code] = Number(v.count)
        const ok = Object.entries(codes).reduce((n, [code, count]) => (code.startsWith('2') ? n + count : n), 0)
        const total = result.requests.total
        resolve({
          rps: result.requests.average,
          // Requests/s answered 2xx (a floor's POST counts only its successes).
          okRps: total > 0 ? (result.requests.average * ok) / total : 0,
          p50: result.latency.p50,
          p99: result.latency.p99,
          total: result.requests.total,
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          codes,
        })
      },
    )
    instance.on('error', reject)
  })
}

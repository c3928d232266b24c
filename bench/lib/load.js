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

/**
 * Several loads at once over the same duration (e.g. one autocannon client per collection: a
 * client of autocannon cannot keep state across its requests), merged into one result: their
 * rates and counts add up; the latencies are the slowest load's.
 */
export async function runLoads({origin, durationS, loads}) {
  if (loads.length === 1) return runLoad({origin, durationS, ...loads[0]})
  const results = await Promise.all(loads.map((l) => runLoad({origin, durationS, ...l})))
  const sum = (k) => results.reduce((a, r) => a + r[k], 0)
  const codes = {}
  for (const r of results) for (const [c, n] of Object.entries(r.codes)) codes[c] = (codes[c] ?? 0) + n
  return {
    rps: sum('rps'),
    okRps: sum('okRps'),
    p50: Math.max(...results.map((r) => r.p50)),
    p99: Math.max(...results.map((r) => r.p99)),
    total: sum('total'),
    errors: sum('errors'),
    timeouts: sum('timeouts'),
    non2xx: sum('non2xx'),
    codes,
  }
}

/**
 * `statsd reachable`, as far as it can be known: StatsD is UDP, which has no handshake, so we check
 * the URL's form and resolve its host; whether a daemon listens cannot be confirmed.
 */
import {lookup} from 'node:dns/promises'

import {type KintoConfig, describeSettingSource} from '../config/index.js'
import {asList, asString} from '../config/settings.js'
import {parseStatsdUrl, statsdUrlText} from '../monitoring/statsd-settings.js'
import {type Finding, error, ok, warning} from './types.js'

export interface StatsdCheckOptions {
  /** Give up resolving after this long (default 5 s). */
  timeoutMs?: number
  /** For tests: the resolver. */
  resolve?: (host: string) => Promise<string[]>
}

async function defaultResolve(host: string): Promise<string[]> {
  const addresses = await lookup(host, {all: true})
  return addresses.map((a) => a.address)
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round(ms / 100) / 10} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export async function checkStatsd(config: KintoConfig, options: StatsdCheckOptions = {}): Promise<Finding[]> {
  const url = asString(config.settings, 'statsd_url')
  const includes = asList(config.settings, 'includes')
  const where = describeSettingSource(config, 'statsd_url')
  if (url === null || url.trim() === '') {
    if (includes.includes('kinto.plugins.statsd')) {
      // Upstream's plugin raises at startup without a URL, and so does our runtime.
      return [
        error(
          'statsd',
          `kinto.includes lists kinto.plugins.statsd but kinto.statsd_url is not set${where ? ` (${where})` : ''}: the server refuses to start.`,
          'Set kinto.statsd_url = udp://<statsd host>:8125, or remove kinto.plugins.statsd from kinto.includes.',
        ),
      ]
    }
    if (includes.includes('kinto.plugins.prometheus')) {
      return [ok('statsd', 'kinto.statsd_url is not set; metrics are served to Prometheus (kinto.plugins.prometheus, /v1/__metrics__).')]
    }
    return [
      warning(
        'statsd',
        'No metrics are configured: kinto.statsd_url is not set and kinto.plugins.prometheus is not included, so the counters and timers of the production guide go nowhere.',
        'Set kinto.statsd_url = udp://<statsd host>:8125 and add kinto.plugins.statsd to kinto.includes.',
      ),
    ]
  }
  const parsed = parseStatsdUrl(url)
  if ('problem' in parsed) {
    return [
      error(
        'statsd',
        `${statsdUrlText(url)} (${where}) is not a StatsD URL: ${parsed.problem}.`,
        'Set kinto.statsd_url = udp://<host>:<port>, e.g. udp://localhost:8125.',
      ),
    ]
  }
  const findings: Finding[] = []
  const resolve = options.resolve ?? defaultResolve
  try {
    const addresses = await withTimeout(resolve(parsed.host), options.timeoutMs ?? 5000, `DNS for ${parsed.host}`)
    if (addresses.length === 0) throw new Error('no address')
    findings.push(
      ok(
        'statsd',
        `kinto.statsd_url = ${url}: the URL is well-formed and ${parsed.host} resolves to ${addresses.join(', ')}. ` +
          `StatsD is UDP (no handshake), so whether a daemon listens on port ${parsed.port} cannot be confirmed from here.`,
      ),
    )
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOTFOUND' ? 'no such host' : (e as Error).message
    findings.push(
      error(
        'statsd',
        `kinto.statsd_url = ${url} (${where}): the host ${parsed.host} does not resolve (${reason}); every metric would be dropped.`,
        'Fix the host name in kinto.statsd_url, or the DNS/hosts entry of the StatsD server.',
      ),
    )
  }
  if (!includes.includes('kinto.plugins.statsd')) {
    findings.push(
      warning(
        'statsd-plugin',
        'kinto.statsd_url is set but kinto.includes does not list kinto.plugins.statsd: upstream Kinto sends no metrics without it (kinto-ops accepts the URL alone).',
        'Add kinto.plugins.statsd to kinto.includes, so that upstream Kinto served from this ini sends metrics too.',
      ),
    )
  }
  return findings
}

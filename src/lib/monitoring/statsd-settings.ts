/**
 * When metrics are sent, and where: `kinto.statsd_url` (`udp://host:port`) turns StatsD on, as the
 * production guide says. Upstream 26 also wants `kinto.plugins.statsd` in `kinto.includes`; we
 * accept the URL alone (kinto check warns that upstream would not send anything without it).
 *
 * Prefix, as upstream: `project_name` (default `kinto`); `statsd_prefix` only when the project
 * name is empty.
 */
import {asString, type Settings} from '../config/settings.js'
import {displayValue} from '../config/validate.js'
import {KintoError} from '../errors.js'
import type {StatsdTarget} from './metrics.js'

/** `kinto.statsd_url = "…"` as a message may quote it: a password it carries masked (displayValue). */
export function statsdUrlText(url: string): string {
  return `kinto.statsd_url = ${displayValue('statsd_url', url)}`
}

/** `udp://host:port` → host and port, or a description of what is wrong. */
export function parseStatsdUrl(url: string): {host: string; port: number} | {problem: string} {
  let parsed: URL
  try {
    parsed = new URL(url.trim())
  } catch {
    return {problem: 'it is not a URL'}
  }
  if (parsed.protocol !== 'udp:') return {problem: `its scheme is ${parsed.protocol.replace(/:$/, '')}, StatsD takes udp`}
  const host = parsed.hostname.replace(/^\[|\]$/g, '')
  if (!host) return {problem: 'it has no host'}
  if (!parsed.port) return {problem: 'it has no port (StatsD usually listens on 8125)'}
  if ((parsed.pathname && parsed.pathname !== '/') || parsed.search || parsed.username) {
    return {problem: 'it has a path, query or credentials, which StatsD URLs do not take'}
  }
  return {host, port: Number(parsed.port)}
}

/** statsd_backend values that mean the plain StatsD client (the only one we have). */
export const BUILTIN_STATSD_BACKENDS = ['kinto.core.statsd', 'kinto.plugins.statsd']

/** The StatsD target of these settings, or null when `statsd_url` is not set. */
export function statsdTarget(settings: Settings): StatsdTarget | null {
  const url = (asString(settings, 'statsd_url') ?? '').trim()
  if (!url || url === 'None') return null
  const parsed = parseStatsdUrl(url)
  if ('problem' in parsed) {
    throw new KintoError(`${statsdUrlText(url)} is not a StatsD URL: ${parsed.problem}.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: 'Set kinto.statsd_url = udp://<host>:<port> (e.g. udp://localhost:8125), or remove it to send no metrics.',
    })
  }
  const projectName = asString(settings, 'project_name') ?? ''
  const prefix = projectName !== '' ? projectName : (asString(settings, 'statsd_prefix') ?? '')
  return {host: parsed.host, port: parsed.port, prefix}
}

/** A warning when `statsd_backend` names a module we do not have (the plain client is used). */
export function statsdBackendWarning(settings: Settings): string | null {
  const backend = (asString(settings, 'statsd_backend') ?? '').trim()
  if (!backend || BUILTIN_STATSD_BACKENDS.includes(backend)) return null
  return `kinto.statsd_backend = ${backend} is not available in kinto-ops; metrics are sent with the plain StatsD client (kinto.core.statsd).`
}

/**
 * Error reports to Sentry with the official SDK (@sentry/node), from upstream's settings:
 * `sentry_dsn` turns it on (the SDK is loaded only then: idle memory), `sentry_env` is the
 * environment, and log records become breadcrumbs from `sentry_breadcrumbs_min_level` (Python
 * levels, default 10: DEBUG) and events from `sentry_events_min_level` (default 30: WARNING).
 * Unexpected errors (a 5xx that is not a deliberate 503: the runtime's error hook) become events
 * with the request id, method, path and user id. Once the app is built, one info event says
 * `Running <project_name> <project_version>.`, as upstream sends (its documented setup check).
 *
 * Secrets never leave: no request headers, cookies or bodies are attached, log fields are the
 * redacted ones (redact.ts), and every event and breadcrumb is scrubbed before sending: the
 * values of secret-looking settings (hmac secret, passwords, tokens, DSNs, URLs with passwords)
 * and credentials in any string (`Basic …`, `Bearer …`, URL passwords) are masked.
 */
import type {ErrorEvent as SentryEvent, Breadcrumb, NodeClient} from '@sentry/node'

import {asInt, asString, type Settings} from '../config/settings.js'
import {KintoError} from '../errors.js'
import {lazyRequire} from '../lazy.js'
import type {Logger} from '../logger.js'
import type {RuntimeHooks} from '../server/hooks.js'
import {packageVersion} from '../version.js'
import type {KintoLogging} from './logging.js'
import {scrubSecrets} from './redact.js'

const sentrySdk = lazyRequire<typeof import('@sentry/node')>('@sentry/node')

/** Python level (10 DEBUG … 50 CRITICAL) → pino level (20 debug … 60 fatal). */
function pinoLevelOf(pyLevel: number): number {
  return pyLevel + 10
}

const SENTRY_LEVELS: Array<[number, 'debug' | 'info' | 'warning' | 'error' | 'fatal']> = [
  [60, 'fatal'],
  [50, 'error'],
  [40, 'warning'],
  [30, 'info'],
  [0, 'debug'],
]

function sentryLevel(pino: number): 'debug' | 'info' | 'warning' | 'error' | 'fatal' {
  return SENTRY_LEVELS.find(([min]) => pino >= min)![1]
}

/** The DSN, or null when Sentry is off. */
export function sentryDsn(settings: Settings): string | null {
  const dsn = (asString(settings, 'sentry_dsn') ?? '').trim()
  return dsn && dsn !== 'None' ? dsn : null
}

/**
 * The parts of a DSN, or what is wrong with it (never the DSN itself: its public key is a
 * credential). What passes is what the SDK reads: given a DSN it cannot read, the SDK prints it
 * whole on the console and runs without reporting anything.
 */
export function parseSentryDsn(dsn: string): {origin: string; project: string} | {problem: string} {
  const text = dsn.trim()
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return {problem: 'it is not a URL'}
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return {problem: `its scheme is ${url.protocol.replace(/:$/, '')}, Sentry takes https (or http)`}
  if (!url.username) return {problem: 'it has no public key (https://<key>@<host>/<project>)'}
  if (!/^\w+$/.test(url.username) || !/^\w*$/.test(url.password)) {
    return {problem: 'its public key holds characters other than letters, digits and _ (copy it again from Sentry)'}
  }
  const project = url.pathname.split('/').filter(Boolean).pop()
  if (!project || !/^\d+$/.test(project)) return {problem: 'it has no project id (https://<key>@<host>/<project>, a number)'}
  // The SDK's own reading (@sentry/core dsn.ts), on the text as written.
  if (!/^(?:\w+:)\/\/(?:\w+(?::\w*)?@)(?:\[[:.%\w]+\]|[\w.-]+)(?::\d+)?\/.+/.test(text)) {
    return {problem: 'it is not of the form https://<key>@<host>/<project>'}
  }
  return {origin: url.origin, project}
}

const SECRET_SETTING = /secret|password|passwd|token|dsn|key|_url$/i

/** Secret values of the settings (at least 6 characters: shorter ones would mask common words). */
function secretValues(settings: Settings): string[] {
  const out = new Set<string>()
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value !== 'string' || !SECRET_SETTING.test(key)) continue
    if (/_url$/i.test(key) || /dsn/i.test(key)) {
      // URLs: only their password (also as a parameter, which redis-py and libpq read) and a DSN's public key are secret.
      try {
        const url = new URL(value)
        if (url.password.length >= 6) out.add(decodeURIComponent(url.password))
        for (const name of ['password', 'passwd']) for (const p of url.searchParams.getAll(name)) if (p.length >= 6) out.add(p)
        if (/dsn/i.test(key) && url.username.length >= 6) out.add(url.username)
      } catch {
        // not a URL
      }
      continue
    }
    for (const part of value.split(/\s+/)) if (part.length >= 6) out.add(part)
  }
  return [...out].sort((a, b) => b.length - a.length)
}

/** A copy of value with every secret masked in its strings, and secret-looking keys dropped. */
function scrub(value: unknown, secrets: string[], depth = 0): unknown {
  if (typeof value === 'string') {
    let text = scrubSecrets(value)
    for (const secret of secrets) if (text.includes(secret)) text = text.split(secret).join('[Filtered]')
    return text
  }
  if (value === null || typeof value !== 'object' || depth > 12) return value
  if (Array.isArray(value)) return value.map((v) => scrub(v, secrets, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    if (/authorization|cookie|password|secret|token/i.test(k) && k !== '_token') out[k] = '[Filtered]'
    else out[k] = scrub(v, secrets, depth + 1)
  }
  return out
}

/**
 * The breadcrumbs an event may carry: those of its own request (same `rid`) and those of no
 * request. Breadcrumbs are kept process-wide, so without this an error of one user's request
 * carried the summaries of other users' requests (their ids, paths and query strings); upstream's
 * SDK keeps each request's breadcrumbs to itself.
 */
function ownBreadcrumbs(event: SentryEvent): SentryEvent {
  if (!event.breadcrumbs?.length) return event
  const rid = event.tags?.request_id
  event.breadcrumbs = event.breadcrumbs.filter((crumb) => crumb.data?.rid === undefined || crumb.data.rid === rid)
  return event
}

export interface SentryReporting {
  client: NodeClient | undefined
  /** The app is built: upstream's start-up event (`Running kinto <version>.`, level info), the setup check. */
  started(): void
  flush(timeoutMs?: number): Promise<boolean>
  close(timeoutMs?: number): Promise<boolean>
}

/** Starts the SDK when `sentry_dsn` is set and subscribes it; null otherwise. */
export function startSentry(settings: Settings, hooks: RuntimeHooks, logging: KintoLogging | undefined, logger: Logger): SentryReporting | null {
  const dsn = sentryDsn(settings)
  if (!dsn) return null
  const parsed = parseSentryDsn(dsn)
  if ('problem' in parsed) {
    // Upstream does not start either (sentry_sdk raises BadDsn).
    throw new KintoError(`kinto.sentry_dsn is not a Sentry DSN: ${parsed.problem}.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: 'Copy the DSN from the Sentry project settings (Client Keys), or remove kinto.sentry_dsn; `kinto check` says where it is set.',
    })
  }
  const Sentry = sentrySdk()
  const secrets = secretValues(settings)
  const breadcrumbsMin = pinoLevelOf(asInt(settings, 'sentry_breadcrumbs_min_level', 10) ?? 10)
  const eventsMin = pinoLevelOf(asInt(settings, 'sentry_events_min_level', 30) ?? 30)
  let client: NodeClient | undefined
  try {
    client = Sentry.init({
      dsn,
      environment: asString(settings, 'sentry_env') ?? undefined,
      // Only what is given explicitly: no request data, no IP, no automatic instrumentation
      // (the runtime's hooks say what happened).
      defaultIntegrations: false,
      enableRuntimeChannelInjection: false,
      beforeSend: (event) => scrub(ownBreadcrumbs(event), secrets) as SentryEvent,
      beforeBreadcrumb: (crumb) => scrub(crumb, secrets) as Breadcrumb,
    })
  } catch (err) {
    logger.warn({setting: 'sentry_dsn', reason: scrubSecrets((err as Error).message)}, 'Sentry could not be started: errors are not reported.')
    return null
  }

  hooks.on('error', ({req, error, status, ctx}) => {
    const userId = ctx?.knownIdentity?.userId ?? undefined
    const rid = req.scope?.rid
    Sentry.withScope((scope) => {
      if (rid) scope.setTag('request_id', rid)
      scope.setTag('status', String(status))
      if (userId) scope.setUser({id: userId})
      scope.addEventProcessor((event) => {
        event.request = {method: req.method, url: req.path}
        return event
      })
      Sentry.captureException(error)
    })
  })

  logging?.onRecord((level, loggerName, fields) => {
    if (level < breadcrumbsMin && level < eventsMin) return
    const message = typeof fields.msg === 'string' ? fields.msg : loggerName
    // Summaries are the request log, not events: breadcrumbs only. A request's unexpected error
    // is logged (with its rid) and reported by the error hook, with the request's details: once.
    // Such a record carries the errno of the answer (error-mapping.ts; an unreachable database's
    // has no `error`). Other errors of a request (a failing heartbeat check) are events, as upstream.
    const requestError = fields.rid !== undefined && fields.errno !== undefined
    if (level >= eventsMin && loggerName !== 'request.summary' && loggerName !== 'subrequest.summary' && !requestError) {
      Sentry.withScope((scope) => {
        if (typeof fields.rid === 'string') scope.setTag('request_id', fields.rid)
        if (typeof fields.userid === 'string') scope.setUser({id: fields.userid})
        scope.setContext('log', {logger: loggerName, ...fields})
        Sentry.captureMessage(message, sentryLevel(level))
      })
    } else if (level >= breadcrumbsMin) {
      Sentry.addBreadcrumb({category: loggerName, message, level: sentryLevel(level), data: fields})
    }
  })

  return {
    client,
    started: () => {
      const version = asString(settings, 'project_version') || packageVersion()
      Sentry.captureMessage(`Running ${asString(settings, 'project_name') ?? 'kinto'} ${version}.`, 'info')
    },
    flush: (timeoutMs = 2000) => Sentry.flush(timeoutMs),
    close: (timeoutMs = 2000) => Sentry.close(timeoutMs),
  }
}

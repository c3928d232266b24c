/**
 * What is measured, decided once: the runtime's hook events (src/lib/server/hooks.ts) turned into
 * calls on a Metrics service, whichever exporters are behind it (StatsD, Prometheus). Subscribed
 * only when metrics are on (no cost otherwise):
 *
 * - backend calls: every method of the storage, permission and cache interfaces, also inside
 *   request transactions → `backend.<storage|permission|cache>.seconds.method.<name>` (upstream 26)
 *   and `<storage|permission|cache>.<name>` (production guide); cache reads count `cache_hits` and
 *   `cache_misses`. Method names are upstream's (`list_all`, `get_user_principals`…; the
 *   heartbeat is `ping`).
 * - authentication policies → `authentication.<policy>.seconds.method.authenticated_userid`.
 * - plugins' event listeners → `<name>.seconds` (`plugins.history.seconds`, as upstream).
 * - views → `view.<service>.<METHOD>` (`view.hello.GET`, `view.record-plural.POST`), and the time
 *   from the end of a resource view's loading to its start, i.e. the permission check, as
 *   `authentication.permits` (emitted when the check lets the request through).
 */
import {asList, type Settings} from '../config/settings.js'
import type {RuntimeHooks} from '../server/hooks.js'
import type {Service} from '../server/router.js'
import type {Label, Metrics} from './metrics.js'

// addPrincipalToAceAndRead: upstream's add_principal_to_ace, with the ACL read back in the same call.
const UPSTREAM_NAMES: Record<string, string> = {list: 'list_all', count: 'count_all', heartbeat: 'ping', addPrincipalToAceAndRead: 'add_principal_to_ace'}

/** Our method name → upstream's (`getUserPrincipals` → `get_user_principals`, `list` → `list_all`). */
export function upstreamMethodName(name: string): string {
  return UPSTREAM_NAMES[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

/** Subscribes the timers of views, policies, permission checks and backend calls. */
export function subscribeTimers(hooks: RuntimeHooks, metrics: Metrics): void {
  const backendKeys = new Map<string, {labels: Label[]; documented: string; key: string}>()
  hooks.on('backendCall', ({family, method, elapsedMs, result, failed}) => {
    const id = `${family}.${method}`
    let names = backendKeys.get(id)
    if (!names) {
      const name = upstreamMethodName(method)
      names = {labels: [['method', name]], documented: `${family}.${name}`, key: `backend.${family}.seconds`}
      backendKeys.set(id, names)
    }
    metrics.timer(names.key, elapsedMs, names.labels)
    // The production guide's `<backend>.<method>` names exist for the three backends only.
    if (family !== 'localfilestorage') metrics.timer(names.documented, elapsedMs)
    if (family === 'cache' && method === 'get') metrics.count(failed || result === undefined || result === null ? 'cache_misses' : 'cache_hits')
  })
  const authLabels: Label[] = [['method', 'authenticated_userid']]
  hooks.on('authentication', ({policy, elapsedMs}) => metrics.timer(`authentication.${policy}.seconds`, elapsedMs, authLabels))
  hooks.on('permission', ({elapsedMs}) => metrics.timer('authentication.permits', elapsedMs))
  hooks.on('view', ({service, method, elapsedMs}) => metrics.timer(`view.${service.name}.${method}`, elapsedMs))
  hooks.on('listener', ({name, elapsedMs}) => metrics.timer(`${name}.seconds`, elapsedMs))
}

// -------------------------------------------------------------------------------------------------
// Per-response metrics

/** The service and route params serving a decoded path, or null (404, redirects). */
export type RouteOf = (path: string) => {service: Service; params: Record<string, string>} | null

/** The name of the plain route (no service) serving a path, or null: upstream's `redirect_to_version`. */
export type NamedRouteOf = (path: string) => string | null

export interface ResponseFacts {
  /** Upper-case method. */
  method: string
  /** Decoded path (`/v1/buckets/b1`). */
  path: string
  status: number
  durationMs: number
  /** Un-prefixed user id and policy name, when authenticated. */
  uid?: string | null
  authnType?: string | null
  /** Response body length; undefined: not observed. */
  bytes?: number
}

/**
 * Upstream 26's per-response metrics (`users`, `request_summary`, `request_duration_seconds`,
 * `request_size`, `authentication`) and the production guide's `authn_type.<policy>`.
 */
export class ResponseMetrics {
  private readonly matchdictFields: string[]

  constructor(
    private readonly route: RouteOf,
    private readonly metrics: Metrics,
    settings: Settings,
    private readonly namedRoute?: NamedRouteOf,
  ) {
    this.matchdictFields = asList(settings, 'metrics_matchdict_fields')
  }

  emit(facts: ResponseFacts): void {
    const {metrics} = this
    if (facts.uid && facts.authnType) {
      // upstream: prefixed user id split once on ':', then ':' → '.' in the id.
      metrics.unique('users', [
        ['auth', facts.authnType],
        ['userid', facts.uid.replace(/:/g, '.')],
      ])
    }
    const match = this.route(facts.path)
    // No URL values from errors (404s) nor from CORS preflights, which anyone may send for any
    // id without being authenticated: each made new series, without bound.
    const params: Record<string, string> = facts.status >= 400 || facts.method === 'OPTIONS' || !match ? {} : {...match.params}
    if (match?.service.resourceName) params[`${match.service.resourceName}_id`] = params.id ?? ''
    // upstream: the service's name, else the matched route's (redirect_to_version), else unnamed
    // (trailing-slash redirects) or unknown (404).
    const endpoint = match ? match.service.name : (this.namedRoute?.(facts.path) ?? (facts.status === 404 ? 'unknown' : 'unnamed'))
    const labels: Label[] = [
      ['method', facts.method.toLowerCase()],
      ['endpoint', endpoint],
    ]
    for (const field of this.matchdictFields) labels.push([field, params[field] ?? ''])
    metrics.unique('request_summary', [...labels, ['status', String(facts.status)]])
    metrics.timer('request_duration_seconds', facts.durationMs, labels)
    // Labelled as upstream 26 observes it (StatsD drops the labels of a gauge).
    if (facts.bytes !== undefined) metrics.observe('request_size', facts.bytes, labels)
    if (facts.authnType) {
      metrics.unique('authentication', [['type', facts.authnType]])
      metrics.count(`authn_type.${facts.authnType}`)
    }
  }
}

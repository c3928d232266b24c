/**
 * Timers around the runtime's moving parts, installed once when the app is built and only when
 * metrics are on (no cost otherwise):
 *
 * - backends: every method of the storage, permission and cache interfaces, also inside request
 *   transactions → `backend.<storage|permission|cache>.seconds.method.<name>` (upstream 26) and
 *   `<storage|permission|cache>.<name>` (production guide); cache reads count `cache_hits` and
 *   `cache_misses`. Method names are upstream's (`list_all`, `get_user_principals`…; the
 *   heartbeat is `ping`).
 * - authentication policies → `authentication.<policy>.seconds.method.authenticated_userid`.
 * - views → `view.<service>.<METHOD>` (`view.hello.GET`, `view.record-plural.POST`), and the time
 *   from the end of a resource view's loading to its start, i.e. the permission check, as
 *   `authentication.permits` (emitted when the check lets the request through).
 */
import type {Backends as CreatedBackends, TransactionBackends} from '../backends.js'
import {asList, type Settings} from '../config/settings.js'
import type {AuthenticationPolicy} from '../server/auth.js'
import type {RequestContext} from '../server/context.js'
import type {Service, ViewDef} from '../server/router.js'
import type {Runtime} from '../server/runtime.js'
import type {Backends} from '../server/types.js'
import type {Label, Metrics} from './metrics.js'

type Family = 'storage' | 'permission' | 'cache'

const METHODS: Record<Family, string[]> = {
  storage: ['heartbeat', 'flush', 'resourceTimestamp', 'create', 'get', 'update', 'delete', 'deleteAll', 'purgeDeleted', 'list', 'count'],
  permission: [
    'heartbeat',
    'flush',
    'getUserPrincipals',
    'addUserPrincipal',
    'removeUserPrincipal',
    'removePrincipal',
    'getObjectPermissionPrincipals',
    'addPrincipalToAce',
    'removePrincipalFromAce',
    'getObjectPermissions',
    'getObjectsPermissions',
    'replaceObjectPermissions',
    'deleteObjectPermissions',
    'checkPermission',
    'getAccessibleObjects',
    'getAuthorizedPrincipals',
  ],
  cache: ['heartbeat', 'flush', 'get', 'set', 'delete', 'expire', 'ttl'],
}

const UPSTREAM_NAMES: Record<string, string> = {list: 'list_all', count: 'count_all', heartbeat: 'ping'}

/** Our method name → upstream's (`getUserPrincipals` → `get_user_principals`, `list` → `list_all`). */
export function upstreamMethodName(name: string): string {
  return UPSTREAM_NAMES[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as {then?: unknown}).then === 'function'
}

/** Calls fn, then done(result or undefined, elapsed ms) whether it returns, resolves or fails. */
function measure<T>(fn: () => T, done: (elapsedMs: number, value?: unknown) => void): T {
  const start = performance.now()
  let result: T
  try {
    result = fn()
  } catch (err) {
    done(performance.now() - start)
    throw err
  }
  if (isThenable(result)) {
    return (result as unknown as Promise<unknown>).then(
      (value) => {
        done(performance.now() - start, value)
        return value
      },
      (err) => {
        done(performance.now() - start)
        throw err
      },
    ) as T
  }
  done(performance.now() - start, result)
  return result
}

/** A view of a backend whose interface methods are timed; everything else passes through. */
function timedBackend<T extends object>(target: T, family: Family, metrics: Metrics): T {
  const timed = new Set(METHODS[family])
  const wrappers = new Map<PropertyKey, unknown>()
  const timerKey = `backend.${family}.seconds`
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj)
      if (typeof value !== 'function') return value
      let wrapper = wrappers.get(prop)
      if (wrapper === undefined) {
        if (typeof prop === 'string' && timed.has(prop)) {
          const name = upstreamMethodName(prop)
          const labels: Label[] = [['method', name]]
          const documented = `${family}.${name}`
          const countHits = family === 'cache' && prop === 'get'
          wrapper = (...args: unknown[]) =>
            measure(
              () => value.apply(obj, args),
              (ms, result) => {
                metrics.timer(timerKey, ms, labels)
                metrics.timer(documented, ms)
                if (countHits) metrics.count(result === undefined || result === null ? 'cache_misses' : 'cache_hits')
              },
            )
        } else {
          // Bound to the backend itself: methods may rely on private state a proxy cannot reach.
          wrapper = value.bind(obj)
        }
        wrappers.set(prop, wrapper)
      }
      return wrapper
    },
  })
}

/** The backends with timed storage, permission and cache, also inside transactions. */
export function instrumentBackends<B extends Backends | CreatedBackends>(backends: B, metrics: Metrics): B {
  const seen = new WeakMap<object, unknown>()
  const wrap = <T extends object>(target: T, family: Family): T => {
    let proxy = seen.get(target) as T | undefined
    if (!proxy) {
      proxy = timedBackend(target, family, metrics)
      seen.set(target, proxy)
    }
    return proxy
  }
  return {
    ...backends,
    storage: wrap(backends.storage, 'storage'),
    permission: wrap(backends.permission, 'permission'),
    cache: wrap(backends.cache, 'cache'),
    transaction: <T>(fn: (tx: TransactionBackends) => Promise<T>) =>
      backends.transaction((tx) => fn({...tx, storage: wrap(tx.storage, 'storage'), permission: wrap(tx.permission, 'permission')})),
    close: () => backends.close(),
  }
}

/** Times a policy's authentication (`authentication.<name>.seconds.method.authenticated_userid`). */
function timedPolicy(policy: AuthenticationPolicy, metrics: Metrics): AuthenticationPolicy {
  const key = `authentication.${policy.name}.seconds`
  const labels: Label[] = [['method', 'authenticated_userid']]
  const timed = Object.create(policy) as AuthenticationPolicy & {authenticate: AuthenticationPolicy['authenticate']}
  timed.authenticate = (headers, env) => measure(() => policy.authenticate(headers, env), (ms) => metrics.timer(key, ms, labels))
  return timed
}

const PREPARED_AT = 'monitoring:prepared-at'

function timedView(service: Service, view: ViewDef, metrics: Metrics): ViewDef {
  const timed = Object.create(view) as ViewDef
  if (view.prepare && view.permission === 'dynamic') {
    const prepare = view.prepare
    timed.prepare = async (ctx: RequestContext) => {
      try {
        return await prepare.call(view, ctx)
      } finally {
        ctx.locals.set(PREPARED_AT, performance.now())
      }
    }
  }
  const handler = view.handler
  timed.handler = (ctx: RequestContext) => {
    const preparedAt = ctx.locals.get(PREPARED_AT)
    if (typeof preparedAt === 'number') {
      metrics.timer('authentication.permits', performance.now() - preparedAt)
      ctx.locals.delete(PREPARED_AT)
    }
    const key = `view.${service.name}.${ctx.req.method}`
    return measure(() => handler.call(view, ctx), (ms) => metrics.timer(key, ms))
  }
  return timed
}

/** Installs view and policy timers on a built runtime (after its plugins are included). */
export function instrumentRuntime(runtime: Runtime, metrics: Metrics): void {
  for (const service of runtime.router.services) {
    for (const [method, view] of [...service.views]) service.views.set(method, timedView(service, view, metrics))
  }
  for (let i = 0; i < runtime.policies.length; i++) runtime.policies[i] = timedPolicy(runtime.policies[i], metrics)
}

// -------------------------------------------------------------------------------------------------
// Per-response metrics

/** The service and route params serving a decoded path, or null (404, redirects). */
export function matchService(runtime: Runtime, path: string): {service: Service; params: Record<string, string>} | null {
  return runtime.route(path)
}

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
    private readonly runtime: Runtime,
    private readonly metrics: Metrics,
    settings: Settings,
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
    const match = matchService(this.runtime, facts.path)
    const params: Record<string, string> = facts.status >= 400 || !match ? {} : {...match.params}
    if (match?.service.resourceName) params[`${match.service.resourceName}_id`] = params.id ?? ''
    const endpoint = match ? match.service.name : facts.status === 404 ? 'unknown' : 'unnamed'
    const labels: Label[] = [
      ['method', facts.method.toLowerCase()],
      ['endpoint', endpoint],
    ]
    for (const field of this.matchdictFields) labels.push([field, params[field] ?? ''])
    metrics.unique('request_summary', [...labels, ['status', String(facts.status)]])
    metrics.timer('request_duration_seconds', facts.durationMs, labels)
    if (facts.bytes !== undefined) metrics.observe('request_size', facts.bytes)
    if (facts.authnType) {
      metrics.unique('authentication', [['type', facts.authnType]])
      metrics.count(`authn_type.${facts.authnType}`)
    }
  }
}

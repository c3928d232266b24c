/**
 * The runtime's hook points: what logging, StatsD, Prometheus and error reporting subscribe to
 * (src/lib/monitoring), instead of replacing the runtime's views, policies or methods. Listeners
 * run synchronously where the event happens and must not throw (a listener that does is logged
 * once per event name by the runtime and otherwise ignored); none subscribed costs one length
 * check per point.
 *
 *   requestStart  a top-level request enters the runtime
 *   response      the runtime answers a top-level request (the request.summary moment)
 *   subrequest    a batch sub-request has been answered
 *   view          a view's handler has run (its duration)
 *   permission    the permission check of a resource view let the request through (its duration)
 *   authentication  a policy's authenticate() has run (its duration)
 *   backendCall   a storage, permission or cache method has settled (its duration and result);
 *                 observed only when a listener is there when the Runtime is built
 *   error         a request failed with an unexpected error (a 5xx that is not a deliberate 503)
 *   listener      a plugin's event listener has run (its name and duration; timedListener)
 */
import type {Backends as CreatedBackends, TransactionBackends} from '../backends.js'
import type {RequestContext} from './context.js'
import type {Service} from './router.js'
import type {Backends, KintoRequest, KintoResponse} from './types.js'

export interface ResponseEvent {
  req: KintoRequest
  response: KintoResponse
  /** The request's context once it reached a view (identity, service). */
  ctx?: RequestContext
  /** Since the request entered the runtime. */
  elapsedMs: number
}

export interface SubrequestEvent {
  parent: RequestContext
  /** The sub-request as answered (after internal redirects). */
  req: KintoRequest
  response: KintoResponse
  elapsedMs: number
}

export interface ViewEvent {
  service: Service
  method: string
  elapsedMs: number
}

export type BackendFamily = 'storage' | 'permission' | 'cache'

export interface BackendCallEvent {
  /** A backend, or kinto_attachment's file storage (upstream times its LocalFileStorage as a backend). */
  family: BackendFamily | 'localfilestorage'
  /** Our method name (`getUserPrincipals`, `list`). */
  method: string
  elapsedMs: number
  /** What it resolved to (undefined when it failed). */
  result?: unknown
  failed: boolean
}

export interface ErrorEvent {
  req: KintoRequest
  error: unknown
  status: number
  ctx?: RequestContext
}

export interface HookEvents {
  requestStart: KintoRequest
  response: ResponseEvent
  subrequest: SubrequestEvent
  view: ViewEvent
  permission: {service: Service; elapsedMs: number}
  authentication: {policy: string; elapsedMs: number}
  backendCall: BackendCallEvent
  error: ErrorEvent
  listener: {name: string; elapsedMs: number}
}

export type HookName = keyof HookEvents
type Listener<K extends HookName> = (event: HookEvents[K]) => void

export class RuntimeHooks {
  private readonly listeners: {[K in HookName]: Listener<K>[]} = {
    requestStart: [],
    response: [],
    subrequest: [],
    view: [],
    permission: [],
    authentication: [],
    backendCall: [],
    error: [],
    listener: [],
  }
  /** Called with a listener's exception (the runtime logs it). */
  onListenerError: (name: HookName, err: unknown) => void = () => {}

  on<K extends HookName>(name: K, listener: Listener<K>): void {
    this.listeners[name].push(listener)
  }

  has(name: HookName): boolean {
    return this.listeners[name].length > 0
  }

  emit<K extends HookName>(name: K, event: HookEvents[K]): void {
    const list = this.listeners[name]
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](event)
      } catch (err) {
        this.onListenerError(name, err)
      }
    }
  }
}

/**
 * A plugin's event listener whose runs make `listener` events named `name` (upstream's
 * listener_with_timer: the `plugins.history.seconds` timer). Only when someone listens: the
 * listener itself otherwise.
 */
export function timedListener<A extends unknown[], R>(hooks: RuntimeHooks, name: string, fn: (...args: A) => R): (...args: A) => R {
  if (!hooks.has('listener')) return fn
  return (...args) => measure(() => fn(...args), (elapsedMs) => hooks.emit('listener', {name, elapsedMs}))
}

// -------------------------------------------------------------------------------------------------
// Backend calls

/** The methods of each backend interface that make a backendCall event. */
export const OBSERVED_METHODS: Record<BackendFamily, readonly string[]> = {
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
    'addPrincipalToAceAndRead',
    'removePrincipalFromAce',
    'removePrincipalFromObjects',
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as {then?: unknown}).then === 'function'
}

/** Calls fn, then done(elapsed ms, result, failed) whether it returns, resolves or fails. */
export function measure<T>(fn: () => T, done: (elapsedMs: number, value: unknown, failed: boolean) => void): T {
  const start = performance.now()
  let result: T
  try {
    result = fn()
  } catch (err) {
    done(performance.now() - start, undefined, true)
    throw err
  }
  if (isThenable(result)) {
    return (result as unknown as Promise<unknown>).then(
      (value) => {
        done(performance.now() - start, value, false)
        return value
      },
      (err) => {
        done(performance.now() - start, undefined, true)
        throw err
      },
    ) as T
  }
  done(performance.now() - start, result, false)
  return result
}

/** A view of a backend whose interface methods emit backendCall; everything else passes through. */
function observedBackend<T extends object>(target: T, family: BackendFamily, hooks: RuntimeHooks): T {
  const observed = new Set(OBSERVED_METHODS[family])
  const wrappers = new Map<PropertyKey, unknown>()
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj)
      if (typeof value !== 'function') return value
      let wrapper = wrappers.get(prop)
      if (wrapper === undefined) {
        if (typeof prop === 'string' && observed.has(prop)) {
          wrapper = (...args: unknown[]) =>
            measure(
              () => value.apply(obj, args),
              (elapsedMs, result, failed) => hooks.emit('backendCall', {family, method: prop, elapsedMs, result, failed}),
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

/** The backends with observed storage, permission and cache, also inside transactions. */
export function observedBackends<B extends Backends | CreatedBackends>(backends: B, hooks: RuntimeHooks): B {
  const seen = new WeakMap<object, unknown>()
  const wrap = <T extends object>(target: T, family: BackendFamily): T => {
    let proxy = seen.get(target) as T | undefined
    if (!proxy) {
      proxy = observedBackend(target, family, hooks)
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

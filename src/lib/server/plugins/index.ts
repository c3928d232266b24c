/**
 * `kinto.includes` plugins, keyed by upstream's module names. A plugin adds services, resources,
 * capabilities, event listeners, authentication policies or hello `user` fields when the app is
 * built. An unknown name is a startup error, so a typo never silently drops a feature.
 *
 * Writing one (src/lib/server/plugins/<name>.ts, exporting a KintoPlugin, listed in BUILTIN):
 * - services: `api.addService({name, pattern, views})`; views get a RequestContext whose `tx`
 *   is the request transaction (storage, permission). Set `noTransaction` for views that manage
 *   backends themselves (flush).
 * - resources: `api.addResource(definition)` gives plural and object endpoints with the whole
 *   resource framework (filters, pagination, permissions…); permission inheritance for a new
 *   resource type: registerInheritance() in authorization.ts.
 * - events: `api.runtime.events.onChanged(filter, listener)` runs in the transaction (history),
 *   `afterCommit` after it (notifications).
 * - authentication: registerAuthenticationPolicy(dotted name of `multiauth.policy.<n>.use`, factory).
 * - hello: `api.addUserInfo(hook)` (default bucket's `user.bucket`), `api.runtime.addCapability()`.
 * - the cache is never part of the request transaction, and PGlite (one connection) cannot
 *   serve it while a transaction is open: reach it in `beforeTransaction`, in
 *   `ctx.bound.afterTransaction`, from authentication policies (they run before the
 *   transaction), or in `noTransaction` views.
 */
import {KintoError} from '../../errors.js'
import {asList} from '../../config/settings.js'
import type {ResourceDefinition} from '../resource.js'
import {resourceServices} from '../resource.js'
import type {Runtime} from '../runtime.js'
import type {Service} from '../router.js'
import type {UserInfoHook} from '../views.js'
import {flushPlugin} from './flush.js'

/** What a plugin may do while the app is built. */
export interface PluginApi {
  readonly runtime: Runtime
  addService(service: Service): void
  addResource(def: ResourceDefinition): void
  addUserInfo(hook: UserInfoHook): void
}

export interface KintoPlugin {
  /** Upstream's module name, as written in `kinto.includes`. */
  name: string
  includeme(api: PluginApi): void | Promise<void>
}

const REGISTRY = new Map<string, KintoPlugin>()

/** Upstream plugins not available in this version (a clear error rather than "unknown"). */
const NOT_YET = new Set([
  'kinto.plugins.accounts',
  'kinto.plugins.admin',
  'kinto.plugins.default_bucket',
  'kinto.plugins.history',
  'kinto.plugins.openid',
  'kinto.plugins.prometheus',
  'kinto.plugins.statsd',
  'kinto.plugins.quotas',
])

/** Plugins shipped with kinto-ops. */
const BUILTIN: KintoPlugin[] = [flushPlugin]

export function registerPlugin(plugin: KintoPlugin): void {
  REGISTRY.set(plugin.name, plugin)
  NOT_YET.delete(plugin.name)
}

export function knownPlugins(): string[] {
  return [...REGISTRY.keys()].sort()
}

/** The plugins named in `includes`, in order; throws a KintoError for names we do not have. */
export function pluginsFromSettings(settings: Record<string, unknown>): KintoPlugin[] {
  const names = asList(settings, 'includes')
  return names.map((name) => {
    const plugin = REGISTRY.get(name)
    if (plugin) return plugin
    if (NOT_YET.has(name)) {
      throw new KintoError(`Plugin '${name}' (kinto.includes) is not available in this version of kinto-ops.`, {
        code: 'KINTO_PLUGIN_UNAVAILABLE',
        hint: `Remove it from kinto.includes. Available plugins: ${knownPlugins().join(', ') || 'none'}.`,
      })
    }
    throw new KintoError(`Unknown plugin '${name}' in kinto.includes.`, {
      code: 'KINTO_PLUGIN_UNKNOWN',
      hint: `Available plugins: ${knownPlugins().join(', ') || 'none'}.`,
    })
  })
}

/** Builds the plugin API over a runtime. */
export function pluginApi(runtime: Runtime, userInfoHooks: UserInfoHook[]): PluginApi {
  return {
    runtime,
    addService: (service) => runtime.addService(service),
    addResource: (def) => {
      for (const s of resourceServices(def, {settings: runtime.settings, readonly: runtime.readonly})) runtime.addService(s)
    },
    addUserInfo: (hook) => userInfoHooks.push(hook),
  }
}

for (const plugin of BUILTIN) registerPlugin(plugin)

/**
 * `kinto.includes` plugins, keyed by upstream's module names. A plugin adds services, resources,
 * capabilities, event listeners, authentication policies or hello `user` fields when the app is
 * built. An unknown name is a startup error, so a typo never silently drops a feature.
 */
import {KintoError} from '../errors.js'
import {asList} from '../config/settings.js'
import type {ResourceDefinition} from './resource.js'
import {resourceServices} from './resource.js'
import type {Runtime} from './runtime.js'
import type {Service} from './router.js'
import type {UserInfoHook} from './views.js'

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

// -------------------------------------------------------------------------------------------------
// kinto.plugins.flush: POST /__flush__ empties every backend (no permission, as upstream).

registerPlugin({
  name: 'kinto.plugins.flush',
  includeme(api) {
    api.runtime.addCapability('flush_endpoint', {
      description: 'The __flush__ endpoint can be used to remove all data from all backends.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/flush.html',
    })
    api.addService({
      name: 'flush',
      pattern: '/__flush__',
      views: new Map([
        [
          'POST',
          {
            method: 'POST',
            permission: 'public',
            async handler(ctx) {
              const {storage, permission, cache} = ctx.runtime.backends
              await storage.flush()
              await permission.flush()
              await cache.flush()
              return {status: 202, body: {}}
            },
          },
        ],
      ]),
      noTransaction: true,
    })
  },
})

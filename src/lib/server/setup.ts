/**
 * Assembles a runtime: the core services (hello, heartbeats, version, batch), the core resources
 * and their cascades, backend heartbeats, capabilities, then the `kinto.includes` plugins.
 */
import {asBool, asList} from '../config/settings.js'
import {checkAuthorizationHooks} from './auth.js'
import {checkEventListeners, pluginApi, pluginsFromSettings} from './plugins/index.js'
import {resourceServices} from './resource/services.js'
import {openapiService} from './openapi.js'
import {CORE_RESOURCES, registerCoreListeners} from './resources.js'
import type {Runtime} from './runtime.js'
import {userDataServices} from './user-data.js'
import {batchService} from './batch.js'
import {contributeService, heartbeatService, helloService, lbHeartbeatService, versionService, type UserInfoHook} from './views.js'

export function parsePlugins(runtime: Runtime, baseDir?: string): void {
  const userInfoHooks: UserInfoHook[] = []
  runtime.addService(helloService(runtime, userInfoHooks))
  runtime.addService(heartbeatService(runtime))
  runtime.addService(lbHeartbeatService())
  runtime.addService(versionService(runtime, baseDir))
  runtime.addService(contributeService(runtime))
  runtime.addService(openapiService(runtime))
  if (!runtime.readonly) runtime.addService(batchService(runtime))
  else runtime.addService({...batchService(runtime), views: new Map()})
  for (const def of CORE_RESOURCES) {
    for (const service of resourceServices(def, {settings: runtime.settings, readonly: runtime.readonly})) runtime.addService(service)
  }
  for (const service of userDataServices(runtime)) runtime.addService(service)
  registerCoreListeners(runtime)

  runtime.heartbeats.set('storage', (b, readonly) => b.storage.heartbeat(readonly))
  runtime.heartbeats.set('permission', (b, readonly) => b.permission.heartbeat(readonly))
  runtime.heartbeats.set('cache', (b) => b.cache.heartbeat())

  const policies = asList(runtime.settings, 'multiauth.policies')
  if (policies.length === 0 || policies.includes('basicauth')) {
    runtime.addCapability('basicauth', {
      description: 'Very basic authentication sessions. Not for production use.',
      url: 'http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html',
    })
  }
  if (asBool(runtime.settings, 'experimental_collection_schema_validation')) {
    runtime.addCapability('schema', {
      description: 'Validates collection records with JSON schemas.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/collections.html#collection-json-schema',
    })
  }

  checkEventListeners(runtime.settings)
  checkAuthorizationHooks(runtime.settings)
  const api = pluginApi(runtime, userInfoHooks, baseDir)
  for (const plugin of pluginsFromSettings(runtime.settings)) plugin.includeme(api)
}

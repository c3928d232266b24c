/**
 * kinto.plugins.flush: POST /__flush__ empties every backend (no permission, as upstream), 202 {}.
 *
 * The endpoint deletes everything for anyone, so it takes two switches: the plugin in
 * kinto.includes and `kinto.flush_endpoint_enabled = true` (the setting older Kinto used for it).
 * With the plugin alone, a startup warning says which setting is missing and nothing is served.
 */
import {asBool} from '../../config/settings.js'
import type {KintoPlugin} from './index.js'

export const flushPlugin: KintoPlugin = {
  name: 'kinto.plugins.flush',
  includeme(api) {
    if (!asBool(api.runtime.settings, 'flush_endpoint_enabled')) {
      api.runtime.logger.warn(
        {plugin: 'kinto.plugins.flush'},
        'kinto.includes lists kinto.plugins.flush but kinto.flush_endpoint_enabled is not true: POST /v1/__flush__ (deletes everything, no authentication) is not served.',
      )
      return
    }
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
}

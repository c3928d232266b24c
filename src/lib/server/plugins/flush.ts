/**
 * kinto.plugins.flush: POST /__flush__ empties every backend (no permission, as upstream), 202 {}.
 *
 * As upstream since Kinto 7, including the plugin is what serves the endpoint;
 * `kinto.flush_endpoint_enabled`, the switch of older Kinto, plays no part (`kinto check` flags
 * both). The endpoint deletes everything for anyone, so the server says so once at start.
 */
import type {KintoPlugin} from './index.js'

export const flushPlugin: KintoPlugin = {
  name: 'kinto.plugins.flush',
  includeme(api) {
    api.runtime.logger.warn(
      {plugin: 'kinto.plugins.flush'},
      'kinto.includes lists kinto.plugins.flush: POST /v1/__flush__ deletes every bucket, collection, record and permission, without authentication (for test servers only).',
    )
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

/** kinto.plugins.flush: POST /__flush__ empties every backend (no permission, as upstream). */
import type {KintoPlugin} from './index.js'

export const flushPlugin: KintoPlugin = {
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
}

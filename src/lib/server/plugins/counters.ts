/**
 * kinto.plugins.counters: GET /__counters__ (no authentication, as upstream: keep it on the
 * private side; `kinto deploy nginx` does) shows how many objects and tombstones are stored per
 * resource type, leaving out the zeros:
 *
 *   {"objects": {"bucket": 2, "record": 1000000}, "tombstones": {"record": 12}}
 *
 * One query per resource type (the storage's countAll), never a walk over collections.
 */
import type {KintoPlugin} from './index.js'

/** Upstream's list, in its order. */
export const COUNTED_RESOURCES = ['account', 'bucket', 'group', 'collection', 'record', 'history', 'attachments']

export const countersPlugin: KintoPlugin = {
  name: 'kinto.plugins.counters',
  includeme(api) {
    api.runtime.addCapability('counters_endpoint', {
      description: 'The __counters__ endpoint exposes how many objects are stored.',
      url: 'https://kinto.readthedocs.io/en/latest/api/1.x/counters.html',
    })
    api.addService({
      name: 'counters',
      pattern: '/__counters__',
      noTransaction: true,
      views: new Map([
        [
          'GET',
          {
            method: 'GET',
            permission: 'public',
            async handler(ctx) {
              const storage = ctx.runtime.backends.storage
              const counts = await Promise.all(COUNTED_RESOURCES.map((name) => storage.countAll(name)))
              const objects: Record<string, number> = {}
              const tombstones: Record<string, number> = {}
              COUNTED_RESOURCES.forEach((name, i) => {
                if (counts[i].objects > 0) objects[name] = counts[i].objects
                if (counts[i].tombstones > 0) tombstones[name] = counts[i].tombstones
              })
              return {status: 200, body: {objects, tombstones}}
            },
          },
        ],
      ]),
    })
  },
}

/**
 * kinto.plugins.statsd: upstream 26 sends StatsD metrics only with this include AND
 * `kinto.statsd_url`. We send them whenever `kinto.statsd_url` is set (the production guide's
 * rule; see src/lib/monitoring/statsd-settings.ts), so the include only has to be accepted, and
 * refused without a URL to send to (upstream fails at start-up then too).
 *
 * Registered by app.ts (registerPlugin) until it is listed in BUILTIN of ./index.ts; no side
 * effect here, so that index.ts may import this file without an import cycle.
 */
import {asString} from '../../config/settings.js'
import {KintoError} from '../../errors.js'
import type {KintoPlugin} from './index.js'

export const statsdPlugin: KintoPlugin = {
  name: 'kinto.plugins.statsd',
  includeme(api) {
    const url = (asString(api.runtime.settings, 'statsd_url') ?? '').trim()
    if (!url || url === 'None') {
      throw new KintoError('kinto.includes lists kinto.plugins.statsd but kinto.statsd_url is not set: there is nowhere to send metrics.', {
        code: 'KINTO_CONFIG_INVALID',
        hint: 'Set kinto.statsd_url = udp://<statsd host>:8125, or remove kinto.plugins.statsd from kinto.includes.',
      })
    }
  },
}

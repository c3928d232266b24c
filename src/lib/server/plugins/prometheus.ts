/**
 * kinto.plugins.prometheus: GET /__metrics__ serves the metrics in Prometheus' text format (no
 * authentication, as upstream: keep it on the private side; `kinto deploy nginx` does), and hello
 * gets the `prometheus` capability with the prefix and the disabled metrics. What is measured is
 * the same as for StatsD; the exporter is src/lib/monitoring/prometheus.ts.
 */
import {asList} from '../../config/settings.js'
import {checkPrometheusNames, histogramBuckets, PROMETHEUS_CONTENT_TYPE, prometheusFor, scrape} from '../../monitoring/prometheus.js'
import {serviceUnavailable} from '../errors.js'
import {RawBody} from '../types.js'
import type {KintoPlugin} from './index.js'

export const prometheusPlugin: KintoPlugin = {
  name: 'kinto.plugins.prometheus',
  checkSettings(settings) {
    histogramBuckets(settings)
    checkPrometheusNames(settings)
  },
  includeme(api) {
    const metrics = prometheusFor(api.runtime.settings)
    api.runtime.addCapability('prometheus', {
      description: 'Prometheus metrics.',
      url: 'https://github.com/Kinto/kinto/',
      prefix: metrics.prefix,
      // As written in the ini, as upstream shows them (with their prefix when they have one).
      disabled_metrics: asList(api.runtime.settings, 'prometheus_disabled_metrics'),
    })
    api.addService({
      name: 'prometheus_metrics',
      pattern: '/__metrics__',
      noTransaction: true,
      openapi: false,
      views: new Map([
        [
          'GET',
          {
            method: 'GET',
            permission: 'public',
            async handler(ctx) {
              let text: string
              try {
                text = await scrape(metrics)
              } catch (err) {
                ctx.runtime.logger.warn({err: (err as Error).message}, 'Metrics of the other workers could not be gathered for /__metrics__.')
                throw serviceUnavailable(ctx.runtime.retryAfter)
              }
              return {status: 200, headers: {'Content-Type': PROMETHEUS_CONTENT_TYPE}, body: new RawBody(Buffer.from(text))}
            },
          },
        ],
      ]),
    })
  },
}

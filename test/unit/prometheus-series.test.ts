/**
 * The series a Prometheus metric keeps are bounded (MAX_SERIES_PER_METRIC): labels made of record
 * ids or user ids would otherwise add series, in memory and in every scrape, for the life of the
 * server. The least recently observed series goes first.
 */
import {expect, test} from 'vitest'

import {buildSettings} from '../../src/lib/config/settings.js'
import {MAX_SERIES_PER_METRIC, PrometheusMetrics} from '../../src/lib/monitoring/prometheus.js'

const settings = () => buildSettings({'kinto.includes': 'kinto.plugins.prometheus'}, {})
const ids = (text: string, metric: string) => [...text.matchAll(new RegExp(`^kinto_${metric}\\{[^}]*record_id="(r\\d+)"`, 'gm'))].map((m) => m[1]).sort()

test('past the bound, the series observed least recently leave the scrape (and their _created)', async () => {
  const metrics = new PrometheusMetrics(settings(), {maxSeries: 3})
  const observe = (id: string) => metrics.timer('request_duration_seconds', 5, [['method', 'get'], ['record_id', id]])
  for (let i = 0; i < 10; i++) observe(`r${i}`)
  observe('r7')
  observe('r10')
  metrics.unique('request_summary', [['method', 'get'], ['record_id', 'r1']])
  metrics.count('cache_hits')
  const text = await metrics.text()
  expect(ids(text, 'request_duration_seconds_count')).toEqual(['r10', 'r7', 'r9'])
  expect(ids(text, 'request_duration_seconds_created')).toEqual(['r10', 'r7', 'r9'])
  // Each metric has its own bound; a metric without labels keeps its one series.
  expect(ids(text, 'request_summary_total')).toEqual(['r1'])
  expect(text).toMatch(/^kinto_cache_hits_total 1$/m)
  expect(text).toMatch(/^kinto_cache_hits_created \d/m)
  // A series seen again after it went starts from zero.
  observe('r0')
  expect(await metrics.text()).toMatch(/^kinto_request_duration_seconds_count\{method="get",record_id="r0"\} 1$/m)
})

test('the default bound', async () => {
  expect(MAX_SERIES_PER_METRIC).toBe(10_000)
  const metrics = new PrometheusMetrics(settings())
  for (let i = 0; i < MAX_SERIES_PER_METRIC + 50; i++) metrics.unique('users', [['auth', 'basicauth'], ['userid', `u${i}`]])
  const text = await metrics.text()
  expect(text.match(/^kinto_users_total\{/gm)).toHaveLength(MAX_SERIES_PER_METRIC)
  expect(text).not.toMatch(/userid="u49"/)
  expect(text).toMatch(/userid="u50"/)
})

/**
 * A running server (startServer on a port, PostgreSQL backends: PGlite here, the real server
 * when KINTO_TEST_DATABASE_URL is set) driven by kinto-http over HTTP, while a real UDP listener
 * plays StatsD: the metric names of the issue and of upstream 26 arrive, with the prefix of the
 * ini, and the backend timers cover the PostgreSQL backends inside request transactions.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {realServerUrl} from '../helpers/db.js'
import {KintoClient, type KintoBatchClient} from '../helpers/kinto-http.js'
import {basicAuth, startTestServer, type TestServer} from '../client/helpers.js'
import {statsdListener, type StatsdListener} from '../server/statsd-listener.js'

const kind = realServerUrl ? 'postgresql' : 'pglite'

describe(`StatsD from a running server (${kind})`, () => {
  let statsd: StatsdListener
  let srv: TestServer

  beforeAll(async () => {
    statsd = await statsdListener()
    srv = await startTestServer(kind, {
      'kinto.statsd_url': statsd.url,
      'kinto.includes': 'kinto.plugins.statsd',
      'kinto.project_name': 'kintoprod',
    })
  }, 120_000)
  afterAll(async () => {
    await srv?.close()
    await statsd?.close()
  })

  test('the issue’s names and upstream 26’s arrive while kinto-http works', async () => {
    const alice = new KintoClient(srv.remote, {headers: {Authorization: basicAuth('alice', 'pw-a')}})
    await alice.fetchServerInfo()
    await alice.createBucket('b1')
    const bucket = alice.bucket('b1')
    await bucket.createCollection('c1')
    const coll = bucket.collection('c1')
    await coll.createRecord({title: 'one'})
    await coll.listRecords()
    await alice.batch((batch: KintoBatchClient) => {
      void batch.bucket('b1').collection('c1').createRecord({title: 'two'})
      void batch.bucket('b1').createGroup('g1', [])
    })
    const heartbeat = await fetch(`${srv.remote}/__heartbeat__`)
    expect(heartbeat.status).toBe(200)

    await statsd.waitFor(/^kintoprod\.view\.heartbeat\.GET:/)
    const names = statsd.names()
    const expected = [
      'kintoprod.users',
      'kintoprod.authn_type.basicauth',
      'kintoprod.authentication.permits',
      'kintoprod.view.hello.GET',
      'kintoprod.view.heartbeat.GET',
      'kintoprod.view.batch.POST',
      'kintoprod.view.bucket-object.PUT',
      'kintoprod.view.collection-object.PUT',
      'kintoprod.view.record-plural.POST',
      'kintoprod.view.record-plural.GET',
      'kintoprod.storage.create',
      'kintoprod.storage.list_all',
      'kintoprod.storage.resource_timestamp',
      'kintoprod.permission.get_user_principals',
      'kintoprod.permission.check_permission',
      'kintoprod.cache.ping',
      'kintoprod.backend.storage.seconds.method.create',
      'kintoprod.backend.permission.seconds.method.replace_object_permissions',
      'kintoprod.backend.cache.seconds.method.ping',
      'kintoprod.authentication.basicauth.seconds.method.authenticated_userid',
      'kintoprod.request_summary',
      'kintoprod.request_size',
      'kintoprod.authentication',
    ]
    expect(expected.filter((n) => !names.has(n))).toEqual([])
    expect(statsd.lines).toContain('kintoprod.request_summary:method.post.endpoint.batch.bucket_id..collection_id..group_id..record_id..status.200|s')
    expect(statsd.lines).toContain('kintoprod.request_summary:method.put.endpoint.group-object.bucket_id.b1.collection_id..group_id.g1.record_id..status.201|s')
    // Every line is a well-formed StatsD line (name:value|type).
    for (const line of statsd.lines) expect(line).toMatch(/^[\w.-]+:[^|\n]+\|(ms|c|s|g)$/)
  })
})

/**
 * Links between records and files written by kinto-attachment before 9.0 (storage objects with
 * resource name '' below `__attachments__`; 9.0 names them `attachments` and its `kinto migrate`
 * renames the old ones). A database adopted from such a deployment still has them: deleting or
 * replacing the record, its collection or its bucket must remove their files as for new links.
 * Runs on every backend kind this run tests (memory, PGlite, and PostgreSQL when configured).
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import type {Runtime} from '../../src/lib/server/runtime.js'
import {BACKEND_KINDS, basicAuth, startTestServer, type TestServer} from '../client/helpers.js'
import {tempFolders} from '../helpers/tmp.js'

const ALICE = basicAuth('alice', 'pw-alice')
const tmp = tempFolders('attach-legacy')
const PARENT = '__attachments__'

describe.each(BACKEND_KINDS)('links written by kinto-attachment < 9.0 (%s)', (kind) => {
  let srv: TestServer
  let files: string
  let runtime: Runtime

  beforeAll(async () => {
    files = tmp()
    srv = await startTestServer(kind, {
      'kinto.includes': 'kinto_attachment',
      'kinto.bucket_create_principals': 'system.Authenticated',
      'kinto.attachment.base_path': files,
      'kinto.attachment.folder': '{bucket_id}/{collection_id}',
    })
    runtime = (srv.server.app as unknown as {kinto: Runtime}).kinto
    for (const p of ['/buckets/b', '/buckets/b/collections/c', '/buckets/b/collections/d']) {
      expect((await fetch(`${srv.remote}${p}`, {method: 'PUT', headers: {Authorization: ALICE}})).status).toBe(201)
    }
  }, 60_000)
  afterAll(async () => srv?.close())

  /** Uploads a file to a record, then rewrites its link as kinto-attachment 8 wrote it; returns the file's path. */
  async function legacyUpload(collection: string, record: string): Promise<string> {
    const fd = new FormData()
    fd.append('attachment', new Blob([record]), `${record}.txt`)
    const res = await fetch(`${srv.remote}/buckets/b/collections/${collection}/records/${record}/attachment`, {method: 'POST', headers: {Authorization: ALICE}, body: fd})
    expect([200, 201]).toContain(res.status)
    const {location} = (await res.json()) as {location: string}
    const storage = runtime.backends.storage
    const filters = [{field: 'record_uri', operator: 'eq' as const, value: `/buckets/b/collections/${collection}/records/${record}`}]
    const [link] = await storage.list('attachments', PARENT, {filters})
    expect(link.location).toBe(location)
    await storage.deleteAll('attachments', PARENT, {filters, withDeleted: false})
    const {id: _id, last_modified: _lm, ...data} = link
    await storage.create('', PARENT, data)
    expect(await storage.list('attachments', PARENT, {filters})).toHaveLength(0)
    return path.join(files, location)
  }

  const del = (p: string) => fetch(`${srv.remote}${p}`, {method: 'DELETE', headers: {Authorization: ALICE}}).then((r) => r.status)

  test('deleting the record, its attachment, its collection or its bucket removes the file and the link', async () => {
    const byRecord = await legacyUpload('c', 'r1')
    const byAttachment = await legacyUpload('c', 'r2')
    const byCollection = await legacyUpload('d', 'r3')
    expect([byRecord, byAttachment, byCollection].every((f) => existsSync(f))).toBe(true)

    expect(await del('/buckets/b/collections/c/records/r1')).toBe(200)
    expect(existsSync(byRecord)).toBe(false)
    expect(await del('/buckets/b/collections/c/records/r2/attachment')).toBe(204)
    expect(existsSync(byAttachment)).toBe(false)
    expect(await del('/buckets/b/collections/d')).toBe(200)
    expect(existsSync(byCollection)).toBe(false)
    expect(await runtime.backends.storage.list('', PARENT)).toHaveLength(0)
  })

  test('a new upload to the record replaces the old file', async () => {
    const old = await legacyUpload('c', 'r4')
    const fd = new FormData()
    fd.append('attachment', new Blob(['new']), 'new.txt')
    const res = await fetch(`${srv.remote}/buckets/b/collections/c/records/r4/attachment`, {method: 'POST', headers: {Authorization: ALICE}, body: fd})
    expect(res.status).toBe(200)
    expect(existsSync(old)).toBe(false)
    expect(existsSync(path.join(files, ((await res.json()) as {location: string}).location))).toBe(true)
  })

  test('deleting the bucket removes the files of its legacy links', async () => {
    const file = await legacyUpload('c', 'r5')
    expect(await del('/buckets/b')).toBe(200)
    expect(existsSync(file)).toBe(false)
  })
})

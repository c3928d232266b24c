/**
 * Attachments through the real clients against a running `kinto start`, on memory, the embedded
 * engine (PGlite) and PostgreSQL (KINTO_TEST_DATABASE_URL): kinto-http's addAttachment /
 * removeAttachment, `curl -F` uploads, downloads from the server byte-identical, cascade on
 * record deletion and concurrent uploads to one record. The ini is written as for upstream
 * Kinto with kinto-attachment (`kinto.includes = … kinto_attachment`, local storage).
 */
import {execFile, spawnSync} from 'node:child_process'
import {createRequire} from 'node:module'
import {createHash, randomBytes} from 'node:crypto'
import {readdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {KintoClient} from '../helpers/kinto-http.js'
import {tempFolders} from '../helpers/tmp.js'
import {BACKEND_KINDS, basicAuth, startTestServer, type TestServer} from './helpers.js'

const ALICE = basicAuth('alice', 'pw-alice')
const tmp = tempFolders('attach-client')
const hasCurl = spawnSync('curl', ['--version']).status === 0
const curlSkip = hasCurl ? '' : ' (SKIPPED: curl is not installed)'
// kinto-http's Node build posts the `form-data` package's bodies, which its own fetch (node-fetch) sends.
const requireFromKintoHttp = createRequire(createRequire(import.meta.url).resolve('kinto-http'))
const nodeFetch = requireFromKintoHttp('node-fetch') as typeof fetch

/** curl as a child process (asynchronous: the server runs in this process). */
function curl(args: string[]): Promise<{code: number; stdout: string}> {
  return new Promise((resolve) => {
    execFile('curl', args, {encoding: 'utf8', timeout: 30_000}, (err, stdout) => resolve({code: err ? Number((err as {code?: number}).code ?? 1) : 0, stdout}))
  })
}
type Json = Record<string, any>

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function filesIn(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, {withFileTypes: true})) {
      if (e.isDirectory()) walk(path.join(d, e.name))
      else out.push(path.relative(dir, path.join(d, e.name)))
    }
  }
  walk(dir)
  return out.sort()
}

describe.each(BACKEND_KINDS)('attachments with real clients (%s)', (kind) => {
  let srv: TestServer
  let files: string
  let origin: string
  let client: KintoClient

  beforeAll(async () => {
    files = tmp()
    srv = await startTestServer(kind, {
      'kinto.includes': 'kinto.plugins.default_bucket kinto_attachment',
      'kinto.bucket_create_principals': 'system.Authenticated',
      'kinto.attachment.base_path': files,
      'kinto.attachment.base_url': 'http://localhost:8888/attachments/',
      'kinto.attachment.folder': '{bucket_id}/{collection_id}',
    })
    origin = new URL(srv.remote).origin
    client = new KintoClient(srv.remote, {headers: {Authorization: ALICE}, fetchFunc: nodeFetch})
    await client.createBucket('main')
    await client.bucket('main').createCollection('docs')
  }, 120_000)
  afterAll(async () => srv?.close())

  const download = async (location: string) => {
    const res = await fetch(`${origin}${new URL(location).pathname}`)
    return {status: res.status, bytes: Buffer.from(await res.arrayBuffer())}
  }

  test('kinto-http addAttachment creates the record and stores the file; removeAttachment removes it', async () => {
    const docs = client.bucket('main').collection('docs')
    expect((await client.fetchServerCapabilities()).attachments).toMatchObject({base_url: 'http://localhost:8888/attachments/'})
    const content = randomBytes(200_000)
    const dataURI = `data:application/pdf;name=report.pdf;base64,${content.toString('base64')}`
    const {data} = (await docs.addAttachment(dataURI, {id: 'rep', title: 'Report'})) as {data: Json}
    expect(data).toMatchObject({id: 'rep', title: 'Report'})
    expect(data.attachment).toMatchObject({filename: 'report.pdf', mimetype: 'application/pdf', size: content.length, hash: sha256(content)})
    expect(data.attachment.location).toMatch(/^http:\/\/localhost:8888\/attachments\/main\/docs\/[0-9a-f-]{36}\.pdf$/)
    const got = await download(data.attachment.location)
    expect(got.status).toBe(200)
    expect(got.bytes.equals(content)).toBe(true)

    // Replacing keeps the record's other fields and removes the old file.
    const next = Buffer.from('second version')
    const {data: replaced} = (await docs.addAttachment(`data:text/plain;name=notes.txt;base64,${next.toString('base64')}`, {id: 'rep'})) as {data: Json}
    expect(replaced.title).toBe('Report')
    expect(replaced.attachment.hash).toBe(sha256(next))
    expect((await download(data.attachment.location)).status).toBe(404)
    expect(filesIn(files)).toEqual([new URL(replaced.attachment.location).pathname.replace('/attachments/', '')])

    await docs.removeAttachment('rep')
    const {data: after} = (await docs.getRecord('rep')) as {data: Json}
    expect(after.attachment).toBeNull()
    expect(filesIn(files)).toEqual([])
  })

  test('deleting the record deletes its file', async () => {
    const docs = client.bucket('main').collection('docs')
    const {data} = (await docs.addAttachment(`data:application/json;name=a.json;base64,${Buffer.from('{"a": 1}').toString('base64')}`, {id: 'gone'})) as {data: Json}
    expect(filesIn(files)).toHaveLength(1)
    await docs.deleteRecord('gone')
    expect(filesIn(files)).toEqual([])
    expect((await download(data.attachment.location)).status).toBe(404)
  })

  test('deleting a collection or a bucket deletes the files below it', async () => {
    await client.createBucket('temp')
    const bucket = client.bucket('temp')
    await bucket.createCollection('one')
    await bucket.createCollection('two')
    const add = (cid: string, id: string) => bucket.collection(cid).addAttachment(`data:text/plain;name=${id}.txt;base64,${Buffer.from(id).toString('base64')}`, {id})
    await add('one', 'a')
    await add('two', 'b')
    await add('two', 'c')
    expect(filesIn(files)).toHaveLength(3)
    await bucket.deleteCollection('one')
    expect(filesIn(files)).toHaveLength(2)
    await client.deleteBucket('temp')
    expect(filesIn(files)).toEqual([])
  })

  test('the default bucket, through kinto-http', async () => {
    const mine = client.bucket('default').collection('mine')
    const {data} = (await mine.addAttachment(`data:text/plain;name=mine.txt;base64,${Buffer.from('mine').toString('base64')}`, {id: 'm1'})) as {data: Json}
    expect(data.attachment.hash).toBe(sha256(Buffer.from('mine')))
    await mine.deleteRecord('m1')
    expect(filesIn(files)).toEqual([])
  })

  test('concurrent uploads to one record: one file remains, the one the record names', async () => {
    const docs = client.bucket('main').collection('docs')
    const outcomes = await Promise.allSettled(
      Array.from({length: 5}, (_, i) => docs.addAttachment(`data:text/plain;name=u${i}.txt;base64,${Buffer.from(`upload ${i}`).toString('base64')}`, {id: 'race'})),
    )
    expect(outcomes.some((o) => o.status === 'fulfilled')).toBe(true)
    for (const o of outcomes) if (o.status === 'rejected') expect(String(o.reason)).toMatch(/HTTP 4\d\d/)
    const {data} = (await docs.getRecord('race')) as {data: Json}
    expect(filesIn(files)).toEqual([new URL(data.attachment.location).pathname.replace('/attachments/', '')])
    expect((await download(data.attachment.location)).bytes.toString()).toMatch(/^upload \d$/)
    await docs.deleteRecord('race')
  })

  test.skipIf(!hasCurl)(`curl -F uploads, with data and permissions${curlSkip}`, async () => {
    const dir = tmp()
    const file = path.join(dir, 'data.csv')
    const content = Buffer.from('a,b\n1,2\n')
    writeFileSync(file, content)
    const url = `${srv.remote}/buckets/main/collections/docs/records/curl/attachment`
    const run = await curl(['-sS', '-u', 'alice:pw-alice', '-F', `attachment=@${file};type=text/csv`, '-F', 'data={"kind": "table"}', '-F', 'permissions={"read": ["system.Everyone"]}', '-w', '\n%{http_code}', url])
    expect(run.code).toBe(0)
    const [body, code] = run.stdout.trim().split('\n')
    expect(code).toBe('201')
    const attachment = JSON.parse(body) as Json
    expect(attachment).toMatchObject({filename: 'data.csv', mimetype: 'text/csv', size: content.length, hash: sha256(content)})
    const record = (await (await fetch(`${srv.remote}/buckets/main/collections/docs/records/curl`)).json()) as Json
    expect(record.data).toMatchObject({kind: 'table', attachment})
    expect((await download(attachment.location)).bytes.equals(content)).toBe(true)
    const refused = await curl(['-sS', '-u', 'alice:pw-alice', '-F', `attachment=@${file};filename=tool.exe`, url])
    expect(JSON.parse(refused.stdout)).toMatchObject({code: 400, errno: 107, message: 'body: File extension is not allowed.'})
  })
})

/**
 * kinto_attachment on a running `kinto start` (memory backend), over real HTTP with multipart
 * bodies built by undici's FormData: uploads, replacement, removal, cascade deletes, validation
 * (each 400 with Kinto's error body and nothing on disk), size limits, gzipped, permissions,
 * concurrent uploads to one record, serving the files (ETag, Range) and the settings' checks.
 */
import {createHash} from 'node:crypto'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {buildSettings} from '../../src/lib/config/settings.js'
import {KintoError} from '../../src/lib/errors.js'
import {readAttachmentSettings} from '../../src/lib/server/plugins/attachment/settings.js'
import {basicAuth, startTestServer, type TestServer} from '../client/helpers.js'
import {tempFolders} from '../helpers/tmp.js'

const ALICE = basicAuth('alice', 'pw-alice')
const BOB = basicAuth('bob', 'pw-bob')
const tmp = tempFolders('attach')

type Json = Record<string, any>

/** Every file below a folder (relative paths). */
function filesIn(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, {withFileTypes: true})) {
      const full = path.join(d, e.name)
      if (e.isDirectory()) walk(full)
      else out.push(path.relative(dir, full))
    }
  }
  walk(dir)
  return out.sort()
}

function form(parts: Array<[string, string | {content: Buffer | string; filename: string; type?: string}]>): FormData {
  const fd = new FormData()
  for (const [name, value] of parts) {
    if (typeof value === 'string') fd.append(name, value)
    else fd.append(name, new Blob([value.content], {type: value.type ?? 'application/octet-stream'}), value.filename)
  }
  return fd
}

async function call(remote: string, method: string, p: string, options: {body?: FormData | string; auth?: string | null; headers?: Record<string, string>} = {}) {
  const headers: Record<string, string> = {...options.headers}
  if (options.auth !== null) headers.Authorization = options.auth ?? ALICE
  const res = await fetch(`${remote}${p}`, {method, headers, body: options.body})
  const text = await res.text()
  let body: Json | undefined
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  return {status: res.status, headers: res.headers, body: body as Json, text}
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function startWith(extra: Record<string, string>): Promise<{srv: TestServer; files: string; origin: string}> {
  const files = tmp()
  const srv = await startTestServer('memory', {
    'kinto.includes': 'kinto.plugins.default_bucket kinto_attachment',
    'kinto.bucket_create_principals': 'system.Authenticated',
    'kinto.attachment.base_path': files,
    'kinto.attachment.base_url': 'http://localhost/files/',
    ...extra,
  })
  return {srv, files, origin: new URL(srv.remote).origin}
}

describe('kinto_attachment on kinto start', () => {
  let srv: TestServer
  let files: string
  let origin: string
  const REC = '/buckets/b1/collections/c1/records'

  beforeAll(async () => {
    ;({srv, files, origin} = await startWith({
      'kinto.attachment.folder': '{bucket_id}/{collection_id}',
      'kinto.attachment.resources.b1.c1.max_size_bytes': '1000',
      'kinto.attachment.resources.gz.gzipped': 'true',
      'kinto.attachment.resources.keep.keep_old_files': 'true',
    }))
    for (const b of ['b1', 'gz', 'keep']) {
      expect((await call(srv.remote, 'PUT', `/buckets/${b}`)).status).toBe(201)
      expect((await call(srv.remote, 'PUT', `/buckets/${b}/collections/c1`)).status).toBe(201)
    }
  }, 60_000)
  afterAll(async () => srv?.close())

  const served = (location: string) => fetch(`${origin}${new URL(location).pathname}`)

  test('the capability is in hello', async () => {
    const {body} = await call(srv.remote, 'GET', '/')
    expect(body.capabilities.attachments).toMatchObject({
      description: 'Add file attachments to records',
      url: 'https://github.com/Kinto/kinto-attachment/',
      base_url: 'http://localhost/files/',
      gzipped: false,
    })
  })

  test('an upload creates the record (201), a second replaces the file (200) and removes the old one', async () => {
    const content = '{"first": true}'
    const first = await call(srv.remote, 'POST', `${REC}/r1/attachment`, {
      body: form([
        ['attachment', {content, filename: 'first.json', type: 'application/json'}],
        ['data', '{"title": "hello"}'],
        ['permissions', '{"read": ["system.Everyone"]}'],
      ]),
    })
    expect(first.status).toBe(201)
    // Absolute, as upstream's web framework makes every Location.
    expect(first.headers.get('location')).toBe(`${srv.remote}/buckets/b1/collections/c1/records/r1`)
    expect(first.body).toEqual({
      filename: 'first.json',
      hash: sha256(content),
      location: expect.stringMatching(/^http:\/\/localhost\/files\/b1\/c1\/[0-9a-f-]{36}\.json$/),
      mimetype: 'application/json',
      size: content.length,
    })
    const record = await call(srv.remote, 'GET', `${REC}/r1`, {auth: null})
    expect(record.status).toBe(200)
    expect(record.body.data).toMatchObject({title: 'hello', attachment: first.body})
    expect(record.headers.get('etag')).toBe(first.headers.get('etag'))
    expect(filesIn(files)).toEqual([new URL(first.body.location).pathname.replace('/files/', '')])

    const download = await served(first.body.location)
    expect(download.status).toBe(200)
    expect(download.headers.get('content-type')).toBe('application/json')
    expect(await download.text()).toBe(content)

    const second = await call(srv.remote, 'POST', `${REC}/r1/attachment`, {
      body: form([['attachment', {content: 'second', filename: 'second.txt'}]]),
    })
    expect(second.status).toBe(200)
    const after = await call(srv.remote, 'GET', `${REC}/r1`)
    expect(after.body.data.title).toBe('hello')
    expect(after.body.data.attachment.filename).toBe('second.txt')
    expect(filesIn(files)).toEqual([new URL(second.body.location).pathname.replace('/files/', '')])
    expect((await served(first.body.location)).status).toBe(404)
  })

  test('served files answer ETag revalidation, ranges and HEAD', async () => {
    const content = Buffer.from('0123456789abcdef')
    const up = await call(srv.remote, 'POST', `${REC}/served/attachment`, {body: form([['attachment', {content, filename: 'range.txt'}]])})
    expect(up.status).toBe(201)
    const url = `${origin}${new URL(up.body.location).pathname}`
    const full = await fetch(url)
    const etag = full.headers.get('etag')!
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/)
    expect(full.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(full.headers.get('accept-ranges')).toBe('bytes')
    expect(Buffer.from(await full.arrayBuffer()).equals(content)).toBe(true)
    expect((await fetch(url, {headers: {'If-None-Match': etag}})).status).toBe(304)
    const part = await fetch(url, {headers: {Range: 'bytes=4-7'}})
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe('bytes 4-7/16')
    expect(await part.text()).toBe('4567')
    const suffix = await fetch(url, {headers: {Range: 'bytes=-3'}})
    expect(await suffix.text()).toBe('def')
    expect((await fetch(url, {headers: {Range: 'bytes=99-'}})).status).toBe(416)
    const head = await fetch(url, {method: 'HEAD'})
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe('16')
    // Nothing outside of base_path, no hidden (in-progress) files.
    expect((await fetch(`${origin}/files/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404)
    expect((await fetch(`${origin}/files/b1/c1/.upload-x.tmp`)).status).toBe(404)
  })

  test('a served file runs no script in the API’s origin (an uploaded SVG could)', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
    const up = await call(srv.remote, 'POST', `${REC}/svg/attachment`, {body: form([['attachment', {content: svg, filename: 'logo.svg', type: 'image/svg+xml'}]])})
    expect(up.status).toBe(201)
    const res = await served(up.body.location)
    expect(res.headers.get('content-type')).toBe('image/svg+xml')
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; sandbox")
  })

  test('DELETE …/attachment removes the file and the attribute', async () => {
    const up = await call(srv.remote, 'POST', `${REC}/del/attachment`, {body: form([['attachment', {content: 'x', filename: 'x.txt'}]])})
    expect(up.status).toBe(201)
    const before = filesIn(files).length
    const del = await call(srv.remote, 'DELETE', `${REC}/del/attachment`)
    expect(del.status).toBe(204)
    expect(del.text).toBe('')
    const after = await call(srv.remote, 'GET', `${REC}/del`)
    expect(after.body.data.attachment).toBeNull()
    // As upstream (and as the upload): the record's new timestamp, for a following If-Match.
    expect(del.headers.get('etag')).toBe(`"${after.body.data.last_modified}"`)
    expect(del.headers.get('last-modified')).toBe(after.headers.get('last-modified'))
    expect(filesIn(files).length).toBe(before - 1)
    expect((await served(up.body.location)).status).toBe(404)
  })

  test('If-Match and If-None-Match are preconditions on the record (upstream ignores them): 412, nothing changed', async () => {
    const up = await call(srv.remote, 'POST', `${REC}/cond/attachment`, {body: form([['attachment', {content: 'x', filename: 'x.txt'}]])})
    expect(up.status).toBe(201)
    const before = filesIn(files)
    const stale = {'If-Match': '"1"'}
    const post = await call(srv.remote, 'POST', `${REC}/cond/attachment`, {body: form([['attachment', {content: 'y', filename: 'y.txt'}]]), headers: stale})
    expect(post.status).toBe(412)
    expect(post.body.errno).toBe(114)
    const create = await call(srv.remote, 'POST', `${REC}/cond/attachment`, {body: form([['attachment', {content: 'y', filename: 'y.txt'}]]), headers: {'If-None-Match': '*'}})
    expect(create.status).toBe(412)
    expect((await call(srv.remote, 'DELETE', `${REC}/cond/attachment`, {headers: stale})).status).toBe(412)
    const record = await call(srv.remote, 'GET', `${REC}/cond`)
    expect(record.body.data.attachment.location).toBe(up.body.location)
    expect(filesIn(files)).toEqual(before)
    const fresh = {'If-Match': `"${record.body.data.last_modified}"`}
    expect((await call(srv.remote, 'DELETE', `${REC}/cond/attachment`, {headers: fresh})).status).toBe(204)
  })

  test.each([
    ['a forbidden extension', () => form([['attachment', {content: 'MZ', filename: 'tool.exe'}]]), 107, 'body: File extension is not allowed.'],
    ['no file field', () => form([['data', '{"a": 1}']]), 109, 'Attachment missing.'],
    ['the file field as text', () => form([['attachment', 'not a file']]), 107, 'body: Filename is required.'],
    ['a file with an empty filename (a form sent with no file chosen)', () => form([['attachment', {content: '', filename: ''}]]), 107, 'body: Filename is required.'],
    [
      'two file fields',
      () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['attachment', {content: 'b', filename: 'b.txt'}]]),
      109,
      "body: only one 'attachment' file is accepted.",
    ],
    [
      'a file under another name',
      () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['other', {content: 'b', filename: 'b.txt'}]]),
      109,
      "body: 'other' not in ('data', 'permissions')",
    ],
    ['malformed data JSON', () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['data', '{"a": ']]), 109, /^body: data is not valid JSON \(/],
    ['data sent as a file', () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['data', {content: '{}', filename: 'd.json'}]]), 109, "body: 'data' field should be passed as form data, not files"],
    ['an unexpected field', () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['extra', '1']]), 109, "body: 'extra' not in ('data', 'permissions')"],
    // The file is on disk under its final name when the record's write fails: it is removed.
    ['a record the write refuses', () => form([['attachment', {content: 'a', filename: 'a.txt'}], ['data', '{"id": "another"}']]), 107, /id/],
    ['a file over max_size_bytes', () => form([['attachment', {content: Buffer.alloc(1500, 1), filename: 'big.txt'}]]), 107, 'body: File size (1500 bytes) exceeds the limit (1000 bytes).'],
    // Upstream's order: the size is checked before the extension.
    ['a file over max_size_bytes of a forbidden extension', () => form([['attachment', {content: Buffer.alloc(1500, 1), filename: 'big.exe'}]]), 107, 'body: File size (1500 bytes) exceeds the limit (1000 bytes).'],
  ])('%s: 400 with Kinto’s error body, nothing written', async (_name, body, errno, message) => {
    const before = filesIn(files)
    const res = await call(srv.remote, 'POST', `${REC}/invalid/attachment`, {body: body()})
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({code: 400, errno})
    if (typeof message === 'string') expect(res.body.message).toBe(message)
    else expect(res.body.message).toMatch(message)
    expect(filesIn(files)).toEqual(before)
    expect((await call(srv.remote, 'GET', `${REC}/invalid`)).status).toBe(404)
  })

  test('a body that is not multipart: 400 as upstream; other routes keep their 415', async () => {
    const res = await call(srv.remote, 'POST', `${REC}/json/attachment`, {body: '{}', headers: {'Content-Type': 'application/json'}})
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({errno: 107, message: 'Content-Type should be multipart/form-data'})
    const other = await call(srv.remote, 'POST', '/buckets', {body: form([['data', '{}']])})
    expect(other.status).toBe(415)
    const truncated = await call(srv.remote, 'POST', `${REC}/cut/attachment`, {
      body: '--zz\r\nContent-Disposition: form-data; name="attachment"; filename="a.txt"\r\n\r\nabc',
      headers: {'Content-Type': 'multipart/form-data; boundary=zz'},
    })
    expect(truncated.status).toBe(400)
    expect(truncated.body.errno).toBe(107)
    const multipart = (body: string, contentType = 'multipart/form-data; boundary=x') =>
      call(srv.remote, 'POST', `${REC}/hostile/attachment`, {body, headers: {'Content-Type': contentType}})
    // Upstream's words (Python's cgi, a bytes repr included).
    expect((await multipart('abc', 'multipart/form-data')).body).toMatchObject({code: 400, errno: 107, message: "Invalid boundary in multipart form: b''"})
    expect((await multipart('--x\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\n1\r\n--x--\r\n')).status).toBe(400)
    // A binary part without a filename is no file either.
    const nameless = '--x\r\nContent-Disposition: form-data; name="attachment"\r\nContent-Type: application/octet-stream\r\n\r\nabc\r\n--x--\r\n'
    expect((await multipart(nameless)).body).toMatchObject({code: 400, errno: 107, message: 'body: Filename is required.'})
    const many = `--x\r\n${Array.from({length: 500}, (_, i) => `Content-Disposition: form-data; name="f${i}"\r\n\r\n1\r\n--x\r\n`).join('').slice(0, -2)}--\r\n`
    expect((await multipart(many)).body).toMatchObject({code: 413, errno: 113})
    expect((await call(srv.remote, 'GET', `${REC}/hostile`)).status).toBe(404)
  })

  test('names never come from the client', async () => {
    const res = await call(srv.remote, 'POST', `${REC}/evil/attachment`, {
      body: form([['attachment', {content: 'x', filename: '../../../../../../tmp/evil.txt'}]]),
    })
    expect(res.status).toBe(201)
    expect(res.body.location).toMatch(/^http:\/\/localhost\/files\/b1\/c1\/[0-9a-f-]{36}\.txt$/)
    for (const f of filesIn(files)) expect(f).toMatch(/^(b1|gz|keep)\/c1\/[0-9a-f-]{36}\.\w+$/)
  })

  test('permissions: anonymous 401, another user 403, and no file written', async () => {
    const before = filesIn(files)
    const body = () => form([['attachment', {content: 'x', filename: 'x.txt'}]])
    expect((await call(srv.remote, 'POST', `${REC}/r1/attachment`, {body: body(), auth: null})).status).toBe(401)
    const forbidden = await call(srv.remote, 'POST', `${REC}/r1/attachment`, {body: body(), auth: BOB})
    expect(forbidden.status).toBe(403)
    expect(forbidden.body.errno).toBe(121)
    expect((await call(srv.remote, 'DELETE', `${REC}/r1/attachment`, {auth: BOB})).status).toBe(403)
    expect(filesIn(files)).toEqual(before)
  })

  test('clients may not alter the attachment metadata themselves', async () => {
    const res = await call(srv.remote, 'PATCH', `${REC}/r1`, {
      body: JSON.stringify({data: {attachment: {location: 'http://elsewhere/x', hash: 'x', filename: 'x', size: 1, mimetype: 'x'}}}),
      headers: {'Content-Type': 'application/json'},
    })
    expect(res.status).toBe(400)
    expect(res.body.message).toBe('Attachment metadata cannot be modified.')
    // Other fields still can be.
    const ok = await call(srv.remote, 'PATCH', `${REC}/r1`, {body: JSON.stringify({data: {title: 'renamed'}}), headers: {'Content-Type': 'application/json'}})
    expect(ok.status).toBe(200)
    // The same metadata written back with its keys in another order is no change (upstream
    // compares dicts): a client that rebuilds the record may PUT it.
    const current = (await call(srv.remote, 'GET', `${REC}/r1`)).body.data
    const reordered = Object.fromEntries(Object.entries(current.attachment as Json).reverse())
    const put = await call(srv.remote, 'PUT', `${REC}/r1`, {body: JSON.stringify({data: {...current, attachment: reordered}}), headers: {'Content-Type': 'application/json'}})
    expect(put.status).toBe(200)
  })

  test('gzipped: the stored file is gzip, `original` describes the upload', async () => {
    const content = 'a'.repeat(5000)
    const res = await call(srv.remote, 'POST', '/buckets/gz/collections/c1/records/g1/attachment', {
      body: form([['attachment', {content, filename: 'big.txt', type: 'text/plain'}]]),
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      filename: 'big.txt.gz',
      mimetype: 'application/x-gzip',
      location: expect.stringMatching(/\/gz\/c1\/[0-9a-f-]{36}\.gz$/),
      original: {filename: 'big.txt', hash: sha256(content), mimetype: 'text/plain', size: 5000},
    })
    const stored = readFileSync(path.join(files, new URL(res.body.location).pathname.replace('/files/', '')))
    expect(res.body.size).toBe(stored.length)
    expect(res.body.hash).toBe(sha256(stored))
    expect(gunzipSync(stored).toString()).toBe(content)
  })

  test('cascades: deleting a record, a collection or a bucket removes their files; keep_old_files keeps them', async () => {
    const up = async (b: string, c: string, r: string) => {
      if (c !== 'c1') await call(srv.remote, 'PUT', `/buckets/${b}/collections/${c}`)
      const res = await call(srv.remote, 'POST', `/buckets/${b}/collections/${c}/records/${r}/attachment`, {body: form([['attachment', {content: r, filename: `${r}.txt`}]])})
      expect([200, 201]).toContain(res.status)
      return path.join(files, new URL(res.body.location).pathname.replace('/files/', ''))
    }
    const exists = (f: string) => {
      try {
        return statSync(f).isFile()
      } catch {
        return false
      }
    }
    const rec = await up('b1', 'c2', 'ra')
    const coll = await up('b1', 'c3', 'rb')
    const other = await up('b1', 'c3', 'rc')
    expect((await call(srv.remote, 'DELETE', '/buckets/b1/collections/c2/records/ra')).status).toBe(200)
    expect(exists(rec)).toBe(false)
    expect((await call(srv.remote, 'DELETE', '/buckets/b1/collections/c3')).status).toBe(200)
    expect(exists(coll) || exists(other)).toBe(false)

    const kept = await up('keep', 'c1', 'k1')
    const replaced = await up('keep', 'c1', 'k1')
    expect(exists(kept) && exists(replaced)).toBe(true)
    expect((await call(srv.remote, 'DELETE', '/buckets/keep')).status).toBe(200)
    expect(exists(kept) && exists(replaced)).toBe(true)

    await call(srv.remote, 'PUT', '/buckets/gone')
    const inBucket = await up('gone', 'cx', 'r1')
    expect((await call(srv.remote, 'DELETE', '/buckets/gone')).status).toBe(200)
    expect(exists(inBucket)).toBe(false)
    // A plural delete of records takes every record's file.
    const p1 = await up('b1', 'c1', 'p1')
    const p2 = await up('b1', 'c1', 'p2')
    expect((await call(srv.remote, 'DELETE', '/buckets/b1/collections/c1/records?in_id=p1,p2')).status).toBe(200)
    expect(exists(p1) || exists(p2)).toBe(false)
  })

  test('the default bucket takes uploads too', async () => {
    const res = await call(srv.remote, 'POST', '/buckets/default/collections/mine/records/d1/attachment', {
      body: form([['attachment', {content: 'mine', filename: 'mine.txt'}]]),
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toMatch(new RegExp(`^${srv.remote}/buckets/[0-9a-f-]{36}/collections/mine/records/d1$`))
    const record = await call(srv.remote, 'GET', '/buckets/default/collections/mine/records/d1')
    expect(record.body.data.attachment.hash).toBe(sha256('mine'))
    expect(await (await served(res.body.location)).text()).toBe('mine')
  })

  test('an upload through the default bucket holds no transaction while the file arrives', async () => {
    let finish!: () => void
    const finished = new Promise<void>((resolve) => (finish = resolve))
    const enc = new TextEncoder()
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(enc.encode('--zz\r\nContent-Disposition: form-data; name="attachment"; filename="slow.txt"\r\n\r\nfirst half, '))
        await finished
        controller.enqueue(enc.encode('second half\r\n--zz--\r\n'))
        controller.close()
      },
    })
    const headers = {Authorization: ALICE, 'Content-Type': 'multipart/form-data; boundary=zz'}
    const upload = fetch(`${srv.remote}/buckets/default/collections/slow/records/s1/attachment`, {method: 'POST', headers, body, duplex: 'half'} as RequestInit)
    await new Promise((resolve) => setTimeout(resolve, 300))
    // While the file arrives, other writes go on (the memory backend runs one transaction at a time).
    const write = call(srv.remote, 'PUT', '/buckets/meanwhile').then((r) => r.status)
    const outcome = await Promise.race([write, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000))])
    finish()
    expect(outcome).toBe(201)
    const res = await upload
    expect(res.status).toBe(201)
    expect(((await res.json()) as Json).size).toBe('first half, second half'.length)
  })

  test('concurrent uploads to one record: each answers cleanly, one file remains, the record names it', async () => {
    await call(srv.remote, 'PUT', '/buckets/race')
    await call(srv.remote, 'PUT', '/buckets/race/collections/c1')
    const results = await Promise.all(
      Array.from({length: 6}, (_, i) =>
        call(srv.remote, 'POST', '/buckets/race/collections/c1/records/r/attachment', {body: form([['attachment', {content: `upload ${i}`, filename: `u${i}.txt`}]])}),
      ),
    )
    for (const r of results) expect([200, 201, 412]).toContain(r.status)
    expect(results.filter((r) => r.status === 201)).toHaveLength(1)
    const record = await call(srv.remote, 'GET', '/buckets/race/collections/c1/records/r')
    const location = record.body.data.attachment.location as string
    expect(filesIn(path.join(files, 'race'))).toEqual([new URL(location).pathname.replace('/files/race/', '')])
  })

  test('the heartbeat checks that base_path is writable, and leaves nothing there', async () => {
    const before = readdirSync(files)
    const res = await call(srv.remote, 'GET', '/__heartbeat__', {auth: null})
    expect(res.body.attachments).toBe(true)
    expect(readdirSync(files)).toEqual(before)
    expect(before.filter((f) => f.includes('heartbeat'))).toEqual([])
  })
})

describe('long ids and names (Kinto sets no length limit on ids; file systems do on names)', () => {
  let srv: TestServer
  let files: string
  const long = (c: string, n: number) => c.repeat(n)

  beforeAll(async () => {
    ;({srv, files} = await startWith({
      'kinto.attachment.folder': '{bucket_id}/{collection_id}',
      'kinto.attachment.extensions': 'any',
      'kinto.attachment.resources.b.pattern.filename_pattern': '{rid}-{filename}',
    }))
    for (const p of ['/buckets/b', '/buckets/b/collections/c', '/buckets/b/collections/pattern', `/buckets/b/collections/${long('c', 150)}`]) {
      expect((await call(srv.remote, 'PUT', p)).status).toBe(201)
    }
  }, 60_000)
  afterAll(async () => srv?.close())

  const upload = (p: string, filename = 'f.txt') => call(srv.remote, 'POST', `${p}/attachment`, {body: form([['attachment', {content: 'x', filename}]])})

  test('an upload to a record below a collection id over 100 characters is read as an upload', async () => {
    const res = await upload(`/buckets/b/collections/${long('c', 150)}/records/r1`)
    expect(res.status).toBe(201)
    expect(res.body.filename).toBe('f.txt')
  })

  test('a record id too long for filename_pattern, or an extension too long for the file system, still stores the file', async () => {
    const rid = await upload(`/buckets/b/collections/pattern/records/${long('r', 300)}`)
    expect(rid.status).toBe(201)
    expect(rid.body.location).toMatch(/\/b\/pattern\/[0-9a-f-]{36}\.txt$/)
    const ext = await upload('/buckets/b/collections/c/records/r2', `x.${long('e', 300)}`)
    expect(ext.status).toBe(201)
    expect(ext.body.filename).toBe(`x.${long('e', 300)}`)
    const name = path.basename(new URL(ext.body.location).pathname)
    expect(name.length).toBeLessThanOrEqual(240)
    expect(statSync(path.join(files, 'b', 'c', name)).isFile()).toBe(true)
  })

  test('a folder name too long for the file system: 400, nothing written', async () => {
    const bid = long('b', 300)
    expect((await call(srv.remote, 'PUT', `/buckets/${bid}`)).status).toBe(201)
    expect((await call(srv.remote, 'PUT', `/buckets/${bid}/collections/c`)).status).toBe(201)
    const res = await upload(`/buckets/${bid}/collections/c/records/r`)
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({errno: 107, details: [{location: 'path'}]})
    expect(res.body.message).toMatch(/too long for the file system/)
    expect((await call(srv.remote, 'GET', `/buckets/${bid}/collections/c/records/r`)).status).toBe(404)
  })
})

describe('metrics of the file storage', () => {
  test('stores and removals are timed as upstream times its LocalFileStorage: backend.localfilestorage.seconds', async () => {
    const {srv} = await startWith({'kinto.includes': 'kinto_attachment kinto.plugins.prometheus'})
    try {
      expect((await call(srv.remote, 'PUT', '/buckets/m')).status).toBe(201)
      expect((await call(srv.remote, 'PUT', '/buckets/m/collections/c')).status).toBe(201)
      const up = await call(srv.remote, 'POST', '/buckets/m/collections/c/records/r/attachment', {body: form([['attachment', {content: 'm', filename: 'm.txt'}]])})
      expect(up.status).toBe(201)
      expect((await call(srv.remote, 'DELETE', '/buckets/m/collections/c/records/r/attachment')).status).toBe(204)
      const metrics = (await call(srv.remote, 'GET', '/__metrics__', {auth: null})).text
      expect(metrics).toMatch(/^\w*backend_localfilestorage_seconds\w*\{[^}]*method="save"[^}]*\} /m)
      expect(metrics).toMatch(/^\w*backend_localfilestorage_seconds\w*\{[^}]*method="delete"[^}]*\} /m)
      // Not one of the production guide's per-backend names.
      expect(metrics).not.toMatch(/^\w*localfilestorage_(save|delete)/m)
    } finally {
      await srv.close()
    }
  })
})

describe('attachment settings', () => {
  test('base_path is required', () => {
    expect(() => readAttachmentSettings(buildSettings({'kinto.attachment.base_url': 'http://x/'}))).toThrow(KintoError)
  })
  test('a malformed or unsupported per-resource setting is a startup error', () => {
    const base = {'kinto.attachment.base_path': '/srv/files'}
    expect(() => readAttachmentSettings(buildSettings({...base, 'kinto.attachment.resources.a.b.c.gzipped': 'true'}))).toThrow(/malformed/)
    expect(() => readAttachmentSettings(buildSettings({...base, 'kinto.attachment.resources.a.extensions': 'any'}))).toThrow(/not a supported setting/)
    // A folder that leaves base_path is refused at startup, not by every upload (a 500).
    expect(() => readAttachmentSettings(buildSettings({...base, 'kinto.attachment.folder': '{bucket_id}/../../elsewhere'}))).toThrow(
      "Invalid value for 'attachment.folder': '{bucket_id}/../../elsewhere' leaves kinto.attachment.base_path.",
    )
    expect(() => readAttachmentSettings(buildSettings({...base, 'kinto.attachment.resources.a.folder': '..'}))).toThrow(KintoError)
    expect(readAttachmentSettings(buildSettings({...base, 'kinto.attachment.folder': '/{bucket_id}/../{collection_id}'})).global.folder).toBe('/{bucket_id}/../{collection_id}')
  })
  test('the capability advertises base_url as set, an empty one included (clients prefix locations with it)', () => {
    const base = {'kinto.attachment.base_path': '/srv/files'}
    expect(readAttachmentSettings(buildSettings(base)).capabilityBaseUrl).toBeNull()
    expect(readAttachmentSettings(buildSettings({...base, 'kinto.attachment.base_url': ''})).capabilityBaseUrl).toBe('')
    expect(readAttachmentSettings(buildSettings({...base, 'kinto.attachment.base_url': 'https://cdn.example.com/a'})).capabilityBaseUrl).toBe('https://cdn.example.com/a/')
    expect(readAttachmentSettings(buildSettings({...base, 'kinto.attachment.base_url': '', 'kinto.attachment.extra.base_url': 'https://x/'})).capabilityBaseUrl).toBe('https://x/')
  })
  test('extensions default to documents, text, images and data; groups combine', () => {
    const s = readAttachmentSettings(buildSettings({'kinto.attachment.base_path': '/srv/files'}))
    expect(s.extensions.has('json') && s.extensions.has('pdf') && s.extensions.has('png') && s.extensions.has('txt')).toBe(true)
    expect(s.extensions.has('exe') || s.extensions.has('mp4')).toBe(false)
    const v = readAttachmentSettings(buildSettings({'kinto.attachment.base_path': '/x', 'kinto.attachment.extensions': 'default+video', 'kinto.attachment.mimetypes': '.ftl:application/vnd.fluent'}))
    expect(v.extensions.has('mp4')).toBe(true)
    expect(v.mimetypes['.ftl']).toBe('application/vnd.fluent')
    expect(v.mimetypes['.pem']).toBe('application/x-pem-file')
    expect(readAttachmentSettings(buildSettings({'kinto.attachment.base_path': '/x', 'kinto.attachment.extensions': 'any'})).extensions.size).toBe(0)
  })
})

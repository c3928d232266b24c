/**
 * Hostile input through real HTTP: a `kinto start` server listening on
 * loopback, on memory, embedded (PGlite) and PostgreSQL (when KINTO_TEST_DATABASE_URL is set).
 * Every case of hostile-cases.ts is written on its own socket, plus what only a socket can
 * carry: requests Node's parser refuses (odd methods, bad request lines, control characters,
 * oversized URLs and headers, broken framing), CONNECT, Expect, absolute-form targets, and
 * multi-megabyte bodies. Each one must be answered (no hang, no dropped connection) below 500,
 * and errors with Kinto's JSON error body; the server keeps serving afterwards.
 */
import net from 'node:net'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {BACKEND_KINDS, startTestServer, type TestServer} from '../client/helpers.js'
import {ALL, prepare, R, type Case} from './hostile-cases.js'
import {ALICE} from './helpers.js'

interface RawReply {
  status: number
  headers: Record<string, string>
  body: Buffer
  /** The whole reply as latin1, for messages. */
  text: string
}

/**
 * Writes raw bytes on a new connection and reads the reply until the server closes it
 * (requests carry `Connection: close`). Rejects when nothing parsable comes back in time.
 */
function rawRequest(port: number, data: Buffer | string, timeoutMs = 15_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete reply within ${timeoutMs} ms: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`))
    }, timeoutMs)
    socket.on('data', (d) => chunks.push(d))
    // A server that closes while we still write (413 before the body is read) resets the socket:
    // what it answered before is what counts.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const all = Buffer.concat(chunks)
      try {
        resolve(parseReply(all))
      } catch (err) {
        reject(new Error(`${(err as Error).message}: ${JSON.stringify(all.toString('latin1').slice(0, 300))}`))
      }
    })
    socket.write(data)
  })
}

function parseReply(all: Buffer): RawReply {
  let offset = 0
  // Skip interim 1xx replies (100 Continue).
  for (;;) {
    const end = all.indexOf('\r\n\r\n', offset)
    if (end < 0) throw new Error('no reply (connection dropped)')
    const head = all.subarray(offset, end).toString('latin1')
    const [statusLine, ...lines] = head.split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
    if (!m) throw new Error(`not an HTTP reply: ${statusLine}`)
    const status = Number(m[1])
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const i = line.indexOf(':')
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
    }
    offset = end + 4
    if (status >= 100 && status < 200) continue
    let body = all.subarray(offset)
    if (headers['transfer-encoding'] === 'chunked') body = dechunk(body)
    else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']))
    return {status, headers, body, text: all.toString('latin1')}
  }
}

/** The replies of pipelined requests, in order (each with a Content-Length). */
function splitReplies(all: Buffer): RawReply[] {
  const replies: RawReply[] = []
  let offset = 0
  while (offset < all.length) {
    const reply = parseReply(all.subarray(offset))
    const head = all.indexOf('\r\n\r\n', offset) + 4
    const length = Number(reply.headers['content-length'] ?? 0)
    reply.body = all.subarray(head, head + length)
    replies.push(reply)
    offset = head + length
  }
  return replies
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = []
  let i = 0
  for (;;) {
    const eol = data.indexOf('\r\n', i)
    if (eol < 0) break
    const size = parseInt(data.subarray(i, eol).toString('latin1'), 16)
    if (!size) break
    parts.push(data.subarray(eol + 2, eol + 2 + size))
    i = eol + 2 + size + 2
  }
  return Buffer.concat(parts)
}

/** A request as bytes: the target percent-encoded where it is not ASCII (as any client does). */
function encodeRequest(method: string, target: string, headers: Record<string, string>, body?: string | Buffer): Buffer {
  const url = target.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c))
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
  const lines = [`${method} ${url} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close']
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`)
  if (payload !== undefined) lines.push(`Content-Length: ${payload.length}`)
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8')
  return payload === undefined ? head : Buffer.concat([head, payload])
}

/** Status below 500; an error answers Kinto's JSON error body (code, errno, error). */
function expectKintoAnswer(reply: RawReply, label: string, method = 'GET'): void {
  const shown = `${label} → ${reply.text.slice(0, 300)}`
  expect(reply.status, shown).toBeLessThan(500)
  if (reply.status >= 400 && method !== 'HEAD') {
    expect(reply.headers['content-type'] ?? '', shown).toMatch(/^application\/json/)
    const body = JSON.parse(reply.body.toString('utf8'))
    expect(body, shown).toMatchObject({code: reply.status, errno: expect.any(Number), error: expect.any(String)})
  }
}

const auth = (extra: string) => `Authorization: ${ALICE}\r\n${extra}`

/** What only a socket can send: [name, bytes, expected status]. */
const SOCKET_CASES: Array<[string, Buffer | string, number]> = [
  ['unknown method BREW', 'BREW /v1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
  ['lower-case method', 'get /v1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
  ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
  ['garbage (a TLS hello)', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]), 400],
  // Up to 256 KiB of request line and headers, as upstream's server (long in_id= filters).
  ['a URL of 100 KB', `GET /v1/?${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 200],
  ['2,000 ids in in_id (74 KB)', `GET /v1/buckets?in_id=${Array.from({length: 2000}, (_, i) => `0000000${i}-aaaa-4bbb-8ccc-dddddddddddd`.slice(-36)).join(',')} HTTP/1.1\r\nHost: x\r\n${auth('Connection: close\r\n')}\r\n`, 200],
  ['a URL of 300 KB', `GET /v1/buckets?${'a'.repeat(300_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 431],
  ['a header of 300 KB', `GET /v1/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(300_000)}\r\nConnection: close\r\n\r\n`, 431],
  ['an Authorization header of 300 KB', `GET /v1/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${'QUFB'.repeat(75_000)}\r\nConnection: close\r\n\r\n`, 431],
  // Node's parser keeps the first 2,000 headers and skips the rest without counting them.
  ['30000 headers', `GET /v1/ HTTP/1.1\r\nHost: x\r\n${Array.from({length: 30_000}, (_, i) => `X-H${i}: v`).join('\r\n')}\r\nConnection: close\r\n\r\n`, 200],
  ['a raw NUL in the path', Buffer.from('GET /v1/buckets/a\u0000b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'latin1'), 400],
  ['raw invalid UTF-8 in the path', Buffer.concat([Buffer.from('GET /v1/buckets/'), Buffer.from([0xff, 0xfe]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]), 400],
  ['raw bytes in the querystring', Buffer.concat([Buffer.from('GET /v1/buckets?a='), Buffer.from([0xff, 0x00]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]), 400],
  ['a control character in a header', Buffer.from('GET /v1/ HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\nConnection: close\r\n\r\n', 'latin1'), 400],
  ['a header without a colon', 'GET /v1/ HTTP/1.1\r\nHost: x\r\nnocolon\r\nConnection: close\r\n\r\n', 400],
  ['latin1 bytes as credentials', Buffer.concat([Buffer.from('GET /v1/buckets/b HTTP/1.1\r\nHost: x\r\nAuthorization: Basic '), Buffer.from([0xe9, 0xff]), Buffer.from('\r\nConnection: close\r\n\r\n')]), 401],
  ['HTTP/1.1 without Host', 'GET /v1/ HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
  ['HTTP/1.0 without Host', 'GET /v1/ HTTP/1.0\r\n\r\n', 200],
  ['HTTP/2 preface on HTTP/1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
  ['an unknown HTTP version', 'GET /v1/ HTTP/7.3\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
  ['Content-Length not a number', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}`, 400],
  ['two Content-Lengths', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}`, 400],
  ['Content-Length with chunked', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 400],
  ['a bad chunk size', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, 400],
  ['an unknown transfer coding', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n{}`, 400],
  ['Content-Length over the limit', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n{}`, 413],
  ['Expect: 100-continue', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`, 201],
  ['an unknown Expect', `POST /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nExpect: bogus\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`, 417],
  ['an absolute-form target', 'GET http://evil.example/v1/__lbheartbeat__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 200],
  ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 200],
  // Upstream reads a GET's body too (json-body-errors.test.ts).
  ['an unreadable body on a GET', `GET /v1/buckets HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{"a":`, 400],
  ['a body on a DELETE', `DELETE /v1/buckets/nothere HTTP/1.1\r\nHost: x\r\n${auth('')}Content-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n[`, 403],
]

describe.each(BACKEND_KINDS)('hostile input over HTTP (%s)', (kind) => {
  let server: TestServer
  let port: number

  beforeAll(async () => {
    server = await startTestServer(kind)
    port = Number(new URL(server.remote).port)
    await prepare(server.server.app)
  }, 120_000)

  afterAll(async () => server?.close())

  /** The server still answers a plain read. */
  async function stillServing(): Promise<void> {
    const r = await rawRequest(port, encodeRequest('GET', `${R}/x`, {Authorization: ALICE}))
    expect(r.status).toBe(200)
  }

  test(`every shared case (${ALL.length}) answers below 500, errors as Kinto JSON`, async () => {
    // A few at a time: the cases also run concurrently against each other.
    const queue = [...ALL]
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) await runCase(c)
    }
    const runCase = async (c: Case) => {
      const headers: Record<string, string> = {Authorization: ALICE}
      for (const [k, v] of Object.entries(c.headers ?? {})) {
        for (const name of Object.keys(headers)) if (name.toLowerCase() === k.toLowerCase()) delete headers[name]
        headers[k] = v
      }
      if (c.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json'
      const reply = await rawRequest(port, encodeRequest(c.method, c.url, headers, c.body))
      expectKintoAnswer(reply, c.name, c.method)
      // A parser-level refusal (a method Node does not know) is 400; otherwise the expected status.
      if (c.status !== undefined) expect(reply.status, `${c.name} → ${reply.text.slice(0, 300)}`).toBe(c.status)
      if (c.errno !== undefined) expect(JSON.parse(reply.body.toString()).errno, c.name).toBe(c.errno)
    }
    await Promise.all(Array.from({length: 4}, worker))
    await stillServing()
  }, 180_000)

  test('reads served without Fastify answer byte for byte as the same reads through it', async () => {
    // A GET or HEAD without a body is served by the server's direct path (app.ts); the same
    // request with `Content-Length: 0` goes through Fastify's routing. Both must answer alike.
    const reads = ALL.filter((c) => (c.method === 'GET' || c.method === 'HEAD') && c.body === undefined)
    expect(reads.length).toBeGreaterThan(50)
    const comparable = (r: RawReply) => {
      const {date, ...headers} = r.headers
      void date
      // A page's token carries a fresh nonce each time: its presence is what must agree.
      if (headers['next-page'] !== undefined) headers['next-page'] = '<next page>'
      // Expires is the answer's time plus a TTL: compared below, to the second.
      if (headers.expires !== undefined) headers.expires = '<expires>'
      const body = r.body.toString('utf8').replace(/_token=[^"&]+/g, '_token=<token>')
      return {status: r.status, headers, body}
    }
    for (const c of reads) {
      const headers: Record<string, string> = {Authorization: ALICE, ...c.headers}
      const direct = await rawRequest(port, encodeRequest(c.method, c.url, headers))
      const routed = await rawRequest(port, encodeRequest(c.method, c.url, {...headers, 'Content-Length': '0'}))
      expect(comparable(direct), c.name).toEqual(comparable(routed))
      // The two requests may fall either side of a second.
      if (direct.headers.expires !== undefined) {
        const apart = Math.abs(Date.parse(direct.headers.expires) - Date.parse(routed.headers.expires ?? ''))
        expect(apart, `${c.name}: Expires ${direct.headers.expires} / ${routed.headers.expires}`).toBeLessThanOrEqual(1000)
      }
    }
  }, 180_000)

  test.each(SOCKET_CASES.map(([name, data, status]) => [name, data, status] as const))('socket: %s', async (name, data, status) => {
    const reply = await rawRequest(port, data)
    expectKintoAnswer(reply, name)
    expect(reply.status, reply.text.slice(0, 300)).toBe(status)
    await stillServing()
  })

  test('a body of 9 MB (under the limit) is served; 11 MB is 413 errno 113, also chunked', async () => {
    const big = JSON.stringify({data: {blob: 'x'.repeat(9 * 1024 * 1024)}})
    const ok = await rawRequest(port, encodeRequest('POST', R, {Authorization: ALICE, 'Content-Type': 'application/json'}, big), 60_000)
    expect(ok.status, ok.text.slice(0, 300)).toBe(201)
    const id = JSON.parse(ok.body.toString()).data.id
    const back = await rawRequest(port, encodeRequest('GET', `${R}/${id}`, {Authorization: ALICE}), 60_000)
    expect(JSON.parse(back.body.toString()).data.blob).toHaveLength(9 * 1024 * 1024)

    const tooBig = JSON.stringify({data: {blob: 'x'.repeat(11 * 1024 * 1024)}})
    const refused = await rawRequest(port, encodeRequest('POST', R, {Authorization: ALICE, 'Content-Type': 'application/json'}, tooBig), 60_000)
    expect(refused.status).toBe(413)
    expect(JSON.parse(refused.body.toString())).toMatchObject({code: 413, errno: 113})

    // Chunked: no Content-Length to refuse early; the limit applies while reading.
    const head = `POST ${R} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ALICE}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`
    const body = Buffer.from(tooBig)
    const chunks: Buffer[] = [Buffer.from(head)]
    for (let i = 0; i < body.length; i += 1024 * 1024) {
      const part = body.subarray(i, i + 1024 * 1024)
      chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'))
    }
    chunks.push(Buffer.from('0\r\n\r\n'))
    const chunked = await rawRequest(port, Buffer.concat(chunks), 60_000)
    expect(chunked.status).toBe(413)
    expect(JSON.parse(chunked.body.toString())).toMatchObject({errno: 113})
    await stillServing()
  }, 120_000)

  test('a body of 5 MB nested and bracket-heavy is refused quickly, without a 5xx', async () => {
    const body = `{"data": {"a": ${'['.repeat(2_500_000)}${']'.repeat(2_500_000)}}}`
    // Quickly: no reply within 10 s fails the request.
    const reply = await rawRequest(port, encodeRequest('POST', R, {Authorization: ALICE, 'Content-Type': 'application/json'}, body), 10_000)
    expect(reply.status).toBe(400)
    expect(JSON.parse(reply.body.toString())).toMatchObject({errno: 107})
  }, 60_000)

  test('pipelined requests are served one after the other: a read after a write sees it', async () => {
    // Written at once on one connection, before any answer (RFC 9112 §9.3.2: only safe methods
    // may be processed in parallel). The GET, served without Fastify, must not overtake the PUT
    // whose body Fastify is still reading.
    const url = `${R}/pipelined`
    const put = (body: string) => encodeRequest('PUT', url, {Authorization: ALICE, 'Content-Type': 'application/json'}, body).toString('latin1').replace('Connection: close\r\n', '')
    const plain = (method: string, close = false) => {
      const text = encodeRequest(method, url, {Authorization: ALICE}).toString('latin1')
      return close ? text : text.replace('Connection: close\r\n', '')
    }
    const data = put('{"data": {"n": 1}}') + plain('GET') + plain('DELETE') + plain('GET') + put('{"data": {"n": 2}}') + plain('GET', true)
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (d) => chunks.push(d))
    await new Promise<void>((resolve, reject) => {
      socket.on('close', () => resolve())
      socket.on('error', reject)
      socket.write(data)
    })
    const replies = splitReplies(Buffer.concat(chunks))
    expect(replies.map((r) => r.status)).toEqual([201, 200, 200, 404, 201, 200])
    expect(JSON.parse(replies[1].body.toString()).data.n).toBe(1)
    expect(JSON.parse(replies[5].body.toString()).data.n).toBe(2)
    await stillServing()
  })

  test('a body that stops arriving is answered 408 once the connection idles, also after a first request', async () => {
    const http = server.server.app.server
    const runtime = server.server.app.kinto
    const idle = http.timeout
    expect(idle).toBe(60_000)
    http.timeout = 1000
    const handle = runtime.handle
    runtime.handle = async (req) => {
      if (req.path.endsWith('/slow')) await new Promise((resolve) => setTimeout(resolve, 2500))
      return handle.call(runtime, req)
    }
    try {
      const stalled = `POST ${R} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ALICE}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"data":`
      const first = await rawRequest(port, stalled, 10_000)
      expect(first.status).toBe(408)
      expect(JSON.parse(first.body.toString())).toMatchObject({code: 408, errno: 999, error: 'Request Timeout'})
      // Node drops its socket timeout after a keep-alive request: the next one is bounded too.
      const quick = encodeRequest('GET', `${R}/x`, {Authorization: ALICE}).toString('latin1').replace('Connection: close\r\n', '')
      const second = await rawRequest(port, quick + stalled, 10_000)
      expect(second.status).toBe(200)
      expect(second.text).toContain('HTTP/1.1 408 Request Timeout')
      // Headers that stop arriving (after a first request, Node's headersTimeout answers them).
      expect((await rawRequest(port, 'GET /v1/ HTTP/1.1\r\nHost: x\r\nX-Slow: ', 10_000)).status).toBe(408)
      // A request the server works on for longer than that is answered, read or write.
      for (const method of ['PUT', 'GET']) {
        const slow = await rawRequest(port, encodeRequest(method, `${R}/slow`, {Authorization: ALICE, 'Content-Type': 'application/json'}, method === 'PUT' ? '{}' : undefined), 10_000)
        expect(slow.status, slow.text.slice(0, 200)).toBeLessThan(300)
      }
    } finally {
      http.timeout = idle
      runtime.handle = handle
    }
    await stillServing()
  })

  test('Expect: 100-continue with a body over the limit is refused before the body is sent', async () => {
    const head = (length: number) => `POST ${R} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ALICE}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`
    // No body follows: the answer must come without it, and close the connection.
    const refused = await rawRequest(port, head(999_999_999), 10_000)
    expect(refused.text.startsWith('HTTP/1.1 413 '), refused.text.slice(0, 200)).toBe(true)
    expect(refused.headers.connection).toBe('close')
    expect(JSON.parse(refused.body.toString())).toMatchObject({code: 413, errno: 113})
    // Within the limit the body is invited (100 Continue) and served.
    const served = await rawRequest(port, `${head(2).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')}{}`, 10_000)
    expect(served.text.startsWith('HTTP/1.1 100 Continue'), served.text.slice(0, 200)).toBe(true)
    expect(served.status).toBe(201)
    await stillServing()
  })

  test('a client that goes away mid-body does not hurt the server', async () => {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()))
    socket.write(`POST ${R} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ALICE}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"data":`)
    await new Promise((r) => setTimeout(r, 50))
    socket.destroy()
    await stillServing()
  })
})

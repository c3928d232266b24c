/**
 * writeResponse(): the wire form of every API answer, the same whether Fastify routed the request
 * or the server's direct path served it. These are the rules Fastify's reply.send() applied
 * before (clients and upstream's tests have seen them since the first release).
 */
import type {ServerResponse} from 'node:http'

import {describe, expect, test} from 'vitest'

import {writeResponse, type WireOptions} from '../../src/lib/server/http-response.js'

interface Written {
  status: number
  headers: Record<string, string>
  body: string | Buffer | undefined
}

function write(status: number, headers: Record<string, string>, payload: string | Buffer | undefined, options: WireOptions = {method: 'GET'}): Written {
  const written: Partial<Written> = {}
  const res = {
    writeHead(s: number, h: string[]) {
      written.status = s
      // Name, value, name, value…, each name once.
      const names = h.filter((_, i) => i % 2 === 0)
      expect(new Set(names).size).toBe(names.length)
      written.headers = Object.fromEntries(names.map((name, i) => [name, h[2 * i + 1]]))
      return this
    },
    end(body?: string | Buffer) {
      written.body = body
      return this
    },
  } as unknown as ServerResponse
  writeResponse(res, status, headers, payload, options)
  return written as Written
}

describe('writeResponse', () => {
  test('a JSON text body: lower-case names, the charset added, its length in bytes', () => {
    const body = JSON.stringify({data: {title: 'café ☕'}})
    const w = write(200, {'Content-Type': 'application/json', ETag: '"12"', 'X-Content-Type-Options': 'nosniff'}, body)
    expect(w.status).toBe(200)
    expect(w.headers).toEqual({
      'content-type': 'application/json; charset=utf-8',
      etag: '"12"',
      'x-content-type-options': 'nosniff',
      'content-length': String(Buffer.byteLength(body)),
    })
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length)
    expect(w.body).toBe(body)
  })

  test('a charset already given, or a type that is not JSON, is kept as it is', () => {
    expect(write(200, {'Content-Type': 'application/json; Charset=latin1'}, '{}').headers['content-type']).toBe('application/json; Charset=latin1')
    expect(write(200, {'Content-Type': 'text/csv'}, 'a,b').headers['content-type']).toBe('text/csv')
    expect(write(200, {}, 'plain').headers['content-type']).toBe('text/plain; charset=utf-8')
  })

  test('a byte body keeps its type, or is application/octet-stream', () => {
    const bytes = Buffer.from([1, 2, 3])
    expect(write(200, {'Content-Type': 'text/plain; version=0.0.4'}, bytes).headers).toEqual({'content-type': 'text/plain; version=0.0.4', 'content-length': '3'})
    expect(write(200, {}, bytes).headers['content-type']).toBe('application/octet-stream')
  })

  test('no body: Content-Length 0, except on HEAD, 204 and 304', () => {
    expect(write(307, {Location: 'http://x/v1/'}, undefined).headers).toEqual({location: 'http://x/v1/', 'content-length': '0'})
    expect(write(200, {'Content-Type': 'application/json'}, undefined, {method: 'HEAD'}).headers).toEqual({'content-type': 'application/json'})
    expect(write(304, {ETag: '"1"'}, undefined).headers).toEqual({etag: '"1"'})
    expect(write(204, {}, undefined).headers).toEqual({})
  })

  test('a 204 or 1xx never carries a body nor its headers', () => {
    const w = write(204, {'Content-Type': 'application/json', 'Content-Length': '2'}, '{}')
    expect(w.headers).toEqual({})
    expect(w.body).toBeUndefined()
  })

  test("a view's Content-Length is kept on HEAD and corrected otherwise", () => {
    expect(write(200, {'Content-Length': '99'}, '{}', {method: 'HEAD'}).headers['content-length']).toBe('99')
    expect(write(200, {'Content-Length': '99'}, '{}').headers['content-length']).toBe('2')
  })

  test('a name given twice in other cases goes out once, with the last value', () => {
    expect(write(200, {Etag: '"1"', ETag: '"2"', 'content-type': 'text/csv', 'Content-Type': 'application/json'}, '{}').headers).toEqual({
      etag: '"2"',
      'content-type': 'application/json; charset=utf-8',
      'content-length': '2',
    })
  })

  test('while the server stops, the answer closes its connection', () => {
    expect(write(200, {}, '{}', {method: 'GET', closing: true}).headers.connection).toBe('close')
    expect(write(200, {}, '{}', {method: 'GET'}).headers.connection).toBeUndefined()
  })
})

/**
 * The small HTTP client of the commands that talk to a server (`kinto check --url`, `kinto status`,
 * `kinto wait-ready`): undici with connect/header/body timeouts, bodies
 * read up to a cap, and redirects followed only on the same host name (never to another host).
 */
import type {Agent} from 'undici'

import {lazyRequire} from './lazy.js'
import {packageVersion} from './version.js'

const undici = lazyRequire<typeof import('undici')>('undici')

export interface HttpResponse {
  status: number
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>
  body: string
  /** The URL that answered (after same-host redirects). */
  url: string
  /** Redirects followed, in order. */
  redirects: string[]
}

export class RedirectElsewhereError extends Error {
  constructor(
    readonly from: string,
    readonly location: string,
  ) {
    super(`${from} redirects to ${location}, another host; not followed`)
    this.name = 'RedirectElsewhereError'
  }
}

export interface HttpClientOptions {
  timeoutMs: number
  /** Largest body read (bytes); the rest is discarded. */
  maxBodyBytes?: number
  maxRedirects?: number
  /** User-Agent sent (default: kinto-ops-check/<version>). */
  userAgent?: string
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  /** Follow same-host redirects (default true; never for a request with a body). */
  followRedirects?: boolean
  /** Request body (a form for OAuth token requests). */
  body?: string
}

const MAX_BODY = 2 * 1024 * 1024

export class HttpClient {
  private readonly agent: Agent
  private readonly userAgent: string

  constructor(private readonly options: HttpClientOptions) {
    this.userAgent = options.userAgent ?? `kinto-ops-check/${packageVersion()}`
    this.agent = new (undici().Agent)({
      connect: {timeout: options.timeoutMs},
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: 4,
    })
  }

  async request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const redirects: string[] = []
    let current = url
    const method = options.method ?? 'GET'
    for (;;) {
      const res = await this.once(current, method, options.headers ?? {}, options.body)
      const location = res.headers.location
      if (options.followRedirects === false || options.body !== undefined || res.status < 300 || res.status >= 400 || res.status === 304 || !location) {
        return {...res, url: current, redirects}
      }
      const next = new URL(location, current)
      if (next.hostname.toLowerCase() !== new URL(current).hostname.toLowerCase()) throw new RedirectElsewhereError(current, next.href)
      if (redirects.length >= (this.options.maxRedirects ?? 3)) return {...res, url: current, redirects}
      redirects.push(next.href)
      current = next.href
    }
  }

  private async once(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Omit<HttpResponse, 'url' | 'redirects'>> {
    const signal = AbortSignal.timeout(this.options.timeoutMs * 2)
    const res = await undici().request(url, {
      method: method as 'GET',
      headers: {'user-agent': this.userAgent, accept: 'application/json', ...headers},
      dispatcher: this.agent,
      body,
      signal,
    })
    const chunks: Buffer[] = []
    let size = 0
    const cap = this.options.maxBodyBytes ?? MAX_BODY
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer
        if (size + buf.length > cap) {
          chunks.push(buf.subarray(0, cap - size))
          size = cap
          break
        }
        chunks.push(buf)
        size += buf.length
      }
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue
      out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)
    }
    return {status: res.statusCode, headers: out, body: Buffer.concat(chunks).toString('utf8')}
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => {})
  }
}

/** One line for a failed request: what failed, without a stack. */
export function describeHttpError(e: unknown): string {
  if (e instanceof RedirectElsewhereError) return e.message
  const err = e as Error & {code?: string; cause?: {code?: string; message?: string}}
  const code = err.code ?? err.cause?.code
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ENOTFOUND':
      return 'unknown host name'
    case 'EAI_AGAIN':
      return 'host name lookup failed (DNS)'
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out'
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'no response within the timeout'
    case 'UND_ERR_BODY_TIMEOUT':
      return 'the response body did not arrive within the timeout'
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection closed by the server'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable'
    // a unix: URL (node says "connect ENOENT /run/kinto.sock")
    case 'ENOENT':
      return 'no such socket (is the server running?)'
    case 'EACCES':
      return 'permission denied'
    default:
      if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'no complete response within the timeout'
      if (code && /CERT|SSL|TLS/i.test(code)) return `TLS error (${code}): ${err.message}`
      return err.message || String(e)
  }
}

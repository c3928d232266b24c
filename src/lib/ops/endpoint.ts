/**
 * Where a running Kinto answers, and one small undici GET to it: `http(s)://host[:port][/prefix]/v1/`
 * or `unix:/path/to/socket` (the API then at http://localhost/v1/ over that socket).
 */
import type {Agent} from 'undici'

import {maskUrl} from '../db/url.js'
import {describeHttpError} from '../http.js'
import {loadConfig} from '../config/index.js'
import {UsageError} from '../errors.js'
import {lazyRequire} from '../lazy.js'
import {bracketHost} from '../net.js'
import {packageVersion} from '../version.js'
import {listRuns} from '../runs/registry.js'

const undici = lazyRequire<typeof import('undici')>('undici')

export interface Endpoint {
  /** The API base as given or derived, for messages: `http://127.0.0.1:8888/v1/` or `unix:/run/kinto.sock`. */
  display: string
  /** Base URL requests are made against (ends with `/v1/`). */
  base: string
  socketPath?: string
}

/** One URL below the API base, for messages: `http://…/v1/__heartbeat__`, or `/v1/__heartbeat__ on unix:/run/kinto.sock`. */
export function describeEndpointUrl(endpoint: Endpoint, relative: string): string {
  const url = new URL(relative, endpoint.base)
  return endpoint.socketPath === undefined ? url.href : `${url.pathname} on ${endpoint.display}`
}

/** Parses --url: a base URL (`/v1/` appended when the path has no version) or `unix:<socket path>`. */
export function parseEndpoint(text: string): Endpoint {
  const raw = text.trim()
  if (raw.startsWith('unix:')) {
    const socketPath = raw.slice('unix:'.length)
    if (!socketPath.startsWith('/')) throw new UsageError(`--url ${JSON.stringify(text)}: a unix socket URL is unix:/absolute/path.`)
    return {display: `unix:${socketPath}`, base: 'http://localhost/v1/', socketPath}
  }
  let url: URL
  // Shown masked: a URL given with user:password@ never reaches the output.
  const shown = JSON.stringify(maskUrl(text))
  try {
    url = new URL(raw)
  } catch {
    throw new UsageError(`--url ${shown} is not a URL; expected e.g. http://127.0.0.1:8888/v1/ or unix:/run/kinto.sock.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url ${shown}: only http, https and unix: URLs are supported.`)
  }
  if (url.username || url.password) {
    // What these commands read (heartbeat, hello) is public; the URL would be printed everywhere.
    throw new UsageError('--url must not carry credentials.', {hint: 'Remove user:password@ from the URL: the heartbeat and the root URL need none.'})
  }
  url.search = ''
  url.hash = ''
  if (/\/v\d+\/?$/.test(url.pathname)) url.pathname = url.pathname.replace(/\/?$/, '/')
  else url.pathname = url.pathname.replace(/\/?$/, '/v1/')
  return {display: url.href, base: url.href}
}

/**
 * The endpoint of the ini's server: a running one from the run registry, else [server:main]
 * (its unix_socket, or host and port with a wildcard address read as loopback).
 */
export function endpointFromIni(iniPath: string, env: NodeJS.ProcessEnv = process.env): Endpoint {
  const running = listRuns(iniPath, env).find((e) => e.url)
  if (running?.url) return running.url.startsWith('/') ? parseEndpoint(`unix:${running.url}`) : parseEndpoint(running.url)
  const config = loadConfig(iniPath, {env})
  if (config.server.unixSocket) return parseEndpoint(`unix:${config.server.unixSocket}`)
  let host = config.server.host
  if (host === '0.0.0.0' || host === '*' || host === '') host = '127.0.0.1'
  if (host === '::') host = '::1'
  return parseEndpoint(`http://${bracketHost(host)}:${config.server.port}/v1/`)
}

export interface GetResult {
  status: number
  headers: Record<string, string>
  body: string
  json?: unknown
}

/** A client for one endpoint; close() it when done. */
export class EndpointClient {
  private readonly agent: Agent

  constructor(
    readonly endpoint: Endpoint,
    timeoutMs: number,
  ) {
    this.agent = new (undici().Agent)({
      connect: {timeout: timeoutMs, ...(endpoint.socketPath ? {socketPath: endpoint.socketPath} : {})},
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connections: 2,
    })
  }

  /** GET `path` below the API base (`''` for hello, `__heartbeat__`…). Network errors throw. */
  async get(path: string, timeoutMs: number): Promise<GetResult> {
    const res = await undici().request(new URL(path, this.endpoint.base).href, {
      method: 'GET',
      headers: {'user-agent': `kinto-ops/${packageVersion()}`, accept: 'application/json'},
      dispatcher: this.agent,
      signal: AbortSignal.timeout(timeoutMs),
    })
    const body = await res.body.text()
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {}
    return {status: res.statusCode, headers, body, json}
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => {})
  }
}

export {describeHttpError}

/**
 * `kinto check --url`: probes a live deployment from the outside, the way clients and the CDN
 * checklist of upstream's production guide see it:
 * - hello's `url` is the public URL (else the main server host leaks), and does not follow a
 *   forged Host header (kinto.http_host unset);
 * - CORS preflight answers; ETag, Last-Modified, Next-Page reach the client and browsers may read
 *   them; conditional requests work; responses differ by `_limit` (a cache keyed on the path
 *   alone would serve one page size for all);
 * - private `__…__` URLs are not public.
 * Only GET and OPTIONS requests: nothing is written (__flush__ is never POSTed).
 */
import {lookup} from 'node:dns/promises'
import {BlockList, isIP} from 'node:net'

import {maskUrl} from '../db/url.js'
import {UsageError} from '../errors.js'
import {HttpClient, type HttpResponse, describeHttpError} from '../http.js'
import {type CheckReport, type Finding, error, ok, summarize, warning} from './types.js'

export interface ProbeOptions {
  /** Per request: connect, first byte and body each (default 10 s). */
  timeoutMs?: number
  /**
   * A list anonymous clients may read, under /v1 (e.g. /buckets/main/collections/articles/records),
   * with at least 2 objects: where the header and pagination checks run. Default: /buckets.
   */
  listPath?: string
  /** Origin sent in CORS requests (must be allowed by kinto.cors_origins). */
  origin?: string
  /**
   * `USER:PASSWORD`: the list is read with these Basic credentials (for a list only accounts may
   * read). Sent with the list's requests alone; hello, the preflight and the private URLs stay
   * anonymous. Never shown.
   */
  auth?: string
}

export const DEFAULT_PROBE_ORIGIN = 'https://kinto-check.example'
/** A host name that is nobody's (RFC 2606), sent to see whether URLs follow the Host header. */
const FORGED_HOST = 'kinto-check.invalid'
const PRIVATE_PATHS = ['__heartbeat__', '__lbheartbeat__', '__version__']
/** Private URLs of plugins, checked when hello advertises their capability. */
const PLUGIN_PRIVATE_PATHS: Array<[capability: string, path: string, why: string]> = [
  ['prometheus', '__metrics__', 'the metrics show who uses the service and how (user ids, endpoints)'],
  ['counters_endpoint', '__counters__', 'the counters show how much is stored'],
]

/** Loopback and private ranges: a probe reaching the service there connects from such an address. */
const LOCAL_RANGES = new BlockList()
LOCAL_RANGES.addSubnet('127.0.0.0', 8)
LOCAL_RANGES.addSubnet('10.0.0.0', 8)
LOCAL_RANGES.addSubnet('172.16.0.0', 12)
LOCAL_RANGES.addSubnet('192.168.0.0', 16)
LOCAL_RANGES.addSubnet('169.254.0.0', 16)
LOCAL_RANGES.addSubnet('100.64.0.0', 10)
LOCAL_RANGES.addAddress('::1', 'ipv6')
LOCAL_RANGES.addSubnet('fc00::', 7, 'ipv6')
LOCAL_RANGES.addSubnet('fe80::', 10, 'ipv6')

/**
 * 'loopback' or 'private' when every address of the root's host is one (this probe then connects
 * from such an address too, which a proxy's allow list may well admit), else null.
 */
async function localReach(root: string): Promise<'loopback' | 'private' | null> {
  const host = new URL(root).hostname.replace(/^\[|\]$/g, '')
  let addresses: string[]
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, {all: true})).map((a) => a.address)
  } catch {
    return null
  }
  const kind = (a: string) => (isIP(a) === 6 ? 'ipv6' : 'ipv4') as 'ipv4' | 'ipv6'
  if (addresses.length === 0 || !addresses.every((a) => LOCAL_RANGES.check(a, kind(a)))) return null
  return addresses.every((a) => a === '::1' || a.startsWith('127.')) ? 'loopback' : 'private'
}

/** The public root of the service (without /v1 and without a trailing slash). */
export function publicRoot(input: string): URL {
  let url: URL
  try {
    url = new URL(input.trim())
  } catch {
    throw new UsageError(`--url ${JSON.stringify(maskUrl(input))} is not a URL.`, {hint: 'Pass the public address, e.g. --url https://kinto.example.com'})
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url ${JSON.stringify(maskUrl(input))} is not an http(s) URL.`, {hint: 'Pass the public address, e.g. --url https://kinto.example.com'})
  }
  if (url.username || url.password) {
    throw new UsageError('--url must not carry credentials.', {hint: 'Remove user:password@ from the URL; to read the list as an account, set KINTO_CHECK_AUTH=user:password (or --user).'})
  }
  url.search = ''
  url.hash = ''
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '')
  return url
}

function rootString(root: URL): string {
  return `${root.origin}${root.pathname === '/' ? '' : root.pathname}`
}

function normaliseListPath(p: string): string {
  let path = p.trim()
  if (!path.startsWith('/')) path = `/${path}`
  path = path.replace(/^\/v1(?=\/)/, '')
  return path.replace(/\/+$/, '') || '/buckets'
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

/** Same URL once default ports, case of scheme/host and a trailing slash are normalised. */
function sameUrl(a: string, b: string): boolean {
  try {
    const x = new URL(a)
    const y = new URL(b)
    const strip = (p: string) => p.replace(/\/+$/, '')
    return x.protocol === y.protocol && x.host === y.host && strip(x.pathname) === strip(y.pathname)
  } catch {
    return false
  }
}

/** The URL is on the root's origin (default ports normalised) and under its path. */
function underRoot(url: string, root: string): boolean {
  try {
    const u = new URL(url)
    const r = new URL(`${root}/`)
    return u.origin === r.origin && u.pathname.startsWith(r.pathname)
  } catch {
    return false
  }
}

function headerList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean)
}

interface ProbeState {
  http: HttpClient
  root: string
  origin: string
  findings: Finding[]
  /** The Authorization header of the list's requests, when --user is given. */
  listAuth: Record<string, string>
  /** How the list is read, for messages: "anonymously" or "as USER". */
  reader: string
}

/** The list's Authorization header and how messages name its reader, from `USER:PASSWORD`. */
function listReader(auth: string | undefined): Pick<ProbeState, 'listAuth' | 'reader'> {
  if (auth === undefined || auth === '') return {listAuth: {}, reader: 'anonymously'}
  const colon = auth.indexOf(':')
  if (colon <= 0) {
    throw new UsageError('--user (KINTO_CHECK_AUTH) must be USER:PASSWORD.', {hint: 'Pass the account and its password separated by a colon, e.g. KINTO_CHECK_AUTH=reader:password.'})
  }
  return {listAuth: {authorization: `Basic ${Buffer.from(auth, 'utf8').toString('base64')}`}, reader: `as ${auth.slice(0, colon)}`}
}

async function get(state: ProbeState, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpResponse> {
  return state.http.request(`${state.root}/v1${path}`, {method, headers})
}

function helloUrlFinding(state: ProbeState, helloUrl: unknown): Finding {
  const expected = `${state.root}/v1/`
  if (typeof helloUrl !== 'string') {
    return error('hello-url', `hello (${expected}) has no url field.`, 'Check that the URL points to a Kinto server (or to kinto start behind your proxy).')
  }
  if (sameUrl(helloUrl, expected)) return ok('hello-url', `hello's url is ${helloUrl}, the public URL.`)
  const fixes: string[] = []
  try {
    const got = new URL(helloUrl)
    const want = new URL(expected)
    if (got.protocol !== want.protocol) fixes.push(`kinto.http_scheme = ${want.protocol.replace(':', '')}`)
    if (got.host !== want.host) fixes.push(`kinto.http_host = ${want.host}`)
    if (got.pathname.replace(/\/+$/, '') !== want.pathname.replace(/\/+$/, '')) {
      fixes.push(`a proxy that serves Kinto at ${want.pathname} (Kinto itself answers under ${got.pathname})`)
    }
  } catch {
    fixes.push(`kinto.http_host and kinto.http_scheme matching ${expected}`)
  }
  return error(
    'hello-url',
    `hello's url is ${helloUrl} but the public URL is ${expected}: clients are sent to the main server's address (the host leak of the production guide), in hello and in every Next-Page link.`,
    `Set ${fixes.join(' and ')} in [app:main], then restart Kinto (or pass --url with the address clients really use).`,
  )
}

async function checkHostLeak(state: ProbeState, publicUrl: string): Promise<Finding> {
  let res: HttpResponse
  try {
    res = await state.http.request(`${state.root}/v1/`, {headers: {host: FORGED_HOST}, followRedirects: false})
  } catch (e) {
    return ok('host-leak', `A request naming another host (Host: ${FORGED_HOST}) was not answered (${describeHttpError(e)}).`)
  }
  const body = parseJson(res.body) as {url?: unknown} | undefined
  const url = typeof body?.url === 'string' ? body.url : undefined
  if (res.status !== 200 || url === undefined) {
    return ok('host-leak', `A request naming another host (Host: ${FORGED_HOST}) got ${res.status}, not Kinto's hello.`)
  }
  if (url.includes(FORGED_HOST)) {
    return warning(
      'host-leak',
      `hello's url follows the request's Host header (Host: ${FORGED_HOST} gave ${url}): kinto.http_host is not set, so behind a CDN or proxy that reaches this server under its own name, hello's url and Next-Page links name that host instead of ${publicUrl}, and a cache may store links to a forged host.`,
      `Set kinto.http_host = ${new URL(publicUrl).host} in [app:main].`,
    )
  }
  return ok('host-leak', `hello's url stays ${url} whatever the Host header (kinto.http_host is set).`)
}

async function checkPreflight(state: ProbeState, listPath: string): Promise<Finding> {
  const target = `/v1${listPath}`
  let res: HttpResponse
  try {
    res = await get(state, listPath, {
      origin: state.origin,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization',
    }, 'OPTIONS')
  } catch (e) {
    return error('cors-preflight', `OPTIONS ${target} failed: ${describeHttpError(e)}.`, 'Let OPTIONS requests through the CDN/proxy to Kinto.')
  }
  const allowOrigin = res.headers['access-control-allow-origin']
  const allowMethods = headerList(res.headers['access-control-allow-methods'])
  if (res.status >= 300 || !allowOrigin) {
    return error(
      'cors-preflight',
      `A CORS preflight (OPTIONS ${target}, Origin: ${state.origin}) got ${res.status}${allowOrigin ? '' : ' without Access-Control-Allow-Origin'}: browsers on other sites cannot call this Kinto.`,
      'Let OPTIONS requests and their Access-Control-* headers through the CDN/proxy; if kinto.cors_origins restricts origins, pass --origin with an allowed one.',
    )
  }
  if (allowOrigin !== '*' && allowOrigin !== state.origin) {
    return error(
      'cors-preflight',
      `A CORS preflight from ${state.origin} was answered with Access-Control-Allow-Origin: ${allowOrigin}, which browsers reject for that origin (a cached answer for another origin?).`,
      'Make the CDN vary preflight answers on Origin (or not cache them); if kinto.cors_origins restricts origins, pass --origin with an allowed one.',
    )
  }
  if (allowMethods.length > 0 && !allowMethods.includes('get')) {
    return error('cors-preflight', `The preflight answer allows ${allowMethods.join(', ')} but not GET.`, 'Let Kinto\'s Access-Control-Allow-Methods through unchanged.')
  }
  return ok('cors-preflight', `CORS preflight answered ${res.status} with Access-Control-Allow-Origin: ${allowOrigin}.`)
}

interface ListPage {
  res: HttpResponse
  count: number | undefined
}

async function readPage(state: ProbeState, listPath: string, limit: number, headers: Record<string, string> = {}): Promise<ListPage> {
  const res = await get(state, `${listPath}?_limit=${limit}`, {origin: state.origin, ...state.listAuth, ...headers})
  const body = parseJson(res.body) as {data?: unknown} | undefined
  return {res, count: Array.isArray(body?.data) ? body!.data.length : undefined}
}

async function checkList(state: ProbeState, listPath: string, explicit: boolean): Promise<Finding[]> {
  const target = `/v1${listPath}`
  let one: ListPage
  try {
    one = await readPage(state, listPath, 1)
  } catch (e) {
    return [error('list', `GET ${target} failed: ${describeHttpError(e)}.`, 'Check the list path given with --list.')]
  }
  if (one.res.status !== 200 || one.count === undefined) {
    const refused = one.res.status === 401 || one.res.status === 403
    const account = refused && state.reader === 'anonymously' ? ', or read it as an account that may: --user (KINTO_CHECK_AUTH) USER:PASSWORD' : ''
    const hint = explicit
      ? `Pass --list with a list ${state.reader === 'anonymously' ? 'anonymous clients' : 'this account'} may read (GET ${target} answered ${one.res.status})${account}.`
      : `Pass --list /buckets/<bid>/collections/<cid>/records: a list ${state.reader === 'anonymously' ? 'anonymous clients' : 'this account'} may read, holding at least 2 objects${account}.`
    // One finding for the six checks a list gives (ETag, Last-Modified, Next-Page, _limit, CORS exposure, If-None-Match).
    const seen = `${one.res.status}${one.count === undefined && one.res.status === 200 ? ' without a data list' : ''}`
    return [
      warning(
        'list',
        `Not verified: ETag, Last-Modified, Next-Page, _limit, the CORS exposed headers and If-None-Match, because GET ${target} answered ${seen}, so there is no list to look at ${state.reader}.`,
        hint,
      ),
    ]
  }

  const findings: Finding[] = []
  const h = one.res.headers
  const etag = h.etag
  if (!etag) {
    findings.push(error('etag', `GET ${target} reached the client without an ETag header.`, 'Let the CDN/proxy pass ETag through unchanged (clients send it back in If-Match / If-None-Match).'))
  } else if (/^W\//.test(etag)) {
    findings.push(
      warning('etag', `GET ${target} has ETag ${etag}: a proxy turned Kinto's strong ETag into a weak one (compression?), which If-Match comparisons reject.`, 'Pass ETag unchanged: do not compress JSON at the proxy, or keep strong ETags (nginx: gzip off for application/json).'),
    )
  } else if (!/^"\d+"$/.test(etag)) {
    findings.push(error('etag', `GET ${target} has ETag ${etag}, not Kinto's "<timestamp>" (rewritten by a proxy?).`, 'Let the CDN/proxy pass Kinto\'s ETag through unchanged.'))
  } else findings.push(ok('etag', `ETag ${etag} reaches the client.`))

  const lastModified = h['last-modified']
  if (!lastModified || Number.isNaN(Date.parse(lastModified))) {
    findings.push(
      error('last-modified', `GET ${target} reached the client ${lastModified ? `with an unreadable Last-Modified (${lastModified})` : 'without Last-Modified'}.`, 'Let the CDN/proxy pass Last-Modified through unchanged.'),
    )
  } else findings.push(ok('last-modified', `Last-Modified: ${lastModified} reaches the client.`))

  let two: ListPage | undefined
  try {
    two = await readPage(state, listPath, 2)
  } catch (e) {
    findings.push(error('limit-varies', `GET ${target}?_limit=2 failed: ${describeHttpError(e)}.`, 'Check the CDN/proxy.'))
  }
  const nextPage = h['next-page']
  const atLeastTwo = (two?.count ?? 0) >= 2 || Boolean(nextPage)
  if (!atLeastTwo) {
    const hint = explicit ? `Add a second object to ${target}, or pass --list with a longer list.` : 'Pass --list with a list anonymous clients may read, holding at least 2 objects.'
    findings.push(warning('next-page', `Not verified: ${target} holds fewer than 2 objects, so there is no second page.`, hint))
    findings.push(warning('limit-varies', `Not verified: ${target} holds fewer than 2 objects, so _limit=1 and _limit=2 look alike.`, hint))
  } else {
    if (!nextPage) {
      findings.push(error('next-page', `GET ${target}?_limit=1 has more objects to give but no Next-Page header reached the client.`, 'Let the CDN/proxy pass the Next-Page header through.'))
    } else if (!underRoot(nextPage, state.root)) {
      findings.push(
        error('next-page', `Next-Page is ${nextPage}, outside the public URL ${state.root}/: clients following pages leave for the main server's address.`, `Set kinto.http_host = ${new URL(state.root).host} (and kinto.http_scheme) in [app:main].`),
      )
    } else findings.push(ok('next-page', `Next-Page reaches the client and stays on ${state.root}.`))
    if (two && two.res.status === 200) {
      if (two.count === 2 && one.count === 1) findings.push(ok('limit-varies', '_limit=1 and _limit=2 got 1 and 2 objects: responses differ by query string.'))
      else
        findings.push(
          error(
            'limit-varies',
            `_limit=1 gave ${one.count} object(s) and _limit=2 gave ${two.count ?? 'no list'}: the same answer for different query strings (a cache keyed on the path alone?).`,
            'Make the CDN/proxy cache key include the whole query string.',
          ),
        )
    } else if (two) findings.push(error('limit-varies', `GET ${target}?_limit=2 answered ${two.res.status}.`, 'Check the CDN/proxy.'))
  }

  const exposed = headerList(h['access-control-expose-headers'])
  const allowOrigin = h['access-control-allow-origin']
  const wanted = ['etag', 'last-modified', 'next-page']
  const hidden = wanted.filter((x) => !exposed.includes(x))
  if (!allowOrigin || hidden.length > 0) {
    findings.push(
      error(
        'cors-expose',
        `GET ${target} with Origin: ${state.origin} ${allowOrigin ? `does not expose ${hidden.join(', ')} (Access-Control-Expose-Headers: ${h['access-control-expose-headers'] ?? 'none'})` : 'has no Access-Control-Allow-Origin'}: browsers cannot read ${allowOrigin ? 'those headers' : 'the response'}.`,
        'Let Kinto\'s Access-Control-* response headers through the CDN/proxy (and vary cached answers on Origin); if kinto.cors_origins restricts origins, pass --origin with an allowed one.',
      ),
    )
  } else findings.push(ok('cors-expose', 'Browsers may read ETag, Last-Modified and Next-Page (Access-Control-Expose-Headers).'))

  if (etag) {
    try {
      const again = await get(state, `${listPath}?_limit=1`, {...state.listAuth, 'if-none-match': etag})
      if (again.status === 304) findings.push(ok('if-none-match', `If-None-Match: ${etag} got 304 Not Modified.`))
      else
        findings.push(
          warning('if-none-match', `If-None-Match: ${etag} got ${again.status} instead of 304: clients re-download unchanged lists.`, 'Let the CDN/proxy pass If-None-Match through (or answer it from the cached ETag).'),
        )
    } catch (e) {
      findings.push(warning('if-none-match', `A conditional GET failed: ${describeHttpError(e)}.`, 'Check the CDN/proxy.'))
    }
  }
  return findings
}

async function checkPrivateUrls(state: ProbeState, capabilities: Record<string, unknown>): Promise<Finding[]> {
  const exposed: string[] = []
  const refused: string[] = []
  const why = ['The heartbeat shows which backends fail and makes every backend work on each call']
  const paths = [...PRIVATE_PATHS]
  for (const [capability, path, reason] of PLUGIN_PRIVATE_PATHS) {
    if (!Object.prototype.hasOwnProperty.call(capabilities, capability)) continue
    paths.push(path)
    why.push(reason)
  }
  for (const name of paths) {
    try {
      const res = await get(state, `/${name}`)
      if ([401, 403, 404].includes(res.status) || res.status >= 300 && res.status < 400) refused.push(`${name} ${res.status}`)
      else exposed.push(`/v1/${name} (${res.status})`)
    } catch (e) {
      refused.push(`${name} (${describeHttpError(e)})`)
    }
  }
  const findings: Finding[] = []
  if (exposed.length > 0) {
    const local = await localReach(state.root)
    const from = local
      ? ` This probe reached them from a ${local} address (${new URL(state.root).hostname} is ${local}), which the proxy's allow list may admit: run kinto check --url from outside your network to see what everyone else gets.`
      : ''
    findings.push(
      error(
        'private-urls',
        `Private URLs answer ${local ? 'this probe' : 'anyone'}: ${exposed.join(', ')}. ${why.join('; ')}.${from}`,
        'Restrict /v1/__…__ to your monitoring addresses at the proxy (kinto deploy nginx --allow ADDR writes such a block).',
      ),
    )
  } else findings.push(ok('private-urls', `Private URLs are not public (${refused.join(', ')}).`))

  // GET only: a POST would empty every backend.
  const advertised = Object.prototype.hasOwnProperty.call(capabilities, 'flush_endpoint')
  let flushStatus: number | undefined
  try {
    flushStatus = (await get(state, '/__flush__')).status
  } catch {
    flushStatus = undefined
  }
  const reachable = flushStatus !== undefined && ![401, 403, 404].includes(flushStatus)
  if (advertised && reachable) {
    findings.push(
      error(
        'flush-endpoint',
        `The flush endpoint is enabled (capability flush_endpoint) and /v1/__flush__ is reachable (GET answered ${flushStatus}): anyone can POST to it and delete everything.`,
        'Remove kinto.plugins.flush from kinto.includes and restart Kinto.',
      ),
    )
  } else if (advertised) {
    findings.push(
      warning(
        'flush-endpoint',
        `The flush endpoint is enabled (capability flush_endpoint); /v1/__flush__ is blocked from here (GET answered ${flushStatus ?? 'nothing'}), but anyone allowed through can delete everything.`,
        'Remove kinto.plugins.flush from kinto.includes and restart Kinto.',
      ),
    )
  } else findings.push(ok('flush-endpoint', 'The flush endpoint is not enabled.'))
  return findings
}

/** kinto.plugins.admin advertises the console (capability `admin`): its page must reach the public too. */
async function checkAdminConsole(state: ProbeState, capabilities: Record<string, unknown>): Promise<Finding[]> {
  const admin = capabilities.admin
  if (!admin || typeof admin !== 'object') return []
  const version = (admin as {version?: unknown}).version
  const what = `The admin console${typeof version === 'string' ? ` (kinto-admin ${version})` : ''}`
  const target = `${state.root}/v1/admin/`
  const fix = 'Let /v1/admin/ through the proxy (kinto deploy nginx keeps it public), or remove kinto.plugins.admin from kinto.includes.'
  let answer: string
  try {
    const res = await get(state, '/admin/')
    const type = res.headers['content-type'] ?? ''
    if (res.status === 200 && type.startsWith('text/html')) return [ok('admin-console', `${what} is served at ${target}.`)]
    answer = `answered ${res.status}${type ? ` (${type.split(';')[0]})` : ''}`
  } catch (e) {
    answer = `failed: ${describeHttpError(e)}`
  }
  return [warning('admin-console', `${what} is advertised (capability admin), but GET ${target} ${answer}: people cannot open it.`, fix)]
}

export async function probeDeployment(url: string, options: ProbeOptions = {}): Promise<CheckReport> {
  const root = publicRoot(url)
  const listPath = normaliseListPath(options.listPath ?? '/buckets')
  const http = new HttpClient({timeoutMs: options.timeoutMs ?? 10_000})
  const state: ProbeState = {http, root: rootString(root), origin: options.origin ?? DEFAULT_PROBE_ORIGIN, findings: [], ...listReader(options.auth)}
  const findings = state.findings
  const report = (): CheckReport => ({target: {kind: 'url', url: `${state.root}/v1/`}, findings, summary: summarize(findings)})
  try {
    let hello: HttpResponse
    try {
      hello = await http.request(`${state.root}/v1/`)
    } catch (e) {
      findings.push(error('hello', `GET ${state.root}/v1/ failed: ${describeHttpError(e)}.`, 'Check the URL, DNS, and that the server (or the proxy in front) is up.'))
      return report()
    }
    if (hello.redirects.length > 0) {
      const final = new URL(hello.url)
      findings.push(
        warning('redirect', `${state.root}/v1/ redirects to ${hello.url}; the rest was checked there.`, `Give clients (and --url) the final address ${final.origin}${final.pathname.replace(/\/v1\/?$/, '')}.`),
      )
      state.root = rootString(publicRoot(hello.url))
    }
    const body = parseJson(hello.body) as Record<string, unknown> | undefined
    if (hello.status !== 200 || body === undefined || typeof body !== 'object' || !('http_api_version' in body)) {
      findings.push(
        error(
          'hello',
          `GET ${state.root}/v1/ answered ${hello.status}${body === undefined ? ' with a body that is not JSON' : ''}, not Kinto's hello.`,
          'Check that --url is the public root of the Kinto service (the part before /v1/).',
        ),
      )
      return report()
    }
    findings.push(
      ok('hello', `${state.root}/v1/ is ${String(body.project_name ?? 'kinto')} ${String(body.project_version ?? '')} (HTTP API ${String(body.http_api_version)}).`.replace(' )', ')')),
    )
    findings.push(helloUrlFinding(state, body.url))
    findings.push(await checkHostLeak(state, `${state.root}/v1/`))
    findings.push(await checkPreflight(state, listPath))
    findings.push(...(await checkList(state, listPath, options.listPath !== undefined)))
    const capabilities = body.capabilities && typeof body.capabilities === 'object' ? (body.capabilities as Record<string, unknown>) : {}
    findings.push(...(await checkPrivateUrls(state, capabilities)))
    findings.push(...(await checkAdminConsole(state, capabilities)))
    return report()
  } finally {
    await http.close()
  }
}

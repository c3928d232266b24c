/**
 * From a loaded Kinto ini plus command-line flags to the plain options of the renderers.
 * Every value comes from the ini unless a flag overrides it, and each one remembers where it
 * came from so that an error can name the flag or the ini key to fix.
 *
 * The config is taken structurally (what lib/config's loadConfig returns), so the renderers do
 * not depend on the loader.
 */
import path from 'node:path'

import {asList, asString} from '../config/settings.js'
import {UsageError} from '../errors.js'
import {listRuns} from '../runs/registry.js'
import {servedPrefix} from '../server/plugins/attachment/settings.js'
import type {ApacheOptions} from './apache.js'
import type {NginxOptions} from './nginx.js'
import {connectHost, hostPort} from './upstream.js'
import type {UwsgiOptions} from './uwsgi.js'
import type {Origins} from './values.js'
import {checkSize, serverNameFromHttpHost} from './values.js'

export interface DeployConfig {
  /** Absolute path of the ini file. */
  path: string
  /** Its folder. */
  dir: string
  /** Effective settings, keys without `kinto.`. */
  settings: Record<string, unknown>
  /** `[server:main]`: where the runtime listens. */
  server: {host: string; port: number; unixSocket?: string; unixSocketMode?: string | number}
  /** Where a setting came from, for messages ("FILE, line 12, key 'kinto.http_host'", an env var). */
  describeSetting?: (key: string) => string
}

export const DEPLOY_DEFAULTS = {
  listen: '80',
  allow: ['127.0.0.1', '::1'],
  maxBodySize: '75m',
  cachePath: '/var/cache/nginx/kinto',
  uid: 'kinto',
  gid: 'kinto',
  processes: 3,
  harakiri: 120,
  bufferSize: 65535,
  plugin: 'python3',
  socketMode: '666',
} as const

export interface CommonFlags {
  'server-name'?: string[]
  listen?: string
  upstream?: string
  allow?: string[]
  'max-body-size'?: string
}

/** `--allow` values; `none` alone means nobody (the private URLs are closed to every address). */
function allowList(flag: string[] | undefined, origins: Origins): string[] {
  if (flag === undefined || flag.length === 0) return [...DEPLOY_DEFAULTS.allow]
  origins.allow = '--allow'
  return flag.filter((a) => a !== 'none')
}

function iniOrigin(config: DeployConfig, what: string): string {
  return `${what} in ${config.path}`
}

function serverNames(config: DeployConfig, flags: CommonFlags, origins: Origins): string[] {
  if (flags['server-name'] && flags['server-name'].length > 0) {
    origins.serverNames = '--server-name'
    return flags['server-name']
  }
  const httpHost = config.settings.http_host
  if (httpHost === null || httpHost === undefined || httpHost === '') return []
  origins.serverNames = config.describeSetting?.('http_host') ?? iniOrigin(config, 'kinto.http_host')
  return [serverNameFromHttpHost(String(httpHost), origins.serverNames)]
}

/** The ini's listening address as an upstream spelling, for a client of it. */
function upstreamFromIni(config: DeployConfig, protocol: 'http' | 'uwsgi'): string {
  const {server} = config
  // A runtime of this ini running on another port (kinto start --port) is where requests must go.
  const running = protocol === 'http' ? listRuns(config.path).find((e) => e.url?.startsWith('http://')) : undefined
  if (running?.url) {
    const url = new URL(running.url)
    return `http://${url.host}`
  }
  if (server.unixSocket) return `${protocol === 'uwsgi' ? 'uwsgi+' : ''}unix:${path.resolve(config.dir, server.unixSocket)}`
  return `${protocol}://${hostPort(connectHost(server.host), server.port)}`
}

/**
 * The body size the proxy accepts: --max-body-size, else the default, raised to let through the
 * largest attachment kinto_attachment accepts (kinto.attachment.max_size_bytes, or a bucket's or
 * collection's), with 1 MiB for the multipart envelope and the record's fields.
 */
function maxBodySize(config: DeployConfig, flag: string | undefined, origins: Origins): string {
  if (flag !== undefined || !asList(config.settings, 'includes').includes('kinto_attachment')) {
    return take(flag, DEPLOY_DEFAULTS.maxBodySize, 'max-body-size', origins, 'maxBodySize')
  }
  let largest = 0
  let largestKey = ''
  for (const [key, value] of Object.entries(config.settings)) {
    if (key !== 'attachment.max_size_bytes' && !(key.startsWith('attachment.resources.') && key.endsWith('.max_size_bytes'))) continue
    const n = Number(String(value).trim())
    if (Number.isSafeInteger(n) && n > largest) [largest, largestKey] = [n, key]
  }
  const mib = 1024 * 1024
  const needed = Math.ceil(largest / mib) + 1
  if (largest === 0 || needed * mib <= checkSize(DEPLOY_DEFAULTS.maxBodySize).bytes) return DEPLOY_DEFAULTS.maxBodySize
  origins.maxBodySize = `${config.describeSetting?.(largestKey) ?? iniOrigin(config, `kinto.${largestKey}`)} (the largest attachment, plus 1 MiB)`
  return `${needed}m`
}

function take<T>(flag: T | undefined, fallback: T, name: string, origins: Origins, key: string, iniWhat?: string): T {
  if (flag !== undefined) {
    origins[key] = `--${name}`
    return flag
  }
  if (iniWhat) origins[key] = iniWhat
  return fallback
}

export interface NginxFlags extends CommonFlags {
  uwsgi?: boolean
  cache?: boolean
  'cache-path'?: string
}

export function nginxOptionsFrom(config: DeployConfig, flags: NginxFlags): NginxOptions {
  const origins: Origins = {}
  if (flags.uwsgi && flags.upstream !== undefined) {
    throw new UsageError('--uwsgi and --upstream cannot be used together.', {
      hint: 'Write the protocol in --upstream instead: uwsgi://HOST:PORT or uwsgi+unix:/path.sock.',
    })
  }
  return {
    serverNames: serverNames(config, flags, origins),
    listen: take(flags.listen, DEPLOY_DEFAULTS.listen, 'listen', origins, 'listen'),
    upstream: take(flags.upstream, upstreamFromIni(config, flags.uwsgi ? 'uwsgi' : 'http'), 'upstream', origins, 'upstream', iniOrigin(config, '[server:main]')),
    allow: allowList(flags.allow, origins),
    cachePath: flags.cache || flags['cache-path'] !== undefined ? take(flags['cache-path'], DEPLOY_DEFAULTS.cachePath, 'cache-path', origins, 'cachePath') : false,
    maxBodySize: maxBodySize(config, flags['max-body-size'], origins),
    source: path.basename(config.path),
    attachments: attachmentsFrom(config, origins),
    retryAfterSeconds: retryAfter(config, origins),
    origins,
  }
}

/** kinto.retry_after_seconds (upstream's default 3), as the runtime's own 503 answers say it. */
function retryAfter(config: DeployConfig, origins: Origins): number {
  const value = config.settings.retry_after_seconds
  if (value === undefined || value === null || String(value).trim() === '') return 3
  origins.retryAfterSeconds = config.describeSetting?.('retry_after_seconds') ?? iniOrigin(config, 'kinto.retry_after_seconds')
  const n = Number(String(value).trim())
  return Number.isInteger(n) && n >= 0 ? n : (value as number)
}

/** kinto_attachment on local storage with a base_url path nginx can serve: where and from what folder. */
function attachmentsFrom(config: DeployConfig, origins: Origins): NginxOptions['attachments'] {
  if (!asList(config.settings, 'includes').includes('kinto_attachment')) return undefined
  const basePath = asString(config.settings, 'attachment.base_path')
  const urlPath = servedPrefix(asString(config.settings, 'attachment.base_url') ?? '', 'v1')
  if (!basePath || !urlPath) return undefined
  origins.attachments = config.describeSetting?.('attachment.base_url') ?? iniOrigin(config, 'kinto.attachment.base_url')
  return {urlPath, basePath: path.resolve(config.dir, basePath), namesReused: reusesFileNames(config.settings)}
}

/**
 * A stored file's name is new at each upload unless a `filename_pattern` (global, or a bucket's or
 * collection's) leaves out `{filename}`, its random part: `{rid}` names every upload of a record
 * alike, so the same URL serves a new file.
 */
function reusesFileNames(settings: DeployConfig['settings']): boolean {
  return Object.entries(settings).some(
    ([key, value]) =>
      (key === 'attachment.filename_pattern' || (key.startsWith('attachment.resources.') && key.endsWith('.filename_pattern'))) &&
      typeof value === 'string' &&
      value.trim() !== '' &&
      !value.includes('{filename}'),
  )
}

export interface UwsgiFlags {
  'wsgi-file'?: string
  virtualenv?: string
  socket?: string
  'socket-mode'?: string
  uid?: string
  gid?: string
  processes?: number
  harakiri?: number
  'buffer-size'?: number
  plugin?: string
}

export function uwsgiOptionsFrom(config: DeployConfig, flags: UwsgiFlags): UwsgiOptions {
  const origins: Origins = {iniPath: '--ini'}
  const {server} = config
  // The uwsgi protocol lets a client set the app's environment: it must not face the network,
  // so a wildcard listening address in the ini becomes loopback here (--socket overrides).
  const iniSocket = server.unixSocket ? `unix:${path.resolve(config.dir, server.unixSocket)}` : hostPort(connectHost(server.host), server.port)
  const iniMode = server.unixSocket && server.unixSocketMode !== undefined ? String(server.unixSocketMode) : undefined
  return {
    iniPath: config.path,
    wsgiFile: take(flags['wsgi-file'], path.join(config.dir, 'app.wsgi'), 'wsgi-file', origins, 'wsgiFile', `the folder of ${config.path}`),
    virtualenv: take(flags.virtualenv, undefined, 'virtualenv', origins, 'virtualenv'),
    socket: take(flags.socket, iniSocket, 'socket', origins, 'socket', iniOrigin(config, '[server:main]')),
    socketMode: take(flags['socket-mode'], iniMode ?? DEPLOY_DEFAULTS.socketMode, 'socket-mode', origins, 'socketMode', iniMode ? iniOrigin(config, '[server:main]') : undefined),
    uid: take(flags.uid, DEPLOY_DEFAULTS.uid, 'uid', origins, 'uid'),
    gid: take(flags.gid, DEPLOY_DEFAULTS.gid, 'gid', origins, 'gid'),
    processes: take(flags.processes, DEPLOY_DEFAULTS.processes, 'processes', origins, 'processes'),
    harakiri: take(flags.harakiri, DEPLOY_DEFAULTS.harakiri, 'harakiri', origins, 'harakiri'),
    bufferSize: take(flags['buffer-size'], DEPLOY_DEFAULTS.bufferSize, 'buffer-size', origins, 'bufferSize'),
    plugin: take(flags.plugin, DEPLOY_DEFAULTS.plugin, 'plugin', origins, 'plugin'),
    source: path.basename(config.path),
    origins,
  }
}

export interface ApacheFlags extends CommonFlags {
  mode?: 'proxy' | 'wsgi'
  'wsgi-file'?: string
  'python-path'?: string
  virtualenv?: string
}

export function apacheOptionsFrom(config: DeployConfig, flags: ApacheFlags): ApacheOptions {
  const origins: Origins = {iniPath: '--ini'}
  const common = {
    serverNames: serverNames(config, flags, origins),
    listen: take(flags.listen, DEPLOY_DEFAULTS.listen, 'listen', origins, 'listen'),
    allow: allowList(flags.allow, origins),
    maxBodySize: maxBodySize(config, flags['max-body-size'], origins),
    source: path.basename(config.path),
    origins,
  }
  const mode = flags.mode ?? 'proxy'
  const misplaced = (mode === 'proxy' ? ['wsgi-file', 'python-path', 'virtualenv'] : ['upstream']).filter(
    (name) => flags[name as keyof ApacheFlags] !== undefined,
  )
  if (misplaced.length > 0) {
    throw new UsageError(`--${misplaced.join(', --')} ${misplaced.length > 1 ? 'do' : 'does'} not apply to --mode ${mode}.`, {
      hint: mode === 'proxy' ? 'Add --mode wsgi to run upstream Kinto inside Apache.' : 'Drop --upstream: with mod_wsgi Apache runs Kinto itself.',
    })
  }
  if (mode === 'proxy') {
    return {
      ...common,
      mode: 'proxy',
      retryAfterSeconds: retryAfter(config, origins),
      upstream: take(flags.upstream, upstreamFromIni(config, 'http'), 'upstream', origins, 'upstream', iniOrigin(config, '[server:main]')),
    }
  }
  return {
    ...common,
    mode: 'wsgi',
    iniPath: config.path,
    wsgiFile: take(flags['wsgi-file'], path.join(config.dir, 'app.wsgi'), 'wsgi-file', origins, 'wsgiFile', `the folder of ${config.path}`),
    pythonPath: take(flags['python-path'], undefined, 'python-path', origins, 'pythonPath'),
    virtualenv: take(flags.virtualenv, undefined, 'virtualenv', origins, 'virtualenv'),
  }
}

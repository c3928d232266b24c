/** `kinto deploy nginx`: a reverse-proxy server block (http {} context) from templates/nginx.conf. */
import {renderTemplateFile} from './template.js'
import {type Upstream, nginxServerAddress, parseUpstream} from './upstream.js'
import {type Origins, DeployValueError, checkAllowAddress, checkListen, checkPath, checkServerName, checkSize, checkUrlPath} from './values.js'

export interface NginxOptions {
  /** `server_name` values; `_` (any host) when empty. */
  serverNames: string[]
  /** `listen` value: a port or `ADDR:PORT`. */
  listen: string
  /** See upstream.ts for the spellings (`http://…`, `unix:…`, `uwsgi://…`, `uwsgi+unix:…`). */
  upstream: string
  /** Addresses or networks allowed to reach the private `__…__` URLs. */
  allow: string[]
  /** Add a cache zone stored in this folder; false or undefined for no cache. */
  cachePath?: string | false
  /** `client_max_body_size`, nginx syntax (`75m`). */
  maxBodySize: string
  /** Shown in the header comment (the ini file's name). */
  source: string
  /**
   * kinto_attachment's files, served by nginx from base_path at base_url's path. `namesReused`: a
   * new upload may take an old file's name (then its URL is revalidated, never cached as immutable).
   */
  attachments?: {urlPath: string; basePath: string; namesReused?: boolean}
  /** Retry-After of the 503 answered while Kinto does not answer (kinto.retry_after_seconds; 3). */
  retryAfterSeconds?: number
  /** Where each value came from, for error messages (keys: the option names above). */
  origins?: Origins
}

export const NGINX_UPSTREAM_NAME = 'kinto_backend'
export const NGINX_CACHE_ZONE = 'kinto_cache'

export function renderNginx(options: NginxOptions): string {
  const origins = options.origins ?? {}
  const serverNames = options.serverNames.length > 0 ? options.serverNames.map((n) => checkServerName(n, origins.serverNames)) : ['_']
  const listen = checkListen(options.listen, origins.listen).text
  const upstream: Upstream = parseUpstream(options.upstream, origins.upstream)
  const allow = options.allow.map((a) => checkAllowAddress(a, origins.allow))
  const cachePath = options.cachePath ? checkPath('cache path', options.cachePath, origins.cachePath) : undefined
  const maxBodySize = checkSize(options.maxBodySize, origins.maxBodySize).text
  const http = upstream.protocol === 'http'
  const attachments = options.attachments
    ? {url: checkUrlPath(options.attachments.urlPath, origins.attachments), path: checkPath('attachments folder', options.attachments.basePath, origins.attachments)}
    : undefined
  return renderTemplateFile('nginx.conf', {
    source: sourceName(options.source),
    prefix: http ? 'proxy' : 'uwsgi',
    http,
    uwsgi: !http,
    cache: Boolean(cachePath),
    cache_path: cachePath,
    cache_methods: http ? 'GET HEAD' : 'GET',
    zone: NGINX_CACHE_ZONE,
    upstream_name: NGINX_UPSTREAM_NAME,
    upstream_server: nginxServerAddress(upstream),
    pass_target: http ? `http://${NGINX_UPSTREAM_NAME}` : NGINX_UPSTREAM_NAME,
    listen,
    server_names: [...new Set(serverNames)].join(' '),
    max_body_size: maxBodySize,
    allow: [...new Set(allow)],
    attachments: Boolean(attachments),
    attachments_url: attachments?.url,
    attachments_path: attachments?.path.replace(/\/+$/, ''),
    attachments_names_reused: options.attachments?.namesReused === true,
    retry_after: retryAfter(options.retryAfterSeconds, origins.retryAfterSeconds),
  })
}

/** kinto.retry_after_seconds, checked for a Retry-After header. */
export function retryAfter(seconds: unknown, origin?: string): number {
  if (seconds === undefined) return 3
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > 86_400) {
    throw new DeployValueError('retry_after_seconds', seconds, 'it is not a whole number of seconds', origin, 'Use a number of seconds such as 30.')
  }
  return seconds
}

/** The source name for a header comment: one line, no comment-breaking characters. */
export function sourceName(source: string): string {
  const cleaned = String(source).replace(/[^\w./@+-]/g, '_')
  return cleaned === '' ? 'defaults' : cleaned
}

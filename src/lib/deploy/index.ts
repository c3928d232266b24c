/**
 * Library verbs of `kinto deploy nginx | uwsgi | apache`: options from the loaded ini and the
 * flags, the snippet rendered from templates/, then printed, written or checked for drift.
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {UsageError} from '../errors.js'
import {renderApache} from './apache.js'
import {renderNginx} from './nginx.js'
import {type ApacheFlags, type DeployConfig, type NginxFlags, type UwsgiFlags, apacheOptionsFrom, nginxOptionsFrom, uwsgiOptionsFrom} from './options.js'
import {type DeliverResult, deliver} from './output.js'
import {renderUwsgi} from './uwsgi.js'
import {renderAppWsgi} from './wsgi.js'

export {renderApache, type ApacheOptions} from './apache.js'
export {renderNginx, type NginxOptions} from './nginx.js'
export {renderUwsgi, type UwsgiOptions} from './uwsgi.js'
export {renderAppWsgi, type AppWsgiOptions} from './wsgi.js'
export {DEPLOY_DEFAULTS, type DeployConfig, apacheOptionsFrom, nginxOptionsFrom, uwsgiOptionsFrom} from './options.js'
export {type DeliverResult, deliver, unifiedDiff} from './output.js'
export {DeployValueError} from './values.js'

/** Where the snippet goes: printed (neither), written (`output`, `force` to replace), or compared (`check`). */
export interface DeployTarget {
  output?: string
  check?: string
  force?: boolean
}

/** `warnings`: what would keep the snippet from working on this machine (shown on stderr). */
export type DeployResult = DeliverResult & {snippet: string; warnings?: string[]}

export async function deployNginx(config: DeployConfig, flags: NginxFlags, target: DeployTarget): Promise<DeployResult> {
  const options = nginxOptionsFrom(config, flags)
  const content = renderNginx(options)
  const warnings = [...listenWarnings(options.listen), ...(options.cachePath ? cachePathWarnings(options.cachePath) : [])]
  const result = await deliver({...target, content, label: 'nginx configuration', command: 'kinto deploy nginx'})
  return {snippet: 'nginx', ...result, ...(warnings.length > 0 ? {warnings} : {})}
}

/** The snippets have no TLS: a listen on 443 would serve plain HTTP where clients speak TLS. */
function listenWarnings(listen: string): string[] {
  if (!/(^|:)443$/.test(listen)) return []
  return [
    'port 443 is HTTPS, but this block has no TLS: it serves plain HTTP there, which browsers and clients cannot talk to. Add the certificate directives to it (nginx: `listen 443 ssl;`, ssl_certificate…; Apache: SSLEngine on, SSLCertificateFile…), or listen on 80 behind the TLS terminator.',
  ]
}

/**
 * nginx makes only the last folder of proxy_cache_path (`nginx -t`: "mkdir() … failed"), and
 * Debian's and Ubuntu's nginx packages have no /var/cache/nginx (nginx.org's do).
 */
function cachePathWarnings(cachePath: string): string[] {
  const parent = path.dirname(cachePath)
  if (existsSync(cachePath) || existsSync(parent)) return []
  return [
    `${parent} does not exist on this machine, and nginx creates only the last folder of proxy_cache_path (${cachePath}): \`nginx -t\` fails until you run \`mkdir -p ${parent}\` (or choose another --cache-path).`,
  ]
}

export async function deployUwsgi(config: DeployConfig, flags: UwsgiFlags & {'app-wsgi'?: boolean}, target: DeployTarget): Promise<DeployResult> {
  if (flags['app-wsgi']) {
    const content = renderAppWsgi({iniPath: config.path, command: 'uwsgi', origins: {iniPath: '--ini'}})
    return {snippet: 'app.wsgi', ...(await deliver({...target, content, label: 'app.wsgi', command: 'kinto deploy uwsgi --app-wsgi'}))}
  }
  const content = renderUwsgi(uwsgiOptionsFrom(config, flags))
  return {snippet: 'uwsgi', ...(await deliver({...target, content, label: 'uwsgi section', command: 'kinto deploy uwsgi'}))}
}

export async function deployApache(config: DeployConfig, flags: ApacheFlags & {'app-wsgi'?: boolean}, target: DeployTarget): Promise<DeployResult> {
  const options = apacheOptionsFrom(config, flags)
  if (flags['app-wsgi']) {
    if (options.mode !== 'wsgi') {
      throw new UsageError('--app-wsgi goes with --mode wsgi.', {hint: 'Run `kinto deploy apache --mode wsgi --app-wsgi`.'})
    }
    const content = renderAppWsgi({iniPath: config.path, command: 'apache', origins: {iniPath: '--ini'}})
    return {snippet: 'app.wsgi', ...(await deliver({...target, content, label: 'app.wsgi', command: 'kinto deploy apache --mode wsgi --app-wsgi'}))}
  }
  const content = renderApache(options)
  const command = options.mode === 'wsgi' ? 'kinto deploy apache --mode wsgi' : 'kinto deploy apache'
  const warnings = listenWarnings(options.listen)
  const result = await deliver({...target, content, label: 'Apache configuration', command})
  return {snippet: `apache-${options.mode}`, ...result, ...(warnings.length > 0 ? {warnings} : {})}
}

/**
 * `kinto deploy apache`: a virtual host with mod_proxy in front of our runtime
 * (templates/apache-proxy.conf), or mod_wsgi running upstream Kinto (templates/apache-wsgi.conf).
 */
import path from 'node:path'

import {retryAfter, sourceName} from './nginx.js'
import {renderTemplateFile} from './template.js'
import {apacheProxyTarget, hostPort, parseUpstream} from './upstream.js'
import {type Origins, DeployValueError, checkAllowAddress, checkListen, checkPath, checkServerName, checkSize} from './values.js'

interface ApacheCommon {
  /** ServerName then ServerAlias values; none: the virtual host answers whatever name it is reached by. */
  serverNames: string[]
  /** `<VirtualHost>` address: a port (`80` → `*:80`) or `ADDR:PORT`. */
  listen: string
  /** Addresses or networks allowed to reach the private `__…__` URLs. */
  allow: string[]
  /** LimitRequestBody, nginx size syntax (`75m`). */
  maxBodySize: string
  source: string
  /** Retry-After of the 503 answered while Kinto does not answer (kinto.retry_after_seconds; 3). */
  retryAfterSeconds?: number
  origins?: Origins
}

export interface ApacheProxyOptions extends ApacheCommon {
  mode: 'proxy'
  /** Our runtime over HTTP: `http://HOST:PORT`, `HOST:PORT` or `unix:/path.sock`. */
  upstream: string
}

export interface ApacheWsgiOptions extends ApacheCommon {
  mode: 'wsgi'
  /** Absolute path of the Kinto ini (SetEnv KINTO_INI). */
  iniPath: string
  /** Absolute path of app.wsgi. */
  wsgiFile: string
  /** WSGIPythonPath; defaults to the folder of app.wsgi. */
  pythonPath?: string
  /** WSGIPythonHome (a virtualenv); omitted when undefined. */
  virtualenv?: string
}

export type ApacheOptions = ApacheProxyOptions | ApacheWsgiOptions

export function renderApache(options: ApacheOptions): string {
  const o = options.origins ?? {}
  const names = [...new Set(options.serverNames.map((n) => checkServerName(n, o.serverNames)))]
  for (const [i, name] of names.entries()) {
    if (name === '_' || name.startsWith('.') || (i === 0 && name.startsWith('*'))) {
      throw new DeployValueError('server name', name, i === 0 ? 'Apache needs a plain host name for ServerName' : 'Apache does not understand this form', o.serverNames, 'Use a host name such as kinto.example.com first; *.example.com is fine after it.')
    }
  }
  const listen = checkListen(options.listen, o.listen)
  const common = {
    source: sourceName(options.source),
    listen: listen.host === undefined ? `*:${listen.port}` : listen.text,
    // Asked for with --listen: a Listen directive too (Apache's own config listens on 80 and 443 only).
    listen_directive: o.listen === '--listen' ? (listen.host === undefined ? String(listen.port) : listen.text) : undefined,
    server_name: names[0],
    server_aliases: names.slice(1),
    max_body_bytes: checkSize(options.maxBodySize, o.maxBodySize).bytes,
    allow_list: [...new Set(options.allow.map((a) => checkAllowAddress(a, o.allow)))].join(' '),
  }
  if (options.mode === 'proxy') {
    const upstream = parseUpstream(options.upstream, o.upstream)
    if (upstream.protocol !== 'http') {
      throw new DeployValueError('upstream', options.upstream, 'Apache proxy mode talks HTTP to the Kinto runtime', o.upstream, 'Use http://HOST:PORT or unix:/path.sock, or --mode wsgi to run upstream Kinto inside Apache.')
    }
    return renderTemplateFile('apache-proxy.conf', {
      ...common,
      retry_after: retryAfter(options.retryAfterSeconds, o.retryAfterSeconds),
      proxy_target: apacheProxyTarget(upstream),
      proxy_reverse: upstream.kind === 'unix' ? 'http://localhost/' : `http://${hostPort(upstream.host, upstream.port)}/`,
    })
  }
  const wsgiFile = checkPath('wsgi file', options.wsgiFile, o.wsgiFile)
  return renderTemplateFile('apache-wsgi.conf', {
    ...common,
    ini_path: checkPath('ini path', options.iniPath, o.iniPath),
    wsgi_file: wsgiFile,
    wsgi_dir: path.dirname(wsgiFile),
    wsgi_name: path.basename(wsgiFile),
    python_path: options.pythonPath === undefined ? path.dirname(wsgiFile) : checkPath('python path', options.pythonPath, o.pythonPath),
    python_home: options.virtualenv === undefined ? undefined : checkPath('virtualenv', options.virtualenv, o.virtualenv),
  })
}

/**
 * Where the proxy sends requests: our runtime over HTTP (TCP or a unix socket), or upstream Kinto
 * under uwsgi speaking the uwsgi protocol (TCP or a unix socket).
 *
 * Accepted spellings: `http://HOST:PORT`, `HOST:PORT`, `unix:/path.sock`, `uwsgi://HOST:PORT`,
 * `uwsgi+unix:/path.sock`.
 */

import {bracketHost} from '../net.js'
import {DeployValueError, checkHost, checkPath, checkPort} from './values.js'

export type Upstream =
  | {protocol: 'http' | 'uwsgi'; kind: 'tcp'; host: string; port: number}
  | {protocol: 'http' | 'uwsgi'; kind: 'unix'; path: string}

const HINT = 'Use http://127.0.0.1:8888, unix:/run/kinto/kinto.sock, uwsgi://127.0.0.1:3031 or uwsgi+unix:/run/uwsgi/kinto.sock.'

export function parseUpstream(spec: string, origin?: string): Upstream {
  const text = String(spec)
  let match: RegExpExecArray | null
  // `http://user:password@host:port`: read as host `user`, port `password@host:port`, the password
  // was echoed as a bad port. A proxy's upstream takes no credentials: refused, the password masked.
  if ((match = /^((?:[a-z][a-z0-9+.-]*:\/\/)?)[^/@]*@(.*)$/i.exec(text))) {
    throw new DeployValueError('upstream', `${match[1]}***@${match[2]}`, 'it carries credentials (user:password@), which a proxy does not send upstream', origin, HINT)
  }
  if ((match = /^(uwsgi\+)?unix:(.*)$/.exec(text))) {
    return {protocol: match[1] ? 'uwsgi' : 'http', kind: 'unix', path: checkPath('upstream socket path', match[2], origin)}
  }
  if ((match = /^(?:(http|uwsgi):\/\/)?(\[[^\]]*\]|[^:/]*):([^/]*)\/?$/.exec(text))) {
    const protocol = (match[1] ?? 'http') as 'http' | 'uwsgi'
    return {protocol, kind: 'tcp', host: checkHost('upstream host', match[2], origin), port: checkPort('upstream port', match[3], origin)}
  }
  throw new DeployValueError('upstream', text, 'it is not an upstream address', origin, HINT)
}

/** The address to connect to when a server listens on a wildcard address. */
export function connectHost(listenHost: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '' || listenHost === '*') return '127.0.0.1'
  if (listenHost === '::' || listenHost === '[::]') return '::1'
  return listenHost
}

/** `host:port` with IPv6 literals bracketed. */
export function hostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`
}

/** As nginx writes an `upstream { server … }` address. */
export function nginxServerAddress(upstream: Upstream): string {
  return upstream.kind === 'unix' ? `unix:${upstream.path}` : hostPort(upstream.host, upstream.port)
}

/** As Apache mod_proxy writes a ProxyPass target (HTTP only). */
export function apacheProxyTarget(upstream: Upstream): string {
  return upstream.kind === 'unix' ? `unix:${upstream.path}|http://localhost/` : `http://${hostPort(upstream.host, upstream.port)}/`
}

/** As uwsgi writes its `socket` option. */
export function uwsgiSocket(upstream: Upstream): string {
  return upstream.kind === 'unix' ? upstream.path : hostPort(upstream.host, upstream.port)
}

/** `kinto deploy uwsgi`: the [uwsgi] section running upstream Kinto (templates/uwsgi.ini). */
import {sourceName} from './nginx.js'
import {renderTemplateFile} from './template.js'
import {parseUpstream, uwsgiSocket} from './upstream.js'
import {type Origins, DeployValueError, checkAccount, checkPath, checkPositiveInt, checkSocketMode} from './values.js'

export interface UwsgiOptions {
  /** Absolute path of the Kinto ini (exported to the app as KINTO_INI). */
  iniPath: string
  /** Absolute path of app.wsgi. */
  wsgiFile: string
  /** Python virtualenv holding Kinto; omitted from the file when undefined. */
  virtualenv?: string
  /** Where uwsgi listens, uwsgi protocol: `HOST:PORT`, `uwsgi://HOST:PORT`, `unix:/path`, `uwsgi+unix:/path`. */
  socket: string
  /** Mode of a unix socket (`chmod-socket`), octal; ignored for TCP. */
  socketMode?: string
  uid: string
  gid: string
  processes: number
  /** Seconds before a stuck worker is recycled. */
  harakiri: number
  /** buffer-size and post-buffering, in bytes. */
  bufferSize: number
  /** uwsgi Python plugin name (`python3` on Debian). */
  plugin: string
  source: string
  origins?: Origins
}

export function renderUwsgi(options: UwsgiOptions): string {
  const o = options.origins ?? {}
  if (/^http:/.test(String(options.socket))) {
    throw new DeployValueError('uwsgi socket', options.socket, 'uwsgi speaks its own protocol on its socket, not HTTP', o.socket, 'Use HOST:PORT or unix:/path/to/kinto.sock.')
  }
  const parsed = parseUpstream(options.socket, o.socket)
  const socket = uwsgiSocket(parsed)
  if (!/^[a-z][a-z0-9_]*$/.test(options.plugin)) {
    throw new DeployValueError('uwsgi plugin', options.plugin, 'it is not a plugin name', o.plugin, 'Use a plugin name such as python3.')
  }
  return renderTemplateFile('uwsgi.ini', {
    source: sourceName(options.source),
    plugin: options.plugin,
    wsgi_file: checkPath('wsgi file', options.wsgiFile, o.wsgiFile),
    virtualenv: options.virtualenv === undefined ? undefined : checkPath('virtualenv', options.virtualenv, o.virtualenv),
    ini_path: checkPath('ini path', options.iniPath, o.iniPath),
    socket,
    socket_mode: parsed.kind === 'unix' && options.socketMode !== undefined ? checkSocketMode(options.socketMode, o.socketMode) : undefined,
    uid: checkAccount('uid', options.uid, o.uid),
    gid: checkAccount('gid', options.gid, o.gid),
    processes: checkPositiveInt('number of processes', options.processes, o.processes, 1024),
    harakiri: checkPositiveInt('harakiri timeout', options.harakiri, o.harakiri, 86_400),
    buffer_size: checkPositiveInt('buffer size', options.bufferSize, o.bufferSize, 65_535),
  })
}

import {readFileSync} from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'

import {KintoError} from '../errors.js'
import {sslModeOf} from './url.js'

/** The query parameters this module reads, taken out of the URL node-postgres sees. */
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat']

export interface PgTls {
  /** The URL for node-postgres: without the TLS parameters when `ssl` replaces them. */
  connectionString: string
  /** node-postgres's `ssl` option; undefined: the URL's own (no sslmode given). */
  ssl?: false | tls.ConnectionOptions
  /** prefer/allow: connect without TLS when the server answers that it has none. */
  plainIfRefused: boolean
}

function readPem(params: URLSearchParams, name: string): string | undefined {
  const file = params.get(name)
  if (!file) return undefined
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new KintoError(`Cannot read ${name} ${file} of the database URL: ${(error as Error).message}.`, {
      code: 'KINTO_DB_URL_INVALID',
      hint: `Give ${name} a PEM file this user may read.`,
    })
  }
}

/**
 * TLS as libpq reads a URL's `sslmode` (upstream Kinto's URLs go through SQLAlchemy to libpq), not
 * as node-postgres reads it: node-postgres takes prefer, require and verify-ca for verify-full, so
 * a URL that upstream serves (`?sslmode=prefer` to a server without TLS, `?sslmode=require` to a
 * server whose certificate is its own) would not connect here.
 *
 * | sslmode | libpq, and here |
 * |---|---|
 * | disable | no TLS |
 * | allow, prefer | TLS without checking the certificate when the server offers it, else none (*) |
 * | require | TLS without checking the certificate; with `sslrootcert`, as verify-ca |
 * | verify-ca | TLS, the certificate signed by `sslrootcert` (or the system's CAs), any host name |
 * | verify-full | TLS, the certificate and the host name checked |
 *
 * (*) allow tries without TLS first in libpq; both connect to the same servers, prefer encrypts
 * more often. No TLS on a Unix socket (libpq never uses it there). A URL without sslmode takes
 * PGSSLMODE, as libpq; without either it is prefer, libpq's default, for a server elsewhere: the
 * traffic upstream encrypts on the network is encrypted here too. A server on this machine
 * (loopback: `localhost`, 127.0.0.0/8, ::1) is left to node-postgres, in clear: nothing leaves
 * the machine, and TLS would cost every request CPU; one that refuses clear connections gets
 * TLS then (pg-driver.ts, clearOrTls).
 */
/** A host whose connections never leave this machine: `localhost` and loopback addresses. */
export function onThisMachine(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

export function pgTls(connectionString: string, host: string, shown: string, env: NodeJS.ProcessEnv = process.env): PgTls {
  const q = connectionString.indexOf('?')
  const params = new URLSearchParams(q < 0 ? '' : connectionString.slice(q + 1))
  // libpq's environment variable when the URL has none (node-postgres reads it as verify-full too)
  const given = sslModeOf(params, `in the database URL ${shown}`) ?? sslModeOf(new URLSearchParams(env.PGSSLMODE ? {sslmode: env.PGSSLMODE} : {}), 'in PGSSLMODE')
  // Neither: libpq's default (prefer), but for a server on this machine (below).
  const mode = given ?? (onThisMachine(host) ? undefined : 'prefer')
  if (mode === undefined) {
    // node-postgres reads these files itself, and a missing one was an unexpected failure.
    for (const name of ['sslrootcert', 'sslcert', 'sslkey']) readPem(params, name)
    return {connectionString, plainIfRefused: false}
  }
  const rest = new URLSearchParams([...params].filter(([k]) => !TLS_PARAMS.includes(k)))
  const query = rest.toString()
  const stripped = q < 0 ? connectionString : connectionString.slice(0, q) + (query ? `?${query}` : '')
  if (mode === 'disable' || host.startsWith('/')) return {connectionString: stripped, ssl: false, plainIfRefused: false}
  const ca = readPem(params, 'sslrootcert')
  const cert = readPem(params, 'sslcert')
  const key = readPem(params, 'sslkey')
  const ssl: tls.ConnectionOptions = {...(ca ? {ca} : {}), ...(cert ? {cert} : {}), ...(key ? {key} : {})}
  const verifyCa = mode === 'verify-ca' || (mode === 'require' && ca !== undefined)
  if (verifyCa) ssl.checkServerIdentity = () => undefined
  else if (mode !== 'verify-full') ssl.rejectUnauthorized = false
  return {connectionString: stripped, ssl, plainIfRefused: mode === 'prefer' || mode === 'allow'}
}

/**
 * Whether the server at host:port offers TLS: PostgreSQL's SSLRequest, answered S or N. On S the
 * handshake is completed and the connection closed before any startup packet, which the server
 * does not log (closing right after S would log "could not accept SSL connection").
 */
export function serverOffersTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({host, port})
    const fail = (error: Error) => {
      socket.destroy()
      reject(error)
    }
    socket.setTimeout(timeoutMs, () => fail(new Error('timeout expired')))
    socket.once('error', fail)
    socket.once('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])))
    socket.once('data', (answer) => {
      if (answer[0] !== 0x53) {
        socket.destroy()
        resolve(false)
        return
      }
      socket.removeAllListeners('timeout')
      const secure = tls.connect({socket, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false})
      const done = () => {
        secure.destroy()
        resolve(true)
      }
      secure.setTimeout(timeoutMs, done)
      secure.once('secureConnect', () => secure.end(done))
      secure.once('error', done)
    })
  })
}

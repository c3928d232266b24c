/**
 * Admin connections for `kinto db create` and `kinto db grant-readonly`: which server URL to use
 * and how to point it at another database on the same server.
 */
import {maskUrl, parseDbUrl} from '../db/index.js'
import {KintoError, UsageError} from '../errors.js'
import type {ConfiguredBackend} from './targets.js'

/** The same server and credentials, another database. */
export function urlForDatabase(url: string, database: string): string {
  const parsed = parseDbUrl(url)
  if (parsed.driver !== 'pg') throw new Error('not a PostgreSQL server URL')
  // the path replaced as text: a WHATWG URL refuses the Unix-socket form user@/db?host=DIR
  const [, server, rest] = /^(postgresql:\/\/[^/?#]*)(?:\/[^?#]*)?(.*)$/s.exec(parsed.connectionString)!
  return `${server}/${encodeURIComponent(database)}${rest}`
}

/** The storage backend, which must be on a PostgreSQL server (not embedded) for role/database admin. */
export function serverStorage(backends: ConfiguredBackend[], what: string): ConfiguredBackend & {url: string} {
  const storage = backends.find((b) => b.backend === 'storage')!
  if (storage.kind !== 'postgresql' || !storage.url) {
    throw new KintoError(`${what} needs kinto.storage_backend = kinto.core.storage.postgresql; it is ${storage.module || 'not set'}.`, {
      code: 'KINTO_DB_NOT_POSTGRESQL',
      hint: 'Point kinto.storage_url at a PostgreSQL server (postgresql://user:password@host:5432/dbname).',
    })
  }
  if (storage.pgliteDir !== undefined) {
    throw new KintoError(
      `${what} needs a PostgreSQL server; the storage is the embedded engine (${storage.database}), which has one user and one database.`,
      {code: 'KINTO_DB_EMBEDDED', hint: 'Nothing to do for the embedded engine; use a PostgreSQL server URL to manage databases and roles.'},
    )
  }
  return storage as ConfiguredBackend & {url: string}
}

export function checkAdminUrl(url: string): string {
  const parsed = parseDbUrl(url)
  if (parsed.driver !== 'pg') {
    throw new UsageError(`--admin-url must be a PostgreSQL server URL, not ${maskUrl(url)}.`, {
      hint: 'Use postgresql://admin:password@host:5432/postgres.',
    })
  }
  return url
}

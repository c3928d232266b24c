import path from 'node:path'

import {KintoError} from '../errors.js'

/**
 * Database URLs we accept:
 * - `postgresql://user:pass@host:port/db?options` and `postgres://…` (the production guide's form,
 *   which upstream's current code rejects; we accept both). `postgresql+psycopg2://` (SQLAlchemy
 *   driver suffix) is accepted and the suffix ignored.
 * - `pglite:` embedded PostgreSQL (PGlite). `pglite:PATH` or `pglite://PATH` keeps the data in folder
 *   PATH (absolute, or relative to the ini's folder); `pglite:memory:` (or `pglite:`) keeps it in memory.
 */
export type ParsedDbUrl =
  | {driver: 'pg'; connectionString: string; host: string; port: number; database: string; user?: string}
  | {driver: 'pglite'; dataDir: string | null}

export function isPostgresUrl(url: string): boolean {
  return /^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.test(url) || /^pglite:/i.test(url)
}

export function parseDbUrl(url: string, baseDir: string = process.cwd()): ParsedDbUrl {
  const trimmed = url.trim()
  const pglite = /^pglite:(.*)$/i.exec(trimmed)
  if (pglite) {
    let rest = pglite[1]
    if (rest.startsWith('//')) rest = rest.slice(2)
    if (rest === '' || rest === 'memory:' || rest === ':memory:') return {driver: 'pglite', dataDir: null}
    rest = decodeURIComponent(rest)
    return {driver: 'pglite', dataDir: path.resolve(baseDir, rest)}
  }

  const m = /^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.exec(trimmed)
  if (!m) {
    throw new KintoError(`Unsupported database URL ${maskUrl(trimmed)}.`, {
      code: 'KINTO_DB_URL_INVALID',
      hint: 'Use postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine.',
    })
  }
  const connectionString = 'postgresql://' + trimmed.slice(m[0].length)
  let parsed: URL
  try {
    parsed = new URL(connectionString)
  } catch {
    throw new KintoError(`Invalid database URL ${maskUrl(trimmed)}.`, {
      code: 'KINTO_DB_URL_INVALID',
      hint: 'Use postgresql://user:password@host:5432/dbname.',
    })
  }
  return {
    driver: 'pg',
    connectionString,
    host: parsed.hostname || parsed.searchParams.get('host') || 'localhost',
    port: parsed.port ? Number(parsed.port) : 5432,
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username) || 'postgres',
    user: parsed.username ? decodeURIComponent(parsed.username) : undefined,
  }
}

/** The URL with its password replaced by `***`: the only form of a URL that may be printed or logged. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&]*/gi, '$1***')
}

/** "host:port/database" for messages. */
export function describeDbUrl(url: string, baseDir?: string): string {
  try {
    const p = parseDbUrl(url, baseDir)
    if (p.driver === 'pglite') return p.dataDir ? `embedded database in ${p.dataDir}` : 'in-memory embedded database'
    return `${p.host}:${p.port}/${p.database}`
  } catch {
    return maskUrl(url)
  }
}

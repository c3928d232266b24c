/**
 * Which databases a backup reads and a restore writes: the storage and permission backends of an
 * ini (or of one URL, for `db copy --to URL`), refused when they keep nothing to back up (memory,
 * an in-memory embedded engine), and the embedded folders a running server holds.
 */
import {buildSettings, type Settings} from '../config/settings.js'
import {ExitCode, KintoError} from '../errors.js'
import {pgliteLockPath, readFileLockHolder} from '../schema/lock.js'
import {type ConfiguredBackend, configuredBackends} from '../schema/targets.js'

export interface DataBackends {
  storage: ConfiguredBackend
  permission: ConfiguredBackend
  cache: ConfiguredBackend
}

/** The backends of these settings; storage and permission must be PostgreSQL (server or embedded folder). */
export function dataBackends(settings: Settings, dir: string, what: string): DataBackends {
  const all = configuredBackends(settings, dir)
  const get = (name: string) => all.find((b) => b.backend === name)!
  const out = {storage: get('storage'), permission: get('permission'), cache: get('cache')}
  for (const b of [out.storage, out.permission]) {
    if (b.kind !== 'postgresql') {
      throw new KintoError(
        `kinto.${b.backend}_backend is ${b.module || 'not set'}: ${what} needs the PostgreSQL ${b.backend} backend (a server, or the embedded engine in a folder).`,
        {
          code: 'KINTO_BACKUP_UNSUPPORTED',
          hint: 'A memory backend lives inside each server process and ends with it: there is nothing to back up or restore into. Configure kinto.core.storage.postgresql and kinto.core.permission.postgresql.',
        },
      )
    }
    if (b.pgliteDir === null) {
      throw new KintoError(`kinto.${b.backend}_url is an in-memory embedded database: ${what} needs one that is kept in a folder or on a server.`, {
        code: 'KINTO_BACKUP_UNSUPPORTED',
        hint: 'Use pglite:<folder> or postgresql://user:password@host/dbname.',
      })
    }
  }
  return out
}

/** The storage, permission and cache backends of `db copy --to URL`: all three on that database. */
export function backendsForUrl(url: string, dir: string): DataBackends {
  const settings = buildSettings(
    Object.fromEntries(
      (['storage', 'permission', 'cache'] as const).flatMap((b) => [
        [`kinto.${b}_backend`, `kinto.core.${b}.postgresql`],
        [`kinto.${b}_url`, url],
      ]),
    ),
    {},
  )
  return dataBackends(settings, dir, 'kinto db copy')
}

/**
 * Fails at once when a running server holds one of these embedded folders. PGlite lets one
 * process open a folder: a backup goes through the server's control channel when it offers one
 * (src/lib/backup/index.ts); a restore or a copy replaces what the server serves, so it waits for
 * the server to stop.
 */
export function assertNotServed(backends: ConfiguredBackend[], action: 'back up' | 'restore into' | 'copy'): void {
  for (const b of backends) {
    if (!b.pgliteDir) continue
    const holder = readFileLockHolder(pgliteLockPath(b.pgliteDir))
    if (!holder?.owner?.serves) continue
    const server = `${holder.owner.command}${holder.owner.detail ? ` on ${holder.owner.detail}` : ''}, pid ${holder.pid}`
    const why = action === 'back up' ? ' and that server offers no control socket to read it through (it could not write its run registry)' : ''
    throw new KintoError(
      `Cannot ${action} the embedded database ${b.pgliteDir}: a running server holds it (${server}), and PGlite lets one process open a folder at a time${why}.`,
      {
        code: 'KINTO_DB_IN_USE',
        exit: ExitCode.LOCK_TIMEOUT,
        hint: `Stop that server (kill -TERM ${holder.pid}), run this again, then start it again.`,
      },
    )
  }
}

/** The distinct databases of some backends (one migration lock each). */
export function sameDatabase(a: ConfiguredBackend, b: ConfiguredBackend): boolean {
  return a.databaseKey !== undefined && a.databaseKey === b.databaseKey
}

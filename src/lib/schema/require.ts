/**
 * Refusing to work on a database whose schema is missing or not the version we know: the one
 * check `kinto start` makes before serving and the maintenance commands (flush-cache,
 * purge-deleted, create-user) make before touching a table, with the same codes and hint.
 */
import type {Queryable} from '../db/index.js'
import {KintoError} from '../errors.js'
import {planBackend} from './migrator.js'
import {type BackendName, CURRENT_VERSIONS} from './sql-files.js'
import {shellArg} from '../text/shell.js'

/**
 * Throws KINTO_SCHEMA_MISSING / _BEHIND / _NEWER unless `backend`'s schema on q is current.
 * `where` names the database (password masked); `iniPath` goes in the hint.
 */
export async function requireSchema(q: Queryable, backend: BackendName, where: string, iniPath: string, options: {inMemory?: boolean} = {}): Promise<void> {
  const plan = await planBackend(q, backend)
  if (plan.state === 'current') return
  // `kinto migrate` cannot reach an in-memory database: it starts empty in each process.
  const hint = options.inMemory
    ? `An in-memory embedded database (pglite:memory:) starts empty: serve it with \`kinto start --migrate --ini ${shellArg(iniPath)}\`.`
    : `Run \`kinto migrate --ini ${shellArg(iniPath)}\` first.`
  if (plan.state === 'missing') {
    throw new KintoError(`The ${backend} schema is not installed in ${where}.`, {code: 'KINTO_SCHEMA_MISSING', hint})
  }
  if (plan.state === 'behind') {
    throw new KintoError(`The ${backend} schema of ${where} is at version ${plan.installed ?? '?'}; this release needs ${CURRENT_VERSIONS[backend]}.`, {
      code: 'KINTO_SCHEMA_BEHIND',
      hint,
    })
  }
  throw new KintoError(`The ${backend} schema of ${where} is newer (${plan.installed ?? '?'}) than this release knows (${CURRENT_VERSIONS[backend]}).`, {
    code: 'KINTO_SCHEMA_NEWER',
    hint: 'Upgrade kinto-ops, or use the Kinto that migrated this database.',
  })
}

/** The URL of a PostgreSQL backend (`kinto.<family>_url`), and the one error for its absence. */
import {KintoError} from '../errors.js'
import {asString, envNames, type Settings} from './settings.js'

/** What a database URL looks like, for messages. */
export const DB_URL_FORMS = 'postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine'

/**
 * The error for a PostgreSQL backend whose URL is empty. `where` names the setting's place in
 * the ini when it is known (validation), else the backend setting is named.
 */
export function emptyDatabaseUrlError(settings: Settings, family: string, where?: {where: string; hint?: string}): KintoError {
  const backendKey = `${family}_backend`
  return new KintoError(
    `${where?.where ?? `kinto.${backendKey}`}: ${String(settings[backendKey])} needs kinto.${family}_url, which is empty; set it (in the ini, or in the environment as ${envNames(`${family}_url`)[1]}) to ${DB_URL_FORMS}.`,
    {code: 'KINTO_CONFIG_INVALID', hint: where?.hint},
  )
}

/** `kinto.<family>_url`, trimmed; throws emptyDatabaseUrlError() when it is empty. */
export function requireDatabaseUrl(settings: Settings, family: string): string {
  const url = (asString(settings, `${family}_url`) ?? '').trim()
  if (!url) throw emptyDatabaseUrlError(settings, family)
  return url
}

/**
 * Reads the installed schema version of a backend with upstream Kinto's rules
 *, so that we agree with upstream on every database it made.
 */
import type {Queryable} from '../db/index.js'
import {KintoError} from '../errors.js'
import type {BackendName} from './sql-files.js'

export interface DetectedVersion {
  /** null: nothing installed. */
  version: number | null
  /** Why a version had to be assumed (upstream logs these as warnings). */
  notes: string[]
}

async function tableExists(q: Queryable, name: string): Promise<boolean> {
  // information_schema: any schema the user can see, as upstream checks.
  const res = await q.query('SELECT 1 FROM information_schema.tables WHERE table_name = $1 LIMIT 1', [name])
  return res.rows.length > 0
}

/** `metadata` as upstream's unqualified queries would resolve it (search_path). */
async function metadataExists(q: Queryable): Promise<boolean> {
  const res = await q.query<{present: boolean}>("SELECT to_regclass('metadata') IS NOT NULL AS present")
  return Boolean(res.rows[0]?.present)
}

/** Highest value of a version row; values compare left-padded with 0 to 3 characters, as upstream does. */
async function maxVersionRow(q: Queryable, backend: BackendName): Promise<number | null> {
  const res = await q.query<{value: string}>(
    "SELECT value FROM metadata WHERE name = $1 ORDER BY lpad(value, 3, '0') DESC LIMIT 1",
    [`${backend}_schema_version`],
  )
  if (res.rows.length === 0) return null
  const raw = res.rows[0].value
  const version = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(version)) {
    throw new KintoError(`The ${backend} schema version recorded in metadata is not a number: ${JSON.stringify(raw)}.`, {
      code: 'KINTO_SCHEMA_VERSION_INVALID',
      hint: `Inspect the rows of the metadata table named ${backend}_schema_version.`,
    })
  }
  return version
}

/** Upstream's fallback when storage tables exist but no version row does (flushed by Kinto < 8.1.2). */
export const UNKNOWN_STORAGE_VERSION_ASSUMED = 20

export async function detectVersion(q: Queryable, backend: BackendName): Promise<DetectedVersion> {
  const notes: string[] = []
  if (backend === 'cache') {
    return {version: (await tableExists(q, 'cache')) ? 1 : null, notes}
  }

  if (backend === 'storage') {
    if (!(await tableExists(q, 'objects')) && !(await tableExists(q, 'records'))) return {version: null, notes}
    const hasMetadata = await metadataExists(q)
    const version = hasMetadata ? await maxVersionRow(q, 'storage') : null
    if (version !== null) return {version, notes}
    const createdAt = hasMetadata
      ? await q.query("SELECT 1 FROM metadata WHERE name = 'created_at' LIMIT 1")
      : {rows: []}
    if (createdAt.rows.length > 0) {
      notes.push('No storage schema version recorded; assuming a Cliquet-era database (version 1).')
      return {version: 1, notes}
    }
    notes.push(
      `No storage schema version and no created_at row (metadata flushed by Kinto < 8.1.2?); ` +
        `assuming version ${UNKNOWN_STORAGE_VERSION_ASSUMED}, as upstream does.`,
    )
    return {version: UNKNOWN_STORAGE_VERSION_ASSUMED, notes}
  }

  // permission
  const meta = await q.query("SELECT 1 FROM pg_tables WHERE tablename = 'metadata' LIMIT 1")
  if (meta.rows.length > 0) {
    const version = await maxVersionRow(q, 'permission')
    if (version !== null) return {version, notes}
  }
  if (await tableExists(q, 'user_principals')) return {version: 1, notes}
  return {version: null, notes}
}

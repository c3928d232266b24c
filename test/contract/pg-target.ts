/** Test targets for the postgresql backends: a fresh database with upstream's schema and backends on it. */
import {type Backends, createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createPgliteDatabase, createServerDatabase, postgresqlSettings, realServerUrl, type TestDatabase} from '../helpers/db.js'

export interface PgTarget {
  db: TestDatabase
  registry: DatabaseRegistry
  backends: Backends
}

/** A fresh database with upstream's schema, and backends on it (storage, permission, cache: one URL). */
export async function openTarget(kind: 'pglite' | 'postgresql', extra: Record<string, string> = {}): Promise<PgTarget> {
  const db = kind === 'pglite' ? createPgliteDatabase({schema: true}) : await createServerDatabase(realServerUrl!)
  const registry = new DatabaseRegistry()
  await ensureSchema(registry.get(db.url), ['storage', 'permission', 'cache'])
  const settings = buildSettings({...postgresqlSettings(db.url), ...extra})
  return {db, registry, backends: createBackends(settings, {registry})}
}

export async function closeTarget(t: PgTarget | undefined): Promise<void> {
  if (!t) return
  await t.backends.close()
  await t.registry.closeAll()
  await t.db.drop()
}

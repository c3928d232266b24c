/**
 * The backend contracts against the postgresql implementations: always on PGlite (embedded), and
 * on a real PostgreSQL server when KINTO_TEST_DATABASE_URL is set. The schema comes from ensureSchema.
 */
import {afterAll, beforeAll, describe} from 'vitest'

import {type Backends, createBackends} from '../../src/lib/backends.js'
import {PostgresCache} from '../../src/lib/cache/postgresql.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry} from '../../src/lib/db/index.js'
import {ensureSchema} from '../../src/lib/schema/index.js'
import {createPgliteDatabase, createServerDatabase, realServerUrl, type TestDatabase} from '../helpers/db.js'
import {cacheContract} from './cache.contract.js'
import {permissionContract} from './permission.contract.js'
import {storageContract} from './storage.contract.js'

export interface PgTarget {
  db: TestDatabase
  registry: DatabaseRegistry
  backends: Backends
}

/** A fresh database with upstream's schema, and backends on it (storage, permission, cache: one URL). */
export async function openTarget(kind: 'pglite' | 'postgresql', extra: Record<string, string> = {}): Promise<PgTarget> {
  const db = kind === 'pglite' ? createPgliteDatabase() : await createServerDatabase(realServerUrl!)
  const registry = new DatabaseRegistry()
  await ensureSchema(registry.get(db.url), ['storage', 'permission', 'cache'])
  const settings = buildSettings({
    'kinto.storage_backend': 'kinto.core.storage.postgresql',
    'kinto.storage_url': db.url,
    'kinto.permission_backend': 'kinto.core.permission.postgresql',
    'kinto.permission_url': db.url,
    'kinto.cache_backend': 'kinto.core.cache.postgresql',
    'kinto.cache_url': db.url,
    ...extra,
  })
  return {db, registry, backends: createBackends(settings, {registry})}
}

export async function closeTarget(t: PgTarget | undefined): Promise<void> {
  if (!t) return
  await t.backends.close()
  await t.registry.closeAll()
  await t.db.drop()
}

const kinds: Array<'pglite' | 'postgresql'> = realServerUrl ? ['pglite', 'postgresql'] : ['pglite']

for (const kind of kinds) {
  describe(`postgresql backends on ${kind}`, () => {
    let target: PgTarget
    beforeAll(async () => {
      target = await openTarget(kind)
    })
    afterAll(() => closeTarget(target))

    describe('storage', () => storageContract(() => target.backends))
    describe('permission', () => permissionContract(() => target.backends.permission))
    describe('cache', () => cacheContract((prefix) => new PostgresCache(target.registry.get(target.db.url), {prefix})))
  })
}

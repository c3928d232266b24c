/**
 * The backend contracts against the postgresql implementations: always on PGlite (embedded), and
 * on a real PostgreSQL server when KINTO_TEST_DATABASE_URL is set. The schema comes from ensureSchema.
 */
import {afterAll, beforeAll, describe} from 'vitest'

import {PostgresCache} from '../../src/lib/cache/postgresql.js'
import {realServerUrl} from '../helpers/db.js'
import {cacheContract} from './cache.contract.js'
import {closeTarget, openTarget, type PgTarget} from './pg-target.js'
import {permissionContract} from './permission.contract.js'
import {storageContract} from './storage.contract.js'

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

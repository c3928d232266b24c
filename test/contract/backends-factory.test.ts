/** createBackends(): settings → backends, errors naming the setting, shared pools, statement budget. */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {MemcachedCache} from '../../src/lib/cache/memcached.js'
import {MemoryCache} from '../../src/lib/cache/memory.js'
import {PostgresCache} from '../../src/lib/cache/postgresql.js'
import {RedisCache} from '../../src/lib/cache/redis.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {DatabaseRegistry, type Queryable} from '../../src/lib/db/index.js'
import {PgClient} from '../../src/lib/db/pg-driver.js'
import {KintoError} from '../../src/lib/errors.js'
import {MemoryPermission} from '../../src/lib/permission/memory.js'
import {PostgresPermission} from '../../src/lib/permission/postgresql.js'
import {MemoryStorage} from '../../src/lib/storage/memory.js'
import {PostgresStorage} from '../../src/lib/storage/postgresql.js'
import {BackendError} from '../../src/lib/storage/types.js'
import {closeTarget, openTarget, type PgTarget} from './pg-target.js'

function thrown(fn: () => unknown): KintoError {
  try {
    fn()
  } catch (error) {
    return error as KintoError
  }
  throw new Error('expected an error')
}

describe('createBackends', () => {
  it('defaults to the memory backends', async () => {
    const b = createBackends(buildSettings({}))
    expect(b.storage).toBeInstanceOf(MemoryStorage)
    expect(b.permission).toBeInstanceOf(MemoryPermission)
    expect(b.cache).toBeInstanceOf(MemoryCache)
    expect(b.readonly).toBe(false)
    await b.close()
  })

  it('rejects an unknown backend, naming the setting', () => {
    const err = thrown(() => createBackends(buildSettings({'kinto.storage_backend': 'kinto.core.storage.mongo'})))
    expect(err).toBeInstanceOf(KintoError)
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toContain('kinto.storage_backend')
  })

  it('builds the Redis and memcached caches from upstream\'s settings', async () => {
    const redis = createBackends(buildSettings({'kinto.cache_backend': 'kinto.core.cache.redis', 'kinto.cache_url': 'redis://:pw@127.0.0.1:1/3', 'kinto.cache_pool_size': '2'}))
    expect(redis.cache).toBeInstanceOf(RedisCache)
    expect((redis.cache as RedisCache).address).toEqual({backend: 'Redis', where: '127.0.0.1:1/3'})
    await redis.close()
    const b = createBackends(buildSettings({'kinto.cache_backend': 'kinto.core.cache.memcached', 'kinto.cache_hosts': '127.0.0.1:1 [::1]:2'}))
    expect(b.cache).toBeInstanceOf(MemcachedCache)
    expect((b.cache as MemcachedCache).address).toEqual({backend: 'memcached', where: '127.0.0.1:1 [::1]:2'})
    await b.close()
  })

  it('rejects a module of another family, or kinto-redis\'s old module, as cache_backend, naming the setting', () => {
    for (const value of ['kinto.core.storage.memory', 'kinto_redis.cache']) {
      const err = thrown(() => createBackends(buildSettings({'kinto.cache_backend': value})))
      expect(err.code).toBe('KINTO_CONFIG_INVALID')
      expect(err.message).toContain('kinto.cache_backend')
      expect(err.hint).toContain('kinto.core.cache.redis')
    }
  })

  it('requires a URL for postgresql backends, naming the setting', () => {
    const err = thrown(() => createBackends(buildSettings({'kinto.permission_backend': 'kinto.core.permission.postgresql'})))
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toContain('kinto.permission_url')
  })

  it('shares one client per URL (storage pool settings win), the cache on its own URL', async () => {
    const registry = new DatabaseRegistry()
    const url = 'postgresql://kinto:s3cret@127.0.0.1:1/kinto'
    const b = createBackends(
      buildSettings({
        'kinto.storage_backend': 'kinto.core.storage.postgresql',
        'kinto.storage_url': url,
        'kinto.storage_pool_size': '3',
        'kinto.storage_max_overflow': '2',
        'kinto.permission_backend': 'kinto.core.permission.postgresql',
        'kinto.permission_url': url,
        'kinto.permission_pool_size': '50',
        'kinto.cache_backend': 'kinto.core.cache.postgresql',
        'kinto.cache_url': 'postgresql://kinto@127.0.0.1:1/cache',
        'kinto.cache_pool_size': '4',
        'kinto.cache_prefix': 'p:',
      }),
      {registry},
    )
    const storage = b.storage as PostgresStorage
    const permission = b.permission as PostgresPermission
    const cache = b.cache as PostgresCache
    expect(storage.client).toBe(permission.client)
    expect(cache.client).not.toBe(storage.client)
    expect((storage.client as PgClient).pool.options.max).toBe(5)
    expect((cache.client as PgClient).pool.options.max).toBe(14)
    expect(storage.client.displayUrl).not.toContain('s3cret')
    await b.close()
    await registry.closeAll()
  })

  it('gives the cache its own pool on the storage URL (PostgreSQL), but shares PGlite', async () => {
    const pgUrl = 'postgresql://kinto@127.0.0.1:1/kinto'
    const settings = (url: string) =>
      buildSettings({
        'kinto.storage_backend': 'kinto.core.storage.postgresql',
        'kinto.storage_url': url,
        'kinto.cache_backend': 'kinto.core.cache.postgresql',
        'kinto.cache_url': url,
      })
    const onServer = createBackends(settings(pgUrl))
    expect((onServer.cache as PostgresCache).client).not.toBe((onServer.storage as PostgresStorage).client)
    await onServer.close()
    const embedded = createBackends(settings('pglite:memory:'))
    expect((embedded.cache as PostgresCache).client).toBe((embedded.storage as PostgresStorage).client)
    await embedded.close()
  })
})

describe('transactions over backends on different stores', () => {
  it('postgresql storage with memory permission: both commit, both roll back', async () => {
    const target = await openTarget('pglite', {'kinto.permission_backend': 'kinto.core.permission.memory'})
    try {
      const b = target.backends
      expect(b.permission).toBeInstanceOf(MemoryPermission)
      await b.transaction(async (tx) => {
        await tx.storage.create('bucket', '', {id: 'kept'})
        await tx.permission.addPrincipalToAce('/buckets/kept', 'write', 'alice')
      })
      const boom = new Error('boom')
      await expect(
        b.transaction(async (tx) => {
          await tx.storage.create('bucket', '', {id: 'gone'})
          await tx.permission.addPrincipalToAce('/buckets/gone', 'write', 'alice')
          throw boom
        }),
      ).rejects.toBe(boom)
      expect((await b.storage.list('bucket', '')).map((o) => o.id)).toEqual(['kept'])
      expect(await b.permission.getObjectPermissions('/buckets/kept')).toEqual({write: new Set(['alice'])})
      expect(await b.permission.getObjectPermissions('/buckets/gone')).toEqual({})
    } finally {
      await closeTarget(target)
    }
  })
})

describe('failures', () => {
  it('a database without the schema gives a BackendError saying to run kinto migrate', async () => {
    const b = createBackends(
      buildSettings({'kinto.storage_backend': 'kinto.core.storage.postgresql', 'kinto.storage_url': 'pglite:memory:'}),
    )
    try {
      const err = await b.storage.get('record', '/x', 'y').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(BackendError)
      expect((err as Error).message).toContain("run 'kinto migrate'")
    } finally {
      await b.close()
    }
  })
})

describe('storage_max_fetch_size', () => {
  const check = async (storage: import('../../src/lib/storage/types.js').Storage) => {
    const P = '/buckets/b/collections/c'
    for (let i = 0; i < 6; i++) await storage.create('record', P, {i})
    expect(await storage.list('record', P)).toHaveLength(3)
    expect(await storage.list('record', P, {limit: 10})).toHaveLength(4)
    expect(await storage.list('record', P, {limit: 2})).toHaveLength(2)
    expect(await storage.deleteAll('record', P)).toHaveLength(3)
    expect(await storage.count('record', P)).toBe(3)
  }

  it('caps lists (max+1 with a limit) and delete_all, on memory', async () => {
    const b = createBackends(buildSettings({'kinto.storage_max_fetch_size': '3'}))
    await check(b.storage)
  })

  it('caps lists (max+1 with a limit) and delete_all, on PGlite', async () => {
    const target = await openTarget('pglite', {'kinto.storage_max_fetch_size': '3'})
    try {
      await check(target.backends.storage)
    } finally {
      await closeTarget(target)
    }
  })
})

describe('statement budget on PGlite', () => {
  let target: PgTarget
  beforeAll(async () => {
    target = await openTarget('pglite')
  })
  afterAll(() => closeTarget(target))

  it('get, list and count are one statement each; a write in a transaction is lock + one statement', async () => {
    const storage = target.backends.storage as PostgresStorage
    const P = '/buckets/b/collections/c'
    for (let i = 0; i < 5; i++) await storage.create('record', P, {i, tag: i % 2 ? 'odd' : 'even'})
    await storage.resourceTimestamp('record', P)
    const statements: string[] = []
    await storage.client.transaction(async (q) => {
      const counting: Queryable = {
        query: (sql, params) => {
          statements.push(sql)
          return q.query(sql, params)
        },
        exec: (sql) => {
          statements.push(sql)
          return q.exec(sql)
        },
      }
      const s = storage.bind(counting)
      const created = await s.create('record', P, {i: 9})
      expect(statements).toHaveLength(2)
      statements.length = 0
      await s.get('record', P, created.id)
      expect(statements).toHaveLength(1)
      statements.length = 0
      const page = await s.list('record', P, {filters: [{field: 'tag', operator: 'eq', value: 'odd'}], sorting: [{field: 'i', direction: -1}], limit: 3})
      const total = await s.count('record', P, [{field: 'tag', operator: 'eq', value: 'odd'}])
      expect(statements).toHaveLength(2)
      expect(page).toHaveLength(2)
      expect(total).toBe(2)
      statements.length = 0
      // The list lock taken by create() is held until the end of the transaction: not taken twice.
      await s.update('record', P, created.id, {i: 10}, {condition: {kind: 'last_modified', value: created.last_modified}})
      await s.resourceTimestamp('record', P)
      expect(statements).toHaveLength(2)
      statements.length = 0
      // The first read of a list's timestamp in a transaction stores it under the list lock.
      await s.resourceTimestamp('record', '/buckets/b/collections/new')
      expect(statements).toHaveLength(3)
      statements.length = 0
      await s.resourceTimestamp('record', '/buckets/b/collections/new')
      expect(statements).toHaveLength(1)
      statements.length = 0
      await s.deleteAll('record', P, {filters: [{field: 'tag', operator: 'eq', value: 'even'}]})
      expect(statements).toHaveLength(1)
      statements.length = 0
      // Another list: its lock first.
      await s.deleteAll('record', '/buckets/b/collections/other', {})
      expect(statements).toHaveLength(2)
      statements.length = 0
      await s.lockList('record', '/buckets/b/collections/third')
      await s.lockList('record', '/buckets/b/collections/third')
      expect(statements).toHaveLength(1)
    })
  })
})

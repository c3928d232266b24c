/** The backend contracts against the memory implementations, plus memory-only behaviour. */
import {describe, expect, it} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {MemoryCache, MemoryCacheState} from '../../src/lib/cache/memory.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {cacheContract} from './cache.contract.js'
import {permissionContract} from './permission.contract.js'
import {storageContract} from './storage.contract.js'

describe('memory backends', () => {
  const backends = createBackends(buildSettings({}))

  describe('storage', () => storageContract(() => backends))
  describe('permission', () => permissionContract(() => backends.permission))

  const state = new MemoryCacheState()
  describe('cache', () => cacheContract((prefix) => new MemoryCache({prefix, state})))

  it('the cache evicts the oldest entries past cache_max_size_bytes, down to 80%', async () => {
    const cache = new MemoryCache({maxSizeBytes: 1000})
    for (let i = 0; i < 20; i++) await cache.set(`key${String(i).padStart(2, '0')}`, 'x'.repeat(40), 60)
    expect(cache.sizeBytes).toBeLessThan(1000 + 200)
    expect(await cache.get('key00')).toBeUndefined()
    expect(await cache.get('key19')).toBe('x'.repeat(40))
    await cache.set('key19', 'y', 60)
    const before = cache.sizeBytes
    await cache.set('key19', 'y', 60)
    expect(cache.sizeBytes).toBe(before)
  })

  it('readonly storage never stores list timestamps', async () => {
    const ro = createBackends(buildSettings({'kinto.readonly': 'true'}))
    expect(ro.readonly).toBe(true)
    expect(await ro.storage.resourceTimestamp('record', '/x')).toBe(0)
    expect(await ro.storage.resourceTimestamp('record', '/x')).toBe(0)
  })
})

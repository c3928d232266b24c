/** The embedded engine's settings: shared_buffers from the pglite: URL, validated, reaching the engine. */
import {existsSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {DatabaseRegistry, openDatabase, parseDbUrl} from '../../src/lib/db/index.js'
import {DEFAULT_SHARED_BUFFERS} from '../../src/lib/db/pglite-driver.js'
import {isKintoError} from '../../src/lib/errors.js'
import {runCli} from '../helpers/cli.js'
import {createPgliteDatabase} from '../helpers/db.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('pglite-engine')

function urlError(url: string): unknown {
  try {
    parseDbUrl(url, '/base')
  } catch (error) {
    return error
  }
  return undefined
}

describe('pglite: URL options', () => {
  it('reads shared_buffers, in PostgreSQL spelling', () => {
    expect(parseDbUrl('pglite:data?shared_buffers=64mb', '/base')).toEqual({driver: 'pglite', dataDir: '/base/data', sharedBuffers: '64MB'})
    expect(parseDbUrl('pglite:///srv/k?shared_buffers=512kB', '/base')).toEqual({driver: 'pglite', dataDir: '/srv/k', sharedBuffers: '512kB'})
    // a bare number is in 8kB pages, as in postgresql.conf
    expect(parseDbUrl('pglite:data?shared_buffers=2048', '/base')).toMatchObject({sharedBuffers: '2048'})
    expect(parseDbUrl('pglite:memory:?shared_buffers=8MB', '/base')).toEqual({driver: 'pglite', dataDir: null, sharedBuffers: '8MB'})
    expect(parseDbUrl('pglite:data', '/base')).toEqual({driver: 'pglite', dataDir: '/base/data'})
    expect(parseDbUrl('pglite:odd%3Fname', '/base')).toEqual({driver: 'pglite', dataDir: '/base/odd?name'})
  })

  it.each([
    ['pglite:data?shared_buffers=lots', /shared_buffers=lots is not a size from 128kB to 1GB/],
    ['pglite:data?shared_buffers=64TB', /shared_buffers=64TB is not a size/],
    ['pglite:data?shared_buffers=64kB', /shared_buffers=64kB is not a size/],
    ['pglite:data?shared_buffers=2GB', /shared_buffers=2GB is not a size/],
    ['pglite:data?shared_buffers=', /shared_buffers= is not a size/],
    ['pglite:data?work_mem=4MB', /unknown option "work_mem"/],
  ])('refuses %s with KINTO_DB_URL_INVALID', (url, message) => {
    const error = urlError(url)
    expect(isKintoError(error)).toBe(true)
    expect(error).toMatchObject({code: 'KINTO_DB_URL_INVALID', message: expect.stringMatching(message), hint: expect.stringMatching(/shared_buffers=64MB/)})
  })
})

describe('shared_buffers reaches the engine', () => {
  const show = async (url: string) => {
    const c = openDatabase(url)
    try {
      return (await c.query<{shared_buffers: string}>('SHOW shared_buffers')).rows[0].shared_buffers
    } finally {
      await c.close()
    }
  }

  it(`is ${DEFAULT_SHARED_BUFFERS} by default, and what the URL says`, async () => {
    const db = createPgliteDatabase()
    try {
      expect(await show(db.url)).toBe(DEFAULT_SHARED_BUFFERS)
      expect(await show(`${db.url}?shared_buffers=8MB`)).toBe('8MB')
      expect(await show('pglite:memory:?shared_buffers=4MB')).toBe('4MB')
    } finally {
      await db.drop()
    }
  })

  it('one folder, several URLs: the one that gives shared_buffers applies; two different ones are an error', async () => {
    const db = createPgliteDatabase()
    const registry = new DatabaseRegistry()
    try {
      const storage = registry.get(db.url)
      expect(registry.get(`${db.url}?shared_buffers=8MB`)).toBe(storage)
      expect((await storage.query<{shared_buffers: string}>('SHOW shared_buffers')).rows[0].shared_buffers).toBe('8MB')
      expect(registry.get(`${db.url}?shared_buffers=8MB`)).toBe(storage)
      expect(() => registry.get(`${db.url}?shared_buffers=32MB`)).toThrow(/two different shared_buffers/)
    } finally {
      await registry.closeAll()
      await db.drop()
    }
  })

  it('a bad value is one clear error from the CLI, with no stack trace', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    const url = 'pglite:%(here)s/kinto-data?shared_buffers=12XB'
    writeFileSync(
      ini,
      ['[app:main]', 'kinto.storage_backend = kinto.core.storage.postgresql', `kinto.storage_url = ${url}`, ''].join('\n'),
    )
    const r = await runCli(['migrate', '--ini', ini])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/shared_buffers=12XB is not a size from 128kB to 1GB/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(existsSync(path.join(dir, 'kinto-data'))).toBe(false)
  })

  it('two URLs of one folder with different shared_buffers are refused before the folder is made (migrate installed the cache, then failed)', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    const lines = ['[app:main]']
    for (const [b, q] of [['cache', ''], ['storage', '?shared_buffers=8MB'], ['permission', '?shared_buffers=64MB']]) {
      lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:%(here)s/kinto-data${q}`)
    }
    writeFileSync(ini, `${lines.join('\n')}\n`)
    const r = await runCli(['migrate', '--ini', ini, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({
      code: 'KINTO_CONFIG_INVALID',
      message: `${ini}, line 7, key 'kinto.permission_url': shared_buffers=64MB for the embedded database ${path.join(dir, 'kinto-data')}, which kinto.storage_url gives shared_buffers=8MB: one engine serves the folder. Give shared_buffers once, or the same on every pglite: URL of that folder.`,
    })
    expect(existsSync(path.join(dir, 'kinto-data'))).toBe(false)
  })
})

import {afterEach, describe, expect, it} from 'vitest'

import {openDatabase, type SqlClient} from '../../src/lib/db/index.js'
import {CURRENT_VERSIONS, ensureSchema} from '../../src/lib/schema/index.js'
import {createTestDatabase, dbKind, type TestDatabase} from '../helpers/db.js'
import {acceptanceCatalog, expectedAcceptanceLines, fullCatalog, hasAcceptance} from '../helpers/schema-catalog.js'

describe(`ensureSchema on ${dbKind}`, () => {
  let db: TestDatabase | undefined
  let client: SqlClient | undefined

  afterEach(async () => {
    await client?.close()
    await db?.drop()
    client = undefined
    db = undefined
  })

  async function fresh(): Promise<SqlClient> {
    db = await createTestDatabase()
    client = openDatabase(db.url)
    return client
  }

  it('installs all three backends on an empty database, then does nothing', async () => {
    const c = await fresh()
    const first = await ensureSchema(c, ['permission', 'storage', 'cache'])
    expect(first.map((p) => [p.backend, p.installed, p.state, p.steps.map((s) => s.name)])).toEqual([
      ['cache', null, 'missing', ['schema_001']],
      ['storage', null, 'missing', ['schema_026']],
      ['permission', null, 'missing', ['schema_002']],
    ])
    const before = await fullCatalog(c)
    const second = await ensureSchema(c, ['storage', 'permission', 'cache'])
    expect(second.map((p) => [p.backend, p.installed, p.state, p.steps.length])).toEqual([
      ['cache', 1, 'current', 0],
      ['storage', CURRENT_VERSIONS.storage, 'current', 0],
      ['permission', CURRENT_VERSIONS.permission, 'current', 0],
    ])
    expect(await fullCatalog(c)).toEqual(before)
    const versions = await c.query<{name: string; n: number}>(
      "SELECT name, count(*)::int AS n FROM metadata WHERE name LIKE '%schema_version' GROUP BY name ORDER BY name",
    )
    expect(versions.rows).toEqual([
      {name: 'permission_schema_version', n: 1},
      {name: 'storage_schema_version', n: 1},
    ])
  })

  it.skipIf(!hasAcceptance)(`gives exactly upstream Kinto 26's catalog (acceptance/catalog.sql)${hasAcceptance ? '' : ' (SKIPPED: ../shared/acceptance is not there; CI requires it)'}`, async () => {
    const c = await fresh()
    await ensureSchema(c, ['storage', 'permission', 'cache'])
    expect(await acceptanceCatalog(c)).toEqual(expectedAcceptanceLines())
  })

  it('installs only the backends asked for', async () => {
    const c = await fresh()
    await ensureSchema(c, ['cache'])
    const tables = await c.query<{t: string}>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    expect(tables.rows.map((r) => r.t)).toEqual(['cache'])
  })

  it('is safe when called concurrently on one database', async () => {
    const c = await fresh()
    const other = openDatabase(db!.url)
    try {
      // PGlite is one connection per process: concurrency there is just queued calls.
      const runs = await Promise.all([ensureSchema(c, ['storage', 'permission']), ensureSchema(c.kind === 'pg' ? other : c, ['storage', 'permission'])])
      const installs = runs.flat().filter((p) => p.state === 'missing').length
      expect(installs).toBe(2) // storage and permission installed once each
    } finally {
      await other.close()
    }
    const rows = await c.query<{n: number}>("SELECT count(*)::int AS n FROM metadata WHERE name = 'storage_schema_version'")
    expect(rows.rows[0].n).toBe(1)
  })
})

/**
 * Upgrades from older schemas (a Cliquet-era v1 database, databases installed fresh at versions
 * 12 and 20, our own chain stopped half-way) must end identical to a fresh install.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openDatabase, type SqlClient} from '../../src/lib/db/index.js'
import {applyBackend, detectVersion, ensureSchema} from '../../src/lib/schema/index.js'
import {backendSql} from '../../src/lib/schema/sql-files.js'
import {repoRoot} from '../helpers/cli.js'
import {createTestDatabase, dbKind, type TestDatabase} from '../helpers/db.js'
import {acceptanceCatalog, expectedAcceptanceLines, fullCatalog, hasAcceptance} from '../helpers/schema-catalog.js'

const fixture = (name: string) => readFileSync(path.join(repoRoot, 'test', 'fixtures', 'sql', name), 'utf8')

interface Db {
  db: TestDatabase
  client: SqlClient
}

const opened: Db[] = []
async function newDb(...fixtures: string[]): Promise<SqlClient> {
  const db = await createTestDatabase()
  const client = openDatabase(db.url)
  opened.push({db, client})
  for (const f of fixtures) await client.exec(fixture(f))
  return client
}

describe(`schema upgrades on ${dbKind}`, () => {
  let freshCatalog: string[]

  beforeAll(async () => {
    const c = await newDb()
    await ensureSchema(c, ['cache', 'storage', 'permission'])
    freshCatalog = await fullCatalog(c)
  })

  afterAll(async () => {
    for (const {db, client} of opened) {
      await client.close()
      await db.drop()
    }
  })

  async function expectLikeFresh(c: SqlClient): Promise<void> {
    expect(await fullCatalog(c)).toEqual(freshCatalog)
    if (hasAcceptance) expect(await acceptanceCatalog(c)).toEqual(expectedAcceptanceLines())
  }

  it('detects the fixtures as upstream does', async () => {
    const c = await newDb('storage_v001.sql', 'permission_v001.sql')
    expect((await detectVersion(c, 'storage')).version).toBe(1)
    expect((await detectVersion(c, 'storage')).notes[0]).toMatch(/Cliquet/)
    expect((await detectVersion(c, 'permission')).version).toBe(1)
    expect((await detectVersion(c, 'cache')).version).toBeNull()
  })

  it('upgrades a Cliquet-era version 1 database to a schema identical to a fresh install, keeping the data', async () => {
    const c = await newDb('storage_v001.sql', 'permission_v001.sql')
    const plans = await ensureSchema(c, ['cache', 'storage', 'permission'])
    const storage = plans.find((p) => p.backend === 'storage')!
    expect(storage.installed).toBe(1)
    expect(storage.steps.map((s) => s.name)).toHaveLength(25)
    expect(storage.steps[0].name).toBe('migration_001_002')
    expect(plans.find((p) => p.backend === 'permission')!.steps.map((s) => s.name)).toEqual(['migration_001_002'])
    await expectLikeFresh(c)

    const objects = await c.query<{id: string; parent_id: string; resource_name: string; deleted: boolean; data: unknown}>(
      'SELECT id, parent_id, resource_name, deleted, data FROM objects ORDER BY id',
    )
    expect(objects.rows).toEqual([
      {id: '11111111-1111-4111-8111-111111111111', parent_id: 'basicauth:alice', resource_name: 'article', deleted: false, data: {title: 'one', tags: ['a']}},
      // its tombstone was shadowed by the live record (step 11 -> 12) and is gone
      {id: '22222222-2222-4222-8222-222222222222', parent_id: 'basicauth:alice', resource_name: 'article', deleted: false, data: {title: 'two'}},
      {id: '33333333-3333-4333-8333-333333333333', parent_id: 'basicauth:bob', resource_name: 'article', deleted: false, data: {title: 'three'}},
      {id: '44444444-4444-4444-8444-444444444444', parent_id: 'basicauth:alice', resource_name: 'article', deleted: true, data: {deleted: true}},
    ])
    const acl = await c.query('SELECT object_id, permission, principal FROM access_control_entries ORDER BY 1')
    expect(acl.rows).toHaveLength(2)
    const versions = await c.query<{value: string}>("SELECT value FROM metadata WHERE name = 'storage_schema_version' ORDER BY lpad(value, 3, '0')")
    expect(versions.rows.map((r) => Number(r.value))).toEqual(Array.from({length: 25}, (_, i) => i + 2))
    // the trigger of the current schema works on the upgraded table
    await c.query("INSERT INTO objects (id, parent_id, resource_name, data, deleted) VALUES ('n', 'basicauth:alice', 'article', '{}', FALSE)")
    const bumped = await c.query<{ok: boolean}>(
      "SELECT (SELECT last_modified FROM objects WHERE id = 'n') > ALL (SELECT last_modified FROM objects WHERE id <> 'n' AND parent_id = 'basicauth:alice') AS ok",
    )
    expect(bumped.rows[0].ok).toBe(true)
  })

  it('upgrades a database installed fresh at version 12', async () => {
    const c = await newDb('storage_v012.sql')
    const plans = await ensureSchema(c, ['storage', 'permission', 'cache'])
    expect(plans.find((p) => p.backend === 'storage')!.installed).toBe(12)
    await expectLikeFresh(c)
    const rows = await c.query<{id: string; deleted: boolean}>(
      "SELECT id, deleted FROM objects WHERE parent_id = '/buckets/b1/collections/c1' ORDER BY id",
    )
    expect(rows.rows).toEqual([
      {id: 'r0', deleted: true},
      {id: 'r1', deleted: false},
      {id: 'r2', deleted: false},
    ])
  })

  it('upgrades a database installed fresh at version 20', async () => {
    const c = await newDb('storage_v020.sql', 'permission_v001.sql')
    const plans = await ensureSchema(c, ['storage', 'permission', 'cache'])
    expect(plans.find((p) => p.backend === 'storage')!.steps.map((s) => s.name)).toEqual([
      'migration_020_021',
      'migration_021_022',
      'migration_022_023',
      'migration_023_024',
      'migration_024_025',
      'migration_025_026',
    ])
    await expectLikeFresh(c)
    const ts = await c.query<{resource_name: string}>('SELECT resource_name FROM timestamps')
    expect(ts.rows).toEqual([{resource_name: 'record'}])
  })

  it('keeps every row of a version 20 database as upstream filled it: objects to the byte and millisecond, timestamps, permissions', async () => {
    const c = await newDb('storage_v020.sql', 'permission_v001.sql', 'data_v020.sql')
    const rows = (table: string, kind: string) =>
      c.query(`SELECT id, parent_id, ${kind} AS kind, data::text AS data, as_epoch(last_modified) AS ts, deleted FROM ${table} ORDER BY 2, 3, 1`)
    const timestamps = (kind: string) => c.query(`SELECT parent_id, ${kind} AS kind, as_epoch(last_modified) AS ts FROM timestamps ORDER BY 1, 2`)
    const acl = () => c.query('SELECT * FROM access_control_entries ORDER BY 1, 2, 3')
    const principals = () => c.query('SELECT * FROM user_principals ORDER BY 1, 2')
    const before = [await rows('records', 'collection_id'), await timestamps('collection_id'), await acl(), await principals()].map((r) => r.rows)
    expect(before[0]).toHaveLength(12)

    await ensureSchema(c, ['cache', 'storage', 'permission'])
    await expectLikeFresh(c)
    const after = [await rows('objects', 'resource_name'), await timestamps('resource_name'), await acl(), await principals()].map((r) => r.rows)
    expect(after).toEqual(before)
  })

  it('resumes from versions our own chain stopped at (5, 17 and 18)', async () => {
    for (const stop of [5, 17, 18]) {
      const c = await newDb('storage_v001.sql', 'permission_v001.sql')
      // apply steps 1 .. stop by hand, the way an interrupted older release would have left it
      const {upgrades} = backendSql('storage')
      for (let v = 1; v < stop; v++) await c.exec(upgrades.get(v)!.sql)
      expect((await detectVersion(c, 'storage')).version).toBe(stop)
      const plans = await ensureSchema(c, ['cache', 'storage', 'permission'])
      expect(plans.find((p) => p.backend === 'storage')!.installed).toBe(stop)
      await expectLikeFresh(c)
    }
  })

  it('keeps the old version when a step fails (one transaction per backend)', async () => {
    const c = await newDb('storage_v020.sql')
    // sabotage: the fourth step (23 -> 24) fails when it records its version
    await c.exec(`
      CREATE FUNCTION sabotage() RETURNS trigger AS $$
      BEGIN
        IF NEW.name = 'storage_schema_version' AND NEW.value = '24' THEN RAISE EXCEPTION 'sabotage at 24'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER sabotage BEFORE INSERT ON metadata FOR EACH ROW EXECUTE PROCEDURE sabotage();`)
    await expect(applyBackend(c, 'storage', 20)).rejects.toThrow(/sabotage at 24/)
    expect((await detectVersion(c, 'storage')).version).toBe(20)
    const tables = await c.query<{t: string}>("SELECT table_name AS t FROM information_schema.tables WHERE table_name IN ('records', 'objects')")
    expect(tables.rows).toEqual([{t: 'records'}])
    const hashes = await c.query("SELECT 1 FROM metadata WHERE name LIKE 'kinto_ops.%'")
    expect(hashes.rows).toHaveLength(0)
  })
})

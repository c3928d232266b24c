import {createHash} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {hashRowName} from '../../src/lib/schema/migrator.js'
import {backendSql, CURRENT_VERSIONS, knownStepNames, MIGRATION_ORDER, sqlHash, stepName} from '../../src/lib/schema/sql-files.js'

describe('shipped SQL files', () => {
  it('has one step per version from 1 to current for the versioned backends', () => {
    for (const backend of ['storage', 'permission'] as const) {
      const {upgrades} = backendSql(backend)
      expect([...upgrades.keys()].sort((a, b) => a - b)).toEqual(Array.from({length: CURRENT_VERSIONS[backend] - 1}, (_, i) => i + 1))
    }
    expect(backendSql('cache').upgrades.size).toBe(0)
  })

  it('ends every versioned file by recording its version row (as upstream files do)', () => {
    for (const backend of ['storage', 'permission'] as const) {
      const {install, upgrades} = backendSql(backend)
      for (const step of [install, ...upgrades.values()]) {
        const statements = step.sql.replace(/--[^\n]*/g, '').trim().split(';').map((s) => s.trim()).filter(Boolean)
        expect(statements.at(-1), step.file).toBe(
          `INSERT INTO metadata (name, value) VALUES ('${backend}_schema_version', '${step.to}')`,
        )
      }
    }
  })

  it('does not manage transactions itself (kinto migrate wraps each backend in one)', () => {
    for (const backend of MIGRATION_ORDER) {
      const {install, upgrades} = backendSql(backend)
      for (const step of [install, ...upgrades.values()]) {
        const outsideBodies = step.sql.replace(/\$\$[\s\S]*?\$\$/g, '')
        expect(outsideBodies, step.file).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|END)\b/im)
        expect(step.sql, step.file).not.toMatch(/CONCURRENTLY/i)
      }
    }
  })

  it('hashes files with normalised line endings', () => {
    expect(sqlHash('a\r\nb\n')).toBe(sqlHash('a\nb\n'))
    expect(sqlHash('x')).toBe('sha256:' + createHash('sha256').update('x').digest('hex'))
    const {install} = backendSql('storage')
    expect(install.hash).toBe(sqlHash(install.sql))
  })

  it('names hash rows so that upstream never mistakes them for version rows', () => {
    for (const backend of MIGRATION_ORDER) {
      for (const name of knownStepNames(backend).keys()) {
        const row = hashRowName(backend, name)
        expect(row.length).toBeLessThanOrEqual(128) // metadata.name is VARCHAR(128)
        expect(row).not.toMatch(/schema_version$/)
      }
    }
    expect(stepName(null, 26)).toBe('schema_026')
    expect(stepName(25, 26)).toBe('migration_025_026')
  })
})

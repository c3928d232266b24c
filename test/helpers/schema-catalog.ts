/**
 * Schema fingerprints for the schema tests.
 * - acceptanceCatalog: the lines of ../shared/acceptance/catalog.sql (the project's yardstick).
 *
 * ../shared/acceptance (or KINTO_ACCEPTANCE_DIR) is reached only through acceptanceFile() here.
 * It is not part of this repository: a test that needs it skips without it, except in CI
 * (CI=true), where its absence is an error, so that no check is silently lost.
 * - fullCatalog: a stricter fingerprint (tables, columns with types/defaults/collations,
 *   constraints, indexes, functions with volatility/language and body, trigger definitions,
 *   highest version rows), to prove an upgraded database equals a fresh install.
 */
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'

import type {Queryable} from '../../src/lib/db/index.js'
import {repoRoot} from './cli.js'

const acceptanceDir = process.env.KINTO_ACCEPTANCE_DIR ?? path.resolve(repoRoot, '..', 'shared', 'acceptance')

/** A file of ../shared/acceptance, or undefined when it is missing (an error in CI). */
export function acceptanceFile(name: string): string | undefined {
  const file = path.join(acceptanceDir, name)
  if (existsSync(file)) return file
  if (process.env.CI === 'true') {
    throw new Error(`${file} is missing: CI runs the acceptance checks (set KINTO_ACCEPTANCE_DIR to the folder holding ${name}).`)
  }
  return undefined
}

export const acceptanceCatalogSql = path.join(acceptanceDir, 'catalog.sql')
export const acceptanceCatalogTxt = path.join(acceptanceDir, 'kinto-catalog.txt')
/** shared/acceptance/http_checks.py (the black-box HTTP checks), when present. */
export const acceptanceHttpChecks = acceptanceFile('http_checks.py')
export const hasAcceptance = Boolean(acceptanceFile('catalog.sql') && acceptanceFile('kinto-catalog.txt'))

export function expectedAcceptanceLines(): string[] {
  return readFileSync(acceptanceCatalogTxt, 'utf8').split('\n').filter(Boolean)
}

export async function acceptanceCatalog(q: Queryable): Promise<string[]> {
  const sql = readFileSync(acceptanceCatalogSql, 'utf8')
  const res = await q.query<Record<string, string>>(sql)
  return res.rows.map((r) => Object.values(r)[0])
}

/** Function bodies compared without comments and whitespace runs. */
const normaliseBody = `regexp_replace(regexp_replace(p.prosrc, '--[^\\n]*', '', 'g'), '\\s+', ' ', 'g')`

export async function fullCatalog(q: Queryable): Promise<string[]> {
  const res = await q.query<{line: string}>(`
    SELECT 'table ' || c.relname || ' ' || c.relkind::text AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' collate ' || co.collname, '')
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default'
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
           || pg_get_function_result(p.oid) || ' ' || l.lanname || ' volatility=' || p.provolatile::text
           || ' strict=' || p.proisstrict::text || ' body=' || md5(${normaliseBody})
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
     WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND NOT t.tgisinternal
    UNION ALL
    SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
    UNION ALL
    SELECT 'version ' || name || ' ' || max(lpad(value, 3, '0'))
      FROM metadata WHERE name LIKE '%schema_version' GROUP BY name
    UNION ALL
    SELECT DISTINCT 'metadata ' || name FROM metadata WHERE name = 'created_at'
    ORDER BY 1`)
  return res.rows.map((r) => r.line)
}

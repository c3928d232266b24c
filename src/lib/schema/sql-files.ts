/**
 * The shipped SQL under sql/: per backend a full `schema.sql` (install at the current version) and
 * one `migrations/migration_NNN_MMM.sql` per upstream version step, each ending by inserting its
 * version row into `metadata`, as upstream Kinto lays them out.
 */
import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export type BackendName = 'storage' | 'permission' | 'cache'

/** Upstream's order: cache, then storage, then permission. */
export const MIGRATION_ORDER: readonly BackendName[] = ['cache', 'storage', 'permission']

/**
 * Schema versions we ship. The cache has no version number upstream (table present or not); we
 * call a present cache table version 1.
 */
export const CURRENT_VERSIONS: Readonly<Record<BackendName, number>> = {storage: 26, permission: 2, cache: 1}

/** Backends whose versions are recorded in `metadata` (`<backend>_schema_version` rows). */
export const VERSIONED: ReadonlySet<BackendName> = new Set(['storage', 'permission'])

export interface SqlStep {
  backend: BackendName
  /** `schema_026` for a full install, `migration_025_026` for an upgrade step. */
  name: string
  /** null: full install on an empty database. */
  from: number | null
  to: number
  /** Path relative to the package root, e.g. `sql/storage/migrations/migration_025_026.sql`. */
  file: string
  sql: string
  /** `sha256:<hex>` of the file with line endings normalised to LF. */
  hash: string
}

export interface BackendSql {
  install: SqlStep
  /** Upgrade steps by starting version. */
  upgrades: Map<number, SqlStep>
}

function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'sql', 'storage', 'schema.sql'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('The sql/ folder of kinto-ops was not found next to its code.')
    dir = parent
  }
}

let packageRoot: string | undefined
const cache = new Map<BackendName, BackendSql>()

export function sqlHash(text: string): string {
  return 'sha256:' + createHash('sha256').update(text.replaceAll('\r\n', '\n'), 'utf8').digest('hex')
}

const pad = (n: number) => String(n).padStart(3, '0')

export function stepName(from: number | null, to: number): string {
  return from === null ? `schema_${pad(to)}` : `migration_${pad(from)}_${pad(to)}`
}

function readStep(root: string, backend: BackendName, rel: string, from: number | null, to: number): SqlStep {
  const sql = readFileSync(path.join(root, rel), 'utf8')
  return {backend, name: stepName(from, to), from, to, file: rel, sql, hash: sqlHash(sql)}
}

/** The install file and upgrade steps of one backend (read once per process). */
export function backendSql(backend: BackendName): BackendSql {
  const known = cache.get(backend)
  if (known) return known
  packageRoot ??= findPackageRoot()
  const root = packageRoot
  const install = readStep(root, backend, `sql/${backend}/schema.sql`, null, CURRENT_VERSIONS[backend])
  const upgrades = new Map<number, SqlStep>()
  const dir = path.join(root, 'sql', backend, 'migrations')
  if (existsSync(dir)) {
    for (const file of readdirSync(dir).sort()) {
      const m = /^migration_(\d{3})_(\d{3})\.sql$/.exec(file)
      if (!m) continue
      const from = Number(m[1])
      const to = Number(m[2])
      if (to !== from + 1) throw new Error(`sql/${backend}/migrations/${file}: a step must go up by one version.`)
      upgrades.set(from, readStep(root, backend, `sql/${backend}/migrations/${file}`, from, to))
    }
  }
  const result = {install, upgrades}
  cache.set(backend, result)
  return result
}

/** Every step name we ship for a backend (for drift detection). */
export function knownStepNames(backend: BackendName): Map<string, SqlStep> {
  const {install, upgrades} = backendSql(backend)
  const names = new Map<string, SqlStep>([[install.name, install]])
  for (const step of upgrades.values()) names.set(step.name, step)
  return names
}

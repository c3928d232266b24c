/**
 * Plans and applies schema steps for one backend on one connection. Each backend's steps run in
 * one transaction together with their version rows and the content hashes we record beside them,
 * so a run killed half-way leaves the previous version intact.
 */
import type {Queryable} from '../db/index.js'
import {ExitCode, KintoError} from '../errors.js'
import {detectVersion} from './detect.js'
import {backendSql, type BackendName, CURRENT_VERSIONS, knownStepNames, type SqlStep, VERSIONED} from './sql-files.js'

export type BackendState = 'missing' | 'behind' | 'current' | 'newer'

export interface DriftItem {
  backend: BackendName
  /** Step name as recorded, e.g. `migration_025_026`. */
  step: string
  /** edited: recorded hash differs from the shipped file; unknown: we ship no such step. */
  reason: 'edited' | 'unknown'
  recorded: string
  shipped?: string
}

export interface BackendPlan {
  backend: BackendName
  installed: number | null
  current: number
  state: BackendState
  /** What would run, in order: the full schema when missing, else the upgrade steps. */
  steps: SqlStep[]
  notes: string[]
  drift: DriftItem[]
}

/**
 * Content hashes of applied steps are recorded in `metadata` as extra rows that upstream ignores:
 * name `kinto_ops.<backend>.<step>` (never ending in `schema_version`), value `sha256:<hex>`.
 * The cache has no version and often no metadata table, so its schema is not hashed.
 */
export const HASH_ROW_PREFIX = 'kinto_ops.'
export const hashRowName = (backend: BackendName, step: string) => `${HASH_ROW_PREFIX}${backend}.${step}`

async function recordedHashes(q: Queryable, backend: BackendName): Promise<Array<{step: string; hash: string}>> {
  const meta = await q.query<{present: boolean}>("SELECT to_regclass('metadata') IS NOT NULL AS present")
  if (!meta.rows[0]?.present) return []
  const prefix = hashRowName(backend, '')
  const res = await q.query<{name: string; value: string}>(
    'SELECT name, value FROM metadata WHERE left(name, $2) = $1 ORDER BY name',
    [prefix, prefix.length],
  )
  return res.rows.map((r) => ({step: r.name.slice(prefix.length), hash: r.value}))
}

export async function findDrift(q: Queryable, backend: BackendName): Promise<DriftItem[]> {
  if (!VERSIONED.has(backend)) return []
  const known = knownStepNames(backend)
  const drift: DriftItem[] = []
  for (const {step, hash} of await recordedHashes(q, backend)) {
    const shipped = known.get(step)
    if (!shipped) drift.push({backend, step, reason: 'unknown', recorded: hash})
    else if (shipped.hash !== hash) drift.push({backend, step, reason: 'edited', recorded: hash, shipped: shipped.hash})
  }
  return drift
}

export async function planBackend(q: Queryable, backend: BackendName): Promise<BackendPlan> {
  const {version: installed, notes} = await detectVersion(q, backend)
  const current = CURRENT_VERSIONS[backend]
  const drift = await findDrift(q, backend)
  const {install, upgrades} = backendSql(backend)
  let state: BackendState
  const steps: SqlStep[] = []
  if (installed === null) {
    state = 'missing'
    steps.push(install)
  } else if (installed === current) {
    state = 'current'
  } else if (installed > current) {
    state = 'newer'
  } else {
    state = 'behind'
    for (let v = installed; v < current; v++) {
      const step = upgrades.get(v)
      if (!step) {
        throw new KintoError(`No ${backend} upgrade step from version ${v} is shipped (sql/${backend}/migrations/).`, {
          code: 'KINTO_SCHEMA_STEP_MISSING',
        })
      }
      steps.push(step)
    }
  }
  return {backend, installed, current, state, steps, notes, drift}
}

/** Refuses a plan that we must not act on: a newer schema than we know, or drift. Nothing is touched. */
export function assertActionable(plans: BackendPlan[], where: string): void {
  for (const p of plans) {
    if (p.state === 'newer') {
      throw new KintoError(
        `The ${p.backend} schema of ${where} is at version ${p.installed}, newer than the version ${p.current} this kinto-ops knows; nothing was changed.`,
        {code: 'KINTO_SCHEMA_NEWER', exit: ExitCode.FAILED, hint: 'Upgrade kinto-ops to a release that knows this schema version.'},
      )
    }
  }
  const drift = plans.flatMap((p) => p.drift)
  if (drift.length > 0) throw driftError(drift, where)
}

export function describeDrift(d: DriftItem): string {
  return d.reason === 'unknown'
    ? `${d.backend} step ${d.step} was applied but is not shipped with this kinto-ops`
    : `${d.backend} step ${d.step} was applied with different SQL (recorded ${d.recorded.slice(0, 19)}…, shipped ${d.shipped?.slice(0, 19)}…)`
}

export function driftError(drift: DriftItem[], where: string): KintoError {
  return new KintoError(`Schema drift in ${where}: ${drift.map(describeDrift).join('; ')}. Nothing was changed.`, {
    code: 'KINTO_SCHEMA_DRIFT',
    exit: ExitCode.DRIFT,
    hint: 'Find out who changed the migration files or the metadata rows named kinto_ops.*; kinto db status lists them.',
  })
}

/** BEGIN … COMMIT on one connection, ROLLBACK on error. */
export async function inTransaction<T>(conn: Queryable, fn: () => Promise<T>): Promise<T> {
  await conn.exec('BEGIN')
  try {
    const result = await fn()
    await conn.exec('COMMIT')
    return result
  } catch (error) {
    await conn.exec('ROLLBACK').catch(() => {})
    throw error
  }
}

export interface ApplyHooks {
  onStep?: (step: SqlStep) => void
}

/**
 * Applies a backend's pending steps in one transaction. The version is re-read inside the
 * transaction and must still be the planned one (upstream's "expected version" check).
 * Returns the plan as found inside the transaction (its steps are what ran).
 */
export async function applyBackend(
  conn: Queryable,
  backend: BackendName,
  expected: number | null,
  hooks: ApplyHooks = {},
): Promise<BackendPlan> {
  return inTransaction(conn, async () => {
    // Schema files are automated: keep NOTICEs (e.g. "relation already exists, skipping") quiet.
    await conn.exec('SET LOCAL client_min_messages TO ERROR')
    const plan = await planBackend(conn, backend)
    if (plan.installed !== expected) {
      throw new KintoError(
        `The ${backend} schema changed while planning (expected version ${expected ?? 'none'}, found ${plan.installed ?? 'none'}); nothing was changed.`,
        {code: 'KINTO_SCHEMA_CHANGED', hint: 'Another tool migrated this database at the same time; run kinto migrate again.'},
      )
    }
    for (const step of plan.steps) {
      hooks.onStep?.(step)
      await conn.exec(step.sql)
      if (VERSIONED.has(backend)) {
        const after = await detectVersion(conn, backend)
        if (after.version !== step.to) {
          throw new KintoError(
            `${step.file} left the ${backend} schema at version ${after.version ?? 'none'} instead of ${step.to}.`,
            {code: 'KINTO_SCHEMA_STEP_INVALID'},
          )
        }
        await conn.query('INSERT INTO metadata (name, value) VALUES ($1, $2)', [hashRowName(backend, step.name), step.hash])
      }
    }
    return plan
  })
}

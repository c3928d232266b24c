/**
 * `kinto migrate` as a library verb: for each configured PostgreSQL backend (cache, storage,
 * permission), read the installed version and install or upgrade to current, under a migration
 * lock per database. Dry-run and check modes read only.
 */

import {isDatabaseFolder, parseDbUrl, refuseForeignFolder, withRegistry, type DatabaseRegistry, type Queryable, type SqlClient} from '../db/index.js'
import {asBool, type Settings} from '../config/settings.js'
import {ExitCode, KintoError} from '../errors.js'
import {isUtcTimezone} from './inspect.js'
import {MIGRATION_LOCK_KEY, pgliteLockPath, withAdvisoryLock, withFileLock} from './lock.js'
import {applyBackend, assertActionable, type BackendPlan, type BackendState, driftError, type DriftItem, planBackend} from './migrator.js'
import type {BackendName} from './sql-files.js'
import {clientFor, type ConfiguredBackend, configuredBackends} from './targets.js'

export type MigrateMode = 'apply' | 'dry-run' | 'check'

export type MigrateEvent =
  | {type: 'skip'; backend: BackendName; module: string; reason: string}
  | {type: 'lock-wait'; database: string; holder: string}
  | {type: 'lock-acquired'; database: string}
  | {type: 'plan'; backend: BackendName; database: string; plan: BackendPlan}
  | {type: 'warning'; backend: BackendName; message: string}
  | {type: 'step'; backend: BackendName; step: string; file: string}
  | {type: 'done'; backend: BackendName; database: string; from: number | null; to: number; steps: number}

export interface MigrateOptions {
  settings: Settings
  /** Folder relative pglite: URLs resolve against (the ini's folder). */
  dir: string
  mode?: MigrateMode
  /** Wait this long for another run's lock (default 60 s). */
  lockTimeoutMs?: number
  /** Fail at once when another run holds the lock. */
  noWait?: boolean
  pollMs?: number
  report?: (event: MigrateEvent) => void
  /**
   * Open databases to work on, held by the caller (a running server): its embedded folders are
   * already locked and stay open; nothing is closed here.
   */
  registry?: DatabaseRegistry
}

export interface StepReport {
  name: string
  file: string
  from: number | null
  to: number
  hash: string
  /** The SQL, in dry-run mode. */
  sql?: string
}

export interface BackendReport {
  backend: BackendName
  module: string
  /** Set when nothing is done for this backend (memory, memcached, redis…). */
  skipped?: string
  database?: string
  installed?: number | null
  current?: number
  state?: BackendState
  steps?: StepReport[]
  /** Steps were applied (apply mode only). */
  applied?: boolean
  notes?: string[]
}

export interface MigrateResult {
  mode: MigrateMode
  backends: BackendReport[]
  /** Something is left to install or upgrade (after this run, in apply mode: false on success). */
  pending: boolean
  drift: DriftItem[]
}

const CACHE_NOTE = 'the cache has no version: installed when no table named cache exists'

function stepReports(plan: BackendPlan, withSql: boolean): StepReport[] {
  return plan.steps.map((s) => ({name: s.name, file: s.file, from: s.from, to: s.to, hash: s.hash, ...(withSql ? {sql: s.sql} : {})}))
}

/** Storage needs a UTF8 database (hard error, as upstream) and should run in UTC (warning). */
async function checkDatabaseForStorage(q: Queryable, database: string): Promise<string[]> {
  const res = await q.query<{encoding: string; timezone: string}>(
    `SELECT pg_encoding_to_char(encoding) AS encoding, current_setting('TimeZone') AS timezone
       FROM pg_database WHERE datname = current_database()`,
  )
  const {encoding, timezone} = res.rows[0]
  if (encoding.toLowerCase() !== 'utf8') {
    throw new KintoError(`The database ${database} uses encoding ${encoding}; Kinto's storage needs UTF8.`, {
      code: 'KINTO_DB_ENCODING',
      hint: 'Create the database with `kinto db create` (UTF8, UTC), or CREATE DATABASE … ENCODING UTF8 TEMPLATE template0.',
    })
  }
  return isUtcTimezone(timezone)
    ? []
    : [`Database timezone is not UTC (${timezone}); timestamps are computed in the session zone. Run kinto db create (it sets UTC) or ALTER DATABASE … SET TIMEZONE TO UTC.`]
}

/**
 * A read-only command on an embedded folder that holds no database yet reads an empty in-memory one
 * instead (what the folder would be): opening the folder would create a cluster there, and its lock
 * file beside it.
 */
function readFromNothing(b: ConfiguredBackend): void {
  if (!b.pgliteDir || isDatabaseFolder(b.pgliteDir)) return
  refuseForeignFolder(b.pgliteDir)
  b.absent = true
  b.url = 'pglite:memory:'
  b.pgliteDir = null
  b.databaseKey = 'pglite::memory:'
}

/**
 * Runs fn holding the migration lock of every database (sorted, so two runs cannot cross): the
 * lock file of each embedded folder, and with needAdvisory the advisory lock of each server database.
 */
export async function withMigrationLocks<T>(
  pg: ConfiguredBackend[],
  registry: DatabaseRegistry,
  opts: Pick<MigrateOptions, 'lockTimeoutMs' | 'noWait' | 'pollMs' | 'report'> & {
    inUseHint?: string
    /** What to do when the wait for a lock times out (default: migrate's). */
    timeoutHint?: string
    /** The caller only reads: an embedded folder holding no database is read as an empty one, never created. */
    readOnly?: boolean
    /** The caller (a running server) holds the embedded folders: no lock file, and they stay open. */
    held?: boolean
  },
  needAdvisory: boolean,
  fn: () => Promise<T>,
): Promise<T> {
  if (opts.readOnly && !opts.held) for (const b of pg) readFromNothing(b)
  const byDb = new Map<string, ConfiguredBackend>()
  for (const b of pg) if (!byDb.has(b.databaseKey!)) byDb.set(b.databaseKey!, b)
  const dbs = [...byDb.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, b]) => b)

  const lockOne = async (i: number): Promise<T> => {
    if (i >= dbs.length) return fn()
    const b = dbs[i]
    const database = b.database!
    const waitOpts = {
      target: database,
      timeoutMs: opts.lockTimeoutMs,
      noWait: opts.noWait,
      pollMs: opts.pollMs,
      inUseHint: opts.inUseHint,
      timeoutHint: opts.timeoutHint,
      onWait: (holder: string) => opts.report?.({type: 'lock-wait', database, holder}),
    }
    if (b.pgliteDir !== undefined) {
      // Embedded: one process per folder. The file lock comes before the folder is opened.
      if (b.pgliteDir === null || opts.held) return lockOne(i + 1)
      return withFileLock(pgliteLockPath(b.pgliteDir), waitOpts, async () => {
        opts.report?.({type: 'lock-acquired', database})
        try {
          return await lockOne(i + 1)
        } finally {
          // closed (data flushed) before the lock file goes
          await clientFor(registry, b).close()
        }
      })
    }
    if (!needAdvisory) return lockOne(i + 1)
    const client = clientFor(registry, b)
    return client.withConnection((conn) =>
      withAdvisoryLock(conn, MIGRATION_LOCK_KEY, waitOpts, async () => {
        opts.report?.({type: 'lock-acquired', database})
        return lockOne(i + 1)
      }),
    )
  }
  return lockOne(0)
}

async function planAll(pg: ConfiguredBackend[], registry: DatabaseRegistry, opts: MigrateOptions) {
  const plans: Array<{b: ConfiguredBackend; client: SqlClient; plan: BackendPlan}> = []
  for (const b of pg) {
    const client = clientFor(registry, b)
    const plan = await client
      .withConnection(async (conn) => {
        const p = await planBackend(conn, b.backend)
        if (b.backend === 'storage' && p.state === 'missing') p.notes.push(...(await checkDatabaseForStorage(conn, b.database!)))
        return p
      })
      .catch((error: unknown) => {
        throw privilegeError(error, b, 'read') ?? error
      })
    if (b.backend === 'cache') plan.notes.push(CACHE_NOTE)
    for (const message of plan.notes) if (message !== CACHE_NOTE) opts.report?.({type: 'warning', backend: b.backend, message})
    opts.report?.({type: 'plan', backend: b.backend, database: b.database!, plan})
    plans.push({b, client, plan})
  }
  return plans
}

/** Why `kinto migrate` leaves a `pglite:memory:` backend alone. */
export const IN_MEMORY_SKIP = 'in-memory embedded database: it starts empty in each process; `kinto start --migrate` installs the schema in the server'

export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const mode = opts.mode ?? 'apply'
  const all = configuredBackends(opts.settings, opts.dir)
  const reports = new Map<BackendName, BackendReport>()
  // An in-memory embedded database starts empty in each process: migrating this command's own
  // copy would change nothing a server sees (`kinto start --migrate` migrates the server's, and
  // passes its registry).
  const inMemory = (b: ConfiguredBackend) => b.kind === 'postgresql' && b.pgliteDir === null && opts.registry === undefined
  for (const b of all) {
    if (b.kind !== 'postgresql' || inMemory(b)) {
      const reason = inMemory(b) ? IN_MEMORY_SKIP : `${b.module || 'not configured'}: nothing to migrate`
      reports.set(b.backend, {backend: b.backend, module: b.module, skipped: reason})
      opts.report?.({type: 'skip', backend: b.backend, module: b.module, reason})
    }
  }
  const pg = all.filter((b) => b.kind === 'postgresql' && !inMemory(b))
  const result = (): MigrateResult => {
    const backends = all.map((b) => reports.get(b.backend)!)
    return {
      mode,
      backends,
      pending: backends.some((r) => r.state === 'missing' || r.state === 'behind'),
      drift: [],
    }
  }
  if (pg.length === 0) return result()

  if (mode === 'apply' && asBool(opts.settings, 'readonly')) {
    throw new KintoError('kinto.readonly is true, so kinto migrate writes nothing; no schema was changed.', {
      code: 'KINTO_MIGRATE_READONLY',
      exit: ExitCode.FAILED,
      hint: 'Migrate from a writable configuration (kinto.readonly = false, or KINTO_READONLY=false), or use --check / --dry-run.',
    })
  }

  const inUseHint = '`kinto start --migrate` upgrades the schema when the server starts.'
  const lockOpts = {...opts, inUseHint, readOnly: mode !== 'apply', held: opts.registry !== undefined}
  return withRegistry(
    opts.dir,
    (registry) =>
        withMigrationLocks(pg, registry, lockOpts, mode === 'apply', async () => {
        const plans = await planAll(pg, registry, opts)
        for (const {b, plan} of plans) {
          reports.set(b.backend, {
            backend: b.backend,
            module: b.module,
            database: b.database,
            installed: plan.installed,
            current: plan.current,
            state: plan.state,
            steps: stepReports(plan, mode === 'dry-run'),
            applied: false,
            notes: plan.notes,
          })
        }
        const drift = plans.flatMap((p) => p.plan.drift)
        if (mode !== 'apply') {
          // newer than we know is an error in every mode; drift is reported in the result
          assertActionable(
            plans.map((p) => ({...p.plan, drift: []})),
            [...new Set(pg.map((b) => b.database))].join(', '),
          )
          return {...result(), drift}
        }
        for (const {b, plan} of plans) assertActionable([{...plan, drift: []}], b.database!)
        if (drift.length > 0) throw driftError(drift, [...new Set(pg.map((b) => b.database))].join(', '))

        for (const {b, client, plan} of plans) {
          if (plan.steps.length === 0) continue
          const applied = await client
            .withConnection((conn) =>
              applyBackend(conn, b.backend, plan.installed, {
                onStep: (step) => opts.report?.({type: 'step', backend: b.backend, step: step.name, file: step.file}),
              }),
            )
            .catch((error: unknown) => {
              throw privilegeError(error, b, 'install') ?? error
            })
          const report = reports.get(b.backend)!
          report.applied = true
          report.steps = stepReports(applied, false)
          opts.report?.({
            type: 'done',
            backend: b.backend,
            database: b.database!,
            from: applied.installed,
            to: applied.current,
            steps: applied.steps.length,
          })
        }
        return {...result(), pending: false}
      }),
    {borrowed: opts.registry},
  )
}

/**
 * SQLSTATE 25006 (read_only_sql_transaction): the URL leads to a standby (a read replica) or to a
 * database whose transactions are read-only by default; nothing can be written there.
 */
export function readOnlyDatabaseError(error: unknown, database: string): KintoError | undefined {
  if ((error as {code?: string} | null)?.code !== '25006') return undefined
  return new KintoError(`The database ${database} is read-only (${(error as Error).message}): nothing was written there.`, {
    code: 'KINTO_DB_READONLY',
    hint: 'Point the URL at the primary server, not a standby or read replica (or, if it was set on purpose, ALTER DATABASE … RESET default_transaction_read_only).',
    cause: error,
  })
}

/**
 * SQLSTATE 42501 (insufficient_privilege) while reading a backend's schema (its metadata, to plan)
 * or installing it: which role lacks what, and the fix. Since PostgreSQL 15 only the database owner
 * may create in schema public unless granted; tables installed by another role are that role's.
 * Used by migrate and by restore / db copy, which migrate their target first.
 */
export function privilegeError(error: unknown, b: ConfiguredBackend, doing: 'read' | 'install', backend: BackendName = b.backend): KintoError | undefined {
  const readOnly = readOnlyDatabaseError(error, b.database!)
  if (readOnly) return readOnly
  if ((error as {code?: string} | null)?.code !== '42501') return undefined
  const parsed = b.url ? parseDbUrl(b.url, '.') : undefined
  const role = parsed?.driver === 'pg' && parsed.user ? parsed.user : 'the role of the URL'
  const database = parsed?.driver === 'pg' ? parsed.database : b.database!
  const ownerUrl = `KINTO_${backend.toUpperCase()}_URL=postgresql://OWNER@…/${database}`
  // "must be owner of table records": the tables are another role's (an upstream deployment whose
  // schema a superuser installed); a GRANT on the schema would not help.
  const notOwner = doing === 'install' && /must be owner of/.test((error as Error).message)
  const hint = notOwner
    ? `Run kinto migrate with the URL of the role that owns the Kinto tables, the one that installed them (e.g. ${ownerUrl}), or have that role (or a superuser) give them to ${role} (ALTER TABLE … OWNER TO ${role}; for each Kinto table and function).`
    : doing === 'install'
      ? `Run kinto migrate with the database owner's URL (e.g. ${ownerUrl}), or as the owner run GRANT CREATE ON SCHEMA public TO ${role}; (\`kinto db create\` makes the ini's role the owner).`
      : `Use the URL of the role that installed the Kinto tables, usually the database owner's (e.g. ${ownerUrl}); \`kinto db status\` as that role shows the schema.`
  return new KintoError(`Role ${role} may not ${notOwner ? 'change' : doing} the ${backend} schema in ${b.database}: ${(error as Error).message}.`, {
    code: 'KINTO_DB_PERMISSION',
    hint,
    cause: error,
  })
}

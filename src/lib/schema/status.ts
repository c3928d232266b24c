/**
 * `kinto db status`: what an operator wants to know before and after a deploy, per configured
 * PostgreSQL backend: server, encoding, timezone, installed and current schema versions, pending
 * steps, drift, and whether the configured user can write.
 */
import {withRegistry, type DatabaseRegistry, type Queryable} from '../db/index.js'
import type {Settings} from '../config/settings.js'
import {type BackendState, type DriftItem, planBackend} from './migrator.js'
import type {BackendName} from './sql-files.js'
import {withMigrationLocks} from './migrate.js'
import {clientFor, configuredBackends} from './targets.js'

export interface DatabaseStatus {
  database: string
  engine: 'postgresql' | 'pglite'
  serverVersion: string
  encoding: string
  timezone: string
  user: string
  /** A hot standby, or default_transaction_read_only: no writes possible. */
  readOnly: boolean
  /** The user may create tables in schema public (needed by kinto migrate). */
  canCreateTables: boolean
}

export interface BackendStatus {
  backend: BackendName
  module: string
  skipped?: string
  database?: DatabaseStatus
  installed?: number | null
  current?: number
  state?: BackendState
  pending?: string[]
  drift?: DriftItem[]
  /** The configured user may INSERT, UPDATE and DELETE on every table of this backend (null: not installed). */
  canWrite?: boolean | null
  /** Storage only: the objects table holds at least one row (kinto check's backup reminder). */
  holdsData?: boolean
  notes?: string[]
}

export interface StatusResult {
  backends: BackendStatus[]
}

const TABLES: Record<BackendName, string[]> = {
  storage: ['objects', 'timestamps', 'metadata'],
  permission: ['user_principals', 'access_control_entries'],
  cache: ['cache'],
}

async function databaseStatus(q: Queryable, engine: 'postgresql' | 'pglite', database: string): Promise<DatabaseStatus> {
  const res = await q.query<DatabaseStatus & {in_recovery: boolean; ro: string}>(
    `SELECT current_setting('server_version') AS "serverVersion",
            pg_encoding_to_char(d.encoding) AS encoding,
            current_setting('TimeZone') AS timezone,
            current_user AS "user",
            pg_is_in_recovery() AS in_recovery,
            current_setting('default_transaction_read_only') AS ro,
            has_schema_privilege('public', 'CREATE') AS "canCreateTables"
       FROM pg_database d WHERE d.datname = current_database()`,
  )
  const r = res.rows[0]
  return {
    database,
    engine,
    serverVersion: r.serverVersion,
    encoding: r.encoding,
    timezone: r.timezone,
    user: r.user,
    readOnly: r.in_recovery || r.ro === 'on',
    canCreateTables: r.canCreateTables,
  }
}

async function canWrite(q: Queryable, backend: BackendName, readOnly: boolean): Promise<boolean | null> {
  const res = await q.query<{present: number; writable: number}>(
    `SELECT count(*)::int AS present,
            count(*) FILTER (WHERE has_table_privilege(format('public.%I', t), 'INSERT, UPDATE, DELETE')
                               AND has_table_privilege(format('public.%I', t), 'INSERT')
                               AND has_table_privilege(format('public.%I', t), 'UPDATE')
                               AND has_table_privilege(format('public.%I', t), 'DELETE'))::int AS writable
       FROM unnest($1::text[]) AS t
      WHERE to_regclass(format('public.%I', t)) IS NOT NULL`,
    [TABLES[backend]],
  )
  const {present, writable} = res.rows[0]
  if (present === 0) return null
  return !readOnly && writable === present
}

async function holdsData(conn: Queryable): Promise<boolean> {
  const res = await conn.query<{any: boolean}>('SELECT EXISTS (SELECT 1 FROM objects) AS any').catch(() => ({rows: [{any: false}]}))
  return Boolean(res.rows[0]?.any)
}

/** db status of `pglite:memory:`: what it read is not what any server serves. */
export const IN_MEMORY_STATUS_NOTE =
  'in-memory embedded database: this command opened a new, empty one of its own; each process (a server) has its own, which kinto start --migrate installs'

export async function databaseStatusReport(opts: {
  settings: Settings
  dir: string
  lockTimeoutMs?: number
  /** Give up connecting after this long (default: the 10 s of configuredBackends). */
  connectTimeoutMs?: number
  /** The open databases of a running server (through its control channel): no lock taken, nothing closed. */
  registry?: DatabaseRegistry
}): Promise<StatusResult> {
  const backends = configuredBackends(opts.settings, opts.dir)
  if (opts.connectTimeoutMs !== undefined) for (const b of backends) b.pool.connectTimeoutMs = opts.connectTimeoutMs
  const out: BackendStatus[] = []
  return withRegistry(opts.dir, async (registry) => {
    for (const b of backends) {
      if (b.kind !== 'postgresql') {
        out.push({backend: b.backend, module: b.module, skipped: `${b.module || 'not configured'}: not a PostgreSQL backend`})
        continue
      }
      out.push({backend: b.backend, module: b.module})
    }
    const pg = backends.filter((b) => b.kind === 'postgresql')
    // Embedded folders are opened by one process at a time: hold their lock files while reading.
    await withMigrationLocks(pg, registry, {lockTimeoutMs: opts.lockTimeoutMs ?? 10_000, readOnly: true, held: opts.registry !== undefined}, false, async () => {
      for (const b of pg) {
        const client = clientFor(registry, b)
        const status = await client.withConnection(async (conn): Promise<BackendStatus> => {
          const db = await databaseStatus(conn, client.kind === 'pglite' ? 'pglite' : 'postgresql', b.database!)
          const plan = await planBackend(conn, b.backend)
          return {
            backend: b.backend,
            module: b.module,
            database: db,
            installed: plan.installed,
            current: plan.current,
            state: plan.state,
            pending: plan.steps.map((s) => s.name),
            drift: plan.drift,
            canWrite: await canWrite(conn, b.backend, db.readOnly),
            ...(b.backend === 'storage' && plan.installed !== null ? {holdsData: await holdsData(conn)} : {}),
            notes: b.absent
              ? [`${b.database} holds no database yet (nothing was created); kinto migrate creates it`, ...plan.notes]
              : b.pgliteDir === null && opts.registry === undefined
                ? [IN_MEMORY_STATUS_NOTE, ...plan.notes]
                : plan.notes,
          }
        })
        out[out.findIndex((o) => o.backend === b.backend)] = status
      }
    })
    return {backends: out}
  }, {borrowed: opts.registry})
}

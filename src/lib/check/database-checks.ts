/**
 * The production checklist items that need the database, read through `kinto db status`'s
 * report (databaseStatusReport): it can be reached (with timeouts: an unreachable database is a
 * finding, never a hang), its encoding and time zone, whether the schema is current, whether the
 * role's privileges match `kinto.readonly`; plus whether one process's pools fit in the server's
 * connection limit. Only reads.
 */
import {existsSync} from 'node:fs'

import type {KintoConfig} from '../config/index.js'
import {asBool, asInt, type Settings} from '../config/settings.js'
import {parseDbUrl, type Queryable, quoteIdent, withRegistry} from '../db/index.js'
import {onThisMachine} from '../db/tls.js'
import {isKintoError} from '../errors.js'
import {markerPath, readMarker, RECENT_BACKUP_DAYS} from '../backup/marker.js'
import {connectionLimits, isUtcTimezone} from '../schema/inspect.js'
import {describeDrift} from '../schema/migrator.js'
import type {BackendName} from '../schema/sql-files.js'
import {viaServerWhenHeld} from '../ops/control.js'
import {type BackendStatus, type DatabaseStatus, databaseStatusReport} from '../schema/status.js'
import {type ConfiguredBackend, configuredBackends} from '../schema/targets.js'
import {type Finding, error, ok, warning} from './types.js'
import {shellArg} from '../text/shell.js'
import {docsFile} from '../version.js'

export interface DatabaseCheckOptions {
  /** Connection timeout (and the wait for a running migration on an embedded folder); default 5 s. */
  timeoutMs?: number
}

/** The configured PostgreSQL backends grouped by physical database. */
function databaseGroups(config: KintoConfig): ConfiguredBackend[][] {
  const groups = new Map<string, ConfiguredBackend[]>()
  for (const b of configuredBackends(config.settings, config.dir)) {
    if (b.kind !== 'postgresql') continue
    groups.set(b.databaseKey!, [...(groups.get(b.databaseKey!) ?? []), b])
  }
  return [...groups.values()]
}

/** The settings with only the group's backends left on PostgreSQL (the others as memory: skipped). */
function settingsFor(settings: Settings, group: ConfiguredBackend[]): Settings {
  const out = {...settings}
  for (const backend of ['storage', 'permission', 'cache'] as const) {
    if (!group.some((b) => b.backend === backend)) out[`${backend}_backend`] = `kinto.core.${backend}.memory`
  }
  return out
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round(ms / 100) / 10} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const label = (group: ConfiguredBackend[]) => `${group.map((b) => b.backend).join(', ')} on ${group[0].database}`

function encodingFindings(where: string, db: DatabaseStatus): Finding[] {
  const findings: Finding[] = []
  if (/^utf-?8$/i.test(db.encoding)) findings.push(ok('db-encoding', `${where}: encoding UTF8.`))
  else {
    findings.push(
      error(
        'db-encoding',
        `${where}: the database encoding is ${db.encoding}; Kinto stores JSON text and needs UTF8 (upstream refuses to install its schema otherwise).`,
        "Create a UTF8 database (kinto db create, or CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0), move the data there with pg_dump/pg_restore, and point the URLs at it.",
      ),
    )
  }
  if (isUtcTimezone(db.timezone)) findings.push(ok('db-timezone', `${where}: time zone ${db.timezone}.`))
  else {
    const name = db.database.split('/').pop() ?? db.database
    findings.push(
      error(
        'db-timezone',
        `${where}: sessions run in time zone ${db.timezone}, not UTC; Kinto's timestamps are computed in the session zone, so they shift with it (and jump at daylight-saving changes).`,
        `ALTER DATABASE ${quoteIdent(name)} SET TIMEZONE TO 'UTC' (or run kinto db create), then restart Kinto so that new sessions pick it up.`,
      ),
    )
  }
  return findings
}

function migrationFindings(where: string, b: BackendStatus): Finding[] {
  const at = `${b.backend} on ${where}`
  const findings: Finding[] = []
  switch (b.state) {
    case 'current':
      findings.push(ok('migrations', `${at}: schema current${b.backend === 'cache' ? '' : ` (version ${b.current})`}.`))
      break
    case 'missing':
      findings.push(error('migrations', `${at}: the schema is not installed.`, 'Run kinto migrate with this ini.'))
      break
    case 'behind':
      findings.push(
        error(
          'migrations',
          `${at}: schema version ${b.installed}, current is ${b.current} (${b.pending?.length ?? 0} step(s) pending).`,
          'Run kinto migrate with this ini (kinto migrate --dry-run shows the steps).',
        ),
      )
      break
    case 'newer':
      findings.push(
        error('migrations', `${at}: schema version ${b.installed} is newer than the version ${b.current} this kinto-ops knows.`, 'Upgrade kinto-ops to a release that knows this schema version.'),
      )
      break
  }
  for (const d of b.drift ?? []) {
    findings.push(error('migrations', `${at}: drift: ${describeDrift(d)}.`, 'Find out who changed the migration files or the metadata rows named kinto_ops.*; kinto db status lists them.'))
  }
  return findings
}

function privilegeFindings(config: KintoConfig, where: string, db: DatabaseStatus, backends: BackendStatus[]): Finding[] {
  const readonly = asBool(config.settings, 'readonly')
  const embedded = db.engine === 'pglite'
  const why = db.readOnly ? 'the server only accepts reads (a hot standby, or default_transaction_read_only)' : `role ${db.user} may not INSERT, UPDATE and DELETE there`
  const findings: Finding[] = []
  const cache = backends.find((b) => b.backend === 'cache')
  if (cache?.canWrite === false) {
    findings.push(
      error(
        'readonly-privileges',
        `cache on ${where}: ${why}, but the cache is written even when kinto.readonly is true (heartbeat, account logins, pagination tokens).`,
        db.readOnly ? 'Put the cache on a writable database (or use another cache backend).' : `GRANT INSERT, UPDATE, DELETE ON "cache" TO ${quoteIdent(db.user)}; (as the owner of the table)`,
      ),
    )
  }
  const data = backends.filter((b) => b.backend !== 'cache' && b.canWrite !== null && b.canWrite !== undefined)
  if (data.length === 0) return findings // nothing installed: the migrations finding says so
  const names = data.map((b) => b.backend).join(' and ')
  const writable = data.filter((b) => b.canWrite)
  if (!readonly) {
    const blocked = data.filter((b) => !b.canWrite)
    if (blocked.length > 0) {
      findings.push(
        error(
          'readonly-privileges',
          `${blocked.map((b) => b.backend).join(' and ')} on ${where}: kinto.readonly is false but ${why}: every write request would fail.`,
          db.readOnly
            ? 'Set kinto.readonly = true for this read-only server, or point the URLs at the primary.'
            : `Set kinto.readonly = true for this read-only role, or connect as a role that may write (the tables' owner, or GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${quoteIdent(db.user)}).`,
        ),
      )
    } else if (cache?.canWrite !== false) {
      findings.push(ok('readonly-privileges', `${names} on ${where}: kinto.readonly is false and role ${db.user} may write.`))
    }
  } else if (embedded) {
    findings.push(ok('readonly-privileges', `${names} on ${where}: kinto.readonly is true; the embedded database has a single role, so only Kinto enforces it.`))
  } else if (writable.length > 0) {
    findings.push(
      warning(
        'readonly-privileges',
        `${writable.map((b) => b.backend).join(' and ')} on ${where}: kinto.readonly is true but role ${db.user} may still write there: only Kinto enforces read-only, not the database.`,
        'Connect as a role with SELECT only on the storage and permission tables (kinto db grant-readonly --role <name>), and use that role in the URLs.',
      ),
    )
  } else if (cache?.canWrite !== false) {
    findings.push(ok('readonly-privileges', `${names} on ${where}: kinto.readonly is true and role ${db.user} may only read.`))
  }
  return findings
}

async function connectionFindings(config: KintoConfig, group: ConfiguredBackend[], timeoutMs: number): Promise<Finding[]> {
  // Storage and permission share one pool per URL (sized by the first, storage before permission);
  // the cache, which commits on its own, always has its own pool (upstream's client registry).
  const pools = new Map<string, number>()
  const order: BackendName[] = ['storage', 'permission', 'cache']
  for (const b of [...group].sort((x, y) => order.indexOf(x.backend) - order.indexOf(y.backend))) {
    const key = b.backend === 'cache' ? `cache|${b.url}` : b.url!
    if (pools.has(key)) continue
    const size = asInt(config.settings, `${b.backend}_pool_size`, 25) ?? 25
    const overflow = asInt(config.settings, `${b.backend}_max_overflow`, 10) ?? 10
    pools.set(key, size + overflow)
  }
  const perProcess = [...pools.values()].reduce((a, b) => a + b, 0)
  return withRegistry(config.dir, async (registry) => {
    const client = registry.get(group[0].url!, {poolSize: 1, maxOverflow: 0, connectTimeoutMs: timeoutMs})
    const limits = await withTimeout(connectionLimits(client), timeoutMs * 2, label(group))
    const tls = await withTimeout(tlsFinding(client, group[0].url!, label(group)), timeoutMs * 2, label(group))
    const available = limits.maxConnections - limits.reservedConnections
    if (perProcess > available) {
      return [
        tls,
        warning(
          'db-connections',
          `${label(group)}: one Kinto process may open ${perProcess} connections (pool_size + max_overflow of each pool) but the server accepts ${available} (max_connections ${limits.maxConnections} minus ${limits.reservedConnections} reserved).`,
          'Lower kinto.<backend>_pool_size / _max_overflow, raise max_connections, or put PgBouncer in front.',
        ),
      ]
    }
    return [
      tls,
      ok(
        'db-connections',
        `${label(group)}: one process may open up to ${perProcess} connections; the server accepts ${available}, so ${Math.floor(available / Math.max(1, perProcess))} such process(es) at most at full load.`,
      ),
    ]
  }, {closeTimeoutMs: timeoutMs}).catch(() => [] as Finding[]) // the connection finding already says what is wrong
}

/**
 * Whether the connections to a server elsewhere are encrypted, as that server sees one of them
 * (pg_stat_ssl). A URL without sslmode is libpq's prefer there (db/tls.ts): a server that offers
 * no TLS gets the statements and records in clear, which nothing else would show.
 */
async function tlsFinding(client: Queryable, url: string, where: string): Promise<Finding> {
  const parsed = parseDbUrl(url)
  const host = parsed.driver === 'pg' ? parsed.host : ''
  if (host.startsWith('/') || onThisMachine(host)) {
    return ok('db-tls', `${where}: a server on this machine (${host.startsWith('/') ? 'Unix socket' : host}): connections in clear, nothing leaves the machine.`)
  }
  const res = await client.query<{ssl: boolean | null}>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
  if (res.rows[0]?.ssl !== true) {
    return warning(
      'db-tls',
      `${where}: connections are in clear: statements, records and account hashes cross the network unencrypted (the server offers no TLS, or sslmode=disable).`,
      'Turn ssl on in the PostgreSQL server, then write ?sslmode=verify-full (or require) in the URL so that a clear connection is refused.',
    )
  }
  const mode = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '').get('sslmode')
  return ok('db-tls', `${where}: connections are encrypted (TLS${mode === 'verify-full' ? ', the server\'s certificate and name checked' : '; sslmode=verify-full would also check the server\'s certificate'}).`)
}

async function checkGroup(config: KintoConfig, group: ConfiguredBackend[], timeoutMs: number): Promise<Finding[]> {
  const first = group[0]
  const where = label(group)
  const embedded = first.pgliteDir !== undefined
  // In memory: nothing lasts to be checked (the backend finding says so).
  if (embedded && first.pgliteDir === null) return []
  // Opening a missing folder would create an empty database: a check must not.
  if (embedded && !existsSync(first.pgliteDir!)) {
    return [error('db-connect', `${where}: the folder does not exist.`, 'Run kinto migrate with this ini to create it, or fix the pglite: URL.')]
  }
  let backends: BackendStatus[]
  try {
    // An embedded folder a running server holds is read by that server (its control channel).
    const report = await withTimeout(
      viaServerWhenHeld(config, 'db-status', {}, () =>
        databaseStatusReport({settings: settingsFor(config.settings, group), dir: config.dir, connectTimeoutMs: timeoutMs, lockTimeoutMs: timeoutMs}),
      ),
      timeoutMs * 4,
      where,
    )
    const inGroup = new Set(group.map((b) => b.backend))
    backends = report.backends.filter((b) => !b.skipped && b.database && inGroup.has(b.backend))
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).replace(/\.$/, '')
    const code = isKintoError(e) ? e.code : ''
    if (code === 'KINTO_MIGRATE_LOCK_TIMEOUT' || code === 'KINTO_MIGRATE_LOCKED') {
      return [warning('db-connect', `${where}: not checked: ${message}.`, 'Run kinto check again when kinto migrate has finished.')]
    }
    return [
      error(
        'db-connect',
        `${where}: ${message}.`,
        isKintoError(e) && e.hint ? e.hint : 'Check that the server runs and that the URL (host, port, database, user, password) is right.',
      ),
    ]
  }
  if (backends.length === 0) return []
  const db = backends[0].database!
  return [
    ok('db-connect', embedded ? `${where}: opened (embedded PostgreSQL ${db.serverVersion}).` : `${where}: connected as ${db.user} (PostgreSQL ${db.serverVersion}).`),
    ...encodingFindings(where, db),
    ...backends.flatMap((b) => migrationFindings(first.database!, b)),
    ...privilegeFindings(config, first.database!, db, backends),
    ...backupFindings(config, backends),
    ...(embedded ? [] : await connectionFindings(config, group, timeoutMs)),
  ]
}

/**
 * One reminder when the storage holds data and the last `kinto backup` of this ini (the marker
 * beside it) is missing or older than RECENT_BACKUP_DAYS.
 */
function backupFindings(config: KintoConfig, backends: BackendStatus[]): Finding[] {
  if (!backends.some((b) => b.backend === 'storage' && b.holdsData)) return []
  const marker = readMarker(config.dir)
  const ageDays = marker ? (Date.now() - Date.parse(marker.at)) / 86_400_000 : Infinity
  const fix = `Run kinto backup --ini ${shellArg(config.path)} -o <file> (and schedule it); see ${docsFile('backup.md')}.`
  if (!marker) return [warning('backup', `No backup of this data was taken with kinto backup (no ${markerPath(config.dir)}).`, fix)]
  if (ageDays > RECENT_BACKUP_DAYS) {
    return [warning('backup', `The last kinto backup of this data is ${Math.floor(ageDays)} days old (${marker.at}, ${marker.file}).`, fix)]
  }
  // A streamed backup's marker names no file: "(standard output)" is written as it is.
  const where = marker.file.startsWith('(') ? marker.file : `(${marker.file})`
  return [ok('backup', `Last kinto backup at ${marker.at} ${where}.`)]
}

/** Database findings for every PostgreSQL backend of the config; [] when none is configured. */
export async function checkDatabases(config: KintoConfig, options: DatabaseCheckOptions = {}): Promise<Finding[]> {
  const timeoutMs = options.timeoutMs ?? 5000
  const findings: Finding[] = []
  for (const group of databaseGroups(config)) findings.push(...(await checkGroup(config, group, timeoutMs)))
  return findings
}

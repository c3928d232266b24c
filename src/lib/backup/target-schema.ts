/**
 * The target schema of a restore or a copy: the file's schema versions checked against ours, the
 * target's installed or upgraded (the normal migrations) before the rows go in.
 */
import {type DatabaseRegistry} from '../db/index.js'
import {KintoError, UsageError} from '../errors.js'
import {ensureSchema} from '../schema/index.js'
import {privilegeError} from '../schema/migrate.js'
import {planBackend} from '../schema/migrator.js'
import {type BackendName, CURRENT_VERSIONS} from '../schema/sql-files.js'
import {clientFor, type ConfiguredBackend} from '../schema/targets.js'
import type {BackupHeader} from './format.js'
import {ROW_FORMAT_SINCE} from './snapshot.js'
import {type DataBackends, sameDatabase} from './targets.js'

/** A file's schema versions: newer than ours refused; older ones restore when their rows have this layout. */
export function checkFileSchema(header: BackupHeader, file: string): string[] {
  const notes: string[] = []
  for (const backend of ['storage', 'permission'] as const) {
    const v = header.schema[backend]
    if (v > CURRENT_VERSIONS[backend]) {
      throw new KintoError(
        `${file} was taken from a ${backend} schema version ${v}, newer than this kinto-ops knows (${CURRENT_VERSIONS[backend]}); nothing was restored.`,
        {code: 'KINTO_BACKUP_NEWER', hint: `Restore it with kinto-ops ${header.kinto_ops} or newer.`},
      )
    }
    if (v < ROW_FORMAT_SINCE[backend]) {
      throw new KintoError(`${file} claims a ${backend} schema version ${v}, older than any this format was written from; nothing was restored.`, {
        code: 'KINTO_BACKUP_INVALID',
        hint: 'Use a file written by `kinto backup`.',
      })
    }
    if (v < CURRENT_VERSIONS[backend]) {
      notes.push(`${backend} rows of schema ${v} restored into schema ${CURRENT_VERSIONS[backend]} (the migrations in between change no rows)`)
    }
  }
  return notes
}

/** Per distinct database, the backends whose schema lives there (the cache too, so that the target can be served). */
export function schemaTargets(b: DataBackends): Array<{backend: ConfiguredBackend; names: BackendName[]}> {
  const list = [b.storage, b.permission, ...(b.cache.kind === 'postgresql' ? [b.cache] : [])]
  const out: Array<{backend: ConfiguredBackend; names: BackendName[]}> = []
  for (const x of list) {
    const same = out.find((o) => sameDatabase(o.backend, x))
    if (same) same.names.push(x.backend)
    else out.push({backend: x, names: [x.backend]})
  }
  return out
}

/** Each backend's migration plan on its target, in order (a role that cannot read it: said). */
async function* targetPlans(registry: DatabaseRegistry, targets: ReturnType<typeof schemaTargets>) {
  for (const t of targets) {
    const client = clientFor(registry, t.backend)
    for (const name of t.names) {
      const plan = await client.withConnection((conn) => planBackend(conn, name)).catch((error: unknown) => {
        throw privilegeError(error, t.backend, 'read', name) ?? error
      })
      yield {target: t, name, plan}
    }
  }
}

export async function pendingSchema(registry: DatabaseRegistry, targets: ReturnType<typeof schemaTargets>): Promise<boolean> {
  for await (const {plan} of targetPlans(registry, targets)) if (plan.steps.length > 0) return true
  return false
}

/** Installs or upgrades the target's schemas (the normal migrations); the steps that ran. */
export async function migrateTargets(registry: DatabaseRegistry, targets: ReturnType<typeof schemaTargets>): Promise<string[]> {
  const steps: string[] = []
  for (const t of targets) {
    // ensureSchema reads each backend's version, then installs: say which role lacks what
    const plans = await ensureSchema(clientFor(registry, t.backend), t.names).catch(async (error: unknown) => {
      const code = (error as {code?: string} | null)?.code
      if (code !== '42501' && code !== '25006') throw error
      const pending = await pendingSchema(registry, [t])
      throw privilegeError(error, t.backend, pending ? 'install' : 'read', t.names.find((n) => n !== 'cache') ?? t.names[0]) ?? error
    })
    for (const plan of plans) steps.push(...plan.steps.map((s) => `${plan.backend} ${s.name}`))
  }
  return steps
}

/**
 * `restore -`: refuses a target whose schema is behind (an upgrade would change it before the
 * input, read once, is verified). A target without a schema, or a current one, is fine.
 */
export async function assertNoUpgrade(registry: DatabaseRegistry, targets: ReturnType<typeof schemaTargets>): Promise<void> {
  for await (const {target, name, plan} of targetPlans(registry, targets)) {
    if (plan.state !== 'behind') continue
    throw new UsageError(
      `The ${name} schema of ${target.backend.database} is at version ${plan.installed}, behind ${plan.current}: restore - reads standard input once, so it cannot verify the backup before upgrading the schema; nothing was changed.`,
      {hint: 'Run kinto migrate with the same --ini first (or restore from a file), then run this again.'},
    )
  }
}

/**
 * Schema management: install and upgrade the PostgreSQL schemas of the storage, permission and
 * cache backends (the same catalog and version bookkeeping as upstream Kinto).
 */
import type {SqlClient} from '../db/index.js'
import {MIGRATION_LOCK_KEY, withAdvisoryLock} from './lock.js'
import {applyBackend, assertActionable, type BackendPlan, planBackend} from './migrator.js'
import {type BackendName, MIGRATION_ORDER} from './sql-files.js'

export {detectVersion} from './detect.js'
export {MIGRATION_LOCK_KEY, MIGRATION_LOCK_NAME} from './lock.js'
export {applyBackend, type BackendPlan, type BackendState, type DriftItem, planBackend} from './migrator.js'
export {type BackendName, CURRENT_VERSIONS, MIGRATION_ORDER, type SqlStep} from './sql-files.js'

/**
 * Installs or upgrades the given backends' schemas to current on one database (idempotent; safe to
 * call concurrently: runs under the migration advisory lock). Order is cache → storage → permission
 * whatever the order given. Throws on a newer schema than we know or on drift, changing nothing.
 * Returns each backend's plan as it was before (steps = what ran).
 */
export async function ensureSchema(client: SqlClient, backends: BackendName[]): Promise<BackendPlan[]> {
  // Advisory locks are per session: on PGlite (one session) or one pool, calls from this process
  // must also queue behind each other.
  const previous = inProcess.get(client) ?? Promise.resolve()
  const run = previous.catch(() => {}).then(() => ensureSchemaLocked(client, backends))
  inProcess.set(client, run)
  return run
}

const inProcess = new WeakMap<SqlClient, Promise<unknown>>()

async function ensureSchemaLocked(client: SqlClient, backends: BackendName[]): Promise<BackendPlan[]> {
  const ordered = MIGRATION_ORDER.filter((b) => backends.includes(b))
  return client.withConnection((conn) =>
    withAdvisoryLock(conn, MIGRATION_LOCK_KEY, {target: client.displayUrl}, async () => {
      const plans: BackendPlan[] = []
      for (const backend of ordered) plans.push(await planBackend(conn, backend))
      assertActionable(plans, client.displayUrl)
      const applied: BackendPlan[] = []
      for (const plan of plans) {
        applied.push(plan.steps.length > 0 ? await applyBackend(conn, plan.backend, plan.installed) : plan)
      }
      return applied
    }),
  )
}

/**
 * `kinto start --migrate --serve-unreachable` whose database cannot be reached at start (compose,
 * a pod: the database starts beside the server). The server serves, and the migration it was
 * asked for runs as soon as the database answers: until it has, every statement of the server
 * fails at once (SqlClient.hold: 503 errno 201, as while the database is down), so that no request
 * runs on a schema that is not yet the one this version needs (an upgrade half-way would). The
 * migration itself runs on clients of its own (a transaction, under the migration lock: several
 * workers trying at once migrate once).
 */
import {setTimeout as sleep} from 'node:timers/promises'

import type {KintoConfig} from '../config/index.js'
import type {SqlClient} from '../db/index.js'
import {isKintoError} from '../errors.js'
import type {Logger} from '../logger.js'
import {migrate, type MigrateEvent} from '../schema/migrate.js'

/** First try 1 s after the server serves, then twice as long each time, up to 30 s. */
const FIRST_RETRY_MS = 1000
const MAX_RETRY_MS = 30_000

/** Whether a failure of `migrate` is the database not answering (worth waiting for). */
export function unreachableDatabase(error: unknown): boolean {
  return isKintoError(error) && error.code === 'KINTO_DB_UNREACHABLE'
}

/** The log lines of a migration run by the server (`--migrate`). */
export function migrationReport(logger: Logger): (event: MigrateEvent) => void {
  return (e) => {
    if (e.type === 'done') logger.info({backend: e.backend, from: e.from, to: e.to}, `Migrated the ${e.backend} schema of ${e.database} to version ${e.to}.`)
    if (e.type === 'lock-wait') logger.warn({holder: e.holder}, `Waiting for the migration lock on ${e.database} (held by ${e.holder}).`)
  }
}

export interface DeferredMigration {
  /** Resolves once the schemas are migrated and the server's statements run again (or once stopped). */
  readonly migrated: Promise<void>
  /** Stops trying (the server stops); waits for an attempt under way. */
  stop(): Promise<void>
}

/**
 * Holds the server's database clients and migrates in the background until it succeeds. A failure
 * other than an unreachable database (a role without the right, a schema newer than this
 * version) is logged, and tried again as well: the operator can mend it while the server runs.
 */
export function migrateWhenReachable(config: KintoConfig, clients: SqlClient[], logger: Logger, first: Error): DeferredMigration {
  const hold = (reason: string | undefined) => {
    for (const client of clients) client.hold?.(reason)
  }
  hold(`The database schemas are not migrated yet (kinto start --migrate): ${first.message}`)
  logger.warn(
    {},
    `Serving without migrating: ${first.message} Requests that need the database get 503 until it answers and its schemas are migrated (trying again in the background).`,
  )
  const stopping = new AbortController()
  const run = async (): Promise<void> => {
    let wait = FIRST_RETRY_MS
    let lastError = first.message
    for (;;) {
      try {
        await sleep(wait, undefined, {signal: stopping.signal})
      } catch {
        return
      }
      try {
        await migrate({settings: config.settings, dir: config.dir, mode: 'apply', report: migrationReport(logger)})
        hold(undefined)
        logger.info({}, 'The database answers and its schemas are migrated: serving it.')
        return
      } catch (error) {
        const message = (error as Error).message
        // Said once per distinct failure, not at every attempt.
        if (message !== lastError) {
          if (unreachableDatabase(error)) logger.warn({}, `Still not migrated: ${message}`)
          else logger.error({error: message}, `The migration failed; trying again: ${message}`)
          lastError = message
        }
        hold(`The database schemas are not migrated yet (kinto start --migrate): ${message}`)
      }
      wait = Math.min(wait * 2, MAX_RETRY_MS)
    }
  }
  const migrated = run()
  return {
    migrated,
    async stop() {
      stopping.abort()
      await migrated
    },
  }
}

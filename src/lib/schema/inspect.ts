/**
 * Small read-only facts about a database that `kinto db status` does not report and
 * `kinto check` needs: how many connections the server accepts, and whether a time zone is UTC.
 */
import type {Queryable} from '../db/index.js'

export interface ConnectionLimits {
  maxConnections: number
  /** Connections kept for superusers (and, from PostgreSQL 16, reserved_connections). */
  reservedConnections: number
}

export async function connectionLimits(q: Queryable): Promise<ConnectionLimits> {
  const res = await q.query<{max: string; reserved: string}>(
    `SELECT current_setting('max_connections') AS max,
            (current_setting('superuser_reserved_connections')::int
              + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int)::text AS reserved`,
  )
  return {maxConnections: Number(res.rows[0].max), reservedConnections: Number(res.rows[0].reserved)}
}

/** Zone names PostgreSQL treats as UTC (offset 0, no daylight saving). */
const UTC_ZONES = new Set([
  'UTC', 'ETC/UTC', 'UCT', 'ETC/UCT', 'ZULU', 'ETC/ZULU', 'GMT', 'ETC/GMT', 'GMT0', 'ETC/GMT0', 'GMT+0', 'GMT-0',
  'ETC/GMT+0', 'ETC/GMT-0', 'UNIVERSAL', 'ETC/UNIVERSAL', 'GREENWICH', 'ETC/GREENWICH',
])

export function isUtcTimezone(timezone: string): boolean {
  return UTC_ZONES.has(timezone.trim().toUpperCase())
}

/**
 * The three operating states of a deployment, as settings of [app:main], shared by the runtime
 * (which applies them) and the CLI (which edits them):
 *
 * - backoff (`kinto.backoff`, `kinto.backoff_percentage`): a hint to clients (upstream's `Backoff`
 *   response header);
 * - readonly (`kinto.readonly`): the database role or replica cannot write; writes are answered
 *   405 errno 115 as upstream;
 * - maintenance (`kinto.maintenance`, ours): writes are answered 503 errno 201 with Retry-After,
 *   reads are served.
 *
 * Each may carry a deadline, `kinto.<toggle>_expires = <ISO date>` (ours; upstream ignores keys it
 * does not know): once it passes, the runtime acts as if the toggle were off, by itself.
 */
import {asBool, asInt, type Settings} from '../config/settings.js'
import {KintoError} from '../errors.js'

export type ToggleName = 'backoff' | 'readonly' | 'maintenance'

export const TOGGLES: readonly ToggleName[] = ['backoff', 'readonly', 'maintenance']

/** Setting key (without `kinto.`) of each toggle's deadline. */
export const EXPIRY_KEYS: Record<ToggleName, string> = {
  backoff: 'backoff_expires',
  readonly: 'readonly_expires',
  maintenance: 'maintenance_expires',
}

/** The toggles as configured (deadlines in epoch ms; null: none). */
export interface ServiceState {
  backoff: number | null
  backoffPercentage: number | null
  backoffUntil: number | null
  readonly: boolean
  readonlyUntil: number | null
  maintenance: boolean
  maintenanceUntil: number | null
}

/** The toggles in force at one instant (deadlines applied). */
export interface ActiveState {
  backoff: number | null
  backoffPercentage: number | null
  readonly: boolean
  maintenance: boolean
}

/** Parses an expiry value (`2025-06-01T12:00:00Z`); throws KINTO_CONFIG_INVALID naming the key. */
export function parseDeadline(key: string, value: unknown): number | null {
  if (value === undefined || value === null || value === '') return null
  const text = String(value).trim()
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms)) {
    throw new KintoError(`Setting '${key}' = ${JSON.stringify(text)} is not a date; expected an ISO date such as 2030-01-31T12:00:00Z.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: `Fix or remove kinto.${key} (the toggle commands write it with --for).`,
    })
  }
  return ms
}

/** backoff_percentage as validated (a number from 0 to 100, fractions allowed), or null. */
function percentage(value: unknown): number | null {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value)
  return null
}

export function serviceStateFrom(settings: Settings): ServiceState {
  return {
    backoff: asInt(settings, 'backoff', null),
    backoffPercentage: percentage(settings.backoff_percentage),
    backoffUntil: parseDeadline(EXPIRY_KEYS.backoff, settings[EXPIRY_KEYS.backoff]),
    readonly: asBool(settings, 'readonly'),
    readonlyUntil: parseDeadline(EXPIRY_KEYS.readonly, settings[EXPIRY_KEYS.readonly]),
    maintenance: asBool(settings, 'maintenance'),
    maintenanceUntil: parseDeadline(EXPIRY_KEYS.maintenance, settings[EXPIRY_KEYS.maintenance]),
  }
}

const live = (until: number | null, now: number) => until === null || now < until

export function activeState(state: ServiceState, now: number = Date.now()): ActiveState {
  const backoffOn = state.backoff !== null && live(state.backoffUntil, now)
  return {
    backoff: backoffOn ? state.backoff : null,
    backoffPercentage: backoffOn ? state.backoffPercentage : null,
    readonly: state.readonly && live(state.readonlyUntil, now),
    maintenance: state.maintenance && live(state.maintenanceUntil, now),
  }
}

/** Whether a toggle is set in the settings (before deadlines). */
export function toggleSet(state: ServiceState, toggle: ToggleName): boolean {
  return toggle === 'backoff' ? state.backoff !== null : state[toggle]
}

export function toggleDeadline(state: ServiceState, toggle: ToggleName): number | null {
  return toggle === 'backoff' ? state.backoffUntil : toggle === 'readonly' ? state.readonlyUntil : state.maintenanceUntil
}

/** `2030-01-31T12:00:00Z` (seconds precision, UTC): what the toggle commands write. */
export function formatDeadline(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z')
}

/** What the memory and postgresql storage backends do alike with a caller's values: a given `last_modified`, a new object's id. */
import {randomUUID} from 'node:crypto'

/** A given last_modified as epoch milliseconds (a finite number, rounded, or a string of digits); null when none or unusable. */
export function toEpoch(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.round(value)
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value.trim())
  return null
}

/** The id create() gives an object: its own (as text), else a new one. */
export function newObjectId(obj: Record<string, unknown>, idGenerator?: () => string): string {
  return typeof obj.id === 'string' ? obj.id : obj.id !== undefined && obj.id !== null ? String(obj.id) : (idGenerator ?? randomUUID)()
}

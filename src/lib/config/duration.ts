/**
 * Durations as operators write them: `90s`, `30m`, `2h`, `7d`, `1w`, combined (`1h30m`), or a plain
 * number of seconds (`600`, as Kinto's *_seconds settings). Results are in seconds.
 */
import {KintoError} from '../errors.js'

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001,
  s: 1,
  sec: 1,
  m: 60,
  min: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
}

export const DURATION_FORMAT = 'a duration such as 90s, 30m, 2h, 1d or 1h30m (or a number of seconds)'

/** The longest duration a flag takes (100 years): beyond, dates cannot be written and values lose digits. */
export const MAX_DURATION_SECONDS = 100 * 365 * 86_400

/** Seconds in `text`, or null when it is not a duration. */
export function tryParseDuration(text: string | number): number | null {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : null
  const s = text.trim().toLowerCase()
  if (s === '') return null
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s)
  const part = /(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)/y
  let total = 0
  let pos = 0
  while (pos < s.length) {
    part.lastIndex = pos
    const m = part.exec(s)
    if (!m) return null
    total += Number(m[1]) * UNIT_SECONDS[m[2]]
    pos = part.lastIndex
    while (s[pos] === ' ') pos++
  }
  return total
}

/**
 * Seconds in `text`; throws KINTO_CONFIG_INVALID naming `what` (e.g. "--lock-timeout" or a setting)
 * when it is not a duration. Callers parsing a flag may rethrow it as a UsageError.
 */
export function parseDuration(text: string | number, what = 'duration'): number {
  const seconds = tryParseDuration(text)
  if (seconds === null) {
    throw new KintoError(`${what}: ${JSON.stringify(String(text))} is not a duration; expected ${DURATION_FORMAT}.`, {
      code: 'KINTO_CONFIG_INVALID',
    })
  }
  return seconds
}

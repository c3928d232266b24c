/**
 * Date settings (`eos`): what an operator writes for a day, read strictly. JavaScript's own parser
 * takes almost anything for a date (`0` is 2000-01-01, `1.5` January 5th 2001, `2030-02-30` March
 * 2nd), and an end-of-service date read wrong turns every request into a 410.
 */

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})(?=$|[T ]\d)/

/**
 * An ISO date (2030-01-31, midnight local time as upstream compares it; also with a time,
 * 2030-01-31T12:00:00Z) or a date with its month in words and a four-digit year (Jan 31 2030);
 * null for anything else, and for a day the calendar does not have.
 */
export function parseDateSetting(value: string): Date | null {
  const text = value.trim()
  const iso = ISO_DAY.exec(text)
  let date: Date
  if (iso) {
    const [year, month, day] = iso.slice(1).map(Number)
    const check = new Date(Date.UTC(year, month - 1, day))
    if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return null
    date = text.length === 10 ? new Date(year, month - 1, day) : new Date(text)
  } else {
    if (!/[a-z]{3}/i.test(text) || !/(?<!\d)\d{4}(?!\d)/.test(text)) return null
    date = new Date(text)
  }
  return Number.isNaN(date.getTime()) ? null : date
}

/** Input parsing shared by the toggle commands (values in, typed options out; no oclif here). */
import {parseDuration} from '../config/duration.js'
import {UsageError} from '../errors.js'

/** `--for` in seconds; a usage error (exit 2) when it is not a duration or is zero. */
export function parseForFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  let seconds: number
  try {
    seconds = parseDuration(text, '--for')
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  if (seconds <= 0) throw new UsageError('--for must be longer than 0 s.')
  return seconds
}

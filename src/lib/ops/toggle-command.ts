/** Input parsing shared by the toggle commands (values in, typed options out; no oclif here). */
import {parseDuration} from '../config/duration.js'
import {UsageError} from '../errors.js'
import {setToggle, type ToggleResult} from './toggle.js'

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

/** `kinto readonly|maintenance on|off [--for D]`: the flags of either command, checked, then applied. */
export async function switchToggle(options: {
  toggle: 'readonly' | 'maintenance'
  state: string
  iniPath: string
  for?: string
  reload: boolean
}): Promise<ToggleResult> {
  const on = options.state === 'on'
  if (!on && options.for !== undefined) throw new UsageError(`\`kinto ${options.toggle} off\` takes no --for.`)
  return setToggle({iniPath: options.iniPath, toggle: options.toggle, on, forSeconds: parseForFlag(options.for), reload: options.reload})
}

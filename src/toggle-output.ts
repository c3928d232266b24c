import type {Command} from '@oclif/core'

import {ExitCode} from './lib/errors.js'
import {renderToggle} from './lib/ops/render.js'
import type {ToggleResult} from './lib/ops/toggle.js'

/**
 * How `kinto backoff|readonly|maintenance` end: the report (unless --json), and exit 1 when a
 * running server did not take the change.
 */
export function reportToggle(command: Pick<Command, 'jsonEnabled' | 'log'>, result: ToggleResult): ToggleResult {
  if (!command.jsonEnabled()) for (const line of renderToggle(result)) command.log(line)
  if (!result.reload.ok && result.reload.requested) process.exitCode = ExitCode.FAILED
  return result
}

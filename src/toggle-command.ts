import {Command} from '@oclif/core'

import {BaseCommand} from './base-command.js'
import {onOffArg, toggleFlags} from './flags.js'
import {resolveIniPath} from './lib/config/index.js'
import {ExitCode, exitCodes, UsageError} from './lib/errors.js'
import {renderToggle} from './lib/ops/render.js'
import type {ToggleName} from './lib/state/toggles.js'
import {setToggle, type ToggleResult} from './lib/ops/toggle.js'

/**
 * `kinto backoff | readonly | maintenance`, one feature in one home: the shared flags and
 * argument (src/flags.ts), the report and its exit code here, the edit in src/lib/ops/toggle.ts.
 * `readonly` and `maintenance` are this class with their name; `backoff` adds its number.
 */
export abstract class ToggleCommand<T extends typeof Command> extends BaseCommand<T> {
  static enableJsonFlag = true
  static exitCodes = exitCodes({
    0: 'done, and every running server took the change',
    1: 'failed, or a running server did not take the change (the file is changed all the same; see the report)',
  })

  /** The report (unless --json), and exit 1 when a running server did not take the change. */
  protected report(result: ToggleResult): ToggleResult {
    if (!this.jsonEnabled()) for (const line of renderToggle(result)) this.log(line)
    if (!result.reload.ok && result.reload.requested) process.exitCode = ExitCode.FAILED
    return result
  }
}

/** `kinto readonly|maintenance on|off [--for D]`. */
export abstract class OnOffCommand extends ToggleCommand<typeof OnOffCommand> {
  static args = {state: onOffArg}
  static flags = toggleFlags
  protected abstract readonly toggle: Extract<ToggleName, 'readonly' | 'maintenance'>

  async run(): Promise<ToggleResult> {
    const {args, flags} = this
    const on = args.state === 'on'
    if (!on && flags.for !== undefined) throw new UsageError(`\`kinto ${this.toggle} off\` takes no --for.`)
    return this.report(await setToggle({iniPath: resolveIniPath(flags.ini), toggle: this.toggle, on, forSeconds: flags.for, reload: flags.reload}))
  }
}

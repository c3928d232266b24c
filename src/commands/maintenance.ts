import {BaseCommand} from '../base-command.js'
import {onOffArg, toggleFlags} from '../flags.js'
import {resolveIniPath} from '../lib/config/index.js'
import {switchToggle} from '../lib/ops/toggle-command.js'
import type {ToggleResult} from '../lib/ops/toggle.js'
import {reportToggle} from '../toggle-output.js'
import {exitCodes} from '../lib/errors.js'

export default class Maintenance extends BaseCommand<typeof Maintenance> {
  static summary = 'Pause writes for maintenance (503 with Retry-After), or resume them.'
  static description = `Sets kinto.maintenance in [app:main] (a kinto-ops setting; upstream Kinto ignores it) with a lossless edit, then makes every running server of the ini apply it within a second (SIGHUP) and prints which did. While it is on, writes are answered 503 (errno 201) with Retry-After (kinto.retry_after_seconds), reads are served, batches of reads too, hello shows "maintenance": true in its settings and the heartbeat answers 200 with "maintenance": true (its checks then only read).

--for makes it end by itself (kinto.maintenance_expires = <date>). \`kinto maintenance off\` removes both keys.`

  static exitCodes = exitCodes({0: 'done, and every running server took the change', 1: 'failed, or a running server did not take the change (the file is changed all the same)'})

  static examples = ['<%= config.bin %> maintenance on --for 15m', '<%= config.bin %> maintenance off']

  static enableJsonFlag = true

  static args = {state: onOffArg}

  static flags = toggleFlags

  async run(): Promise<ToggleResult> {
    const {args, flags} = this
    return reportToggle(this, await switchToggle({toggle: 'maintenance', state: args.state, iniPath: resolveIniPath(flags.ini), for: flags.for, reload: flags.reload}))
  }
}

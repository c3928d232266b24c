import {BaseCommand} from '../base-command.js'
import {onOffArg, toggleFlags} from '../flags.js'
import {resolveIniPath} from '../lib/config/index.js'
import {switchToggle} from '../lib/ops/toggle-command.js'
import type {ToggleResult} from '../lib/ops/toggle.js'
import {reportToggle} from '../toggle-output.js'
import {exitCodes} from '../lib/errors.js'

export default class Readonly extends BaseCommand<typeof Readonly> {
  static summary = 'Turn read-only mode on or off (kinto.readonly).'
  static description = `Sets kinto.readonly in [app:main] with a lossless edit, then makes every running server of the ini apply it within a second (SIGHUP) and prints which did. In read-only mode writes are answered 405 (errno 115) as upstream, hello shows "readonly": true, heartbeats only read, and lists are served without writing anything (so a role made by \`kinto db grant-readonly\` or a replica serves every read). The cache still writes.

Read-only says the database cannot be written (a replica, a read-only role); for a pause in writes on a writable database (an upgrade), \`kinto maintenance on\` answers writes 503 with Retry-After instead.

--for makes it end by itself (kinto.readonly_expires = <date>, which upstream ignores).`

  static exitCodes = exitCodes({0: 'done, and every running server took the change', 1: 'failed, or a running server did not take the change (the file is changed all the same)'})

  static examples = ['<%= config.bin %> readonly on', '<%= config.bin %> readonly off', '<%= config.bin %> readonly on --for 30m --json']

  static enableJsonFlag = true

  static args = {state: onOffArg}

  static flags = toggleFlags

  async run(): Promise<ToggleResult> {
    const {args, flags} = this
    return reportToggle(this, await switchToggle({toggle: 'readonly', state: args.state, iniPath: resolveIniPath(flags.ini), for: flags.for, reload: flags.reload}))
  }
}

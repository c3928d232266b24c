import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, iniFlag, nonEmpty} from '../flags.js'
import {resolveIniPath} from '../lib/config/index.js'
import {ExitCode, exitCodes} from '../lib/errors.js'
import {parseEndpoint} from '../lib/ops/endpoint.js'
import {renderStatus} from '../lib/ops/render.js'
import {status, type StatusResult} from '../lib/ops/status.js'

export default class Status extends BaseCommand<typeof Status> {
  static summary = 'Show backoff, readonly, maintenance and end of service, as configured and as served.'
  static description = `For the ini: each toggle (on, off, or expired at its date), end of service, who holds each embedded database, and every running server of that ini (from .kinto-run/): whether it runs the current file or an older one, what it applied, which changed settings wait for a restart.

With --url: what the server there says: heartbeat, the Backoff header, hello's readonly and maintenance, end-of-service Alert. The ini part is skipped when the ini does not exist.`

  static exitCodes = exitCodes({0: 'shown', 1: 'failed (an ini that cannot be read: its running servers are still shown), or --url is unreachable or its heartbeat is not 200'})

  static examples = ['<%= config.bin %> status', '<%= config.bin %> status --url https://kinto.example.com/v1/ --json']

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    url: Flags.string({summary: 'Also ask the server at this URL (http(s)://…/v1/ or unix:/path/to/socket).', env: 'KINTO_URL', helpValue: 'URL', parse: nonEmpty('--url')}),
    timeout: durationFlag({summary: 'How long to wait for each answer of --url (5, 90s, 2m…).', default: 5, above: 0}),
  }

  async run(): Promise<StatusResult> {
    const {flags} = this
    const endpoint = flags.url ? parseEndpoint(flags.url) : undefined
    const result = await status({iniPath: resolveIniPath(flags.ini), endpoint, timeoutMs: flags.timeout * 1000})
    if (!this.jsonEnabled()) for (const line of renderStatus(result)) this.log(line)
    if ((result.remote && !result.remote.healthy) || result.configError) process.exitCode = ExitCode.FAILED
    return result
  }
}

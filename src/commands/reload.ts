import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {ExitCode, exitCodes} from '../lib/errors.js'
import {reloadServers, restartServers, type ReloadResult} from '../lib/ops/reload.js'
import {renderReload} from '../lib/ops/render.js'

export default class Reload extends BaseCommand<typeof Reload> {
  static summary = 'Make the running servers of an ini take it as it now is.'
  static description = `Sends SIGHUP to every running \`kinto start\` of the ini that does not run the current file (found in .kinto-run/ beside it) and waits until each reports it: settings that can change live are applied without refusing a connection; those that need a restart (backend URLs, host, port, plugins…) are listed. The ini is validated first: a file that does not load is not sent.

--restart restarts the workers of \`kinto start --workers N\` one at a time (SIGUSR2): a new worker listens before an old one stops, so new code (after an upgrade) and restart-only settings are taken without downtime. A single-process server cannot restart itself; restart it with its process manager.`

  static exitCodes = exitCodes({0: 'every server took it (or none runs)', 1: 'a server rejected the file, could not be signalled or did not answer in time'})

  static examples = ['<%= config.bin %> reload', '<%= config.bin %> reload --restart --ini /etc/kinto/kinto.ini']

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    restart: Flags.boolean({summary: 'Restart the workers one at a time instead (new code, every setting).', default: false}),
    timeout: durationFlag({summary: 'How long to wait for the servers (default 3s; 2m with --restart).', above: 0}),
  }

  async run(): Promise<ReloadResult> {
    const {flags} = this
    const config = loadConfig(resolveIniPath(flags.ini))
    const timeoutMs = flags.timeout === undefined ? undefined : flags.timeout * 1000
    const result = flags.restart ? await restartServers(config.path, {timeoutMs}) : await reloadServers(config.path, {timeoutMs})
    if (!this.jsonEnabled()) for (const line of renderReload(result, flags.restart ? 'restart' : 'reload')) this.log(line)
    if (!result.ok) process.exitCode = ExitCode.FAILED
    return result
  }
}

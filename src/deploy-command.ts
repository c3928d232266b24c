import {Command} from '@oclif/core'

import {BaseCommand} from './base-command.js'
import {describeSettingSource, loadConfig, resolveIniPath} from './lib/config/index.js'
import type {DeployResult} from './lib/deploy/index.js'
import type {DeployConfig} from './lib/deploy/options.js'
import {reportDeployResult} from './lib/deploy/report.js'
import {exitCodes} from './lib/errors.js'

/**
 * `kinto deploy nginx | uwsgi | apache`: read the ini, generate (print, write or --check), report.
 * Each command says only what it generates (`deploy()`); the run is this one.
 */
export abstract class DeployCommand<T extends typeof Command> extends BaseCommand<T> {
  static enableJsonFlag = true
  static exitCodes = exitCodes({
    0: 'done (or up to date)',
    1: 'failed (bad ini value, cannot write)',
    2: 'usage error (bad flag, file exists without --force)',
    6: '--check found a difference',
  })

  /** The snippet of this command from the ini and the flags (parsed: this.flags). */
  protected abstract deploy(config: DeployConfig): Promise<DeployResult>

  async run(): Promise<DeployResult> {
    const config = loadConfig(resolveIniPath((this.flags as {ini: string}).ini))
    const result = await this.deploy({...config, describeSetting: (key) => describeSettingSource(config, key)})
    const named = ((this.flags as {'server-name'?: string[]})['server-name'] ?? []).length > 0 || Boolean(config.settings.http_host)
    if (!named && this.id === 'deploy:nginx' && !(this.flags as {'app-wsgi'?: boolean})['app-wsgi']) {
      this.logToStderr('Warning: no server name (--server-name or kinto.http_host): the block says `server_name _;` and answers any Host.')
    }
    const report = reportDeployResult(result)
    if (!this.jsonEnabled()) {
      for (const warning of result.warnings ?? []) this.logToStderr(`Warning: ${warning}`)
      if (report.stdout) process.stdout.write(report.stdout)
      if (report.stderr) this.logToStderr(report.stderr)
    }
    process.exitCode = report.exitCode
    return result
  }
}

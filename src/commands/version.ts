import {BaseCommand} from '../base-command.js'
import {exitCodes} from '../lib/errors.js'
import {packageVersion} from '../lib/version.js'

export default class Version extends BaseCommand<typeof Version> {
  static summary = 'Print the version of kinto-ops.'
  static exitCodes = exitCodes({0: 'printed', 1: 'failed'})
  static enableJsonFlag = true

  async run(): Promise<{version: string}> {
    const version = packageVersion()
    if (!this.jsonEnabled()) this.log(version)
    return {version}
  }
}

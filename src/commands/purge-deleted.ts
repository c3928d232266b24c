import {Args} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'
import {purgeArguments, purgeDeleted, type PurgeDeletedResult} from '../lib/maintenance/index.js'
import {viaServerWhenHeld} from '../lib/ops/control.js'

export default class PurgeDeleted extends BaseCommand<typeof PurgeDeleted> {
  static summary = 'Keep only the newest tombstones of each list (as upstream kinto purge-deleted).'
  static description = `For each resource named (record, collection, group, bucket…), deletes the tombstones of every list beyond the newest MAX-RETAINED (0 deletes them all). Clients syncing with ?_since older than the oldest kept tombstone may miss deletions: keep enough for your slowest client.

A pglite: folder a running server holds is purged by that server, through its control socket (so cron can run this against a live server). Refused when kinto.readonly is true. A memory storage lives inside each server process: nothing is done from here.`

  static exitCodes = exitCodes({0: 'done (or nothing to do on a memory storage)', 1: 'failed (readonly, database error)', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)'})

  static examples = ['<%= config.bin %> purge-deleted record 1000', '<%= config.bin %> purge-deleted record collection group bucket 100 --json']

  static enableJsonFlag = true
  static strict = false

  static args = {
    resources: Args.string({description: 'Resource names, then the number of tombstones to keep per list.', required: true}),
  }

  static flags = {ini: iniFlag}

  async run(): Promise<PurgeDeletedResult> {
    // Every positional value (strict = false): resource names, then max-retained.
    const {resources, maxRetained} = purgeArguments(this.positional)
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const result = await viaServerWhenHeld(config, 'purge-deleted', {resources, maxRetained}, () =>
      purgeDeleted({settings: config.settings, dir: config.dir, iniPath: config.path, resources, maxRetained}),
    )
    if (!this.jsonEnabled()) {
      if (result.note) this.log(`Nothing purged: ${result.note}.`)
      else {
        this.log(`Keep only ${result.maxRetained} tombstones per parent and resource.`)
        this.log(`${result.total} tombstone(s) deleted${resources.length > 1 ? ` (${resources.map((r) => `${r}: ${result.deleted[r]}`).join(', ')})` : ''}.`)
      }
    }
    return result
  }
}

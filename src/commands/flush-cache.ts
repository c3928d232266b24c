import {BaseCommand} from '../base-command.js'
import {iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {flushCache, type FlushCacheResult} from '../lib/maintenance/index.js'
import {exitCodes} from '../lib/errors.js'
import {viaServerWhenHeld} from '../lib/ops/control.js'

export default class FlushCache extends BaseCommand<typeof FlushCache> {
  static summary = 'Empty the cache backend (as upstream kinto flush-cache).'
  static description = `Deletes the entries of the cache of the ini: PostgreSQL, Redis or memcached, only the keys under kinto.cache_prefix when it is set (others sharing the server keep theirs). A pglite: folder a running server holds is flushed by that server, through its control socket. A memory cache lives inside each server process and cannot be reached from here: the command says so and changes nothing.`

  static exitCodes = exitCodes({0: 'done (or nothing to do)', 1: 'failed', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)'})

  static examples = ['<%= config.bin %> flush-cache --ini /etc/kinto/kinto.ini']

  static enableJsonFlag = true

  static flags = {ini: iniFlag}

  async run(): Promise<FlushCacheResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const result = await viaServerWhenHeld(config, 'flush-cache', {}, () => flushCache({settings: config.settings, dir: config.dir, iniPath: config.path}))
    const under = result.prefix ? `, keys under ${JSON.stringify(result.prefix)}` : ''
    if (!this.jsonEnabled()) this.log(result.flushed ? `Cache has been cleared (${result.database}${under}).` : `Nothing flushed: ${result.note}.`)
    return result
  }
}

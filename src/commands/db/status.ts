import {BaseCommand} from '../../base-command.js'
import {iniFlag} from '../../flags.js'
import {loadConfig, resolveIniPath} from '../../lib/config/index.js'
import {describeDrift} from '../../lib/schema/migrator.js'
import {databaseStatusReport, type StatusResult} from '../../lib/schema/status.js'
import {exitCodes} from '../../lib/errors.js'
import {viaServerWhenHeld} from '../../lib/ops/control.js'

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static summary = 'Show the database and schema state of each PostgreSQL backend.'
  static description = `For each configured PostgreSQL backend: the server version, the database encoding and timezone, the installed and current schema versions, the pending steps, any drift (applied steps whose SQL differs from the shipped one), and whether the configured user can write (a standby or a read-only role cannot). Changes nothing.`

  static exitCodes = exitCodes({0: 'shown', 1: 'failed (e.g. unreachable database)', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)'})

  static examples = ['<%= config.bin %> db status', '<%= config.bin %> db status --ini /etc/kinto/kinto.ini --json']

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
  }

  async run(): Promise<StatusResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const result = await viaServerWhenHeld(config, 'db-status', {}, () => databaseStatusReport({settings: config.settings, dir: config.dir}))
    if (this.jsonEnabled()) return result
    for (const b of result.backends) {
      if (b.skipped) {
        this.log(`${b.backend}: ${b.skipped}`)
        continue
      }
      const db = b.database!
      const versions =
        b.backend === 'cache'
          ? b.installed === null
            ? 'not installed'
            : 'installed'
          : `schema ${b.installed ?? 'not installed'} (current ${b.current})`
      const pending = b.pending!.length > 0 ? `, ${b.pending!.length} step(s) pending: ${b.pending!.join(', ')}` : ', up to date'
      this.log(`${b.backend}: ${versions}${b.state === 'newer' ? ', NEWER than this release' : pending}`)
      this.log(
        `  ${db.database} (${db.engine} ${db.serverVersion}), encoding ${db.encoding}, timezone ${db.timezone}, user ${db.user}` +
          `, ${b.canWrite === null ? 'tables not installed' : b.canWrite ? 'can write' : 'cannot write'}` +
          `${db.readOnly ? ' (read-only server or session)' : ''}${db.canCreateTables ? '' : ', cannot create tables'}`,
      )
      for (const d of b.drift ?? []) this.log(`  drift: ${describeDrift(d)}`)
      for (const n of b.notes ?? []) this.log(`  note: ${n}`)
    }
    return result
  }
}

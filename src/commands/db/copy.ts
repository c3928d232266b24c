import {Flags} from '@oclif/core'

import {withProgress} from '../../backup-output.js'
import {BaseCommand} from '../../base-command.js'
import {folderLockTimeoutFlag, forceFlag, iniFlag, nonEmpty} from '../../flags.js'
import {copy, type CopyResult, countsText} from '../../lib/backup/index.js'
import {loadConfig, resolveIniPath} from '../../lib/config/index.js'
import {exitCodes} from '../../lib/errors.js'
import {shellArg} from '../../lib/text/shell.js'

export default class DbCopy extends BaseCommand<typeof DbCopy> {
  static summary = 'Copy the storage and permission data to another database (e.g. embedded to PostgreSQL) in one step.'
  static description = `A backup streamed straight into a restore, with the same checks: one consistent snapshot of the source, the target migrated, then filled in one transaction per database, counts verified before COMMIT; all or nothing. --to is a database URL (postgresql://user:password@host/db, or pglite:<folder>) or another ini whose storage and permission backends are the target. With a URL, prints the ini lines that switch to it (password masked).

The target must be empty unless --force. Stop the server of an embedded source first (PGlite lets one process open a folder).`

  static exitCodes = exitCodes({0: 'copied', 1: 'failed (target left as it was)', 2: 'usage error, or the target holds data and --force was not given', 4: 'an embedded database is open in a running server'})

  static examples = [
    '<%= config.bin %> db copy --to postgresql://kinto:secret@db.internal/kinto',
    '<%= config.bin %> db copy --ini config/kinto.ini --to /etc/kinto/kinto.ini --json',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    to: Flags.string({
      summary: 'Target: a database URL (postgresql://…, pglite:<folder>) or the path of an ini.',
      env: 'KINTO_COPY_TO',
      required: true,
      helpValue: 'URL|INI',
      parse: nonEmpty('--to', 'Give --to a PostgreSQL URL (postgresql://user:password@host/dbname), pglite:<folder>, or the path of an existing ini.'),
    }),
    force: {...forceFlag, summary: 'Replace what the target database holds (in the same transaction).'},
    'lock-timeout': folderLockTimeoutFlag('KINTO_COPY_LOCK_TIMEOUT'),
  }

  async run(): Promise<CopyResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const result = await withProgress(this.jsonEnabled(), 'copying', (signal, onProgress) =>
      copy({settings: config.settings, dir: config.dir, to: this.flags.to, cwd: process.cwd(), force: this.flags.force, lockTimeoutMs: this.flags['lock-timeout'] * 1000, signal, onProgress}),
    )
    if (!this.jsonEnabled()) {
      for (const step of result.migrated) this.log(`Migrated the target: ${step}.`)
      this.log(`Copied ${countsText(result.counts)}`)
      this.log(`  from ${[...new Set(Object.values(result.from))].join(' and ')} to ${[...new Set(Object.values(result.to))].join(' and ')}; counts verified.`)
      if (result.toIni) this.log(`${result.toIni} already uses the target: serve it with kinto start --ini ${shellArg(result.toIni)}.`)
      else {
        this.log(`To serve it, set these lines in [app:main] of the ini${result.iniLines.some((l) => l.includes(':***@') || l.includes('password=***')) ? ' (with the real password)' : ''}, then kinto start:`)
        for (const line of result.iniLines) this.log(`  ${line}`)
      }
    }
    return result
  }
}

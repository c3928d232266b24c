import path from 'node:path'

import {Args} from '@oclif/core'

import {withProgress} from '../backup-output.js'
import {BaseCommand} from '../base-command.js'
import {folderLockTimeoutFlag, forceFlag, iniFlag, nonEmpty} from '../flags.js'
import {countsText, restore, type RestoreResult} from '../lib/backup/index.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'

export default class Restore extends BaseCommand<typeof Restore> {
  static summary = 'Restore a backup file into the database of the ini, all or nothing.'
  static description = `Installs or upgrades the target's schema (the normal migrations), then copies every row of FILE in one transaction per database: the checksum and the counts are verified before COMMIT, and any failure (a truncated or damaged file, Ctrl-C) rolls back, leaving the target as it was. Timestamps, ETags, tombstones, permissions, accounts and history come back exactly.

The target must be empty; --force replaces everything it holds, in the same transaction. A file from a newer schema than this release knows is refused. Servers may keep running on a PostgreSQL target (their writes wait for the restore); an embedded folder held by a running server is refused. Restart the servers afterwards (their caches hold the old data).

FILE '-' reads the backup from standard input (a pipe: ssh host cat f | kinto restore - --ini …), once, with the same checks before COMMIT. A target without a schema gets it installed first (a damaged input then leaves it with the schema and no rows); a target whose schema must be upgraded is refused: run kinto migrate first.`

  static exitCodes = exitCodes({0: 'restored', 1: 'failed (nothing restored)', 2: 'usage error, or the target holds data and --force was not given, or (restore -) its schema must be upgraded first or stdin is a terminal', 4: 'the embedded database is open in a running server, or a writer held the tables too long'})

  static examples = [
    '<%= config.bin %> restore kinto-backup-20261204T230552Z.ndjson.gz',
    '<%= config.bin %> restore backup.ndjson.gz --ini /etc/kinto/kinto.ini --force --json',
    "ssh backup-host 'cat kinto.ndjson.gz' | <%= config.bin %> restore - --ini /etc/kinto/kinto.ini",
  ]

  static enableJsonFlag = true

  static args = {
    file: Args.string({description: "Backup file written by kinto backup, or '-' for standard input.", required: true, parse: nonEmpty('FILE', "Give the path of a file written by `kinto backup`, or '-' for standard input.")}),
  }

  static flags = {
    ini: iniFlag,
    force: {...forceFlag, summary: 'Replace what the target database holds (in the same transaction).'},
    'lock-timeout': folderLockTimeoutFlag('KINTO_RESTORE_LOCK_TIMEOUT'),
  }

  async run(): Promise<RestoreResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const result = await withProgress(this.jsonEnabled(), 'restoring', (signal, onProgress) =>
      restore({
        settings: config.settings,
        dir: config.dir,
        file: path.resolve(this.args.file),
        ...(this.args.file.trim() === '-' ? {stream: process.stdin} : {}),
        force: this.flags.force,
        lockTimeoutMs: this.flags['lock-timeout'] * 1000,
        signal,
        onProgress,
      }),
    )
    if (!this.jsonEnabled()) {
      for (const step of result.migrated) this.log(`Migrated the target: ${step}.`)
      for (const n of result.notes) this.log(`Note: ${n}.`)
      const replaced = Object.values(result.replaced).some((n) => n > 0) ? ' (replacing what it held)' : ''
      this.log(`Restored ${result.file} (snapshot at ${result.createdAt}) into ${[...new Set(Object.values(result.target))].join(' and ')}${replaced}.`)
      this.log(`  ${countsText(result.counts)}; counts and checksum verified.`)
      this.log('Restart the servers of this database so that they drop their caches.')
    }
    return result
  }
}

import path from 'node:path'

import {Flags} from '@oclif/core'

import {withProgress} from '../backup-output.js'
import {BaseCommand} from '../base-command.js'
import {filePath, folderLockTimeoutFlag, forceFlag, iniFlag} from '../flags.js'
import {backup, type BackupResult, countsText, defaultBackupName} from '../lib/backup/index.js'
import {assertFilePath, loadConfig, resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'
import {shellArg} from '../lib/text/shell.js'

export default class Backup extends BaseCommand<typeof Backup> {
  static summary = 'Write a consistent, compressed backup of the storage and permission data to one file.'
  static description = `Reads every object (buckets, collections, groups, records, accounts, history entries, tombstones), list timestamp, permission and principal in one consistent snapshot while servers keep serving and writing: on PostgreSQL one REPEATABLE READ, READ ONLY transaction (a read-only role is enough). The cache is left out. The file is gzip-compressed newline-delimited JSON with a header (format version, schema versions, kinto-ops version, time) and a trailer (per-table counts, sha256); see docs/backup.md. It is written as FILE.partial and renamed when complete, with mode 0600 (it holds account password hashes). Memory stays flat whatever the size; a terminal shows progress.

On success .kinto-backup beside the ini records the time (kinto check reminds when it is old). An embedded folder a running server holds is read by that server, through its control socket (the same snapshot, streamed here), so it needs no downtime.`

  static exitCodes = exitCodes({0: 'written', 1: 'failed (nothing left under FILE)', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)'})

  static examples = ['<%= config.bin %> backup', '<%= config.bin %> backup -o /var/backups/kinto.ndjson.gz --json']

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    output: Flags.string({
      char: 'o',
      summary: 'File to write. Default: kinto-backup-<UTC time>.ndjson.gz in the current folder.',
      env: 'KINTO_BACKUP_FILE',
      helpValue: 'FILE',
      parse: filePath('--output', 'Give the path of the file to write (it is written beside as FILE.partial and renamed when complete, so it cannot be a pipe)'),
    }),
    force: {...forceFlag, summary: 'Replace FILE when it exists.'},
    'lock-timeout': folderLockTimeoutFlag('KINTO_BACKUP_LOCK_TIMEOUT'),
  }

  async run(): Promise<BackupResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    if (this.flags.output !== undefined) assertFilePath(this.flags.output, defaultBackupName(new Date()))
    const file = path.resolve(this.flags.output ?? defaultBackupName(new Date()))
    const result = await withProgress(this.jsonEnabled(), 'backing up', (signal, onProgress) =>
      backup({
        settings: config.settings,
        dir: config.dir,
        iniPath: config.path,
        file,
        force: this.flags.force,
        lockTimeoutMs: this.flags['lock-timeout'] * 1000,
        signal,
        onProgress: onProgress && ((e) => onProgress(e.table, e.done, e.total)),
      }),
    )
    if (!this.jsonEnabled()) {
      this.log(`Backup written to ${result.file} (${(result.bytes / 1048576).toFixed(1)} MB, snapshot at ${result.createdAt}).`)
      this.log(`  ${countsText(result.counts)}; schema storage ${result.schema.storage}, permission ${result.schema.permission}.`)
      this.log(`  sha256 ${result.sha256}`)
      this.log(`Restore it with: kinto restore ${shellArg(result.file)} --ini <target ini>`)
    }
    if (result.markerError) this.logToStderr(`Warning: ${result.markerError}.`)
    return result
  }
}

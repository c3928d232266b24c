import path from 'node:path'

import {Flags} from '@oclif/core'

import {withProgress} from '../backup-output.js'
import {BaseCommand} from '../base-command.js'
import {folderLockTimeoutFlag, forceFlag, iniFlag, nonEmpty} from '../flags.js'
import {backup, type BackupResult, countsText, defaultBackupName} from '../lib/backup/index.js'
import {assertFilePath, loadConfig, resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'
import {shellArg} from '../lib/text/shell.js'

export default class Backup extends BaseCommand<typeof Backup> {
  static summary = 'Write a consistent, compressed backup of the storage and permission data to one file.'
  static description = `Reads every object (buckets, collections, groups, records, accounts, history entries, tombstones), list timestamp, permission and principal in one consistent snapshot while servers keep serving and writing: on PostgreSQL one REPEATABLE READ, READ ONLY transaction (a read-only role is enough). The cache is left out. The file is gzip-compressed newline-delimited JSON with a header (format version, schema versions, kinto-ops version, time) and a trailer (per-table counts, sha256); see docs/backup.md. It is written as FILE.partial and renamed when complete, with mode 0600 (it holds account password hashes). Memory stays flat whatever the size; a terminal shows progress.

-o - writes the same bytes to standard output as they are produced, for a pipe (kinto backup -o - | ssh host 'cat > f'); a slow reader slows the snapshot. Messages stay on stderr, and --json writes its result object there, as one line. Standard output must not be a terminal. A failure midway exits 1: what the reader got has no trailer, and kinto restore refuses it.

On success .kinto-backup beside the ini records the time (kinto check reminds when it is old); for -o -, with the file "(standard output)". An embedded folder a running server holds is read by that server, through its control socket (the same snapshot, streamed here), so it needs no downtime.`

  static exitCodes = exitCodes({0: 'written', 1: 'failed (nothing left under FILE; with -o -, the stream has no trailer)', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)'})

  static examples = [
    '<%= config.bin %> backup',
    '<%= config.bin %> backup -o /var/backups/kinto.ndjson.gz --json',
    "<%= config.bin %> backup -o - | ssh backup-host 'cat > kinto.ndjson.gz'",
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    output: Flags.string({
      char: 'o',
      summary: "File to write, or '-' for standard output (a pipe). Default: kinto-backup-<UTC time>.ndjson.gz in the current folder.",
      env: 'KINTO_BACKUP_FILE',
      helpValue: 'FILE',
      parse: nonEmpty('--output', "Give the path of the file to write, or '-' for standard output."),
    }),
    force: {...forceFlag, summary: 'Replace FILE when it exists.'},
    'lock-timeout': folderLockTimeoutFlag('KINTO_BACKUP_LOCK_TIMEOUT'),
  }

  /** `-o -`: standard output carries the backup, so the --json result (or error) goes to stderr, as one line. */
  private toStdout(): boolean {
    return this.flags?.output?.trim() === '-'
  }

  protected logJson(json: unknown): void {
    if (this.toStdout()) process.stderr.write(`${JSON.stringify(json)}\n`)
    else super.logJson(json)
  }

  async run(): Promise<BackupResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const toStdout = this.toStdout()
    if (this.flags.output !== undefined && !toStdout) assertFilePath(this.flags.output, defaultBackupName(new Date()))
    const file = toStdout ? '-' : path.resolve(this.flags.output ?? defaultBackupName(new Date()))
    const result = await withProgress(this.jsonEnabled(), 'backing up', (signal, onProgress) =>
      backup({
        settings: config.settings,
        dir: config.dir,
        iniPath: config.path,
        file,
        ...(toStdout ? {stream: process.stdout} : {}),
        force: this.flags.force,
        lockTimeoutMs: this.flags['lock-timeout'] * 1000,
        signal,
        onProgress: onProgress && ((e) => onProgress(e.table, e.done, e.total)),
      }),
    )
    if (!this.jsonEnabled()) {
      const say = (line: string) => (toStdout ? this.logToStderr(line) : this.log(line))
      say(`Backup written to ${result.file} (${(result.bytes / 1048576).toFixed(1)} MB, snapshot at ${result.createdAt}).`)
      say(`  ${countsText(result.counts)}; schema storage ${result.schema.storage}, permission ${result.schema.permission}.`)
      say(`  sha256 ${result.sha256}`)
      say(toStdout ? 'Restore it with: ... | kinto restore - --ini <target ini>' : `Restore it with: kinto restore ${shellArg(result.file)} --ini <target ini>`)
    }
    if (result.markerError) this.logToStderr(`Warning: ${result.markerError}.`)
    return result
  }
}

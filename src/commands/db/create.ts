import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {adminUrlFlag, iniFlag} from '../../flags.js'
import {loadConfig, resolveIniPath} from '../../lib/config/index.js'
import {createDatabase, type CreateDatabaseResult} from '../../lib/schema/database.js'
import {exitCodes} from '../../lib/errors.js'

export default class DbCreate extends BaseCommand<typeof DbCreate> {
  static summary = 'Create the storage database (UTF8, timezone UTC); idempotent.'
  static description = `Runs CREATE DATABASE … WITH ENCODING UTF8 (from template0) and ALTER DATABASE … SET TIMEZONE TO UTC, as Kinto's storage needs. On an existing database it checks the encoding (not UTF8 fails) and sets the timezone. The database is the one of kinto.storage_url unless --database names another.

The connection: --admin-url when given (a role allowed to create databases), else the storage URL's server and credentials on the maintenance database postgres. When the storage URL's user differs from the admin, it becomes the database's owner, so that kinto migrate can create the tables; a user that does not exist yet is created first (LOGIN, with the URL's password, sent as a SCRAM verifier), as the production guide's createuser step. Nothing to do for the embedded engine (pglite:).`

  static exitCodes = exitCodes({0: 'done', 1: 'failed (unreachable, permission denied, wrong encoding, owner role missing and not creatable)'})

  static examples = [
    '<%= config.bin %> db create',
    '<%= config.bin %> db create --admin-url postgresql://postgres@db.internal/postgres',
    '<%= config.bin %> db create --database kinto_staging --json',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    database: Flags.string({
      summary: 'Database to create (default: the one in kinto.storage_url).',
      env: 'KINTO_DB_NAME',
      helpValue: 'NAME',
    }),
    'admin-url': adminUrlFlag,
  }

  async run(): Promise<CreateDatabaseResult> {
    const config = loadConfig(resolveIniPath(this.flags.ini))
    const json = this.jsonEnabled()
    const result = await createDatabase({
      settings: config.settings,
      dir: config.dir,
      database: this.flags.database,
      adminUrl: this.flags['admin-url'],
      report: json ? undefined : (line) => this.logToStderr(line),
    })
    if (!json) {
      this.log(
        `${result.database} on ${result.server}: ${result.created ? 'created' : result.ownerChanged ? 'exists (owner fixed)' : 'exists'}, encoding ${result.encoding}, timezone UTC${result.owner ? `, owner ${result.owner}${result.roleCreated ? ' (role created)' : ''}` : ''}.`,
      )
    }
    return result
  }
}

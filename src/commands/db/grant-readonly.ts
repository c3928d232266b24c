import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {adminUrlFlag, dryRunFlag, iniFlag} from '../../flags.js'
import {loadConfig, resolveIniPath} from '../../lib/config/index.js'
import {ExitCode, exitCodes, UsageError} from '../../lib/errors.js'
import {readStdinSecret} from '../../lib/interactive.js'
import {grantReadonly, type GrantReadonlyResult} from '../../lib/schema/roles.js'

export default class DbGrantReadonly extends BaseCommand<typeof DbGrantReadonly> {
  static summary = 'Create a read-only login role for read-only Kinto instances, with its grants.'
  static description = `Creates the role when missing (LOGIN; the password is read from stdin with --password-stdin, or generated and printed once; never taken from the command line), then: CONNECT on the database, USAGE on schema public, SELECT on every table, default privileges so that tables the migrating role (the storage URL's user) creates later are readable too, no CREATE on schema public, no INSERT/UPDATE/DELETE on the storage and permission tables, and, when the cache backend is PostgreSQL, INSERT, UPDATE and DELETE on the cache table. Idempotent.

The connection: --admin-url (a role allowed to create roles and grant on the tables), pointed at the storage database; else the storage URL itself. The password is sent as a SCRAM-SHA-256 verifier, so it does not reach the server's logs.

--dry-run prints the SQL (password masked); --check verifies the grants as they stand and lists what is missing.`

  static exitCodes = exitCodes({0: 'done (or all grants hold)', 1: 'failed', 6: '--check found something missing'})

  static examples = [
    '<%= config.bin %> db grant-readonly --role kinto_ro',
    'printf %s "$RO_PASSWORD" | <%= config.bin %> db grant-readonly --role kinto_ro --password-stdin --admin-url postgresql://postgres@db/kinto',
    '<%= config.bin %> db grant-readonly --role kinto_ro --check',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    role: Flags.string({summary: 'Name of the read-only role.', required: true, env: 'KINTO_RO_ROLE', helpValue: 'NAME'}),
    'password-stdin': Flags.boolean({
      summary: 'Read the role password from stdin (else one is generated when the role is created).',
      default: false,
    }),
    'admin-url': adminUrlFlag,
    'dry-run': {...dryRunFlag, summary: 'Print the SQL (password masked); change nothing.', exclusive: ['check']},
    check: Flags.boolean({
      summary: 'Verify the grants as they stand; exit 6 listing what is missing.',
      default: false,
      exclusive: ['dry-run'],
    }),
  }

  async run(): Promise<GrantReadonlyResult> {
    const {flags} = this
    const json = this.jsonEnabled()
    const mode = flags.check ? 'check' : flags['dry-run'] ? 'dry-run' : 'apply'
    if (flags['password-stdin'] && mode === 'check') throw new UsageError('--password-stdin makes no sense with --check.')
    const password = flags['password-stdin'] ? await readStdin() : undefined
    const config = loadConfig(resolveIniPath(flags.ini))
    const result = await grantReadonly({
      settings: config.settings,
      dir: config.dir,
      role: flags.role,
      password,
      adminUrl: flags['admin-url'],
      mode,
      report: json ? undefined : (line) => this.logToStderr(line),
    })
    if (mode === 'check' && result.missing.length > 0) process.exitCode = ExitCode.CHECK_FAILED
    if (json) return result
    for (const w of result.warnings) this.logToStderr(`Warning: ${w}`)
    if (mode === 'dry-run') {
      for (const s of result.statements) this.log(`${s};`)
      this.log('-- Dry run: nothing was changed.')
    } else if (mode === 'check') {
      for (const c of result.checks) this.log(`${c.ok ? 'ok     ' : 'MISSING'} ${c.what}`)
      this.log(result.missing.length > 0 ? `${result.missing.length} requirement(s) missing for ${result.role}.` : `All read-only grants hold for ${result.role}.`)
    } else {
      this.log(`Role ${result.role}: ${result.roleCreated ? 'created' : 'exists'}; read-only grants in place on ${result.database}.`)
      if (result.generatedPassword) this.log(`Generated password for ${result.role} (shown once, store it now): ${result.generatedPassword}`)
    }
    return result
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new UsageError('--password-stdin reads the password from a pipe, and stdin is a terminal.', {
      hint: 'printf %s "$PASSWORD" | kinto db grant-readonly --role NAME --password-stdin',
    })
  }
  return readStdinSecret(process.stdin, {flag: '--password-stdin', firstLine: false})
}

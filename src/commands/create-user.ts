import {randomBytes} from 'node:crypto'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {iniFlag} from '../flags.js'
import {ACCOUNT_ID_PATTERN, passwordLengthError} from '../lib/accounts/index.js'
import {checkCreateUser, createUser, type CreateUserResult} from '../lib/accounts/create-user.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {ExitCode, exitCodes, KintoError, UsageError} from '../lib/errors.js'
import {askInput, askPassword, mayAsk, readStdinSecret} from '../lib/interactive.js'
import {viaServerWhenHeld} from '../lib/ops/control.js'

export default class CreateUser extends BaseCommand<typeof CreateUser> {
  static summary = 'Create an account (kinto.plugins.accounts) in the configured storage, or replace its password.'
  static description = `Writes the account straight into the storage the ini configures, as upstream's kinto create-user does: {id, password} with a bcrypt hash ($2b$, cost 12, readable by upstream Kinto), parent id = the username, and the write permission on /accounts/<name> for account:<name>. An existing account of that name gets the new password. With account:<name> in kinto.account_write_principals (kinto init writes account:admin) the account is an administrator.

After writing, the account's entry in the login cache is cleared; a shared cache (Redis, memcached, PostgreSQL) that cannot be reached is a warning, because a server that verified the old password within kinto.account_cache_ttl_seconds may accept it until then.

The password is never taken on the command line: pipe it with --password-stdin (the first line of stdin), let --generate-password make one (printed once), or type it twice on a terminal. Without a terminal, every missing value is an error (exit 2) rather than a question.

An embedded database (pglite:<folder>) is used by one process at a time: stop a server using it first, or create the account over HTTP (PUT /v1/accounts/<name>).`

  static exitCodes = exitCodes({0: 'done (a shared login cache that could not be cleared is a warning: on stderr, in `warnings` under --json)', 1: 'failed (database unreachable, schema missing, memory storage)', 4: 'the embedded database is held by a running server that offers no control socket (it could not write its run registry)', 51: 'the ini is readonly (upstream\'s code)', 52: 'kinto.plugins.accounts is not in kinto.includes (upstream\'s code)', 53: 'the questions were left unanswered (upstream\'s code)'})

  static examples = [
    '<%= config.bin %> create-user -u admin',
    'printf %s "$ADMIN_PASSWORD" | <%= config.bin %> create-user -u admin --password-stdin',
    '<%= config.bin %> create-user -u admin --generate-password --json',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    username: Flags.string({
      char: 'u',
      summary: 'Account name (a letter or digit, then letters, digits, + . @ _ -).',
      env: 'KINTO_CREATE_USER_USERNAME',
      helpValue: 'NAME',
    }),
    'password-stdin': Flags.boolean({
      summary: 'Read the password from the first line of stdin.',
      default: false,
      exclusive: ['generate-password'],
    }),
    'generate-password': Flags.boolean({
      summary: 'Generate a random password and print it once.',
      default: false,
      exclusive: ['password-stdin'],
    }),
    password: Flags.string({
      char: 'p',
      summary: 'Refused: a password on the command line shows in ps and shell history.',
      hidden: true,
    }),
  }

  async run(): Promise<CreateUserResult & {password?: string}> {
    const {flags} = this
    const json = this.jsonEnabled()
    if (flags.password !== undefined) {
      throw new UsageError('Passwords are not taken on the command line (they would show in ps and in the shell history).', {
        hint: 'Pipe it: printf %s "$PASSWORD" | kinto create-user -u NAME --password-stdin (or use --generate-password).',
      })
    }
    const config = loadConfig(resolveIniPath(flags.ini))
    const interactive = mayAsk(json)
    const missing: string[] = []
    if (flags.username === undefined && !interactive) missing.push('--username NAME')
    if (!flags['password-stdin'] && !flags['generate-password'] && !interactive) missing.push('--password-stdin or --generate-password')
    if (missing.length > 0) {
      throw new UsageError(`Missing ${missing.join(' and ')} (${json ? '--json asks no questions' : 'no terminal to ask on'}).`, {
        code: 'KINTO_NO_TTY',
        hint: 'Example: printf %s "$PASSWORD" | kinto create-user -u admin --password-stdin',
      })
    }

    let username = flags.username
    let password: string | undefined
    let generated: string | undefined
    try {
      username ??= await askInput('Username:', {
        validate: (v) => ACCOUNT_ID_PATTERN.test(v) || `Usernames match ${ACCOUNT_ID_PATTERN.source}.`,
      })
      // Settings and name first: no password question for an ini that cannot take the account.
      checkCreateUser(config, username, 'unchecked')
      if (flags['password-stdin']) password = await readFirstLine()
      else if (flags['generate-password']) password = generated = randomBytes(18).toString('base64url')
      else password = await askTwice(username)
    } catch (error) {
      if (error instanceof KintoError && error.code === 'KINTO_CANCELLED') {
        throw new KintoError('User creation aborted.', {code: 'KINTO_CANCELLED', exit: ExitCode.CREATE_USER_ABORTED})
      }
      throw error
    }

    // The password's own rules, before the database (or a server holding it) is reached.
    checkCreateUser(config, username, password)
    if (!json) this.logToStderr(`Creating user '${username}'`)
    const pass = password
    const result = await viaServerWhenHeld(config, 'create-user', {username, password: pass}, () => createUser({config, username, password: pass}))
    if (!json) {
      this.log(`Account '${result.username}' ${result.created ? 'created' : 'updated (password replaced)'}: user id ${result.userId}, in ${result.database}.`)
      if (generated) this.log(`Password: ${generated}`)
      if (!result.administrator) {
        this.logToStderr(`Note: ${result.userId} is not in kinto.account_write_principals, so this account is not an administrator.`)
      }
      for (const warning of result.warnings) this.logToStderr(`Warning: ${warning}`)
    }
    return generated ? {...result, password: generated} : result
  }
}

/** The first line of stdin (a trailing CR/LF dropped); an empty or missing line is a usage error. */
async function readFirstLine(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new UsageError('--password-stdin reads a pipe, but stdin is a terminal.', {hint: 'Pipe the password in, or leave the flag out to be asked.'})
  }
  const line = await readStdinSecret(process.stdin, {flag: '--password-stdin', firstLine: true})
  if (!line) throw new UsageError('--password-stdin: stdin holds no password (empty first line).', {code: 'KINTO_PASSWORD_EMPTY'})
  return line
}

async function askTwice(username: string): Promise<string> {
  for (;;) {
    const first = await askPassword(`Please enter a password for ${username}:`, {
      validate: (v) => (v.length > 0 ? (passwordLengthError(v) ?? true) : 'The password cannot be empty.'),
    })
    const again = await askPassword('Please confirm the password:')
    if (first === again) return first
    process.stderr.write('Sorry, passwords do not match, please try again.\n')
  }
}

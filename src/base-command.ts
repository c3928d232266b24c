import {readFileSync} from 'node:fs'

import {Command, Flags, Interfaces} from '@oclif/core'

import {databaseConditionError} from './lib/db/errors.js'
import {useBaselineWasm} from './lib/db/pglite-driver.js'
import {type ExitCodeTable, ExitCode, isKintoError, KintoError, UsageError} from './lib/errors.js'
import {scrubSecrets} from './lib/monitoring/redact.js'
import {noticeSlowServersWith} from './lib/ops/control.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Base of every command: --debug/-v, --quiet/-q, typed errors rendered as one line plus a hint
 * (or the `{"error": …}` object under --json, whatever failed), exit codes set through
 * process.exitCode (nobody calls process.exit deep in the code). Each command declares its exit
 * codes as data (`static exitCodes`); help and docs render them from there.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    debug: Flags.boolean({
      char: 'v',
      aliases: ['verbose'],
      summary: 'Show debug output and stack traces (-v/--verbose, as upstream\'s -v/--debug).',
      env: 'KINTO_DEBUG',
      default: false,
      helpGroup: 'GLOBAL',
    }),
    quiet: Flags.boolean({
      char: 'q',
      summary: 'No progress lines or warnings on stderr: errors and the result only (for `kinto check`, only errors and warnings).',
      env: 'KINTO_QUIET',
      default: false,
      helpGroup: 'GLOBAL',
    }),
  }

  /** What each exit code means for this command (rendered under EXIT CODES in its help). */
  static exitCodes: ExitCodeTable

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  /** Every positional value as typed (for commands with `strict = false`). */
  protected positional: string[] = []

  public async init(): Promise<void> {
    hideArgumentSecrets()
    guardStdout()
    await super.init()
    // Every command but the server is one-shot: no optimising compile of PGlite's wasm (see there).
    if (this.id !== 'start') useBaselineWasm()
    let parsed
    try {
      parsed = await this.parse({
        flags: this.ctor.flags,
        baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
        enableJsonFlag: this.ctor.enableJsonFlag,
        args: this.ctor.args,
        strict: this.ctor.strict,
      })
    } catch (error) {
      // Whatever the parser throws is about the command line: a usage error (exit 2). A flag's own
      // parse function may already throw one of ours (e.g. a bad duration).
      // The command did parse its arguments, and failed: no "did not parse" warning from oclif
      // (`parsed` is a public field of Command, set by parse() only on success).
      this.parsed = true
      const usageHint = `See \`kinto ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`
      if (isKintoError(error)) {
        // oclif prefixes the message of a flag's own error ("Parsing --x … See more help"): undo it.
        throw new KintoError(parseMessage(error), {code: error.code, exit: error.exit, hint: error.hint ?? usageHint, cause: error})
      }
      throw new UsageError(parseMessage(error), {hint: usageHint, cause: error})
    }
    this.flags = parsed.flags as BaseFlags<T>
    this.args = parsed.args as BaseArgs<T>
    this.positional = parsed.argv.map(String)
    // A running server that keeps a command waiting through its control socket is said on stderr.
    noticeSlowServersWith((message) => this.logToStderr(`Note: ${message}`))
  }

  /** Progress and warnings on stderr; silenced by --quiet (errors are written by catch()). */
  public logToStderr(message = '', ...args: unknown[]): void {
    if (this.quiet()) return
    super.logToStderr(message, ...args)
  }

  protected quiet(): boolean {
    return Boolean((this.flags as {quiet?: boolean} | undefined)?.quiet)
  }

  protected async catch(err: Error): Promise<unknown> {
    const debug = Boolean((this.flags as {debug?: boolean} | undefined)?.debug) || process.argv.includes('--debug')
    const known: KintoError = isKintoError(err)
      ? err
      : (databaseConditionError(err) ??
        new KintoError(`unexpected failure: ${err.message}`, {
          code: 'KINTO_UNEXPECTED',
          hint: 'Run again with --debug for the stack trace, and report it as a bug.',
          cause: err,
        }))
    process.exitCode = known.exit
    if (this.jsonEnabled()) {
      this.logJson({error: {code: known.code, message: known.message, ...(known.hint ? {hint: known.hint} : {})}})
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`)
      return
    }
    if (debug && !isKintoError(err)) {
      process.stderr.write(`${err.stack ?? String(err)}\n`)
      return
    }
    // Errors go to stderr even under --quiet.
    const lines = [`Error: ${known.message}`]
    if (known.hint) lines.push(`Hint: ${known.hint}`)
    if (debug && err.stack) lines.push(err.stack)
    process.stderr.write(`${lines.join('\n')}\n`)
  }
}

/**
 * Any user of the machine reads every process's arguments (`ps`, /proc/<pid>/cmdline), and a URL
 * flag may carry a password (`db create --admin-url`, `db copy --to`, `init --storage-url`), as
 * does `check --user USER:PASSWORD`: the command line is rewritten with those passwords masked as
 * the command starts (Linux, where Node writes the process title over the arguments), as mysql
 * does with -p. Only the moment before that showed them; the flags' environment variables
 * (KINTO_ADMIN_URL, KINTO_CHECK_AUTH…) never do.
 */
function hideArgumentSecrets(): void {
  if (process.platform !== 'linux') return
  let args: string[]
  try {
    args = readFileSync('/proc/self/cmdline', 'utf8').split('\0')
  } catch {
    return
  }
  if (args.at(-1) === '') args.pop()
  // `check --user USER:PASSWORD` (Basic auth), whether written --user X or --user=X.
  const masked = args.map((arg, i) =>
    args[i - 1] === '--user' ? arg.replace(/:.*/s, ':***') : arg.startsWith('--user=') ? arg.replace(/^(--user=[^:]*):.*/s, '$1:***') : scrubSecrets(arg),
  )
  if (masked.some((arg, i) => arg !== args[i])) process.title = masked.join(' ')
}

let stdoutGuarded = false

/**
 * A stdout that cannot be written (a full disk, an I/O error) fails the command with one line on
 * stderr, whatever the command had done: exit 1 (or the command's own failure code). oclif's
 * listener rethrows the error, which Node printed as an uncaught exception with its stack. A
 * reader that went away (EPIPE: `| head`) still ends the output quietly.
 *
 * stderr has no listener of its own: one failed write there (its reader gone: a pipe to `head`, a
 * logging daemon that restarted) was an uncaught exception, so that `kinto start` crashed on its
 * next line (a SIGHUP's or SIGTERM's) without finishing its requests, and a command such as
 * `kinto migrate` stopped in the middle. A line that cannot be written to stderr is lost, nothing else.
 */
function guardStdout(): void {
  if (stdoutGuarded) return
  stdoutGuarded = true
  // oclif's own listener (swallow EPIPE, rethrow the rest) is the one to replace; others stay.
  for (const listener of process.stdout.listeners('error')) {
    const text = String(listener)
    if (text.includes("'EPIPE'") && text.includes('throw err')) process.stdout.removeListener('error', listener as (...args: unknown[]) => void)
  }
  let failed = false
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || failed) return
    failed = true
    const reason = err.code ? (OUTPUT_FAILURES[err.code] ?? err.code) : err.message
    process.stderr.write(`Error: the output could not be written (${reason}).\nHint: Free space where stdout goes, or send it elsewhere.\n`)
  })
  process.on('exit', () => {
    if (failed && !process.exitCode) process.exitCode = ExitCode.FAILED
  })
  // Nowhere left to say it.
  process.stderr.on('error', () => {})
}

const OUTPUT_FAILURES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EIO: 'an input/output error',
  EBADF: 'stdout is closed',
}

/** oclif's parse messages may span lines (exclusive/dependsOn list every conflict): keep them, drop its help line. */
function parseMessage(error: unknown): string {
  // What was typed is echoed (an unknown flag, an unexpected argument, a bad value): never a URL's password.
  const text = scrubSecrets(error instanceof Error ? error.message : String(error))
  // A flag's own parse error comes wrapped as "Parsing --x\n\t<our message>": keep ours, and
  // name the flag when the message does not (oclif's own integer and option checks).
  const flag = /^Parsing (--\S+)\s*$/m.exec(text)?.[1]
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !/^(See more help with|Parsing --\S+$)/.test(l.trim()))
  const message = lines.map((l) => l.trim()).join('\n  ')
  return flag && !message.includes(flag) ? `${flag}: ${message}` : message
}

export {ExitCode}

import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {useBaselineWasm} from './lib/db/pglite-driver.js'
import {ExitCode, isKintoError} from './lib/errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** The exit-code table every command shows in its help. */
export const exitCodeHelp = {
  '0': 'done',
  '1': 'failed',
  '2': 'usage error (bad flag, missing value without a TTY)',
}

/**
 * Base of every command: --debug, typed errors rendered as one line plus a hint, exit codes set
 * through process.exitCode (nobody calls process.exit deep in the code).
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    debug: Flags.boolean({
      summary: 'Show debug output and stack traces.',
      env: 'KINTO_DEBUG',
      default: false,
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  public async init(): Promise<void> {
    await super.init()
    // Every command but the server is one-shot: no optimising compile of PGlite's wasm (see there).
    if (this.id !== 'start') useBaselineWasm()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  protected async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // A parse failure is reported below; stop oclif's "did not parse its arguments" warning.
    ;(this as unknown as {parsed: boolean}).parsed = true
    const debug = Boolean((this.flags as {debug?: boolean} | undefined)?.debug) || process.argv.includes('--debug')
    if (isKintoError(err)) {
      process.exitCode = err.exit
      if (this.jsonEnabled()) {
        this.logJson({error: {code: err.code, message: err.message, hint: err.hint}})
      } else {
        this.logToStderr(`Error: ${err.message}`)
        if (err.hint) this.logToStderr(`Hint: ${err.hint}`)
        if (debug && err.stack) this.logToStderr(err.stack)
      }
      return
    }
    // oclif's own parse errors (unknown flag, missing arg): usage errors, exit 2.
    if (err instanceof Errors.CLIError && (err.oclif?.exit === 2 || /flag|argument|Unexpected/i.test(err.message))) {
      process.exitCode = ExitCode.USAGE
      // oclif's messages may span lines (exclusive/dependsOn list every conflict): keep them, drop its own help line.
      const lines = err.message.split('\n').filter((l) => l.trim() !== '' && !/^See more help with/.test(l.trim()))
      this.logToStderr(`Error: ${lines.map((l) => l.trim()).join('\n  ')}`)
      this.logToStderr(`Hint: see \`kinto ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`)
      return
    }
    if (err instanceof Errors.ExitError) throw err
    process.exitCode = ExitCode.FAILED
    if (debug) {
      this.logToStderr(err.stack ?? String(err))
    } else {
      this.logToStderr(`Error: unexpected failure: ${err.message}`)
      this.logToStderr('Hint: run again with --debug for the stack trace, and report it as a bug.')
    }
  }
}

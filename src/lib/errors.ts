/**
 * Errors of the CLI and of library verbs, with stable codes and the exit code each maps to.
 * The HTTP runtime has its own table (Kinto's errno values) in src/lib/server/errors.ts.
 *
 * Codes are never reused; docs/errors.md lists them. Add new ones at the end.
 */

/** Exit codes shared by every command (shown in each command's help). */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  /** `kinto migrate --check`: migrations are pending. */
  PENDING: 3,
  /** another process held the migration lock for longer than --lock-timeout. */
  LOCK_TIMEOUT: 4,
  /** an applied migration step differs from the shipped one (edited or unknown). */
  DRIFT: 5,
  /** a check found something missing (`db grant-readonly --check`, `deploy --check`). */
  CHECK_FAILED: 6,
  /** `kinto create-user`: the ini is readonly (upstream's code). */
  CREATE_USER_READONLY: 51,
  /** `kinto create-user`: kinto.plugins.accounts is not in kinto.includes (upstream's code). */
  CREATE_USER_NO_ACCOUNTS: 52,
  /** `kinto create-user`: the questions were left unanswered (upstream's code). */
  CREATE_USER_ABORTED: 53,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * What each exit code means, whatever the command. A command's own table (below) says what it
 * means for that command; help, docs/errors.md and the README are rendered from these tables.
 */
export const EXIT_CODE_MEANING: Record<ExitCodeValue, string> = {
  0: 'done',
  1: 'failed (the message says what, where, and what to do)',
  2: 'usage error: unknown command or flag, bad flag value or combination, a value that is needed but cannot be asked (no TTY, `CI` set)',
  3: '`kinto migrate --check`: migrations are pending',
  4: 'the migration lock is held by another process past `--lock-timeout` (or at once with `--no-wait`), or an embedded database folder is held by a running server',
  5: 'drift: an applied migration step differs from the one we ship',
  6: 'a check found something missing or different (`db grant-readonly --check`, `deploy … --check`)',
  51: '`kinto create-user`, as upstream: the ini is readonly',
  52: '`kinto create-user`, as upstream: kinto.plugins.accounts is not in kinto.includes',
  53: '`kinto create-user`, as upstream: the questions were left unanswered',
}

/** One command's exit codes: code -> what it means for that command (a static of every command). */
export type ExitCodeTable = Partial<Record<ExitCodeValue, string>>

/** A command's table: 0, 1 and 2 (every command has them) with the command's words, plus its own codes. */
export function exitCodes(table: ExitCodeTable & {0: string; 1: string}): ExitCodeTable {
  return {[ExitCode.USAGE]: 'usage error (bad flag or argument, a missing value without a TTY)', ...table}
}

export interface KintoErrorOptions {
  /** Stable machine-readable code, e.g. `KINTO_CONFIG_INVALID`. */
  code: string
  /** Process exit code the CLI uses for this error. */
  exit?: ExitCodeValue
  /** One line telling the user what to do next (a command to run, a flag to add). */
  hint?: string
  cause?: unknown
}

/** A user-fixable error: printed as one line (plus hint), never with a stack trace unless --debug. */
export class KintoError extends Error {
  readonly code: string
  readonly exit: ExitCodeValue
  readonly hint?: string

  constructor(message: string, options: KintoErrorOptions) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'KintoError'
    this.code = options.code
    this.exit = options.exit ?? ExitCode.FAILED
    this.hint = options.hint
  }
}

/** Wrong usage of a command (bad flag combination, missing value without a TTY): exit 2. */
export class UsageError extends KintoError {
  constructor(message: string, options: Omit<KintoErrorOptions, 'exit' | 'code'> & {code?: string} = {}) {
    super(message, {...options, code: options.code ?? 'KINTO_USAGE', exit: ExitCode.USAGE})
    this.name = 'UsageError'
  }
}

export function isKintoError(err: unknown): err is KintoError {
  return err instanceof KintoError
}

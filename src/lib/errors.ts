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

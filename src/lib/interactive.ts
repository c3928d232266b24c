import {KintoError, UsageError} from './errors.js'

/**
 * The one non-interactive rule: we may prompt only when a person is there to answer.
 * inquirer must only ever be reached after this returns true (a test enforces it).
 */
export function canPrompt(
  env: NodeJS.ProcessEnv = process.env,
  stdin: {isTTY?: boolean} = process.stdin,
  stdout: {isTTY?: boolean} = process.stdout,
): boolean {
  if (isCI(env)) return false
  return Boolean(stdin.isTTY) && Boolean(stdout.isTTY)
}

/**
 * Whether a command may ask its questions: canPrompt(), and not under --json (its stdout is the
 * one JSON document; a question written there would break it). Missing values are then flags to
 * give (KINTO_NO_TTY), as without a terminal.
 */
export function mayAsk(json: boolean): boolean {
  return !json && canPrompt()
}

/** `CI` set to anything but empty, `0` or `false`. */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

/**
 * Live progress (listr2's default renderer) only for a person at a terminal: never in CI, on
 * TERM=dumb, a pipe, or a terminal that says it is 0 columns wide (a pty nobody sized).
 */
export function richProgress(
  env: NodeJS.ProcessEnv = process.env,
  streams: Array<{isTTY?: boolean; columns?: number}> = [process.stdout, process.stderr],
): boolean {
  if (isCI(env) || env.TERM === 'dumb') return false
  return streams.every((s) => Boolean(s.isTTY) && (s.columns === undefined || s.columns > 0))
}

/** Colour only on a terminal, and never with NO_COLOR (no-color.org) or TERM=dumb. */
export function colorEnabled(env: NodeJS.ProcessEnv = process.env, stream: {isTTY?: boolean} = process.stdout): boolean {
  if ((env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb') return false
  return Boolean(stream.isTTY)
}

/**
 * The prompts. This module is the only one that imports @inquirer/prompts (a test enforces it),
 * and each prompt checks canPrompt() first: without a person to answer, it throws a UsageError
 * naming the flag to pass instead of waiting.
 */
export interface PromptChoice<T extends string> {
  value: T
  name?: string
  description?: string
}

export class PromptUnavailableError extends UsageError {
  constructor(question: string, flagHint?: string) {
    super(`Cannot ask "${question}": no terminal to answer (stdin/stdout not a TTY, or CI is set).`, {
      code: 'KINTO_NO_TTY',
      hint: flagHint ?? 'Pass the value as a flag, or --yes to accept the defaults.',
    })
  }
}

function gate(question: string, flagHint?: string): void {
  if (!canPrompt()) throw new PromptUnavailableError(question, flagHint)
}

/** Ctrl-C or a closed terminal during a prompt: one line, exit 1, no stack. */
async function answered<T>(question: Promise<T>): Promise<T> {
  try {
    return await question
  } catch (error) {
    if (error instanceof Error && (error.name === 'ExitPromptError' || error.name === 'AbortPromptError')) {
      throw new KintoError('Cancelled: the question was not answered.', {code: 'KINTO_CANCELLED'})
    }
    throw error
  }
}

export async function askSelect<T extends string>(
  message: string,
  choices: ReadonlyArray<PromptChoice<T>>,
  options: {default?: T; flagHint?: string} = {},
): Promise<T> {
  gate(message, options.flagHint)
  const {select} = await import('@inquirer/prompts')
  return answered(select<T>({message, choices: choices.map((c) => ({...c})), default: options.default}))
}

export async function askInput(
  message: string,
  options: {default?: string; flagHint?: string; validate?: (value: string) => true | string} = {},
): Promise<string> {
  gate(message, options.flagHint)
  const {input} = await import('@inquirer/prompts')
  return answered(input({message, default: options.default, validate: options.validate}))
}

export async function askPassword(
  message: string,
  options: {flagHint?: string; validate?: (value: string) => true | string} = {},
): Promise<string> {
  gate(message, options.flagHint)
  const {password} = await import('@inquirer/prompts')
  return answered(password({message, mask: true, validate: options.validate}))
}

export async function askConfirm(message: string, options: {default?: boolean; flagHint?: string} = {}): Promise<boolean> {
  gate(message, options.flagHint)
  const {confirm} = await import('@inquirer/prompts')
  return answered(confirm({message, default: options.default}))
}

/** The most a secret piped on stdin may hold (a password, not a file). */
export const STDIN_SECRET_MAX_BYTES = 64 * 1024

/**
 * A secret piped on stdin (`--password-stdin`): its first line (`firstLine`, a CR/LF dropped) or
 * all of it (one trailing line break dropped). Reading stops at the first line break, or fails
 * past STDIN_SECRET_MAX_BYTES: input that never ends (/dev/zero, `yes`) is an error, not a hang.
 */
export async function readStdinSecret(input: AsyncIterable<unknown>, options: {flag: string; firstLine: boolean}): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of input) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    chunks.push(bytes)
    size += bytes.length
    if (options.firstLine && bytes.includes(0x0a)) break
    if (size > STDIN_SECRET_MAX_BYTES) {
      throw new UsageError(`${options.flag}: stdin holds more than ${STDIN_SECRET_MAX_BYTES / 1024} KiB${options.firstLine ? ' before its first line break' : ''}, which is no password.`, {
        hint: `Pipe the password alone, e.g. printf %s "$PASSWORD" | kinto … ${options.flag}`,
      })
    }
  }
  const text = Buffer.concat(chunks).toString('utf8')
  return options.firstLine ? text.split(/\r?\n/)[0] : text.replace(/\r?\n$/, '')
}

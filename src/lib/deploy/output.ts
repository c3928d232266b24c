/**
 * What happens to a generated snippet: printed, written to a file (never over an existing one
 * without `force`; atomically, through lib/config's writeFileAtomic), or compared with a file
 * on disk (`--check`: drift in CI).
 */
import {promises as fs} from 'node:fs'
import path from 'node:path'

import {createTwoFilesPatch, FILE_HEADERS_ONLY} from 'diff'

import {assertFilePath, FileExistsError, writeFailureReason, writeFileAtomic} from '../config/atomic.js'
import {ExitCode, KintoError} from '../errors.js'
import {folderProblem} from '../fs.js'

export interface DeliverOptions {
  content: string
  /** Write here instead of returning the text to print. */
  output?: string
  /** Compare with this file instead. */
  check?: string
  /** Allow `output` to replace an existing file. */
  force?: boolean
  /** What the snippet is, for messages (`nginx configuration`). */
  label: string
  /** The command that regenerates it, for hints (`kinto deploy nginx`). */
  command: string
}

export type DeliverResult =
  | {action: 'print'; content: string}
  | {action: 'write'; file: string; replaced: boolean}
  | {action: 'check'; file: string; upToDate: boolean; missing: boolean; diff: string}

export async function deliver(options: DeliverOptions): Promise<DeliverResult> {
  if (options.output !== undefined && options.check !== undefined) {
    throw new KintoError('--output and --check cannot be used together.', {
      code: 'KINTO_USAGE',
      exit: ExitCode.USAGE,
      hint: 'Use --check FILE in CI to detect drift, --output FILE (with --force to replace) to write.',
    })
  }
  if (options.check !== undefined) return check(options.check, options.content)
  // `-o -` prints, as curl's and tar's `-`; `./-` names a file called '-'.
  if (options.output !== undefined && options.output !== '-') return write(options)
  return {action: 'print', content: options.content}
}

/** Why a --check file could not be read, in words (node's own message is "EISDIR: illegal operation on a directory, read"). */
const READ_FAILURES: Record<string, string> = {
  EISDIR: 'it is a folder',
  ENOTDIR: 'a folder on its path is a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EIO: 'an input/output error',
}

async function check(file: string, content: string): Promise<DeliverResult> {
  let onDisk: string
  try {
    onDisk = await fs.readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {action: 'check', file, upToDate: false, missing: true, diff: unifiedDiff('', content, `${file} (missing)`, 'generated')}
    const reason = READ_FAILURES[code ?? ''] ?? (error as Error).message
    throw new KintoError(`Cannot read ${file}: ${reason}.`, {code: 'KINTO_DEPLOY_CHECK_UNREADABLE', hint: 'Give --check the path of the file the snippet was written to.', cause: error})
  }
  const upToDate = onDisk === content
  return {action: 'check', file, upToDate, missing: false, diff: upToDate ? '' : unifiedDiff(onDisk, content, file, 'generated')}
}

async function write(options: DeliverOptions): Promise<DeliverResult> {
  const file = options.output!
  assertFilePath(file, 'kinto.conf')
  const dir = path.dirname(path.resolve(file))
  const existing = await fs.stat(file).catch(() => undefined)
  if (existing?.isDirectory()) {
    throw new KintoError(`${file} is a folder; --output needs a file name.`, {code: 'KINTO_USAGE', exit: ExitCode.USAGE})
  }
  if (existing && !options.force) {
    throw new KintoError(`${file} already exists; it was left unchanged.`, {
      code: 'KINTO_DEPLOY_OUTPUT_EXISTS',
      exit: ExitCode.USAGE,
      hint: `Add --force to replace it, or compare it first with \`${options.command} --check ${file}\`.`,
    })
  }
  const problem = folderProblem(dir)
  if (problem) {
    const what = problem === 'missing' ? `the folder ${dir} does not exist` : problem
    throw new KintoError(`Cannot write ${file}: ${what}.`, {code: 'KINTO_DEPLOY_OUTPUT_FAILED', hint: 'Create the folder first, or choose another --output.'})
  }
  try {
    writeFileAtomic(file, options.content, {mode: 0o644, overwrite: Boolean(options.force)})
  } catch (error) {
    if (error instanceof FileExistsError) {
      // Appeared since the check above.
      throw new KintoError(`${file} already exists; it was left unchanged.`, {code: 'KINTO_DEPLOY_OUTPUT_EXISTS', exit: ExitCode.USAGE, hint: 'Add --force to replace it.'})
    }
    if (error instanceof KintoError) throw error
    // In words (permission denied, a full or read-only disk), not node's message naming the temporary file.
    const reason = writeFailureReason(error) ?? (error as Error).message
    throw new KintoError(`Cannot write the ${options.label} to ${file}: ${reason}; nothing was written.`, {
      code: 'KINTO_DEPLOY_OUTPUT_FAILED',
      hint: 'Choose an --output in a folder this user may write (the file is written beside it, then renamed), or print the snippet and redirect it.',
      cause: error,
    })
  }
  return {action: 'write', file, replaced: Boolean(existing)}
}

/**
 * A unified diff (3 lines of context) from `before` to `after`, as `diff -u` writes it and `patch`
 * applies it (jsdiff; a missing final newline is marked `\\ No newline at end of file`); '' when
 * they are equal.
 */
export function unifiedDiff(before: string, after: string, beforeLabel: string, afterLabel: string, context = 3): string {
  if (before === after) return ''
  return createTwoFilesPatch(beforeLabel, afterLabel, before, after, undefined, undefined, {context, headerOptions: FILE_HEADERS_ONLY})
}

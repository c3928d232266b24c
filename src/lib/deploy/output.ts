/**
 * What happens to a generated snippet: printed, written to a file (never over an existing one
 * without `force`; atomically, through lib/config's writeFileAtomic), or compared with a file
 * on disk (`--check`: drift in CI).
 */
import {promises as fs} from 'node:fs'
import path from 'node:path'

import {FileExistsError, writeFileAtomic} from '../config/atomic.js'
import {ExitCode, KintoError} from '../errors.js'

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
  if (options.output !== undefined) return write(options)
  return {action: 'print', content: options.content}
}

async function check(file: string, content: string): Promise<DeliverResult> {
  let onDisk: string
  try {
    onDisk = await fs.readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {action: 'check', file, upToDate: false, missing: true, diff: unifiedDiff('', content, `${file} (missing)`, 'generated')}
    throw new KintoError(`Cannot read ${file}: ${(error as Error).message}.`, {code: 'KINTO_DEPLOY_CHECK_UNREADABLE', cause: error})
  }
  const upToDate = onDisk === content
  return {action: 'check', file, upToDate, missing: false, diff: upToDate ? '' : unifiedDiff(onDisk, content, file, 'generated')}
}

async function write(options: DeliverOptions): Promise<DeliverResult> {
  const file = options.output!
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
  const dirStat = await fs.stat(dir).catch(() => undefined)
  if (!dirStat?.isDirectory()) {
    throw new KintoError(`Cannot write ${file}: the folder ${dir} does not exist.`, {code: 'KINTO_DEPLOY_OUTPUT_FAILED', hint: 'Create the folder first, or choose another --output.'})
  }
  try {
    writeFileAtomic(file, options.content, {mode: 0o644, overwrite: Boolean(options.force)})
  } catch (error) {
    if (error instanceof FileExistsError) {
      // Appeared since the check above.
      throw new KintoError(`${file} already exists; it was left unchanged.`, {code: 'KINTO_DEPLOY_OUTPUT_EXISTS', exit: ExitCode.USAGE, hint: 'Add --force to replace it.'})
    }
    if (error instanceof KintoError) throw error
    throw new KintoError(`Cannot write the ${options.label} to ${file}: ${(error as Error).message}.`, {code: 'KINTO_DEPLOY_OUTPUT_FAILED', cause: error})
  }
  return {action: 'write', file, replaced: Boolean(existing)}
}

/** A unified diff (3 lines of context) from `before` to `after`; '' when they are equal. */
export function unifiedDiff(before: string, after: string, beforeLabel: string, afterLabel: string, context = 3): string {
  if (before === after) return ''
  const a = splitLines(before)
  const b = splitLines(after)
  const ops = diffLines(a, b)
  const lines = [`--- ${beforeLabel}`, `+++ ${afterLabel}`]
  // Hunks: every change with `context` unchanged lines around it, overlapping ranges merged.
  const ranges: [number, number][] = []
  ops.forEach((op, k) => {
    if (op.op === ' ') return
    const from = Math.max(0, k - context)
    const to = Math.min(ops.length, k + context + 1)
    const last = ranges.at(-1)
    if (last && from <= last[1]) last[1] = Math.max(last[1], to)
    else ranges.push([from, to])
  })
  for (const [from, to] of ranges) {
    const hunk = ops.slice(from, to)
    const aCount = hunk.filter((h) => h.op !== '+').length
    const bCount = hunk.filter((h) => h.op !== '-').length
    lines.push(`@@ -${hunk[0].aIndex + (aCount ? 1 : 0)},${aCount} +${hunk[0].bIndex + (bCount ? 1 : 0)},${bCount} @@`)
    for (const h of hunk) lines.push(`${h.op}${h.text}`)
  }
  return `${lines.join('\n')}\n`
}

interface Op {
  op: ' ' | '-' | '+'
  text: string
  aIndex: number
  bIndex: number
}

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  else lines[lines.length - 1] += '\\ (no newline at end of file)'
  return lines
}

/** Longest-common-subsequence edit script; the files are small (a few hundred lines at most). */
function diffLines(a: string[], b: string[]): Op[] {
  const n = a.length
  const m = b.length
  if (n * m > 4_000_000) {
    return [...a.map((text, k) => ({op: '-' as const, text, aIndex: k, bIndex: 0})), ...b.map((text, k) => ({op: '+' as const, text, aIndex: n, bIndex: k}))]
  }
  const lcs = Array.from({length: n + 1}, () => new Uint32Array(m + 1))
  for (let x = n - 1; x >= 0; x--) {
    for (let y = m - 1; y >= 0; y--) {
      lcs[x][y] = a[x] === b[y] ? lcs[x + 1][y + 1] + 1 : Math.max(lcs[x + 1][y], lcs[x][y + 1])
    }
  }
  const ops: Op[] = []
  let x = 0
  let y = 0
  while (x < n || y < m) {
    if (x < n && y < m && a[x] === b[y]) {
      ops.push({op: ' ', text: a[x], aIndex: x++, bIndex: y++})
    } else if (x < n && (y >= m || lcs[x + 1][y] >= lcs[x][y + 1])) {
      ops.push({op: '-', text: a[x], aIndex: x++, bIndex: y})
    } else {
      ops.push({op: '+', text: b[y], aIndex: x, bIndex: y++})
    }
  }
  return ops
}

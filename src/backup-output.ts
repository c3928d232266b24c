/** What `kinto backup`, `kinto restore` and `kinto db copy` share: progress on a terminal, Ctrl-C as an abort. */
import {type ProgressLine, progressLine} from './lib/backup/progress.js'
import {KintoError} from './lib/errors.js'
import {richProgress} from './lib/interactive.js'

/** A progress line on stderr when it is a terminal and the output is not JSON. */
export function terminalProgress(json: boolean, verb: string): ProgressLine | undefined {
  return !json && richProgress() ? progressLine((t) => process.stderr.write(t), verb) : undefined
}

/**
 * Runs a backup, restore or copy with what the three share: a progress line on a terminal unless
 * the output is JSON (fn gets no onProgress then), and SIGINT / SIGTERM as an abort (interruptible).
 */
export function withProgress<T>(json: boolean, verb: string, fn: (signal: AbortSignal, onProgress: ProgressLine['update'] | undefined) => Promise<T>): Promise<T> {
  const progress = terminalProgress(json, verb)
  return interruptible(progress, (signal) => fn(signal, progress && ((table, done, total) => progress.update(table, done, total))))
}

/** After SIGINT / SIGTERM, how long the work may take to stop by itself before the command stops waiting for it. */
export const STOP_GRACE_MS = 5000

/**
 * Runs fn with a signal that SIGINT / SIGTERM abort (the restore then rolls back and fails with
 * KINTO_INTERRUPTED instead of the process dying mid-transaction); the progress line ends first.
 * The work checks the signal between batches: when it is stuck waiting on a database (a lock, a
 * network that stopped answering) it cannot, so after STOP_GRACE_MS (or at a second signal) the
 * command fails anyway and the process ends once the error is printed: its connections close and
 * the database rolls back what was not committed (an embedded folder recovers as after a crash).
 */
export async function interruptible<T>(progress: ProgressLine | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController()
  let giveUp: (error: KintoError) => void = () => {}
  const stopped = new Promise<never>((_, reject) => {
    giveUp = reject
  })
  let grace: NodeJS.Timeout | undefined
  const stop = () => {
    giveUp(
      new KintoError('Interrupted while waiting on the database: nothing was committed (a restore or a copy leaves the target as it was, a backup leaves no file under its name).', {
        code: 'KINTO_INTERRUPTED',
        hint: 'Run the command again; if it waits again, see what holds the database (kinto db status, or pg_stat_activity).',
      }),
    )
    // The stuck work still holds its connections: end the process once the error has been printed.
    setTimeout(() => process.exit(), 200).unref()
  }
  const onSignal = () => {
    if (abort.signal.aborted) return stop()
    abort.abort()
    grace = setTimeout(stop, STOP_GRACE_MS)
    grace.unref()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const work = fn(abort.signal)
    // once given up on, its own failure (connections closing) is no news
    work.catch(() => {})
    return await Promise.race([work, stopped])
  } finally {
    clearTimeout(grace)
    progress?.end()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

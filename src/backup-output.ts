/** What `kinto backup`, `kinto restore` and `kinto db copy` share: progress on a terminal, Ctrl-C as an abort. */
import {type ProgressLine, progressLine} from './lib/backup/progress.js'
import {richProgress} from './lib/interactive.js'

/** A progress line on stderr when it is a terminal and the output is not JSON. */
export function terminalProgress(json: boolean, verb: string): ProgressLine | undefined {
  return !json && richProgress() ? progressLine((t) => process.stderr.write(t), verb) : undefined
}

/**
 * Runs fn with a signal that SIGINT / SIGTERM abort (the restore then rolls back and fails with
 * KINTO_INTERRUPTED instead of the process dying mid-transaction); the progress line ends first.
 */
export async function interruptible<T>(progress: ProgressLine | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController()
  const onSignal = () => abort.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await fn(abort.signal)
  } finally {
    progress?.end()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/**
 * Backups through pipes (docs/backup.md): `kinto backup -o -` writes to standard output, `kinto
 * restore -` reads standard input. The encoder and decoder are the file's (format.ts); only the
 * sink and the source differ: a writable stream whose reader may be slow (waited for: memory stays
 * flat) or gone (EPIPE: said once, as one line).
 */
import {Writable} from 'node:stream'

import {writeFailureReason} from '../config/atomic.js'
import {databaseConditionError} from '../db/errors.js'
import {ExitCode, isKintoError, KintoError} from '../errors.js'

/** What a backup written to a stream (`-o -`) records as its file (result and marker). */
export const STANDARD_OUTPUT = '(standard output)'
/** How a backup read from a stream (`restore -`) is named (result and messages). */
export const STANDARD_INPUT = '(standard input)'

/** A write to a stream whose reader is gone (or that failed), as an error. */
const outputGone = (out: Writable): Error => (out.errored as Error | null) ?? Object.assign(new Error('the output was closed'), {code: 'EPIPE'})

/**
 * Writes each chunk to `out`, counting the bytes; returns a promise when `out` is full (resolved
 * once it drained: the producer waits, memory stays flat), rejected when its reader went away.
 */
export function writeWaiting(out: Writable, counter: {bytes: number}): (chunk: Buffer) => void | Promise<void> {
  return (chunk) => {
    if (out.destroyed || out.writableEnded) return Promise.reject(outputGone(out))
    counter.bytes += chunk.length
    if (out.write(chunk)) return
    return new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        out.off('drain', done)
        out.off('error', done)
        out.off('close', closed)
        if (error) reject(error)
        else resolve()
      }
      const closed = () => done(outputGone(out))
      out.on('drain', done)
      out.on('error', done)
      out.on('close', closed)
    })
  }
}

/** `out` as the last stage of a pipeline: counted, backpressure kept, ended at the end. */
export function countingInto(out: Writable, counter: {bytes: number}): Writable {
  const write = writeWaiting(out, counter)
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const wait = write(chunk)
      if (wait) wait.then(() => callback(), callback)
      else callback()
    },
    final(callback) {
      if (out.destroyed) return callback(outputGone(out))
      out.end(() => callback(out.errored ?? null))
    },
  })
}

/** Why writing to the stream stopped, in words (a reader gone, a full disk), or undefined. */
function streamFailureReason(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'its reader went away (EPIPE)'
  return writeFailureReason(error)
}

/**
 * A backup to a stream that failed once bytes had gone out: the reader holds a stream without a
 * trailer, which restore refuses; the message says so, with the cause in words.
 */
export function streamStopped(error: unknown, bytes: number): KintoError {
  const known = isKintoError(error) ? error : databaseConditionError(error)
  const reason = streamFailureReason(error) ?? (known ? known.message : (error as Error).message).replace(/\.$/, '')
  return new KintoError(`The backup written to standard output stopped after ${bytes} bytes: ${reason}. What was written has no trailer, so kinto restore refuses it; no marker was recorded.`, {
    code: known?.code ?? 'KINTO_BACKUP_WRITE_FAILED',
    exit: known?.exit ?? ExitCode.FAILED,
    hint: known?.hint ?? 'Check the reader of the pipe (its disk, its connection) and the database, then run the backup again.',
    cause: error,
  })
}

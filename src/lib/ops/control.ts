/**
 * The local control channel of a running server: a unix socket beside its run registry entry
 * (`<pid>.sock`, mode 0600: only the owner of the server process, and root, may connect; never a
 * TCP port). Commands that need an embedded database folder the server holds (one process per
 * folder) send their work through it instead of failing: the server runs the operation on the
 * connection it serves from and answers with the same result the command would have computed.
 *
 * Protocol: one JSON line per message. The client sends `{"op": NAME, "args": {…}}`; the server
 * answers with any number of `{"event": …}` (progress) and `{"chunk": BASE64}` (a streamed result,
 * e.g. a backup) lines, then exactly one `{"result": …}` or `{"error": {code, message, hint, exit}}`,
 * and closes. Operations are registered by name (src/lib/serve/control-ops.ts); the channel knows none.
 */
import {chmodSync, unlinkSync} from 'node:fs'
import {createConnection, createServer, type Server, type Socket} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import type {Settings} from '../config/settings.js'
import {ExitCode, type ExitCodeValue, isKintoError, KintoError} from '../errors.js'
import {mkdirs} from '../fs.js'
import {pgliteLockPath, readFileLockHolder} from '../schema/lock.js'
import {configuredBackends} from '../schema/targets.js'
import {processStopped} from '../process.js'
import {listRuns} from '../runs/registry.js'

/** What an operation may send before its result. */
export interface ControlStream {
  /** A progress event (a JSON value), passed to the client's onEvent. */
  event(data: unknown): void
  /**
   * A piece of a streamed result, passed to the client's onChunk. Resolves when the socket can take
   * more (a slow client slows the producer; memory stays flat); rejects when the client has gone.
   */
  chunk(data: Buffer): Promise<void>
}

/** A server-side operation: JSON args in, a JSON result out (or a KintoError). */
export type ControlOperation = (args: Record<string, unknown>, stream: ControlStream) => Promise<unknown>

/** Longest unix socket path (sun_path is 108 bytes on Linux, 104 on macOS; keep a margin). */
const MAX_SOCKET_PATH = 100

/** Where a server of pid `pid` puts its socket: beside its registry entry, else in a private tmp folder. */
export function controlSocketPath(registryFile: string | null, pid = process.pid): string | null {
  const beside = registryFile ? path.join(path.dirname(registryFile), `${pid}.sock`) : null
  if (beside && Buffer.byteLength(beside) <= MAX_SOCKET_PATH) return beside
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  const fallback = path.join(os.tmpdir(), `kinto-control-${uid}`, `${pid}.sock`)
  return Buffer.byteLength(fallback) <= MAX_SOCKET_PATH ? fallback : null
}

export interface ControlServer {
  path: string
  close(): Promise<void>
}

/**
 * Listens on `socketPath` (mode 0600 from the start: the umask is narrowed around the bind) and
 * runs the named operations. A stale socket file of a dead process is replaced.
 */
export interface ControlServerOptions {
  /**
   * How long a streamed result may wait for a client that reads nothing (stopped with Ctrl-Z, a
   * hung disk) before the operation is failed (default 20 s): an operation streaming from the
   * server's own database connection (a backup of its embedded folder) holds the server's requests
   * until it ends, so a stalled client must not hold them for longer than this.
   */
  stallMs?: number
}

/** Default of ControlServerOptions.stallMs. */
export const CONTROL_STALL_MS = 20_000

export async function startControlServer(socketPath: string, operations: Record<string, ControlOperation>, options: ControlServerOptions = {}): Promise<ControlServer> {
  mkdirs(path.dirname(socketPath), 0o700)
  try {
    unlinkSync(socketPath)
  } catch {}
  const connections = new Set<Socket>()
  const server: Server = createServer((socket) => {
    connections.add(socket)
    socket.on('close', () => connections.delete(socket))
    socket.on('error', () => socket.destroy())
    handleConnection(socket, operations, options.stallMs ?? CONTROL_STALL_MS)
  })
  const umask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } finally {
    process.umask(umask)
  }
  chmodSync(socketPath, 0o600)
  let closing: Promise<void> | undefined
  return {
    path: socketPath,
    close() {
      closing ??= (async () => {
        for (const socket of connections) socket.destroy()
        await new Promise<void>((resolve) => server.close(() => resolve()))
        try {
          unlinkSync(socketPath)
        } catch {}
      })()
      return closing
    },
  }
}

function handleConnection(socket: Socket, operations: Record<string, ControlOperation>, stallMs: number): void {
  let buffer = ''
  let started = false
  const send = (message: unknown): boolean => (socket.destroyed ? false : socket.write(`${JSON.stringify(message)}\n`))
  const gone = () => new KintoError('The client closed the control connection.', {code: 'KINTO_INTERRUPTED'})
  const chunk = (data: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (socket.destroyed) return reject(gone())
      if (send({chunk: data.toString('base64')})) return resolve()
      const done = () => {
        clearTimeout(stall)
        socket.off('drain', done)
        socket.off('close', done)
        if (socket.destroyed) reject(gone())
        else resolve()
      }
      // The client reads nothing: fail the operation (and drop the client) rather than wait forever.
      const stall = setTimeout(() => {
        socket.off('drain', done)
        socket.off('close', done)
        socket.destroy()
        reject(
          new KintoError(`The client read nothing for ${Math.round(stallMs / 1000)} s; the operation was stopped so that the server keeps serving.`, {
            code: 'KINTO_CONTROL_STALLED',
          }),
        )
      }, stallMs)
      socket.on('drain', done)
      socket.on('close', done)
    })
  socket.setEncoding('utf8')
  socket.on('data', (data: string) => {
    if (started) return
    buffer += data
    const newline = buffer.indexOf('\n')
    if (newline < 0) {
      if (buffer.length > 1_000_000) socket.destroy()
      return
    }
    started = true
    let request: {op?: unknown; args?: unknown}
    try {
      request = JSON.parse(buffer.slice(0, newline)) as typeof request
    } catch {
      send({error: {code: 'KINTO_USAGE', message: 'The control request is not JSON.', exit: ExitCode.USAGE}})
      socket.end()
      return
    }
    const operation = typeof request.op === 'string' && Object.hasOwn(operations, request.op) ? operations[request.op] : undefined
    if (!operation) {
      send({error: {code: 'KINTO_USAGE', message: `This server has no control operation ${JSON.stringify(request.op)}.`, hint: 'Run the same kinto-ops version as the server.', exit: ExitCode.USAGE}})
      socket.end()
      return
    }
    const args = request.args && typeof request.args === 'object' ? (request.args as Record<string, unknown>) : {}
    const stream: ControlStream = {event: (event) => void send({event}), chunk}
    operation(args, stream).then(
      (result) => {
        send({result: result ?? null})
        socket.end()
      },
      (error: unknown) => {
        const e = isKintoError(error)
          ? {code: error.code, message: error.message, hint: error.hint, exit: error.exit}
          : {code: 'KINTO_UNEXPECTED', message: `unexpected failure in the server: ${(error as Error)?.message ?? String(error)}`, exit: ExitCode.FAILED}
        send({error: e})
        socket.end()
      },
    )
  })
}

export interface RunViaServerOptions {
  onEvent?: (event: unknown) => void
  /** A piece of a streamed result; when it returns a promise, the connection pauses until it settles (a rejection fails the run). */
  onChunk?: (chunk: Buffer) => void | Promise<void>
  /** Give up when the server has sent nothing for this long (default 10 min). */
  timeoutMs?: number
  /**
   * Told once, with a line to show, when the server has answered nothing at all for `waitNoticeMs`
   * (default 15 s): a server busy with a long statement, or hung, is waited for, not silently.
   * Default: the notice set by noticeSlowServersWith() (the CLI's stderr).
   */
  onWaiting?: (message: string) => void
  waitNoticeMs?: number
  /** Aborting closes the connection (the server's operation then stops) and fails with KINTO_INTERRUPTED. */
  signal?: AbortSignal
}

let slowServerNotice: ((message: string) => void) | undefined

/** Where runViaServer tells about a server that keeps a command waiting (the CLI: its stderr). */
export function noticeSlowServersWith(notice: ((message: string) => void) | undefined): void {
  slowServerNotice = notice
}

/**
 * Runs operation `op` with `args` in the server listening on `socketPath` and returns its result;
 * an error of the operation is thrown as the same KintoError (code, hint, exit code).
 */
export function runViaServer<T = unknown>(socketPath: string, op: string, args: Record<string, unknown>, options: RunViaServerOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const socket = createConnection(socketPath)
    let buffer = ''
    let settled = false
    const finish = (fn: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(notice)
      clearInterval(watch)
      options.signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      fn()
    }
    // Silence, not the whole run, is timed: a streamed result (a large backup) may take longer.
    const timeoutMs = options.timeoutMs ?? 600_000
    const silent = () => finish(() => reject(new KintoError(`The server at ${socketPath} sent nothing for ${Math.round(timeoutMs / 1000)} s while running ${op}.`, {code: 'KINTO_CONTROL_FAILED'})))
    let timer = setTimeout(silent, timeoutMs)
    // A server whose event loop is held (a long statement of the embedded engine, or a bug) takes
    // the connection and answers nothing: say what is waited for, and how to stop waiting.
    const pid = Number(path.basename(socketPath, '.sock'))
    const waitNoticeMs = options.waitNoticeMs ?? 15_000
    const notice = setTimeout(() => {
      const server = Number.isInteger(pid) ? `The server holding the embedded folder (pid ${pid})` : `The server at ${socketPath}`
      ;(options.onWaiting ?? slowServerNotice)?.(
        `${server} has not answered ${op} for ${waitNoticeMs / 1000} s: it is busy (a long statement) or hung. Still waiting, up to ${timeoutMs / 1000} s of silence; Ctrl-C stops waiting.`,
      )
    }, waitNoticeMs)
    notice.unref()
    // A server stopped with SIGSTOP or Ctrl-Z accepts the connection (the kernel does) and never
    // answers: say so at once rather than wait out the silence. (Its socket is named after its pid.)
    const watch = setInterval(() => {
      if (!Number.isInteger(pid) || !processStopped(pid)) return
      finish(() =>
        reject(
          new KintoError(`The server holding the embedded folder (pid ${pid}) is stopped (SIGSTOP, or Ctrl-Z in its terminal), so it cannot answer.`, {
            code: 'KINTO_CONTROL_FAILED',
            hint: `Let it go on (kill -CONT ${pid}, or fg in its terminal), then run this again.`,
          }),
        ),
      )
    }, 1000)
    watch.unref()
    const onAbort = () => finish(() => reject(new KintoError(`Interrupted: ${op} stopped.`, {code: 'KINTO_INTERRUPTED'})))
    if (options.signal?.aborted) return onAbort()
    options.signal?.addEventListener('abort', onAbort, {once: true})
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${JSON.stringify({op, args})}\n`))
    socket.on('data', (data: string) => {
      clearTimeout(notice)
      clearTimeout(timer)
      timer = setTimeout(silent, timeoutMs)
      buffer += data
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        let message: {event?: unknown; chunk?: string; result?: unknown; error?: {code: string; message: string; hint?: string; exit?: number}}
        try {
          message = JSON.parse(line) as typeof message
        } catch {
          continue
        }
        if ('event' in message) options.onEvent?.(message.event)
        else if (typeof message.chunk === 'string') {
          const wait = options.onChunk?.(Buffer.from(message.chunk, 'base64'))
          if (wait) {
            // the sink is full (a slow pipe): read nothing more until it drains (the server waits too)
            socket.pause()
            wait.then(
              () => {
                if (!settled) socket.resume()
              },
              (error: unknown) => finish(() => reject(error)),
            )
          }
        }
        else if ('result' in message) return finish(() => resolve(message.result as T))
        else if (message.error) {
          const e = message.error
          return finish(() => reject(new KintoError(e.message, {code: e.code, hint: e.hint, exit: (e.exit ?? ExitCode.FAILED) as ExitCodeValue})))
        }
      }
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const denied = error.code === 'EACCES'
      // Refused or gone: nothing listens any more (a server stopping, or killed outright).
      const why = denied ? 'permission denied (only the user running the server may use its control socket)' : error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'nothing listens on it (the server is stopping, or was killed)' : error.message
      finish(() =>
        reject(
          new KintoError(`Cannot reach the server through its control socket ${socketPath}: ${why}.`, {
            code: 'KINTO_CONTROL_FAILED',
            hint: denied ? 'Run this command as the user the server runs as.' : 'Run it again in a moment: once the server has stopped, the command works on the folder itself.',
          }),
        ),
      )
    })
    socket.on('close', () => finish(() => reject(new KintoError(`The server closed its control socket ${socketPath} before answering ${op}.`, {code: 'KINTO_CONTROL_FAILED'}))))
  })
}

/**
 * The control socket of the live server holding one of the embedded folders of `config`, or null.
 * The folder's lock file names the server and its ini; the server's run registry entry, its socket.
 */
export function serverHolding(config: {settings: Settings; dir: string; path: string}): {pid: number; control: string} | null {
  const folders = configuredBackends(config.settings, config.dir).flatMap((b) => (b.pgliteDir ? [b.pgliteDir] : []))
  for (const folder of new Set(folders)) {
    const holder = readFileLockHolder(pgliteLockPath(folder))
    if (!holder?.owner?.serves) continue
    const entry = listRuns(holder.owner.detail ?? config.path).find((e) => e.pid === holder.pid && e.control)
    if (entry?.control) return {pid: entry.pid, control: entry.control}
  }
  return null
}

/**
 * Runs `local()` — or, when a running server holds an embedded folder of `config`, the same
 * operation `op` inside that server through its control socket (same result, same errors).
 */
export async function viaServerWhenHeld<T>(
  config: {settings: Settings; dir: string; path: string},
  op: string,
  args: Record<string, unknown>,
  local: () => Promise<T>,
  options: RunViaServerOptions = {},
): Promise<T> {
  const server = serverHolding(config)
  return server ? runViaServer<T>(server.control, op, args, options) : local()
}

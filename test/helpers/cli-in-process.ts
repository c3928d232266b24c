/**
 * `kinto ARGS` run inside the test's own process: the same contract as `runCli` (cli.ts: exit code,
 * stdout, stderr, `input` then stdin closed, no TTY, NO_COLOR) without starting a process (about
 * a second each). oclif loads the commands from src/ as bin/dev.js does (the modules once per
 * process), and its `run()` takes the same path as the installed `kinto`: hooks, help,
 * `--version`, errors.
 *
 * For a command that needs a process of its own, use runCli: signals, a terminal, a server that
 * must outlive the call or be killed, a timeout, or a command whose process must not share state
 * with the test (modules read the environment once, when first loaded).
 *
 * What a run changes in this process is put back after it: process.exitCode, process.argv, the
 * environment, the working folder, stdin, stdout/stderr writes, `console` (vitest's, which oclif's
 * output goes through), and the listeners added to `process`.
 */
import {Console} from 'node:console'
import type {EventEmitter} from 'node:events'
import {Readable} from 'node:stream'

import type {Config} from '@oclif/core'

import {type CliOptions, type CliResult, cliBin, repoRoot} from './cli.js'

/**
 * The CLI's oclif configuration, commands and hooks read from the TypeScript sources, as bin/dev.js
 * loads them. New for each run, as in a new process: oclif's help rewrites the ids of the commands
 * it shows (`deploy:nginx` becomes `deploy nginx`), which a shared one would keep.
 */
async function devConfig(): Promise<Config> {
  const {Config, Plugin} = await import('@oclif/core')
  const nodeEnv = process.env.NODE_ENV
  process.env.NODE_ENV = 'development'
  try {
    const plugin = new Plugin({root: repoRoot, isRoot: true, ignoreManifest: true})
    await plugin.load()
    return await Config.load({root: repoRoot, plugins: new Map([[plugin.name, plugin]])})
  } finally {
    restoreEnvKey('NODE_ENV', nodeEnv)
  }
}

function restoreEnvKey(key: string, value: string | undefined): void {
  if (value === undefined) delete process.env[key]
  else process.env[key] = value
}

const PROCESS_EVENTS = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'uncaughtException', 'unhandledRejection', 'warning'] as const

/** `process` as the plain event emitter it is: its typings overload listeners() per event name, and no overload takes a union of names. */
const processEvents: EventEmitter = process

/** Runs `kinto ARGS` in this process. `timeoutMs` is not supported (nothing to kill): use runCli. */
export async function runCliInProcess(args: string[], options: Omit<CliOptions, 'timeoutMs'> = {}): Promise<CliResult> {
  const loaded = await devConfig()
  const [{run}, {Exit, handle}] = await Promise.all([import('@oclif/core'), import('@oclif/core/handle')])

  const saved = {
    argv: process.argv,
    exitCode: process.exitCode,
    cwd: process.cwd(),
    env: {...process.env},
    stdout: process.stdout.write,
    stderr: process.stderr.write,
    stdin: Object.getOwnPropertyDescriptor(process, 'stdin')!,
    console: globalThis.console,
    exit: Exit.exit,
    listeners: new Map(PROCESS_EVENTS.map((e) => [e, processEvents.listeners(e)])),
  }
  let stdout = ''
  let stderr = ''
  const capture = (append: (s: string) => void) =>
    function (this: NodeJS.WriteStream, chunk: string | Uint8Array, encoding?: unknown, cb?: unknown): boolean {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())
      const done = typeof encoding === 'function' ? encoding : cb
      if (typeof done === 'function') process.nextTick(done as () => void)
      return true
    }
  let exitCode: number | undefined
  process.argv = [process.execPath, cliBin, ...args]
  process.exitCode = undefined
  Object.assign(process.env, {NO_COLOR: '1', NODE_ENV: 'development'}, options.env)
  for (const [key, value] of Object.entries(options.env ?? {})) if (value === undefined) delete process.env[key]
  if (options.cwd) process.chdir(options.cwd)
  // stdin closed at once, or the input then closed; never a TTY.
  Object.defineProperty(process, 'stdin', {configurable: true, enumerable: saved.stdin.enumerable, value: Readable.from(options.input ? [Buffer.from(options.input)] : [])})
  process.stdout.write = capture((s) => (stdout += s)) as typeof process.stdout.write
  process.stderr.write = capture((s) => (stderr += s)) as typeof process.stderr.write
  // oclif prints through console.log/error: vitest's console would send that to its reporter.
  globalThis.console = new Console({stdout: process.stdout, stderr: process.stderr, colorMode: false})
  // oclif's error handler ends with process.exit(code) through this object (meant to be replaced in tests).
  // oclif types it `never`, as process.exit is; this stand-in records the code and returns, which
  // handle() tolerates: it calls exit() last (a `SIGINT` error's early exit(1) is followed by the
  // printing and exit() every error gets, which records the code again).
  Exit.exit = ((code = 0) => {
    exitCode = code
  }) as typeof Exit.exit
  try {
    try {
      await run(args, loaded)
    } catch (error) {
      await handle(error as Error)
    }
    return {code: exitCode ?? (typeof process.exitCode === 'number' ? process.exitCode : Number(process.exitCode ?? 0)), signal: null, stdout, stderr}
  } finally {
    globalThis.console = saved.console
    process.stdout.write = saved.stdout
    process.stderr.write = saved.stderr
    Exit.exit = saved.exit
    Object.defineProperty(process, 'stdin', saved.stdin)
    if (process.cwd() !== saved.cwd) process.chdir(saved.cwd)
    for (const key of Object.keys(process.env)) if (!(key in saved.env)) delete process.env[key]
    Object.assign(process.env, saved.env)
    process.argv = saved.argv
    process.exitCode = saved.exitCode
    for (const [event, before] of saved.listeners) {
      for (const listener of processEvents.listeners(event)) if (!before.includes(listener)) processEvents.removeListener(event, listener as (...a: unknown[]) => void)
    }
  }
}

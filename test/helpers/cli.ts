import {spawn} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/** Runs the TypeScript sources (no build needed). Set KINTO_TEST_BIN=bin/run.js to test the build. */
export const cliBin = path.join(repoRoot, process.env.KINTO_TEST_BIN ?? 'bin/dev.js')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Written to stdin, then closed. Without it stdin is closed at once (no TTY: never prompts). */
  input?: string
  timeoutMs?: number
  /** Run as this user (through runuser: the caller is root), e.g. to meet files it may not read. */
  user?: string
}

/** Runs `kinto ARGS` as a subprocess with stdin closed and no TTY, as CI does. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const command = options.user ? ['runuser', '-u', options.user, '--', process.execPath] : [process.execPath]
    const child = spawn(command[0]!, [...command.slice(1), cliBin, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: {...process.env, NO_COLOR: '1', ...options.env},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    })
    child.stdin.end(options.input ?? '')
  })
}

/** What a deploy command shows for a DeployResult: stdout text, one stderr line, and the exit code. */
import {ExitCode, type ExitCodeValue} from '../errors.js'
import type {DeployResult} from './index.js'

export interface DeployReport {
  /** Exactly the bytes to write to stdout (the snippet, or the diff), or ''. */
  stdout: string
  /** One line for stderr, or ''. */
  stderr: string
  exitCode: ExitCodeValue
}

export function reportDeployResult(result: DeployResult): DeployReport {
  switch (result.action) {
    case 'print':
      return {stdout: result.content, stderr: '', exitCode: ExitCode.OK}
    case 'write':
      return {stdout: '', stderr: `${result.replaced ? 'Replaced' : 'Wrote'} ${result.file}.`, exitCode: ExitCode.OK}
    case 'check':
      if (result.upToDate) return {stdout: '', stderr: `${result.file} is up to date.`, exitCode: ExitCode.OK}
      return {
        stdout: result.diff,
        stderr: result.missing
          ? `${result.file} does not exist; the diff above is the whole ${result.snippet} snippet.`
          : `${result.file} differs from what would be generated (diff above); to regenerate it, run the same command with --output ${result.file} --force instead of --check.`,
        exitCode: ExitCode.CHECK_FAILED,
      }
  }
}

/** runCliInProcess (test/helpers/cli-in-process.ts) answers what `kinto` in a process of its own answers. */
import os from 'node:os'

import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {runCliInProcess} from '../helpers/cli-in-process.js'

describe('runCliInProcess', () => {
  it('the same exit code, stdout and stderr as the subprocess: a hook, help, a usage error', async () => {
    const options = {cwd: os.tmpdir(), env: {KINTO_IN_PROCESS_PROBE: 'set'}}
    for (const args of [['migrat', '--json'], ['help', 'deploy', 'nginx'], ['status', '--timeout', 'soon']]) {
      const inProcess = await runCliInProcess(args, options)
      expect(inProcess, args.join(' ')).toEqual(await runCli(args, options))
    }
  }, 120_000)
})

import {mkdtempSync, readFileSync, readdirSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {captureOutput} from '@oclif/test'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

// Loaded before the tests pretend to be on a terminal (oclif measures the screen at load).
import Init from '../../src/commands/init.js'
import {repoRoot} from '../helpers/cli.js'

// Records every call into inquirer: none may happen without a person to answer.
const inquirerCalls: string[] = []
vi.mock('@inquirer/prompts', () => {
  const record = (name: string) => async () => {
    inquirerCalls.push(name)
    throw new Error(`inquirer.${name} was called`)
  }
  return {select: record('select'), input: record('input'), password: record('password'), confirm: record('confirm')}
})

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name)
    return statSync(p).isDirectory() ? sourceFiles(p) : /\.(ts|js|mjs|cjs)$/.test(name) ? [p] : []
  })
}

describe('the prompt gate', () => {
  it('only src/lib/interactive.ts reaches inquirer, and only after canPrompt()', () => {
    const users = sourceFiles(path.join(repoRoot, 'src'))
      .filter((f) => /@inquirer\//.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(repoRoot, f))
    expect(users).toEqual(['src/lib/interactive.ts'])

    // Inside it, every function that loads inquirer calls gate() (which checks canPrompt()) first.
    const text = readFileSync(path.join(repoRoot, 'src/lib/interactive.ts'), 'utf8')
    expect(text).not.toMatch(/^import .*@inquirer/m)
    const bodies = text.split(/\nexport (?:async )?function /).slice(1)
    const loaders = bodies.filter((b) => b.includes("import('@inquirer/prompts')"))
    expect(loaders.length).toBeGreaterThanOrEqual(4)
    for (const body of loaders) {
      const gate = body.indexOf('gate(')
      expect(gate, body.split('\n')[0]).toBeGreaterThan(-1)
      expect(gate).toBeLessThan(body.indexOf("import('@inquirer/prompts')"))
    }
    expect(text).toMatch(/function gate\([^)]*\): void \{\n\s+if \(!canPrompt\(\)\) throw/)
  })

  describe('with CI set (even on a terminal)', () => {
    const saved = {ci: process.env.CI, stdin: process.stdin.isTTY, stdout: process.stdout.isTTY}
    beforeEach(() => {
      inquirerCalls.length = 0
      process.env.CI = 'true'
      Object.defineProperty(process.stdin, 'isTTY', {value: true, configurable: true})
      Object.defineProperty(process.stdout, 'isTTY', {value: true, configurable: true})
    })
    afterEach(() => {
      if (saved.ci === undefined) delete process.env.CI
      else process.env.CI = saved.ci
      Object.defineProperty(process.stdin, 'isTTY', {value: saved.stdin, configurable: true})
      Object.defineProperty(process.stdout, 'isTTY', {value: saved.stdout, configurable: true})
    })

    it('every ask* refuses with a usage error naming the flag, and inquirer is never called', async () => {
      const {askSelect, askInput, askPassword, askConfirm, canPrompt} = await import('../../src/lib/interactive.js')
      expect(canPrompt()).toBe(false)
      await expect(askSelect('Backend', [{value: 'a'}], {flagHint: 'Pass --backend.'})).rejects.toMatchObject({
        code: 'KINTO_NO_TTY',
        exit: 2,
        message: 'Cannot ask "Backend": no terminal to answer (stdin/stdout not a TTY, or CI is set).',
        hint: 'Pass --backend.',
      })
      await expect(askInput('URL')).rejects.toMatchObject({code: 'KINTO_NO_TTY'})
      await expect(askPassword('Password')).rejects.toMatchObject({code: 'KINTO_NO_TTY'})
      await expect(askConfirm('Sure?')).rejects.toMatchObject({code: 'KINTO_NO_TTY'})
      expect(inquirerCalls).toEqual([])
    })

    it('kinto init never prompts: it uses the defaults and says so', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-init-ci-'))
      const file = path.join(dir, 'kinto.ini')
      // (What it prints is checked on a real terminal in test/integration/init.integration.test.ts.)
      const {result, error} = await captureOutput(() => Init.run(['--ini', file], repoRoot))
      expect(error).toBeUndefined()
      expect(inquirerCalls).toEqual([])
      expect(result).toEqual({
        path: file,
        backend: 'embedded',
        cacheBackend: 'embedded',
        host: '127.0.0.1',
        nextSteps: [`kinto migrate --ini ${file}`, `kinto check --ini ${file}`, `kinto start --ini ${file}`],
      })
      expect(readFileSync(file, 'utf8')).toContain('kinto.storage_url = pglite:%(here)s/kinto-data')
    })
  })
})

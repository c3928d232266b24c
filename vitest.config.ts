import {readdirSync, readFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import path from 'node:path'

import {defineConfig, type TestProjectInlineConfiguration} from 'vitest/config'

const FAST = ['test/unit', 'test/server', 'test/contract']

const fastFiles = FAST.flatMap((dir) =>
  readdirSync(dir, {recursive: true, encoding: 'utf8'})
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f)),
)
const uses = (pattern: RegExp) => fastFiles.filter((f) => pattern.test(readFileSync(f, 'utf8')))

/**
 * The fast lane's files share their worker's process and loaded modules, file after file (each
 * process start and its imports cost seconds), except:
 * - a file that replaces a module (vi.mock) for whoever loads it next: a process of its own;
 * - the files that run the CLI in-process (test/helpers/cli-in-process.ts): oclif loads the
 *   commands outside vitest's modules (tsx's loader) and a command may set V8 flags; they share
 *   processes among themselves, not with the others.
 */
const ownProcess = uses(/\bvi\.mock\(/)
const cliInProcess = uses(/helpers\/cli-in-process\.js/).filter((f) => !ownProcess.includes(f))
const fastInclude = FAST.map((dir) => `${dir}/**/*.test.ts`)

/**
 * Two lanes: `fast` (unit, server and contract tests: in-process, seconds each; the projects
 * `fast`, `fast-cli` and `fast-isolated`, see above) and `slow` (integration and client tests: real
 * servers, subprocesses, browsers). `npm test` runs both; `npm run test:fast` / `npm run test:slow`
 * run one. The fast lane has two workers at least: vitest's default (one less than the cores) is
 * one on a 2-core machine, where the main process is mostly idle.
 */
/** A project of the fast lane: two workers at least (see above), the schema folder (schema-setup.ts). */
function fast(name: string, test: {include: string[]; exclude?: string[]; isolate?: boolean}): TestProjectInlineConfiguration {
  return {extends: true, test: {name, maxWorkers: Math.max(2, availableParallelism() - 1), globalSetup: ['./test/helpers/schema-setup.ts'], ...test}}
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['./test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      fast('fast', {include: fastInclude, exclude: [...ownProcess, ...cliInProcess], isolate: false}),
      fast('fast-cli', {include: cliInProcess, isolate: false}),
      fast('fast-isolated', {include: ownProcess}),
      // After the fast lane (its own group: vitest's default number of workers).
      {extends: true, test: {name: 'slow', include: ['test/integration/**/*.test.ts', 'test/client/**/*.test.ts'], sequence: {groupOrder: 1}}},
    ],
  },
})

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
 * KINTO_TEST_DATABASE_ONLY=1 (CI's second run, on the PostgreSQL server) leaves out the test files
 * whose outcome cannot depend on the database the run tests: those that reach neither
 * test/helpers/db.ts nor KINTO_TEST_DATABASE_URL through their imports (from the test folders).
 * They ran the same way in the first run (62 of 147 files; in the second they took 2.3 of the slow
 * lane's 20 minutes, run one at a time).
 */
function databaseBlind(): string[] {
  const files = readdirSync('test', {recursive: true, encoding: 'utf8'}).filter((f) => f.endsWith('.ts')).map((f) => path.join('test', f))
  const text = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]))
  const chooses = /\bKINTO_TEST_DATABASE_URL\b|helpers\/db\.js'/
  const importsOf = (file: string) =>
    [...(text.get(file) ?? '').matchAll(/(?:from |import\()'(\.{1,2}\/[^']+)\.js'/g)].map((m) => path.join(path.dirname(file), `${m[1]}.ts`)).filter((f) => text.has(f))
  const dependsOnDatabase = (testFile: string): boolean => {
    const reached = new Set([testFile])
    for (const file of reached) {
      if (chooses.test(text.get(file) ?? '')) return true
      for (const next of importsOf(file)) reached.add(next)
    }
    return false
  }
  return files.filter((f) => f.endsWith('.test.ts') && !dependsOnDatabase(f))
}
const laneSkip = process.env.KINTO_TEST_DATABASE_ONLY ? databaseBlind() : []

/**
 * Two lanes: `fast` (unit, server and contract tests: in-process, seconds each; the projects
 * `fast`, `fast-cli` and `fast-isolated`, see above) and `slow` (integration and client tests: real
 * servers, subprocesses, browsers; the projects `slow` and `slow-alone`, see below). `npm test` runs
 * both; `npm run test:fast` / `npm run test:slow` run one. Both have two workers at least: vitest's
 * default (one less than the cores) is one on a 2-core machine, where the main process is mostly idle.
 */
const workers = Math.max(2, availableParallelism() - 1)

/**
 * The slow lane's files mostly wait on what they start (servers, subprocesses, a browser): two run
 * at a time (on 2 cores, 20 → 13 minutes on PostgreSQL), except the files that assert how long
 * something takes or load the machine on purpose (the fault tests, `--workers`, live toggles
 * noticed within a second, scrapes within 3 s): one at a time, after the others ('slow-alone').
 */
const SLOW = ['test/integration/**/*.test.ts', 'test/client/**/*.test.ts']
const slowAlone = [
  'test/integration/faults-*.integration.test.ts',
  'test/integration/proxy-*.integration.test.ts',
  'test/integration/start-workers.integration.test.ts',
  'test/integration/prometheus-workers.integration.test.ts',
  'test/integration/ops-live.integration.test.ts',
  'test/integration/db-drivers.integration.test.ts',
]

/** A project of the fast lane: its workers (see above), the schema folder (schema-setup.ts). */
function fast(name: string, test: {include: string[]; exclude?: string[]; isolate?: boolean}): TestProjectInlineConfiguration {
  return {extends: true, test: {name, maxWorkers: workers, globalSetup: ['./test/helpers/schema-setup.ts'], ...test}}
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['./test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      fast('fast', {include: fastInclude, exclude: [...ownProcess, ...cliInProcess, ...laneSkip], isolate: false}),
      fast('fast-cli', {include: cliInProcess, exclude: laneSkip, isolate: false}),
      fast('fast-isolated', {include: ownProcess, exclude: laneSkip}),
      // After the fast lane, each in a group of its own (projects with different maxWorkers cannot share one).
      {extends: true, test: {name: 'slow', include: SLOW, exclude: [...slowAlone, ...laneSkip], maxWorkers: workers, sequence: {groupOrder: 1}}},
      {extends: true, test: {name: 'slow-alone', include: slowAlone, exclude: laneSkip, maxWorkers: 1, sequence: {groupOrder: 2}}},
    ],
  },
})

import {defineConfig} from 'vitest/config'

/**
 * Two lanes: `fast` (unit, server and contract tests: in-process, seconds each) and `slow`
 * (integration and client tests: real servers, subprocesses, browsers). `npm test` runs both;
 * `npm run test:fast` / `npm run test:slow` run one.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['./test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {extends: true, test: {name: 'fast', include: ['test/unit/**/*.test.ts', 'test/server/**/*.test.ts', 'test/contract/**/*.test.ts']}},
      {extends: true, test: {name: 'slow', include: ['test/integration/**/*.test.ts', 'test/client/**/*.test.ts']}},
    ],
  },
})

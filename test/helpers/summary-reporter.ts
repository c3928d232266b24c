import type {Reporter, TestCase, TestModule, Vitest} from 'vitest/node'

/**
 * Prints, after vitest's own report:
 * - one `SKIPPED (N): reason` line per reason tests were skipped for: the note of `ctx.skip(note)`,
 *   or the `SKIPPED: …` a skipped test or group carries in its name (vitest's default reporter
 *   shows neither); a test skipped without either (an `it.skip`, a `test.todo` left behind) is
 *   listed as such, so that no skip is silent
 *   (not when a -t pattern filters the tests: those it leaves out are skipped too);
 * - the slowest files with their durations (collection, hooks and tests), so that a CI log says
 *   where a lane's time went;
 * - then one closing line `N passed, N failed, N skipped`, so that CI logs (and the tools that read
 *   them) see the totals in a plain, runner-independent form.
 */
export default class SummaryReporter implements Reporter {
  private filtered = false

  onInit(vitest: Vitest): void {
    this.filtered = vitest.config.testNamePattern !== undefined
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    const reasons = new Map<string, number>()
    const unexplained: string[] = []
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const result = test.result()
        if (result.state === 'passed') passed++
        else if (result.state === 'failed') failed++
        else {
          skipped++
          const reason = skipReason(test)
          if (reason) reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
          else if (!this.filtered) unexplained.push(`${mod.relativeModuleId} > ${test.fullName}${test.options.mode === 'todo' ? ' (todo)' : ''}`)
        }
      }
      // A file that failed to load counts as a failure even though it has no tests.
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++
    }
    failed += unhandledErrors.length
    const lines = [...reasons].map(([reason, n]) => `SKIPPED (${n}): ${reason}`)
    if (unexplained.length > 0) lines.push(`SKIPPED without a reason (${unexplained.length}):`, ...unexplained.map((name) => `  ${name}`))
    lines.push(...slowest(testModules))
    process.stdout.write(`${lines.length > 0 ? `\n${lines.join('\n')}\n` : ''}\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}

/** The files that took longest, a line each (seconds, then the file), when there are several. */
function slowest(testModules: ReadonlyArray<TestModule>, count = SLOWEST_SHOWN): string[] {
  if (testModules.length < 2) return []
  const timed = testModules.map((mod) => {
    const d = mod.diagnostic()
    return {name: mod.relativeModuleId, seconds: (d.collectDuration + d.duration) / 1000}
  })
  timed.sort((a, b) => b.seconds - a.seconds)
  const shown = timed.slice(0, count)
  return [`Slowest files (${shown.length} of ${timed.length}):`, ...shown.map((t) => `  ${t.seconds.toFixed(1).padStart(7)} s  ${t.name}`)]
}
const SLOWEST_SHOWN = 25

/** Why a skipped test was skipped: its ctx.skip note, else the `SKIPPED: …` of its name or a group's. */
function skipReason(test: TestCase): string | undefined {
  const result = test.result()
  if (result.state === 'skipped' && result.note) return result.note.replace(/^SKIPPED:?\s*/, '')
  const m = /(\()?SKIPPED:?\s*(.*?)(?= > |$)/.exec(test.fullName)
  if (!m) return undefined
  return m[1] && m[2].endsWith(')') ? m[2].slice(0, -1) : m[2]
}

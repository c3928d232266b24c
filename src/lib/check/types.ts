/** One line of a `kinto check` report. */
export type FindingLevel = 'error' | 'warning' | 'ok'

export interface Finding {
  /** Stable identifier of the check (e.g. `http-scheme`); scripts may match on it. */
  id: string
  level: FindingLevel
  /** What was found, in one or two sentences (secrets never shown). */
  message: string
  /** What to change (a setting line, a command); null when there is nothing to change. */
  fix: string | null
}

export interface CheckSummary {
  errors: number
  warnings: number
  ok: number
}

export interface CheckReport {
  /** What was checked: the ini file, or the URL probed. */
  target: {kind: 'ini'; path: string} | {kind: 'url'; url: string}
  findings: Finding[]
  summary: CheckSummary
}

export function ok(id: string, message: string): Finding {
  return {id, level: 'ok', message, fix: null}
}

export function warning(id: string, message: string, fix: string): Finding {
  return {id, level: 'warning', message, fix}
}

export function error(id: string, message: string, fix: string): Finding {
  return {id, level: 'error', message, fix}
}

export function summarize(findings: readonly Finding[]): CheckSummary {
  const summary: CheckSummary = {errors: 0, warnings: 0, ok: 0}
  for (const f of findings) {
    if (f.level === 'error') summary.errors++
    else if (f.level === 'warning') summary.warnings++
    else summary.ok++
  }
  return summary
}

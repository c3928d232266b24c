/** The readable `kinto check` report: errors first, then warnings, then what is fine. */
import {Chalk} from 'chalk'

import type {CheckReport, FindingLevel} from './types.js'

export interface RenderOptions {
  /** ANSI colours (the command decides: a TTY, and neither NO_COLOR nor TERM=dumb). */
  color?: boolean
  /** Leave out the `ok` lines. */
  problemsOnly?: boolean
}

const ORDER: FindingLevel[] = ['error', 'warning', 'ok']
const LABEL: Record<FindingLevel, string> = {error: 'ERROR', warning: 'WARN ', ok: 'ok   '}

export function renderReport(report: CheckReport, options: RenderOptions = {}): string {
  const c = new Chalk({level: options.color ? 1 : 0})
  const paint: Record<FindingLevel, (s: string) => string> = {error: c.red.bold, warning: c.yellow, ok: c.green}
  const lines: string[] = []
  const what = report.target.kind === 'ini' ? report.target.path : report.target.url
  lines.push(c.bold(`kinto check ${what}`), '')
  for (const level of ORDER) {
    if (level === 'ok' && options.problemsOnly) continue
    for (const f of report.findings.filter((x) => x.level === level)) {
      lines.push(`${paint[level](LABEL[level])} ${c.bold(f.id)}: ${f.message}`)
      if (f.fix) lines.push(`      ${c.dim('fix:')} ${f.fix}`)
    }
  }
  const {errors, warnings, ok} = report.summary
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  lines.push('')
  const verdict = errors > 0 ? paint.error('not ready for production') : warnings > 0 ? paint.warning('review the warnings') : paint.ok('all good')
  lines.push(`${plural(errors, 'error')}, ${plural(warnings, 'warning')}, ${ok} ok: ${verdict}.`)
  return lines.join('\n') + '\n'
}

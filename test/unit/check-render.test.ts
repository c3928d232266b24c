/** The readable `kinto check` report: errors first, fixes under them, plain without colour. */
import {describe, expect, it} from 'vitest'

import {type CheckReport, renderReport} from '../../src/lib/check/index.js'

const report: CheckReport = {
  target: {kind: 'ini', path: '/etc/kinto/kinto.ini'},
  findings: [
    {id: 'paginate-by', level: 'ok', message: 'kinto.paginate_by = 100.', fix: null},
    {id: 'http-host', level: 'warning', message: 'kinto.http_host is not set.', fix: 'Set kinto.http_host.'},
    {id: 'flush-endpoint', level: 'error', message: 'The flush endpoint is enabled.', fix: 'Remove kinto.plugins.flush.'},
  ],
  summary: {errors: 1, warnings: 1, ok: 1},
}

describe('renderReport', () => {
  it('lists errors, then warnings, then ok lines, each problem with its fix', () => {
    expect(renderReport(report)).toBe(
      [
        'kinto check /etc/kinto/kinto.ini',
        '',
        'ERROR flush-endpoint: The flush endpoint is enabled.',
        '      fix: Remove kinto.plugins.flush.',
        'WARN  http-host: kinto.http_host is not set.',
        '      fix: Set kinto.http_host.',
        'ok    paginate-by: kinto.paginate_by = 100.',
        '',
        '1 error, 1 warning, 1 ok: not ready for production.',
        '',
      ].join('\n'),
    )
  })

  it('has no escape codes without colour, and some with it', () => {
    // eslint-disable-next-line no-control-regex
    const ansi = /\u001b\[/
    expect(renderReport(report, {color: false})).not.toMatch(ansi)
    expect(renderReport(report, {color: true})).toMatch(ansi)
  })

  it('--quiet leaves out the ok lines', () => {
    const text = renderReport(report, {problemsOnly: true})
    expect(text).not.toContain('paginate-by')
    expect(text).toContain('1 error, 1 warning, 1 ok')
  })

  it('says all good when there is nothing to change', () => {
    const clean: CheckReport = {target: {kind: 'url', url: 'https://kinto.example.com/v1/'}, findings: [report.findings[0]], summary: {errors: 0, warnings: 0, ok: 1}}
    expect(renderReport(clean)).toMatch(/^kinto check https:\/\/kinto\.example\.com\/v1\/\n[\s\S]*0 errors, 0 warnings, 1 ok: all good\.\n$/)
  })
})

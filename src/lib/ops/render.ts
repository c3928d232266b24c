/** Human-readable lines for the results of the ops commands (the --json output is the result itself). */
import type {ReloadResult, ServerReport} from './reload.js'
import type {StatusResult, ToggleStatus} from './status.js'
import type {ToggleResult} from './toggle.js'

function who(s: {pid: number; role: string; url: string | null}): string {
  const role = s.role === 'server' ? '' : ` (${s.role})`
  return `pid ${s.pid}${role}${s.url ? ` ${s.url}` : ''}`
}

function serverLine(s: ServerReport): string {
  const restart = s.needRestart.length ? `; needs a restart for ${s.needRestart.join(', ')}` : ''
  switch (s.outcome) {
    case 'reloaded':
      return `  ${who(s)}: took it${restart}`
    case 'restarted':
      return `  ${who(s)}: workers restarted${restart}`
    case 'failed':
      return `  ${who(s)}: REJECTED the file, kept its settings: ${s.message}`
    case 'restart-failed':
      return `  ${who(s)}: NOT restarted: ${s.message}`
    case 'gone':
      return `  ${who(s)}: stopped meanwhile`
    default:
      return `  ${who(s)}: did NOT take it (${s.message ?? s.outcome})`
  }
}

export function renderReload(reload: ReloadResult, verb = 'reload'): string[] {
  if (reload.servers.length === 0) return ['No running server uses this ini: the change applies when one starts.']
  const lines: string[] = []
  if (!reload.requested) {
    const stale = reload.servers.filter((s) => s.outcome !== 'reloaded')
    lines.push(
      stale.length
        ? `Not reloaded (--no-reload): ${stale.length} process(es) keep their settings until \`kinto reload\` or SIGHUP.`
        : 'Every running process already runs this file.',
    )
    return lines
  }
  lines.push(reload.ok ? `Running servers (${verb}):` : `Running servers (${verb}) — NOT all took it:`)
  for (const s of reload.servers) lines.push(serverLine(s))
  return lines
}

function describeToggle(r: ToggleResult): string {
  const until = r.until ? ` until ${r.until}` : ''
  if (r.state === 'off') return `${r.toggle}: off.`
  switch (r.toggle) {
    case 'backoff':
      return `backoff: clients are asked to wait ${r.seconds} s (Backoff header on ${r.percentage === undefined ? 'every response' : `${r.percentage}% of responses`})${until}.`
    case 'readonly':
      return `readonly: writes are answered 405${until}.`
    case 'maintenance':
      return `maintenance: writes are answered 503 with Retry-After, reads are served${until}.`
  }
}

export function renderToggle(r: ToggleResult): string[] {
  const lines: string[] = []
  if (r.changes.length === 0) lines.push(`${r.ini}: unchanged (already so).`)
  for (const c of r.changes) {
    const to = c.to === null ? 'removed' : `= ${c.to}`
    const from = c.from === null ? 'unset' : c.from
    lines.push(`${r.ini}${c.line ? `:${c.line}` : ''}: ${c.key} ${to} (was ${from})`)
  }
  lines.push(describeToggle(r))
  if (r.overriddenBy.length) {
    lines.push(`Warning: ${r.overriddenBy.join(', ')} is set in this environment and overrides the ini; servers started with it ignore this change.`)
  }
  lines.push(...renderReload(r.reload))
  return lines
}

function toggleWord(t: ToggleStatus, on: string): string {
  if (t.expired) return `off (expired ${t.until})`
  if (!t.active) return 'off'
  return t.until ? `${on} until ${t.until}` : on
}

/** The running servers of an ini, a line or two each (`unreadable`: the ini as it is cannot be loaded). */
function serverLines(servers: StatusResult['servers'], unreadable = false): string[] {
  if (servers.length === 0) return ['  running servers: none found']
  const lines: string[] = []
  for (const s of servers) {
    const applied = [s.backoff !== null ? `backoff ${s.backoff}` : null, s.readonly ? 'readonly' : null, s.maintenance ? 'maintenance' : null].filter(Boolean)
    const older = unreadable ? 'runs an OLDER version of the file (fix the ini, then kinto reload)' : 'runs an OLDER version of the file (kinto reload)'
    const state = s.reloadError ? `rejected the current file (${s.reloadError})` : s.current ? 'runs the current file' : older
    lines.push(`  ${who(s)}: ${state}${applied.length ? `; ${applied.join(', ')}` : ''}`)
    if (s.needRestart.length) lines.push(`    needs a restart for: ${s.needRestart.join(', ')}`)
  }
  return lines
}

export function renderStatus(r: StatusResult): string[] {
  const lines: string[] = []
  if (r.configError && r.ini) {
    lines.push(`Ini: ${r.ini}`, `  cannot be read: ${r.configError.message}`)
    if (r.configError.hint) lines.push(`  hint: ${r.configError.hint}`)
    lines.push(...serverLines(r.servers, true))
  }
  if (r.configured && r.ini) {
    const c = r.configured
    lines.push(`Ini: ${r.ini}`)
    const pct = c.backoff.percentage === null ? '' : ` on ${c.backoff.percentage}% of responses`
    lines.push(`  backoff:     ${toggleWord(c.backoff, `${c.backoff.seconds} s${pct}`)}`)
    lines.push(`  readonly:    ${toggleWord(c.readonly, 'on')}`)
    lines.push(`  maintenance: ${toggleWord(c.maintenance, 'on')}`)
    if (c.eos.date) lines.push(`  end of service: ${c.eos.date} (${c.eos.state === 'hard' ? 'passed: 410 Gone' : c.eos.state === 'soft' ? 'announced: Alert header' : 'unreadable date'})`)
    for (const e of r.embedded) {
      lines.push(`  embedded database ${e.folder}: ${e.heldBy ? `open in pid ${e.heldBy.pid} (${e.heldBy.command})` : e.unknown ? `cannot tell: ${e.unknown}` : 'not open'}`)
    }
    lines.push(...serverLines(r.servers))
  }
  if (r.remote) {
    const m = r.remote
    lines.push(`Server: ${m.url}`)
    if (!m.reachable) {
      lines.push(`  unreachable: ${m.error}`)
    } else {
      lines.push(`  heartbeat:   ${m.heartbeat ? `${m.heartbeat.status}${m.healthy ? ' ok' : ` ${JSON.stringify(m.heartbeat.body)}`}` : `failed: ${m.error}`}`)
      lines.push(`  backoff:     ${m.backoff ? `${m.backoff} s (Backoff header)` : 'no Backoff header'}`)
      lines.push(`  readonly:    ${m.readonly ? 'on' : 'off'}`)
      lines.push(`  maintenance: ${m.maintenance ? 'on' : 'off'}`)
      if (m.eos || m.alert) lines.push(`  end of service: ${m.eos ?? ''}${m.alert ? ` (Alert: ${m.alert})` : ''}`)
      if (m.version) lines.push(`  version:     ${m.version}`)
    }
  }
  return lines
}

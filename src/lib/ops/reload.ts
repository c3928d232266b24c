/**
 * Making running runtimes take the ini as it now is: SIGHUP to each `kinto start` of the ini
 * (single servers and primaries; a primary passes it to its workers), then wait until every
 * process, workers included, reports the new file's sha256 in the run registry.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {type AppliedToggles, listRuns, type RunEntry, type RunRole, sha256File, signalRuns, waitForConfig} from '../runs/registry.js'

export interface ServerReport {
  pid: number
  role: RunRole
  url: string | null
  /**
   * reloaded: it runs the file as it is now; failed: it rejected the file (kept its settings);
   * unreachable: the signal could not be sent; timeout: no answer in time; gone: it stopped;
   * restarted: (restart) a new generation of workers runs; restart-failed: (restart) a new worker
   * could not start, the running ones were kept.
   */
  outcome: 'reloaded' | 'failed' | 'unreachable' | 'timeout' | 'gone' | 'restarted' | 'restart-failed' | 'not-restartable'
  message?: string
  toggles?: AppliedToggles
  needRestart: string[]
}

export interface ReloadResult {
  /** False with --no-reload: nothing was signalled. */
  requested: boolean
  /** sha256 of the ini the servers were asked to take. */
  configHash: string
  servers: ServerReport[]
  /** Every server runs the file as it is now (true when there is none). */
  ok: boolean
}

export interface ReloadOptions {
  /** How long to wait for the runtimes to report (default 3 s). */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

function report(entry: RunEntry, outcome: ServerReport['outcome'], message?: string): ServerReport {
  return {pid: entry.pid, role: entry.role, url: entry.url, outcome, message, toggles: entry.toggles, needRestart: entry.needRestart ?? []}
}

/** The servers of the ini as they are, without signalling (for --no-reload and status). */
export function describeServers(iniPath: string, env: NodeJS.ProcessEnv = process.env): {configHash: string; servers: ServerReport[]} {
  return serversAgainst(sha256File(iniPath), iniPath, env)
}

/**
 * The servers of an ini this user may not read (status): listed all the same, none known to run
 * the current file.
 */
export function describeServersOfUnreadable(iniPath: string, env: NodeJS.ProcessEnv = process.env): ServerReport[] {
  return serversAgainst(null, iniPath, env).servers
}

function serversAgainst<H extends string | null>(configHash: H, iniPath: string, env: NodeJS.ProcessEnv): {configHash: H; servers: ServerReport[]} {
  const servers = listRuns(iniPath, env).map((e) => {
    if (e.configHash === configHash) return report(e, 'reloaded')
    if (e.reloadError?.configHash === configHash) return report(e, 'failed', e.reloadError.message)
    return report(e, 'timeout', 'runs an older version of the file (not reloaded)')
  })
  return {configHash, servers}
}

/** Signals every runtime of the ini that does not run the current file yet, and waits for them. */
export async function reloadServers(iniPath: string, options: ReloadOptions = {}): Promise<ReloadResult> {
  const env = options.env ?? process.env
  const configHash = sha256File(iniPath)
  const entries = listRuns(iniPath, env)
  const stale = entries.filter((e) => e.configHash !== configHash)
  // Workers get the signal from their primary (an operator's `kill -HUP <primary>` works the same).
  const primaries = new Set(entries.filter((e) => e.role === 'primary').map((e) => e.pid))
  const targets = stale.filter((e) => e.role !== 'worker' || !primaries.has(e.primaryPid ?? -1))
  const targetPrimaries = new Set(targets.filter((t) => t.role === 'primary').map((t) => t.pid))
  // A worker whose primary is up to date (e.g. a worker restarted meanwhile) is signalled itself.
  for (const w of stale) {
    if (w.role === 'worker' && primaries.has(w.primaryPid ?? -1) && !targetPrimaries.has(w.primaryPid!)) targets.push(w)
  }
  const sent = new Map(signalRuns(targets, 'SIGHUP').map((s) => [s.pid, s]))
  const unreachable = new Set<number>()
  for (const t of targets) {
    const s = sent.get(t.pid)!
    if (s.sent) continue
    unreachable.add(t.pid)
    if (t.role === 'primary') for (const w of stale) if (w.primaryPid === t.pid) unreachable.add(w.pid)
  }
  const waitFor = stale.filter((e) => !unreachable.has(e.pid)).map((e) => e.pid)
  const waited = new Map((await waitForConfig(iniPath, waitFor, configHash, {timeoutMs: options.timeoutMs, env})).map((w) => [w.pid, w]))
  const servers = entries.map((e): ServerReport => {
    if (e.configHash === configHash) return report(e, 'reloaded')
    if (unreachable.has(e.pid)) {
      const s = sent.get(e.pid)
      return report(e, 'unreachable', s && !s.sent ? s.error : 'its primary could not be signalled')
    }
    const w = waited.get(e.pid)!
    if (w.outcome === 'gone') return {pid: e.pid, role: e.role, url: e.url, outcome: 'gone', needRestart: []}
    if (w.outcome === 'failed') return report(w.entry, 'failed', w.message)
    if (w.outcome === 'timeout') return report(w.entry, 'timeout', `no answer within ${Math.round((options.timeoutMs ?? 3000) / 100) / 10} s`)
    return report(w.entry, 'reloaded')
  })
  return {requested: true, configHash, servers, ok: servers.every((s) => s.outcome === 'reloaded' || s.outcome === 'gone')}
}

/**
 * Rolling restart of the workers of every primary of the ini (SIGUSR2), waiting until each
 * primary reports a finished restart. Single servers cannot restart in place (their process
 * manager restarts them): reported as not-restartable.
 */
export async function restartServers(iniPath: string, options: ReloadOptions & {timeoutMs?: number} = {}): Promise<ReloadResult> {
  const env = options.env ?? process.env
  const timeoutMs = options.timeoutMs ?? 120_000
  const entries = listRuns(iniPath, env)
  const configHash = sha256File(iniPath)
  const primaries = entries.filter((e) => e.role === 'primary')
  const before = new Map(primaries.map((p) => [p.pid, p.reloadedAt ?? '']))
  const failedBefore = new Map(primaries.map((p) => [p.pid, p.restartError?.at ?? '']))
  const sent = new Map(signalRuns(primaries, 'SIGUSR2').map((s) => [s.pid, s]))
  const deadline = Date.now() + timeoutMs
  const servers: ServerReport[] = []
  for (const p of primaries) {
    const s = sent.get(p.pid)!
    if (!s.sent) {
      servers.push(report(p, 'unreachable', s.error))
      continue
    }
    let outcome: ServerReport | undefined
    while (!outcome) {
      const now = listRuns(iniPath, env).find((e) => e.pid === p.pid)
      if (!now) outcome = {pid: p.pid, role: p.role, url: p.url, outcome: 'gone', message: 'it stopped during the restart', needRestart: []}
      else if (now.restartError && now.restartError.at !== failedBefore.get(p.pid)) {
        outcome = report(now, 'restart-failed', `a new worker could not start (${now.restartError.message}); the running workers were kept`)
      }
      else if ((now.reloadedAt ?? '') !== before.get(p.pid) && now.configHash === configHash) outcome = report(now, 'restarted')
      else if (Date.now() >= deadline) outcome = report(now, 'timeout', `the restart did not finish within ${Math.round(timeoutMs / 1000)} s`)
      else await sleep(100)
    }
    servers.push(outcome)
  }
  for (const e of entries) {
    if (e.role === 'server') servers.push(report(e, 'not-restartable', 'a single process cannot restart itself: restart it with its process manager'))
  }
  return {
    requested: true,
    configHash,
    servers,
    // A primary gone during its restart leaves nothing serving: not a success.
    ok: servers.every((s) => s.outcome === 'restarted'),
  }
}

/**
 * `kinto check`: upstream's production checklist as a linter over an ini (settings, then the
 * database when asked), and a probe of a live deployment (`probeDeployment`). Library verbs:
 * they return findings and never print or exit.
 */
import {describeSettingSource, type KintoConfig, loadConfig} from '../config/index.js'
import {maskUrl} from '../db/url.js'
import {isKintoError, KintoError} from '../errors.js'
import {workersFromIni, workersRefusal} from '../serve/options.js'
import {checkAttachments} from './attachments-check.js'
import {checkCache} from './cache-check.js'
import {checkDatabases} from './database-checks.js'
import {checkOpenId} from './openid-check.js'
import {checkSentry} from './sentry-check.js'
import {SETTINGS_CHECKS} from './settings-checks.js'
import {checkStatsd} from './statsd-check.js'
import {type CheckReport, type Finding, error, summarize, warning} from './types.js'

export {DEFAULT_PROBE_ORIGIN, type ProbeOptions, probeDeployment, publicRoot} from './probe.js'
export {renderReport, type RenderOptions} from './render.js'
export type {CheckReport, CheckSummary, Finding, FindingLevel} from './types.js'

export interface RunChecksOptions {
  /** Also connect to the configured databases and cache servers (default true). */
  db?: boolean
  /** Timeout for each network step: database connection and statements, DNS (default 5 s). */
  timeoutMs?: number
  /** For tests: resolves a host name to its addresses (statsd check). */
  resolve?: (host: string) => Promise<string[]>
}

/** Every finding for a loaded configuration, settings first, then the database. */
export async function runChecks(config: KintoConfig, options: RunChecksOptions = {}): Promise<Finding[]> {
  const findings: Finding[] = config.keyProblems.map((p) =>
    (p.error ? error : warning)('config-warning', p.message, p.fix ?? 'Fix the key named in the message (Kinto ignores it as written).'),
  )
  for (const check of SETTINGS_CHECKS) findings.push(...check(config))
  findings.push(...(await checkIncludes(config)))
  findings.push(...(await checkStatsd(config, {timeoutMs: options.timeoutMs, resolve: options.resolve})))
  findings.push(...(await checkOpenId(config)))
  findings.push(...(await checkSentry(config, {timeoutMs: options.timeoutMs})))
  findings.push(...(await checkAttachments(config, {timeoutMs: options.timeoutMs})))
  if (options.db !== false) {
    findings.push(...(await checkDatabases(config, {timeoutMs: options.timeoutMs})))
    findings.push(...(await checkCache(config, {timeoutMs: options.timeoutMs})))
  }
  return findings
}

/**
 * What kinto start refuses when it builds the app: a kinto.includes plugin it does not know (or
 * whose settings the plugin refuses), any kinto.event_listeners, an authentication policy or an
 * id generator it does not know.
 */
async function checkIncludes(config: KintoConfig): Promise<Finding[]> {
  // Loaded here only: the plugins are the server's code, which the other checks do not need.
  // The plugins first: importing them registers their authentication policies.
  const {checkEventListeners, pluginsFromSettings, skippedPluginWarnings} = await import('../server/plugins/index.js')
  const {checkAuthorizationHooks, policyDefinitions} = await import('../server/auth.js')
  const {idGeneratorsFromSettings} = await import('../server/ids.js')
  const s = config.settings
  const findings: Finding[] = []
  const refused = (id: string, key: string | null, check: () => unknown, fix: string) => {
    try {
      check()
    } catch (e) {
      if (!isKintoError(e)) throw e
      const where = key === null ? 'default' : describeSettingSource(config, key)
      findings.push(error(id, `${e.message.replace(/\.$/, '')}${where === 'default' ? '' : ` (${where})`}: kinto start refuses to start.`, e.hint ?? fix))
    }
  }
  let plugins: ReturnType<typeof pluginsFromSettings> = []
  refused('includes', 'includes', () => (plugins = pluginsFromSettings(s)), 'Remove it from kinto.includes.')
  // Served all the same, with the warning kinto start logs.
  for (const {plugin, message} of skippedPluginWarnings(s)) {
    findings.push(warning('includes', message.replace(`lists ${plugin},`, `lists ${plugin} (${describeSettingSource(config, 'includes')}),`), `Remove ${plugin} from kinto.includes.`))
  }
  // Each included plugin's own settings (their messages name them).
  for (const plugin of plugins) refused('includes', null, () => plugin.checkSettings?.(s), `Fix the settings of ${plugin.name}.`)
  refused('event-listeners', 'event_listeners', () => checkEventListeners(s), 'Remove kinto.event_listeners.')
  refused('auth-policies', 'multiauth.policies', () => policyDefinitions(s), 'Fix multiauth.policies and its multiauth.policy.<name>.use settings.')
  refused('auth-policies', null, () => checkAuthorizationHooks(s), 'Remove the custom multiauth class.')
  refused('id-generators', null, () => idGeneratorsFromSettings(s), 'Use one of the id generators kinto-ops provides.')
  // Without --workers, kinto start serves with the ini's [uwsgi] processes.
  refused('workers', null, () => {
    const workers = workersFromIni(config)
    const refusal = workers === undefined ? null : workersRefusal(config, workers)
    if (refusal) {
      throw new KintoError(`[uwsgi] processes = ${workers} makes kinto start (without --workers) serve with ${workers} workers, but ${refusal}.`, {
        code: 'KINTO_WORKERS_REFUSED',
        hint: 'Start it with --workers 1, or use PostgreSQL for storage and permission (kinto.*_url = postgresql://…).',
      })
    }
  }, 'Start it with --workers 1.')
  return findings
}

/**
 * Loads the ini and checks it. An ini that does not load (missing, invalid setting) is reported
 * as one `config` error finding, like any other problem.
 */
export async function checkIni(iniPath: string, options: RunChecksOptions & {env?: NodeJS.ProcessEnv} = {}): Promise<CheckReport> {
  let config: KintoConfig
  try {
    config = loadConfig(iniPath, {env: options.env})
  } catch (e) {
    if (!isKintoError(e)) throw e
    const findings = [error('config', e.message, e.hint ?? 'Fix the ini file, then run kinto check again.')]
    // The path as given, which may be a mistyped URL with its password (see missingIniError).
    return {target: {kind: 'ini', path: maskUrl(iniPath)}, findings, summary: summarize(findings)}
  }
  const findings = await runChecks(config, options)
  return {target: {kind: 'ini', path: config.path}, findings, summary: summarize(findings)}
}

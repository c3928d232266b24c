/**
 * `kinto status`: the three operating states (backoff, readonly, maintenance) and end of service
 * as the ini configures them, the runtimes running that ini (from the run registry: what each
 * applied, whether it runs the current file, what needs a restart), who holds each embedded
 * database, and with a URL what a running server says (hello, heartbeat, Backoff header).
 */
import {existsSync, statSync} from 'node:fs'
import path from 'node:path'

import {type KintoConfig, loadConfig} from '../config/index.js'
import {isKintoError} from '../errors.js'
import {asString} from '../config/settings.js'
import {lockFileUnreadable, pgliteLockPath, readFileLockHolder} from '../schema/lock.js'
import {configuredBackends} from '../schema/targets.js'
import {parseDateSetting} from '../config/dates.js'
import {describeHttpError, EndpointClient, type Endpoint} from './endpoint.js'
import {describeServers, describeServersOfUnreadable, type ServerReport} from './reload.js'
import type {AppliedToggles, RunRole} from '../runs/registry.js'
import {activeState, EXPIRY_KEYS, parseDeadline, type ServiceState, serviceStateFrom, toggleDeadline, toggleSet, TOGGLES, type ToggleName} from '../state/toggles.js'

export interface ToggleStatus {
  /** Set in the ini. */
  set: boolean
  /** In force now (set, and its deadline not passed). */
  active: boolean
  until: string | null
  expired: boolean
}

export interface ConfiguredStatus {
  backoff: ToggleStatus & {seconds: number | null; percentage: number | null}
  readonly: ToggleStatus
  maintenance: ToggleStatus
  eos: {date: string | null; state: 'soft' | 'hard' | null; message: string | null; url: string | null}
}

export interface ServerStatus {
  pid: number
  role: RunRole
  url: string | null
  /** Runs the ini as it is now (false: edited since, not reloaded). */
  current: boolean
  reloadError?: string
  needRestart: string[]
  /** What it applied: backoff seconds, readonly, maintenance (before deadlines). */
  backoff: number | null
  readonly: boolean
  maintenance: boolean
}

export interface RemoteStatus {
  url: string
  reachable: boolean
  error?: string
  version?: string
  readonly?: boolean
  maintenance?: boolean
  /** The Backoff header on hello (may be absent at random with backoff_percentage). */
  backoff?: string | null
  eos?: string | null
  alert?: string | null
  heartbeat?: {status: number; body: unknown}
  /** Heartbeat 200. */
  healthy?: boolean
}

export interface StatusResult {
  ini: string | null
  configured: ConfiguredStatus | null
  /**
   * The ini cannot be read as a configuration (KINTO_CONFIG_INVALID): its running servers are
   * still listed (they serve what they loaded; a reload would be rejected), configured is null.
   */
  configError?: {code: string; message: string; hint?: string}
  servers: ServerStatus[]
  /** heldBy null and `unknown` set: the lock file exists but this user may not read it. */
  embedded: Array<{folder: string; heldBy: {pid: number; command: string} | null; unknown?: string}>
  remote: RemoteStatus | null
}

export interface StatusOptions {
  /** The ini (may not exist when only a URL is asked about). */
  iniPath: string | null
  endpoint?: Endpoint
  timeoutMs?: number
  now?: number
  env?: NodeJS.ProcessEnv
}

function configuredStatus(settings: Record<string, unknown>, now: number): ConfiguredStatus {
  const state = serviceStateFrom(settings)
  const active = activeState(state, now)
  const one = (t: ToggleName): ToggleStatus => {
    const set = toggleSet(state, t)
    const deadline = toggleDeadline(state, t)
    const on = t === 'backoff' ? active.backoff !== null : active[t]
    return {set, active: on, until: deadline === null ? null : new Date(deadline).toISOString(), expired: set && deadline !== null && deadline <= now}
  }
  const eosText = asString(settings, 'eos')
  const eosDate = eosText ? parseDateSetting(eosText) : null
  const [backoff, readonly, maintenance] = TOGGLES.map(one)
  return {
    backoff: {...backoff, seconds: state.backoff, percentage: state.backoffPercentage},
    readonly,
    maintenance,
    eos: {
      date: eosText || null,
      state: eosDate === null ? null : eosDate.getTime() > now ? 'soft' : 'hard',
      message: asString(settings, 'eos_message'),
      url: asString(settings, 'eos_url'),
    },
  }
}

async function probe(endpoint: Endpoint, timeoutMs: number): Promise<RemoteStatus> {
  const client = new EndpointClient(endpoint, timeoutMs)
  const remote: RemoteStatus = {url: endpoint.display, reachable: false}
  try {
    const hello = await client.get('', timeoutMs)
    remote.reachable = true
    const body = (hello.json ?? {}) as {project_version?: string; eos?: string; settings?: {readonly?: boolean; maintenance?: boolean}}
    remote.version = body.project_version
    remote.readonly = body.settings?.readonly === true
    remote.maintenance = body.settings?.maintenance === true
    remote.eos = body.eos ?? null
    remote.backoff = hello.headers.backoff ?? null
    remote.alert = hello.headers.alert ?? null
    if (hello.status === 410) remote.eos = remote.eos ?? 'passed'
    const hb = await client.get('__heartbeat__', timeoutMs)
    remote.heartbeat = {status: hb.status, body: hb.json ?? hb.body}
    remote.healthy = hb.status === 200
  } catch (error) {
    remote.error = describeHttpError(error)
  } finally {
    await client.close()
  }
  return remote
}

/** The toggles a server applied, as the state they came from (their dates parsed again). */
function appliedState(t: AppliedToggles): ServiceState {
  const until = (toggle: ToggleName, text: string | null) => (text === null ? null : parseDeadline(EXPIRY_KEYS[toggle], text))
  return {
    backoff: t.backoff,
    backoffPercentage: t.backoffPercentage,
    backoffUntil: until('backoff', t.backoffExpires),
    readonly: t.readonly,
    readonlyUntil: until('readonly', t.readonlyExpires),
    maintenance: t.maintenance,
    maintenanceUntil: until('maintenance', t.maintenanceExpires),
  }
}

export async function status(options: StatusOptions): Promise<StatusResult> {
  const env = options.env ?? process.env
  const now = options.now ?? Date.now()
  const result: StatusResult = {ini: null, configured: null, servers: [], embedded: [], remote: null}
  if (options.iniPath && (existsSync(options.iniPath) || !options.endpoint)) {
    let config: KintoConfig | undefined
    try {
      config = loadConfig(options.iniPath, {env})
    } catch (error) {
      // An ini edited into an error while servers run it: they still serve what they loaded, and
      // the operator needs to see them (and that a reload would be rejected) as much as the error.
      if (!isKintoError(error) || error.code !== 'KINTO_CONFIG_INVALID') throw error
      result.configError = {code: error.code, message: error.message, ...(error.hint ? {hint: error.hint} : {})}
    }
    result.ini = config?.path ?? path.resolve(options.iniPath)
    result.configured = config ? configuredStatus(config.settings, now) : null
    let servers: ServerReport[]
    try {
      // An ini that failed to load and is no file (a folder, a device that never ends) is not hashed.
      if (result.configError && !statSync(result.ini, {throwIfNoEntry: false})?.isFile()) servers = describeServersOfUnreadable(result.ini, env)
      else ({servers} = describeServers(result.ini, env))
    } catch (error) {
      // An ini this user may not read (configError above): its servers are still listed.
      if (!result.configError) throw error
      servers = describeServersOfUnreadable(result.ini, env)
    }
    result.servers = servers.map((s) => {
      // In force now: a toggle the server applied with a --for date that has passed is off there.
      const active = s.toggles ? activeState(appliedState(s.toggles), now) : null
      return {
        pid: s.pid,
        role: s.role,
        url: s.url,
        current: s.outcome === 'reloaded',
        ...(s.outcome === 'failed' ? {reloadError: s.message} : {}),
        needRestart: s.needRestart,
        backoff: active?.backoff ?? null,
        readonly: active?.readonly ?? false,
        maintenance: active?.maintenance ?? false,
      }
    })
    const folders = new Set(config ? configuredBackends(config.settings, config.dir).flatMap((b) => (b.pgliteDir ? [b.pgliteDir] : [])) : [])
    for (const folder of folders) {
      const lock = pgliteLockPath(folder)
      const holder = readFileLockHolder(lock)
      // Another user's lock file (a server of that user, mode 0600) is not "not open".
      const unknown = !holder && lockFileUnreadable(lock) ? `its lock file ${lock} cannot be read by this user (a process of another user may hold it)` : undefined
      result.embedded.push({folder, heldBy: holder ? {pid: holder.pid, command: holder.owner?.command ?? 'unknown'} : null, ...(unknown ? {unknown} : {})})
    }
  }
  if (options.endpoint) result.remote = await probe(options.endpoint, options.timeoutMs ?? 5000)
  return result
}

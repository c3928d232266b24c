/**
 * `kinto backoff | readonly | maintenance` as one library verb: a lossless edit of the toggle's
 * keys in [app:main] (every other byte of the ini kept), then a reload of the running runtimes of
 * that ini (reload.ts), reporting what each one applied.
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {loadConfig, setIniValues, type IniChange, type IniChangeResult, type KintoConfig} from '../config/index.js'
import {envNames} from '../config/settings.js'
import {configWriteError} from '../config/atomic.js'
import {isKintoError, KintoError} from '../errors.js'
import {acquireFileLock, LockWaitError} from '../schema/lock.js'
import {describeServers, reloadServers, type ReloadResult} from './reload.js'
import {EXPIRY_KEYS, formatDeadline, type ToggleName} from '../state/toggles.js'
import {shellArg} from '../text/shell.js'

export interface ToggleOptions {
  iniPath: string
  toggle: ToggleName
  on: boolean
  /** backoff: seconds clients should wait. */
  seconds?: number
  /** backoff: share of responses carrying the header (1–100); none: every response. */
  percentage?: number
  /** Turn the toggle off by itself after this many seconds. */
  forSeconds?: number
  /** Signal running servers (default true). */
  reload?: boolean
  reloadTimeoutMs?: number
  now?: number
  env?: NodeJS.ProcessEnv
}

export interface ToggleChange {
  /** The key as written in the ini (`kinto.backoff`). */
  key: string
  from: string | null
  to: string | null
  /** Line of the key after the change (null when removed). */
  line: number | null
}

export interface ToggleResult {
  ini: string
  toggle: ToggleName
  state: 'on' | 'off'
  /** backoff: seconds; percentage when set. */
  seconds?: number
  percentage?: number
  /** ISO date the toggle ends by itself, when --for was given. */
  until: string | null
  changes: ToggleChange[]
  /** Environment variables (of this shell) that override what the ini says. */
  overriddenBy: string[]
  reload: ReloadResult
}

function changesFor(options: ToggleOptions, config: KintoConfig): IniChange[] {
  const section = config.appSection
  const set = (key: string, value: string | null): IniChange => ({section, key: `kinto.${key}`, value})
  const until = options.on && options.forSeconds !== undefined ? formatDeadline((options.now ?? Date.now()) + options.forSeconds * 1000) : null
  const expiry = set(EXPIRY_KEYS[options.toggle], until)
  switch (options.toggle) {
    case 'backoff':
      return options.on
        ? [set('backoff', String(options.seconds)), set('backoff_percentage', options.percentage === undefined ? null : String(options.percentage)), expiry]
        : [set('backoff', null), set('backoff_percentage', null), expiry]
    case 'readonly': {
      // `off` keeps an existing line (as false) rather than removing what the operator wrote.
      const present = config.sources.readonly?.kind === 'ini'
      return [set('readonly', options.on ? 'true' : present ? 'false' : null), expiry]
    }
    case 'maintenance':
      return [set('maintenance', options.on ? 'true' : null), expiry]
  }
}

/** How long a toggle waits for another kinto command editing the same ini. */
const EDIT_LOCK_TIMEOUT_MS = 30_000

/**
 * Runs fn holding `<ini>.lock` (the pid of the holder in it; one left by a dead process is taken
 * over). Two operators toggling at once would otherwise each read the file, and the last rename
 * would drop the other's edit; and a reload waiting for its own version of the file would see the
 * servers run the other's, and report a timeout.
 */
async function withIniEditLock<T>(iniPath: string, fn: () => Promise<T>): Promise<T> {
  // A missing ini: the edit fails as it always did, without creating a folder for the lock.
  if (!existsSync(iniPath)) return fn()
  const lockPath = `${path.resolve(iniPath)}.lock`
  let release: () => void
  try {
    release = await acquireFileLock(lockPath, {target: iniPath, timeoutMs: EDIT_LOCK_TIMEOUT_MS, owner: {command: 'kinto toggle', detail: iniPath}})
  } catch (error) {
    if (error instanceof LockWaitError) {
      const {holder} = error
      throw new KintoError(`Another kinto command${holder ? ` (${holder})` : ''} has been editing ${iniPath} for ${EDIT_LOCK_TIMEOUT_MS / 1000} s; nothing was changed.`, {
        code: 'KINTO_CONFIG_BUSY',
        hint: `Run it again once that command has finished (if no kinto command runs, remove ${shellArg(lockPath)}).`,
      })
    }
    if (isKintoError(error) && error.code === 'KINTO_DB_FOLDER_INVALID') {
      // The lock file goes where the edit's new file would: the same refusal, the same words.
      const cause = (error as {cause?: unknown}).cause
      const full = ['ENOSPC', 'EDQUOT'].includes((cause as NodeJS.ErrnoException | undefined)?.code ?? '')
      const hint = full
        ? 'Free space on the file system of the ini (the new file is written beside it, then renamed), then run this again.'
        : 'Run as a user allowed to write the file and its folder (the new file is written beside it, then renamed).'
      throw configWriteError(iniPath, cause, {existing: true, hint}) ?? error
    }
    throw error
  }
  try {
    return await fn()
  } finally {
    release()
  }
}

/** Edits the ini, then reloads the servers running it (one toggle of an ini at a time). */
export function setToggle(options: ToggleOptions): Promise<ToggleResult> {
  return withIniEditLock(options.iniPath, () => editAndReload(options))
}

async function editAndReload(options: ToggleOptions): Promise<ToggleResult> {
  const env = options.env ?? process.env
  // Loading validates the file first: an ini that does not load is not edited.
  const config = loadConfig(options.iniPath, {env})
  const requested = changesFor(options, config)
  // What was written must load (the toggles' own values are checked there), else it is undone.
  const results: IniChangeResult[] = setIniValues(config.path, requested, (file) => void loadConfig(file, {env}))
  const changes = results.filter((r) => r.changed).map((r) => ({key: r.key, from: r.previous, to: r.value, line: r.line}))
  const overriddenBy: string[] = []
  for (const key of ['backoff', 'backoff_percentage', 'readonly']) {
    if (!requested.some((c) => c.key === `kinto.${key}`)) continue
    for (const name of envNames(key)) if (env[name] !== undefined) overriddenBy.push(name)
  }
  let reload: ReloadResult
  if (options.reload === false) {
    const {configHash, servers} = describeServers(config.path, env)
    reload = {requested: false, configHash, servers, ok: servers.every((s) => s.outcome === 'reloaded')}
  } else {
    reload = await reloadServers(config.path, {timeoutMs: options.reloadTimeoutMs, env})
  }
  const until = requested.find((c) => c.key === `kinto.${EXPIRY_KEYS[options.toggle]}`)?.value ?? null
  return {
    ini: config.path,
    toggle: options.toggle,
    state: options.on ? 'on' : 'off',
    ...(options.toggle === 'backoff' && options.on ? {seconds: options.seconds, percentage: options.percentage} : {}),
    until,
    changes,
    overriddenBy,
    reload,
  }
}

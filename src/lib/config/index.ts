/**
 * The Kinto config every command and the runtime read: the ini file (PasteDeploy's view of it),
 * the effective settings of [app:main] (defaults < ini < environment, validated), and the listen
 * address of [server:main].
 */
import path from 'node:path'

import {KintoError, UsageError} from '../errors.js'
import {DEFAULT_SECTION, IniDocument, iniError, iniLocation, readIniFile} from './ini.js'
import {nearest} from '../text/nearest.js'
import {DEFAULT_SETTINGS, type RawSetting, type SettingSource, type Settings, resolveSettings, settingKey} from './settings.js'
import {isSecretKey, knownSettingKeys, type OriginOf, ruleFor, validateSettings} from './validate.js'

export {assertFilePath, writeFileAtomic} from './atomic.js'
export {DURATION_FORMAT, parseDuration, tryParseDuration} from './duration.js'
export {editIniText, type IniChange, type IniChangeResult, setIniValue, setIniValues} from './edit.js'
export {DEFAULT_SECTION, IniDocument, type IniEntry, type IniSection, parseIni, readIniFile} from './ini.js'
export * from './settings.js'
export {BACKEND_MODULES, type BackendFamily, type BackendKind, backendKind, backendModules} from './backend-modules.js'
export {displayValue, ruleFor, type SettingRule, validateSettings} from './validate.js'

import {DEFAULT_INI_PATH} from './init.js'

export {DEFAULT_INI_PATH} from './init.js'
/** `%(http_port)s` when the caller gives no port (upstream's `kinto start` default). */
export const DEFAULT_HTTP_PORT = 8888
export const DEFAULT_HOST = '127.0.0.1'

export interface ServerConfig {
  host: string
  port: number
  unixSocket?: string
  /** waitress's `unix_socket_perms` (octal, e.g. `666`): the socket's mode after listening. */
  unixSocketMode?: string
}

export interface KintoConfig {
  /** Absolute path of the ini file. */
  path: string
  /** Its folder (`%(here)s`; relative pglite: URLs resolve from here). */
  dir: string
  /** Effective settings: keys without `kinto.`, values decoded and validated. */
  settings: Settings
  /** Where each setting came from (default, ini line, or environment variable). */
  sources: Record<string, SettingSource>
  server: ServerConfig
  /** The parsed file, for modules that read other sections (logging, plugins). */
  ini: IniDocument
  /** The section holding the settings: `app:main` (or `application:main`). */
  appSection: string
  /** Things that are valid but probably not what was meant (e.g. a key in the wrong case). */
  warnings: string[]
  /** The warnings about keys, with how serious each is for `kinto check`. */
  keyProblems: KeyProblem[]
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv
  /** Value of `%(http_port)s` (e.g. from `kinto start --port`); [DEFAULT] http_port in the file wins. */
  httpPort?: number | string
}

/**
 * The ini path to use: the flag's value, else $KINTO_INI, else config/kinto.ini; absolute. An
 * empty flag (`--ini "$INI"` with INI unset) is an error, never the default ini: a script would
 * otherwise migrate or toggle another deployment than the one it names.
 */
export function resolveIniPath(
  flagValue?: string,
  {env = process.env, cwd = process.cwd()}: {env?: NodeJS.ProcessEnv; cwd?: string} = {},
): string {
  if (flagValue !== undefined && flagValue.trim() === '') {
    throw new UsageError('--ini is empty.', {hint: 'Give the path of the ini file, or leave --ini out to use $KINTO_INI or config/kinto.ini.'})
  }
  const chosen = flagValue?.trim() || env.KINTO_INI?.trim() || DEFAULT_INI_PATH
  if (chosen === '-') {
    // Servers read the ini again on SIGHUP and commands edit it in place: it is always a file.
    throw new UsageError("--ini (or KINTO_INI) is '-': the ini is read from a file, not standard input.", {hint: "Give the path of the ini file (./- names a file called '-')."})
  }
  return path.resolve(cwd, chosen)
}

/** PasteDeploy's lookup of `[prefix:main]` (the name may have blanks around it). */
function findSection(ini: IniDocument, prefixes: string[]): string | undefined {
  return ini.sectionNames().find((name) => {
    const i = name.indexOf(':')
    return i > 0 && prefixes.includes(name.slice(0, i)) && name.slice(i + 1).trim() === 'main'
  })
}

/** Keys of an app section that PasteDeploy consumes itself: they are not settings. */
const PASTE_KEYS = new Set(['use', 'filter-with', 'require'])

function appSettingsEntries(ini: IniDocument, section: string, vars: Record<string, string>): RawSetting[] {
  const defaults = ini.defaultValues(vars)
  const raw: RawSetting[] = []
  for (const e of ini.section(section)!.entries) {
    if (e.key.startsWith('set ')) continue // a global addition, not a setting
    if (e.key.startsWith('get ')) {
      const name = e.key.slice(4).trim()
      const globalName = ini.get(section, e.key, {vars})!
      if (!defaults.has(globalName)) {
        throw iniError(ini.path, e.line, e.key, `takes the value of '${globalName}' from [DEFAULT], which does not set it.`)
      }
      raw.push({key: name, value: ini.get(DEFAULT_SECTION, globalName, {vars}) ?? defaults.get(globalName), line: e.line})
      continue
    }
    if (defaults.has(e.key)) continue // PasteDeploy skips keys that [DEFAULT] also sets
    if (e.key === 'use' && /^\s*config:/.test(e.value)) {
      // PasteDeploy would read the other file's app section first: its settings would be missed.
      throw iniError(
        ini.path,
        e.line,
        e.key,
        `[${section}] takes its settings from another file (${e.value.trim()}), which kinto-ops does not read; copy that file's settings into [${section}] and write use = egg:kinto.`,
      )
    }
    if (PASTE_KEYS.has(e.key)) continue
    raw.push({key: e.key, value: ini.get(section, e.key, {vars}), line: e.line})
  }
  return raw
}

function checkConflicts(ini: IniDocument, raw: RawSetting[]): void {
  const seen = new Map<string, RawSetting>()
  for (const r of raw) {
    const key = settingKey(r.key)
    const prev = seen.get(key)
    if (prev && prev.value !== r.value) {
      throw new KintoError(
        `${ini.path}, lines ${prev.line} and ${r.line}: '${prev.key}' and '${r.key}' set the same setting to different values.`,
        {code: 'KINTO_CONFIG_CONFLICT', hint: `Keep only one of '${prev.key}' and '${r.key}' in [app:main].`},
      )
    }
    seen.set(key, r)
  }
}

/** A key of [app:main] Kinto would not read as meant: `error` ones make `kinto check` fail. */
export interface KeyProblem {
  message: string
  error: boolean
  /** What to do, when not "fix the key". */
  fix?: string
}

/**
 * Keys Kinto reads differently than meant: a wrong case, a typo of a known setting (the nearest one
 * named), and a line without `=` (Python's parser reads `kinto.bucket_create_principals account:admin`
 * as a key holding a space, with an empty value: the setting stays at its default).
 */
function keyProblems(ini: IniDocument, raw: RawSetting[]): KeyProblem[] {
  const problems: KeyProblem[] = []
  const known = [...new Set([...Object.keys(DEFAULT_SETTINGS), ...knownSettingKeys()])]
  for (const r of raw) {
    const key = settingKey(r.key)
    const where = iniLocation(ini.path, r.line, r.key)
    if (/\s/.test(r.key)) {
      const [first] = r.key.split(/\s+/)
      problems.push({
        error: true,
        message: `${where}: the key holds a space, so Kinto reads it as a key named '${r.key}' and leaves '${first}' at its default; is the '=' after '${first}' missing?`,
      })
      continue
    }
    const comment = typeof r.value === 'string' ? /(?:^|\s)([#;].*)$/m.exec(r.value) : null
    if (comment) {
      // configparser (as PasteDeploy sets it up) has full-line comments only; a secret is not shown
      const shown = isSecretKey(key) ? `the text from its '${comment[1][0]}' on` : `'${comment[1]}'`
      problems.push({
        error: false,
        message: `${where}: ini files have no comments after a value, so ${shown} is part of this setting's value (for Kinto too).`,
        fix: `Move the comment to a line of its own, starting with ${comment[1][0]}.`,
      })
    }
    if (ruleFor(key)?.type === 'list' && typeof r.value === 'string' && r.value.includes(',')) {
      // upstream's docs say "comma,separated,principals"; its code (aslist) splits on blanks only,
      // for kinto.includes, multiauth.policies and every other list as well
      const glued = r.value.split(/\s+/).find((p) => p.includes(','))
      const [items, item] = /_principals$/.test(key) ? ['principals', 'principal'] : ['the entries of this list', 'entry']
      problems.push({
        error: false,
        message: `${where}: ${items} are separated by spaces or new lines, not commas: Kinto (upstream Kinto too) reads '${glued}' as one ${item}.`,
        fix: `Write ${r.key} = ${r.value.split(/[\s,]+/).filter(Boolean).join(' ')}`,
      })
    }
    if (key in DEFAULT_SETTINGS || ruleFor(key)) continue
    const lower = settingKey(r.key.toLowerCase())
    if (lower !== key && (lower in DEFAULT_SETTINGS || ruleFor(lower))) {
      problems.push({error: false, message: `${where}: keys are case-sensitive, so Kinto ignores this one; did you mean '${r.key.toLowerCase()}'?`})
      continue
    }
    const close = nearest(key, known, 2)
    if (close.length > 0) {
      const prefix = r.key.startsWith('kinto.') ? 'kinto.' : ''
      problems.push({error: false, message: `${where}: Kinto knows no such setting, so it ignores this one; did you mean '${prefix}${close[0]}'?`})
    }
  }
  return problems
}

/**
 * Keys of the app section that the file's [DEFAULT] also sets: PasteDeploy takes them as global
 * values, so neither reaches the settings (upstream Kinto and kinto-ops alike).
 */
function shadowedProblems(ini: IniDocument, section: string): KeyProblem[] {
  const inDefault = new Set(ini.defaults.entries.map((e) => e.key))
  return ini.section(section)!.entries
    .filter((e) => inDefault.has(e.key) && !PASTE_KEYS.has(e.key))
    .map((e) => ({
      error: false,
      message: `${iniLocation(ini.path, e.line, e.key)}: [DEFAULT] sets this key too, so PasteDeploy passes it to Kinto as a global value and the setting stays at its default (in upstream Kinto too).`,
      fix: `Remove ${e.key} from [DEFAULT] (or give the [DEFAULT] entry another name for %(name)s references).`,
    }))
}

/**
 * `filter-with = NAME` in the app section: PasteDeploy wraps the app in [filter:NAME] (a URL
 * prefix, a proxy fix…). kinto-ops runs no WSGI filter, so the app is served without it.
 */
function filterProblems(ini: IniDocument, section: string, vars: Record<string, string>): KeyProblem[] {
  const entry = ini.ownEntry(section, 'filter-with')
  const name = entry ? ini.get(section, 'filter-with', {vars})?.trim() : undefined
  if (!entry || !name) return []
  const filter = ini.sectionNames().find((n) => /^filter\s*:/.test(n) && n.slice(n.indexOf(':') + 1).trim() === name)
  const use = filter ? ini.get(filter, 'use', {raw: true})?.trim() : undefined
  const what = filter ? `[${filter}]${use ? ` (${use})` : ''}` : `the filter '${name}'`
  return [
    {
      error: false,
      message: `${iniLocation(ini.path, entry.line, entry.key)}: kinto-ops runs no PasteDeploy filter, so ${what} is not applied: the app is served as if filter-with were not there.`,
      fix: 'Do what the filter did in front of kinto start (a URL prefix or proxy headers in the reverse proxy), then remove filter-with.',
    },
  ]
}

/**
 * waitress options of [server:main] that change the scheme, host or path of the URLs the app
 * builds (hello's url, Next-Page). kinto-ops serves with its own server and does not read them.
 */
const WAITRESS_URL_KEYS: Record<string, string> = {
  url_scheme: 'set kinto.http_scheme in [app:main] instead',
  url_prefix: 'serve the prefix from the reverse proxy instead',
  trusted_proxy: 'set kinto.http_scheme and kinto.http_host in [app:main] instead',
  trusted_proxy_headers: 'set kinto.http_scheme and kinto.http_host in [app:main] instead',
}

function serverProblems(ini: IniDocument): KeyProblem[] {
  const section = findSection(ini, ['server'])
  if (!section) return []
  const problems: KeyProblem[] = []
  for (const [key, instead] of Object.entries(WAITRESS_URL_KEYS)) {
    const entry = ini.ownEntry(section, key)
    if (!entry || entry.value.trim() === '') continue
    problems.push({
      error: false,
      message: `${iniLocation(ini.path, entry.line, entry.key)}: kinto start does not read this waitress option, so the URLs Kinto builds (hello's url, Next-Page) do not follow it.`,
      fix: `Remove ${key} from [${section}] and ${instead}.`,
    })
  }
  return problems
}

function parsePort(ini: IniDocument, section: string, key: string, text: string): number {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text.trim()) : NaN
  if (!(port >= 1 && port <= 65535)) {
    throw iniError(
      ini.path,
      ini.entry(section, key)?.line,
      key,
      `${JSON.stringify(text)} is not a TCP port; expected a whole number from 1 to 65535 (or %(http_port)s).`,
    )
  }
  return port
}

function serverConfig(ini: IniDocument, vars: Record<string, string>): ServerConfig {
  const section = findSection(ini, ['server'])
  const server: ServerConfig = {host: DEFAULT_HOST, port: Number(vars.http_port)}
  if (!section) return server
  const get = (key: string) => {
    const v = ini.get(section, key, {vars})
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const host = get('host')
  const port = get('port')
  const listen = get('listen')
  if (listen && host === undefined && port === undefined) {
    // waitress: `listen = host:port [host:port…]`; we serve the first.
    const first = listen.split(/\s+/)[0]
    const m = /^(\[[^\]]+\]|[^:]*):(.+)$/.exec(first)
    if (!m) {
      throw iniError(ini.path, ini.entry(section, 'listen')?.line, 'listen', `${JSON.stringify(first)} is not host:port.`)
    }
    server.host = m[1] === '*' || m[1] === '' ? '0.0.0.0' : m[1].replace(/^\[|\]$/g, '')
    server.port = parsePort(ini, section, 'listen', m[2])
  } else {
    if (host !== undefined) {
      if (/\s/.test(host)) {
        throw iniError(ini.path, ini.entry(section, 'host')?.line, 'host', `${JSON.stringify(host)} is not a host name or address.`)
      }
      server.host = host
    }
    if (port !== undefined) server.port = parsePort(ini, section, 'port', port)
  }
  const unixSocket = get('unix_socket')
  if (unixSocket) server.unixSocket = path.resolve(ini.here, unixSocket)
  const perms = get('unix_socket_perms')
  if (perms !== undefined) {
    if (!/^0?[0-7]{3}$/.test(perms)) {
      throw iniError(ini.path, ini.entry(section, 'unix_socket_perms')?.line, 'unix_socket_perms', `${JSON.stringify(perms)} is not a file mode; expected octal digits such as 660 or 666.`)
    }
    server.unixSocketMode = perms.replace(/^0(?=[0-7]{3}$)/, '')
  }
  return server
}

/**
 * Reads a Kinto ini: settings of [app:main] with upstream's defaults and environment overrides,
 * validated; [server:main]'s host and port. Synchronous (callers may `await` it all the same).
 */
export function loadConfig(iniPath: string, options: LoadConfigOptions = {}): KintoConfig {
  const env = options.env ?? process.env
  const file = path.resolve(iniPath)
  const ini = readIniFile(file)
  const vars = {http_port: String(options.httpPort ?? DEFAULT_HTTP_PORT)}

  const appSection = findSection(ini, ['app', 'application'])
  if (!appSection) {
    // PasteDeploy may build `main` from a pipeline or a composite of other sections; we do not.
    const other = findSection(ini, ['pipeline', 'composite', 'filter-app'])
    if (other) {
      const apps = ini.sectionNames().filter((n) => /^(app|application)\s*:/.test(n))
      const move = apps.length > 0 ? `move the settings of [${apps[0]}] to [app:main]` : 'put the settings in [app:main]'
      throw iniError(file, ini.section(other)?.line, undefined, `[${other}] builds the app from other sections (WSGI filters, URL maps), which kinto-ops does not run; ${move} and remove [${other}].`)
    }
    throw iniError(file, undefined, undefined, 'there is no [app:main] section; Kinto reads its settings from [app:main].')
  }
  const raw = appSettingsEntries(ini, appSection, vars)
  checkConflicts(ini, raw)
  const {settings: resolved, sources} = resolveSettings(raw, env)
  const rawByKey = new Map(raw.map((r) => [settingKey(r.key), r]))

  const origin: OriginOf = (key) => {
    const src = sources[key]
    if (src?.kind === 'env') {
      return {
        where: `environment variable ${src.variable} (setting '${key}')`,
        text: env[src.variable],
        hint: `Fix or unset ${src.variable}.`,
      }
    }
    if (src?.kind === 'ini') {
      const r = rawByKey.get(key)
      return {where: iniLocation(file, src.line, src.key), text: typeof r?.value === 'string' ? r.value : undefined}
    }
    return {where: `the default of setting '${key}'`}
  }
  const settings = validateSettings(resolved, {dir: ini.here, origin})
  const server = serverConfig(ini, vars)
  const problems = [...keyProblems(ini, raw), ...shadowedProblems(ini, appSection), ...filterProblems(ini, appSection, vars), ...serverProblems(ini)]
  return {
    path: file,
    dir: ini.here,
    settings,
    sources,
    server,
    ini,
    appSection,
    keyProblems: problems,
    warnings: problems.map((p) => p.message),
  }
}

/** "FILE, line N, key 'kinto.x'", "environment variable KINTO_X" or "default": for messages of other modules. */
export function describeSettingSource(config: KintoConfig, key: string): string {
  const src = config.sources[key]
  if (src?.kind === 'ini') return iniLocation(config.path, src.line, src.key)
  if (src?.kind === 'env') return `environment variable ${src.variable}`
  return 'default'
}

export {initConfig, type InitOptions, type InitResult, type StorageChoice, type CacheChoice} from './init.js'

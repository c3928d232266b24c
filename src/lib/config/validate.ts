/**
 * Typed validation of the settings kinto-ops acts on. Every error names where the value came from
 * (file, line and key, or the environment variable), shows the value (secrets hidden, URL passwords
 * masked) and says what is allowed. Valid integers and booleans are normalised to numbers and
 * booleans; other settings (plugin keys, `fxa-oauth.*`, `kinto.attachment.*`…) are kept as they are.
 */
import {maskUrl, parseDbUrl, UrlParamError} from '../db/url.js'
import {KintoError} from '../errors.js'
import {type BackendFamily, backendKind, backendModules, POOL_CLASSES} from './backend-modules.js'
import {MEMCACHED_HOST_FORM, parseMemcachedHost, parseRedisUrl, REDIS_URL_FORM} from './cache-addresses.js'
import {DB_URL_FORMS, emptyDatabaseUrlError} from './database-url.js'
import {parseDateSetting} from './dates.js'
import {PYTHON_LEVELS, type Settings} from './settings.js'

export type SettingRule =
  | {type: 'int'; min?: number; max?: number; nullable?: boolean}
  | {type: 'number'; min?: number; max?: number; nullable?: boolean}
  | {type: 'bool'}
  | {type: 'list'}
  | {type: 'backend'; family: BackendFamily}
  | {type: 'date'; nullable?: boolean}
  | {type: 'level'}
  | {type: 'choice'; values: readonly string[]}


/**
 * The longest wait a setting in seconds may give: Node's timers (setTimeout, socket timeouts) hold
 * 2^31-1 ms, about 24.8 days, and PostgreSQL's statement_timeout the same. A longer one is not a
 * long wait: Node fires the timer after 1 ms, so `kinto.storage_connect_timeout = 1e20` made every
 * connection "time out" at once.
 */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000)
const SECONDS_TO_WAIT: SettingRule = {type: 'number', min: 0, max: MAX_TIMER_SECONDS}

const EXACT: Record<string, SettingRule> = {
  // Empty is upstream's falsy value: no limit (as 0), and its servers start with it.
  batch_max_requests: {type: 'int', min: 0, nullable: true},
  paginate_by: {type: 'int', min: 0, nullable: true},
  storage_max_fetch_size: {type: 'int', min: 1},
  pagination_token_validity_seconds: {type: 'int', min: 0},
  cache_max_size_bytes: {type: 'int', min: 0},
  cors_max_age_seconds: {type: 'int', min: -1, nullable: true},
  backoff: {type: 'int', min: 0, nullable: true},
  // upstream compares a random number with float(backoff_percentage) / 100: 12.5 is fine
  backoff_percentage: {type: 'number', min: 0, max: 100, nullable: true},
  retry_after_seconds: {type: 'int', min: 0},
  heartbeat_timeout_seconds: SECONDS_TO_WAIT,
  root_cache_expires_seconds: {type: 'int', min: -1},
  version_prefix_redirect_ttl_seconds: {type: 'int', min: -1},
  trailing_slash_redirect_ttl_seconds: {type: 'int', min: -1},
  sentry_breadcrumbs_min_level: {type: 'level'},
  sentry_events_min_level: {type: 'level'},
  account_cache_ttl_seconds: {type: 'int', min: 0},
  'history.auto_trim_max_count': {type: 'int', min: -1},
  'history.auto_trim_threshold': {type: 'int', min: 0},

  readonly: {type: 'bool'},
  flush_endpoint_enabled: {type: 'bool'},
  explicit_permissions: {type: 'bool'},
  experimental_collection_schema_validation: {type: 'bool'},
  experimental_permissions_endpoint: {type: 'bool'},
  version_prefix_redirect_enabled: {type: 'bool'},
  trailing_slash_redirect_enabled: {type: 'bool'},
  profiler_enabled: {type: 'bool'},
  transaction_per_request: {type: 'bool'},
  'tm.annotate_user': {type: 'bool'},
  prometheus_created_metrics_enabled: {type: 'bool'},

  includes: {type: 'list'},
  event_listeners: {type: 'list'},
  'multiauth.policies': {type: 'list'},
  cors_origins: {type: 'list'},
  metrics_matchdict_fields: {type: 'list'},
  cache_hosts: {type: 'list'},

  storage_backend: {type: 'backend', family: 'storage'},
  permission_backend: {type: 'backend', family: 'permission'},
  cache_backend: {type: 'backend', family: 'cache'},

  eos: {type: 'date', nullable: true},
}

const PATTERNS: Array<[RegExp, SettingRule]> = [
  [/^(storage|permission|cache)_(pool_size|max_overflow)$/, {type: 'int', min: 0}],
  [/^(storage|permission|cache)_(pool_recycle|max_backlog)$/, {type: 'int', min: -1}],
  [/^(storage|permission|cache)_(pool_timeout|connect_timeout|statement_timeout)$/, SECONDS_TO_WAIT],
  [/^(storage|permission|cache)_poolclass$/, {type: 'choice', values: Object.keys(POOL_CLASSES)}],
  [/^[a-z0-9_-]+_cache_expires_seconds$/, {type: 'int', min: -1}],
  [/^(plural|object)_[a-z0-9_-]+_(get|post|put|patch|delete)_enabled$/, {type: 'bool'}],
  [/^[a-z0-9_-]+_principals$/, {type: 'list'}],
]

/** The rule for a setting key (without `kinto.`), if kinto-ops checks it. */
/** The settings with a rule of their own (for typo suggestions). */
export function knownSettingKeys(): string[] {
  return Object.keys(EXACT)
}

export function ruleFor(key: string): SettingRule | undefined {
  return EXACT[key] ?? PATTERNS.find(([re]) => re.test(key))?.[1]
}

/** Where a setting's value came from, for messages. */
export interface SettingOrigin {
  /** e.g. "/etc/kinto.ini, line 12, key 'kinto.readonly'" or "environment variable KINTO_READONLY". */
  where: string
  /** The text as written (before JSON decoding), when known. */
  text?: string
  hint?: string
}

export type OriginOf = (key: string) => SettingOrigin

export function isSecretKey(key: string): boolean {
  // hmac secrets, passwords, API tokens, Sentry DSNs (not e.g. pagination_token_validity_seconds).
  return /secret|passw(or)?d|(^|[._])(api_)?token$|_dsn$/i.test(key)
}

/** A value as it may be shown: secrets hidden, passwords in URLs masked. */
export function displayValue(key: string, value: unknown): string {
  if (isSecretKey(key)) return '"***"'
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return JSON.stringify(maskUrl(text ?? String(value)))
}

function describeRule(rule: SettingRule): string {
  switch (rule.type) {
    case 'int': {
      const range =
        rule.max !== undefined
          ? ` from ${rule.min ?? 0} to ${rule.max}`
          : rule.min === -1
            ? ' (-1 for none/unlimited)'
            : rule.min === 1
              ? ' of at least 1'
              : ' (0 or more)'
      return `a whole number${range}${rule.nullable ? ', or empty' : ''}`
    }
    case 'number':
      if (rule.max === MAX_TIMER_SECONDS) return `a number of seconds from 0 to ${MAX_TIMER_SECONDS} (about 24 days, the longest wait a timer holds)`
      if (rule.max !== undefined) return `a number from ${rule.min ?? 0} to ${rule.max}${rule.nullable ? ', or empty' : ''}`
      return `a number of seconds (0 or more)${rule.nullable ? ', or empty' : ''}`
    case 'bool':
      return 'true or false'
    case 'list':
      return 'names separated by spaces or new lines'
    case 'backend':
      return `one of ${backendModules(rule.family).join(', ')}`
    case 'date':
      return 'a date such as 2030-01-31, or empty'
    case 'level':
      return 'a logging level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a number such as 30'
    case 'choice':
      return `one of ${rule.values.join(', ')}`
  }
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === 'string' && v.trim() === '')
}

/** Checks one value against a rule; returns the normalised value or throws. */
function check(key: string, value: unknown, rule: SettingRule, origin: OriginOf): unknown {
  const fail = () => {
    const o = origin(key)
    const shown = o.text !== undefined ? displayValue(key, o.text) : displayValue(key, value)
    return new KintoError(`${o.where}: ${shown} is not valid; expected ${describeRule(rule)}.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: o.hint,
    })
  }
  switch (rule.type) {
    case 'int': {
      if (isEmpty(value)) {
        if (rule.nullable) return null
        throw fail()
      }
      let n: number
      if (typeof value === 'number') n = value
      else if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) n = Number(value)
      else throw fail()
      if (!Number.isSafeInteger(n)) throw fail()
      if (rule.min !== undefined && n < rule.min) throw fail()
      if (rule.max !== undefined && n > rule.max) throw fail()
      return n
    }
    case 'number': {
      if (isEmpty(value)) {
        if (rule.nullable) return null
        throw fail()
      }
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
      if (!Number.isFinite(n) || (rule.min !== undefined && n < rule.min) || (rule.max !== undefined && n > rule.max)) throw fail()
      return n
    }
    case 'bool': {
      if (typeof value === 'boolean') return value
      // upstream's asbool: an empty value (`kinto.readonly =`, KINTO_READONLY='') is false
      if (isEmpty(value)) return false
      if (typeof value === 'number' && (value === 0 || value === 1)) return value === 1
      if (typeof value === 'string') {
        const s = value.trim().toLowerCase()
        if (['true', 'yes', 'on', '1', 't', 'y'].includes(s)) return true
        if (['false', 'no', 'off', '0', 'f', 'n'].includes(s)) return false
      }
      throw fail()
    }
    case 'list': {
      if (isEmpty(value)) return value ?? ''
      if (typeof value === 'string') return value
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value
      throw fail()
    }
    case 'backend': {
      if (typeof value === 'string' && backendModules(rule.family).includes(value.trim())) return value.trim()
      const o = origin(key)
      const shown = o.text !== undefined ? displayValue(key, o.text) : displayValue(key, value)
      throw new KintoError(
        `${o.where}: ${shown} is not a ${rule.family} backend kinto-ops provides; expected ${describeRule(rule)}.`,
        {code: 'KINTO_CONFIG_INVALID', hint: o.hint},
      )
    }
    case 'date': {
      if (isEmpty(value)) {
        if (rule.nullable) return null
        throw fail()
      }
      if (typeof value !== 'string' || parseDateSetting(value) === null) throw fail()
      return value
    }
    case 'level': {
      const named = typeof value === 'string' ? PYTHON_LEVELS[value.trim().toUpperCase()] : undefined
      if (named !== undefined) return named
      const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN
      if (!Number.isSafeInteger(n) || n < 0) throw fail()
      return n
    }
    case 'choice': {
      if (typeof value === 'string' && rule.values.includes(value.trim())) return value.trim()
      throw fail()
    }
  }
}

function urlProblem(key: string, origin: OriginOf, problem: string): KintoError {
  const o = origin(key)
  return new KintoError(`${o.where}: ${problem}`, {code: 'KINTO_CONFIG_INVALID', hint: o.hint})
}

function checkDbUrl(settings: Settings, family: BackendFamily, dir: string, origin: OriginOf): void {
  const urlKey = `${family}_url`
  const backendKey = `${family}_backend`
  const url = settings[urlKey]
  if (isEmpty(url)) throw emptyDatabaseUrlError(settings, family, origin(backendKey))
  if (typeof url !== 'string') {
    throw urlProblem(urlKey, origin, `${displayValue(urlKey, url)} is not a database URL; expected ${DB_URL_FORMS}.`)
  }
  try {
    parseDbUrl(url, dir)
  } catch (error) {
    if (!(error instanceof KintoError)) throw error
    // a pglite: URL fails only on its options, a postgresql: one may on one of its parameters
    // (sslmode, port, a timeout: 'Invalid port "abc" in the database URL …'): say which, and how to write it
    if (/^\s*pglite:/i.test(url) || error instanceof UrlParamError) throw urlProblem(urlKey, origin, `${error.message} ${error.hint ?? ''}`.trim())
    throw urlProblem(urlKey, origin, `${JSON.stringify(maskUrl(url))} is not a database URL kinto-ops can use; expected ${DB_URL_FORMS}.`)
  }
}

/**
 * One engine per embedded folder: two of its URLs with different shared_buffers are one error here,
 * before any command opens (and writes to) the folder with the first of them.
 */
function checkSharedBuffers(settings: Settings, dir: string, origin: OriginOf): void {
  const given = new Map<string, {key: string; value: string}>()
  for (const family of ['storage', 'permission', 'cache'] as const) {
    if (backendKind(settings[`${family}_backend`]) !== 'postgresql') continue
    const url = settings[`${family}_url`]
    if (typeof url !== 'string') continue
    const parsed = parseDbUrl(url, dir)
    if (parsed.driver !== 'pglite' || parsed.dataDir === null || parsed.sharedBuffers === undefined) continue
    const key = `${family}_url`
    const first = given.get(parsed.dataDir)
    if (!first) given.set(parsed.dataDir, {key, value: parsed.sharedBuffers})
    else if (first.value !== parsed.sharedBuffers) {
      throw urlProblem(
        key,
        origin,
        `shared_buffers=${parsed.sharedBuffers} for the embedded database ${parsed.dataDir}, which kinto.${first.key} gives shared_buffers=${first.value}: one engine serves the folder. Give shared_buffers once, or the same on every pglite: URL of that folder.`,
      )
    }
  }
}

/**
 * Validates and normalises settings in place order: one rule per known key, then the backend/URL
 * pairs. Returns a new settings object. Throws the first problem as one KintoError.
 */
export function validateSettings(settings: Settings, options: {dir: string; origin: OriginOf}): Settings {
  const {dir, origin} = options
  const out: Settings = {...settings}
  for (const [key, value] of Object.entries(settings)) {
    const rule = ruleFor(key)
    if (rule) out[key] = check(key, value, rule, origin)
  }

  for (const family of ['storage', 'permission'] as const) {
    if (backendKind(out[`${family}_backend`]) === 'postgresql') checkDbUrl(out, family, dir, origin)
  }
  const cache = backendKind(out.cache_backend)
  if (cache === 'postgresql') checkDbUrl(out, 'cache', dir, origin)
  checkSharedBuffers(out, dir, origin)
  if (cache === 'redis') {
    // An empty cache_url is upstream's default Redis, localhost:6379/0 (src/lib/cache/index.ts).
    const url = out.cache_url
    const parsed = isEmpty(url) ? null : typeof url === 'string' ? parseRedisUrl(url) : {ok: false, problem: 'is not a Redis URL'}
    if (parsed && !parsed.ok) {
      throw urlProblem('cache_url', origin, `${displayValue('cache_url', url)} ${parsed.problem}; expected ${REDIS_URL_FORM}.`)
    }
  }
  if (cache === 'memcached') {
    const hosts = out.cache_hosts
    const list = Array.isArray(hosts) ? hosts.map(String) : String(hosts ?? '').split(/\s+/).filter(Boolean)
    if (list.length === 0) {
      throw urlProblem(
        'cache_backend',
        origin,
        'kinto.core.cache.memcached reads its servers from kinto.cache_hosts, which is empty; ' +
          'set it to host:port entries separated by spaces, such as 127.0.0.1:11211.',
      )
    }
    for (const host of list) {
      const parsed = parseMemcachedHost(host)
      if (!parsed.ok) throw urlProblem('cache_hosts', origin, `${displayValue('cache_hosts', host)} ${parsed.problem}; expected ${MEMCACHED_HOST_FORM}.`)
    }
  }
  return out
}

/**
 * Effective Kinto settings: defaults < ini `[app:main]` < environment.
 * Keys are stored without the `kinto.` prefix (`storage_backend`), un-prefixed keys such as
 * `multiauth.policies` stay as they are. Values are JSON-decoded as upstream's native_value does.
 */
import path from 'node:path'

import {KintoError} from '../errors.js'
import {HTTP_API_VERSION} from '../version.js'

export type Settings = Record<string, unknown>

/** Upstream's defaults (kinto/core DEFAULT_SETTINGS with kinto/__init__.py overrides). */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  readonly: false,
  batch_max_requests: 25,
  paginate_by: null,
  storage_max_fetch_size: 10000,
  pagination_token_validity_seconds: 600,
  storage_backend: 'kinto.core.storage.memory',
  storage_url: '',
  permission_backend: 'kinto.core.permission.memory',
  permission_url: '',
  cache_backend: 'kinto.core.cache.memory',
  cache_url: '',
  cache_hosts: '',
  cache_prefix: '',
  cache_max_size_bytes: 524288,
  cors_origins: '*',
  cors_max_age_seconds: 3600,
  backoff: null,
  backoff_percentage: null,
  retry_after_seconds: 3,
  eos: null,
  eos_message: null,
  eos_url: null,
  explicit_permissions: true,
  error_info_link: 'https://github.com/Kinto/kinto/issues/',
  http_host: null,
  http_scheme: null,
  id_generator: 'kinto.core.storage.generators.UUID4',
  bucket_id_generator: 'kinto.views.NameGenerator',
  collection_id_generator: 'kinto.views.NameGenerator',
  group_id_generator: 'kinto.views.NameGenerator',
  record_id_generator: 'kinto.views.RelaxedUUID',
  includes: '',
  event_listeners: '',
  heartbeat_timeout_seconds: 10,
  project_name: 'kinto',
  project_docs: 'https://kinto.readthedocs.io/',
  project_version: '',
  http_api_version: HTTP_API_VERSION,
  root_cache_expires_seconds: 86400,
  version_prefix_redirect_enabled: true,
  version_prefix_redirect_ttl_seconds: -1,
  trailing_slash_redirect_enabled: true,
  trailing_slash_redirect_ttl_seconds: 3600,
  statsd_backend: 'kinto.core.statsd',
  statsd_prefix: 'kinto.core',
  statsd_url: null,
  metrics_matchdict_fields: 'bucket_id collection_id group_id record_id',
  sentry_dsn: null,
  sentry_env: null,
  sentry_breadcrumbs_min_level: 10,
  sentry_events_min_level: 30,
  newrelic_config: null,
  newrelic_env: 'dev',
  profiler_enabled: false,
  profiler_dir: '/tmp',
  json_renderer: 'ultrajson',
  transaction_per_request: true,
  'tm.annotate_user': false,
  userid_hmac_secret: '',
  default_bucket_hmac_secret: '',
  version_json_path: 'version.json',
  bucket_create_principals: 'system.Authenticated',
  permissions_read_principals: 'system.Everyone',
  experimental_collection_schema_validation: false,
  experimental_permissions_endpoint: false,
  admin_assets_path: null,
  flush_endpoint_enabled: false,
  'multiauth.policies': '',
  'multiauth.groupfinder': 'kinto.core.authorization.groupfinder',
  'multiauth.policy.basicauth.use': 'kinto.core.authentication.BasicAuthAuthenticationPolicy',
  'multiauth.authorization_policy': 'kinto.authorization.AuthorizationPolicy',
})

/**
 * What an empty `multiauth.policies` means in kinto-ops, where upstream differs (kinto start
 * prints it after "multiauth.policies is empty: ", kinto check reports it).
 */
export const EMPTY_POLICIES_MEANING =
  'kinto-ops then takes any Basic Auth credentials as a basicauth user (system.Authenticated, so allowed to create buckets by default), where upstream Kinto authenticates nobody with this setting.'

/**
 * Python's logging level names and their numbers: the ini's logging sections and upstream's
 * `sentry_*_min_level` settings take either.
 */
export const PYTHON_LEVELS: Readonly<Record<string, number>> = Object.freeze({
  CRITICAL: 50,
  FATAL: 50,
  ERROR: 40,
  WARN: 30,
  WARNING: 30,
  INFO: 20,
  DEBUG: 10,
  NOTSET: 0,
})

/**
 * Versions, kept as written: decoded, `1.0` would be the number 1 and show as "1" (upstream's
 * str() of the float shows "1.0"), and `1.10` would show as "1.1".
 */
const VERSION_TEXTS: ReadonlySet<string> = new Set(['project_version', 'http_api_version'])

/** upstream's native_value: JSON-decode a string when it parses, else keep it raw. */
export function nativeValue(value: unknown): unknown {
  if (typeof value !== 'string') return value
  const trimmed = value.trim()
  if (trimmed === '') return value
  try {
    return JSON.parse(trimmed)
  } catch {
    // Python's json accepts these too; configparser users write them.
    if (trimmed === 'True') return true
    if (trimmed === 'False') return false
    return value
  }
}

/** Strips the `kinto.` project prefix. */
export function settingKey(key: string): string {
  return key.startsWith('kinto.') ? key.slice('kinto.'.length) : key
}

/** Environment variable names for a setting key: un-prefixed first, then `KINTO_` (which wins). */
export function envNames(key: string): [string, string] {
  const base = key.replace(/[.-]/g, '_').toUpperCase()
  return [base, `KINTO_${base}`]
}

export class SettingsConflictError extends KintoError {
  constructor(key: string) {
    super(`Settings 'kinto.${key}' and '${key}' are in conflict.`, {
      code: 'KINTO_CONFIG_CONFLICT',
      hint: `Keep only one of 'kinto.${key}' and '${key}' in [app:main].`,
    })
  }
}

/** Where an effective setting came from. */
export type SettingSource =
  | {kind: 'default'}
  | {kind: 'ini'; key: string; line?: number}
  | {kind: 'env'; variable: string}

/** A raw `[app:main]` entry with its position, for sources and messages. */
export interface RawSetting {
  key: string
  value: unknown
  line?: number
}

/**
 * Effective settings plus where each came from. Same rules as buildSettings: defaults fill missing
 * keys; env overrides only keys that exist (`KINTO_X` wins over `X`); values JSON-decoded.
 */
export function resolveSettings(
  raw: Record<string, unknown> | RawSetting[] = {},
  env: NodeJS.ProcessEnv = {},
): {settings: Settings; sources: Record<string, SettingSource>} {
  const entries: RawSetting[] = Array.isArray(raw) ? raw : Object.entries(raw).map(([key, value]) => ({key, value}))
  const settings: Settings = {...DEFAULT_SETTINGS}
  const sources: Record<string, SettingSource> = {}
  for (const key of Object.keys(settings)) sources[key] = {kind: 'default'}
  const seen = new Map<string, unknown>()
  for (const {key: rawKey, value, line} of entries) {
    const key = settingKey(rawKey)
    if (seen.has(key) && seen.get(key) !== value) throw new SettingsConflictError(key)
    seen.set(key, value)
    settings[key] = value
    sources[key] = line === undefined ? {kind: 'ini', key: rawKey} : {kind: 'ini', key: rawKey, line}
  }
  for (const key of Object.keys(settings)) {
    const [plain, prefixed] = envNames(key)
    if (env[prefixed] !== undefined) {
      settings[key] = env[prefixed]
      sources[key] = {kind: 'env', variable: prefixed}
    } else if (env[plain] !== undefined) {
      settings[key] = env[plain]
      sources[key] = {kind: 'env', variable: plain}
    }
  }
  for (const key of Object.keys(settings)) {
    const value = settings[key]
    settings[key] = VERSION_TEXTS.has(key) && typeof value === 'string' ? value.trim() : nativeValue(value)
  }
  return {settings, sources}
}

/**
 * Builds effective settings from raw `[app:main]` entries (strings, as in the ini) and the
 * environment, by upstream's rules: defaults fill missing keys; env overrides only keys that exist.
 */
export function buildSettings(raw: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Settings {
  return resolveSettings(raw, env).settings
}

function invalid(key: string, value: unknown, allowed: string): KintoError {
  return new KintoError(`Invalid value ${JSON.stringify(value)} for setting '${key}': expected ${allowed}.`, {
    code: 'KINTO_CONFIG_INVALID',
  })
}

export function asBool(settings: Settings, key: string): boolean {
  const v = settings[key]
  if (v === undefined || v === null || v === '') return false
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase()
    // Pyramid's asbool words (t, y too), and their opposites.
    if (['true', 'yes', 'on', '1', 't', 'y'].includes(s)) return true
    if (['false', 'no', 'off', '0', 'f', 'n'].includes(s)) return false
  }
  throw invalid(key, v, 'true or false')
}

/** Integer setting; null/undefined/'' give `fallback`. */
export function asInt(settings: Settings, key: string, fallback: number | null = null): number | null {
  const v = settings[key]
  if (v === undefined || v === null || v === '') return fallback
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim())
  throw invalid(key, v, 'an integer')
}

/** A duration in seconds (a number, fractions allowed, ≥ 0); null/undefined/'' give null. */
export function asSeconds(settings: Settings, key: string): number | null {
  const v = settings[key]
  if (v === undefined || v === null || v === '') return null
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : Number.NaN
  if (!Number.isFinite(n) || n < 0) throw invalid(key, v, 'a number of seconds')
  return n
}

/** Whitespace/newline separated list (upstream's aslist); arrays kept. */
export function asList(settings: Settings, key: string): string[] {
  const v = settings[key]
  if (v === undefined || v === null || v === '') return []
  if (Array.isArray(v)) return v.map(String)
  return String(v).split(/\s+/).filter(Boolean)
}

export function asString(settings: Settings, key: string): string | null {
  const v = settings[key]
  if (v === undefined || v === null) return null
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/**
 * Where a path setting may point, in order: relative to the current folder (upstream's reading),
 * then to the ini's folder (so an ini moved with its files keeps working).
 */
export function settingPathCandidates(configured: string, baseDir: string | undefined): string[] {
  const candidates = [path.resolve(configured)]
  if (baseDir && !path.isAbsolute(configured)) candidates.push(path.resolve(baseDir, configured))
  return candidates
}

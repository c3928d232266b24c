/** Which settings a running server takes on reload (SIGHUP) without a restart. */
/**
 * Settings a running runtime takes on reload (SIGHUP): each is read per request from
 * `runtime.settings`, or rebuilt by applySettings(). Any other change needs a restart.
 */
const RELOADABLE_SETTINGS = new Set([
  'backoff',
  'backoff_percentage',
  'backoff_expires',
  'readonly',
  'readonly_expires',
  'maintenance',
  'maintenance_expires',
  'retry_after_seconds',
  'eos',
  'eos_message',
  'eos_url',
  'cors_origins',
  'cors_max_age_seconds',
  'heartbeat_timeout_seconds',
  'root_cache_expires_seconds',
  'batch_max_requests',
  'paginate_by',
  'pagination_token_validity_seconds',
  'explicit_permissions',
  'error_info_link',
  'project_docs',
  'http_host',
  'http_scheme',
  'version_prefix_redirect_enabled',
  'version_prefix_redirect_ttl_seconds',
  'trailing_slash_redirect_enabled',
  'trailing_slash_redirect_ttl_seconds',
])
const RELOADABLE_PATTERNS = [/_principals$/, /_cache_expires_seconds$/]

export function isReloadableSetting(key: string): boolean {
  return RELOADABLE_SETTINGS.has(key) || RELOADABLE_PATTERNS.some((re) => re.test(key))
}

/** What applySettings() did: setting keys (never values) taken live, and those needing a restart. */
export interface SettingsChange {
  applied: string[]
  needRestart: string[]
}

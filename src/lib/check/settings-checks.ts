/**
 * The production checklist over the settings alone (no network, no database): one small function
 * per item, each returning findings with a stable id. The items follow upstream's production guide
 * (recommended settings, bucket listing, CDN host, flush endpoint, secrets).
 */
import {statSync} from 'node:fs'

import {accountValidationWarning} from '../accounts/index.js'
import {type AdminBuild, findAdminBuild} from '../admin-console.js'
import {type KintoConfig, backendKind, describeSettingSource} from '../config/index.js'
import {asBool, asInt, asList, asString, EMPTY_POLICIES_MEANING} from '../config/settings.js'
import {isSecretKey} from '../config/validate.js'
import {maskUrl, parseDbUrl} from '../db/url.js'
import {isKintoError} from '../errors.js'
import {serverNameFromHttpHost} from '../deploy/values.js'
import {type Finding, error, ok, warning} from './types.js'
import {shellArg} from '../text/shell.js'

export type SettingsCheck = (config: KintoConfig) => Finding[]

/** " (FILE, line N, key 'kinto.x')" or " (environment variable X)"; empty for defaults. */
function from(config: KintoConfig, key: string): string {
  const where = describeSettingSource(config, key)
  return where === 'default' ? '' : ` (${where})`
}

const isSet = (v: unknown) => v !== null && v !== undefined && !(typeof v === 'string' && v.trim() === '')

export const checkHttpScheme: SettingsCheck = (config) => {
  const scheme = asString(config.settings, 'http_scheme')
  if (scheme === 'https') return [ok('http-scheme', 'kinto.http_scheme is https: hello, Next-Page and other absolute URLs use https.')]
  return [
    error(
      'http-scheme',
      `kinto.http_scheme is ${isSet(scheme) ? JSON.stringify(scheme) : 'not set'}${from(config, 'http_scheme')}: the URLs Kinto builds (hello's url, Next-Page) follow the request's scheme, so behind a TLS proxy they point clients to plain http.`,
      'Set kinto.http_scheme = https in [app:main].',
    ),
  ]
}

/** The production guide's value for paginate_by. */
const SUGGESTED_PAGE = 100

export const checkPaginateBy: SettingsCheck = (config) => {
  const page = asInt(config.settings, 'paginate_by')
  const max = asInt(config.settings, 'storage_max_fetch_size', 10000) ?? 10000
  if (page === null || page === 0) {
    return [
      warning(
        'paginate-by',
        `kinto.paginate_by is not set${from(config, 'paginate_by')}: a list request without _limit returns up to storage_max_fetch_size (${max}) objects in one response.`,
        `Set kinto.paginate_by = ${SUGGESTED_PAGE} (the production guide's value) in [app:main].`,
      ),
    ]
  }
  if (page > max) {
    return [
      warning(
        'paginate-by',
        `kinto.paginate_by = ${page}${from(config, 'paginate_by')} is larger than kinto.storage_max_fetch_size (${max}), which caps every page anyway.`,
        `Set kinto.paginate_by to ${SUGGESTED_PAGE}, or at most ${max}.`,
      ),
    ]
  }
  return [ok('paginate-by', `kinto.paginate_by = ${page}: lists are served in pages of at most ${page} objects.`)]
}

/** Above this, one batch holds a transaction (and a pooled connection) for a long time. */
const MAX_REASONABLE_BATCH = 100

export const checkBatchMaxRequests: SettingsCheck = (config) => {
  const n = asInt(config.settings, 'batch_max_requests', 0) ?? 0
  if (n === 0) {
    const said = config.settings.batch_max_requests === null ? 'empty' : '0'
    return [
      error(
        'batch-max-requests',
        `kinto.batch_max_requests is ${said}${from(config, 'batch_max_requests')}, which means unlimited: one POST /v1/batch can carry any number of sub-requests in a single transaction.`,
        'Set kinto.batch_max_requests = 25 (the default and the production guide\'s value).',
      ),
    ]
  }
  if (n > MAX_REASONABLE_BATCH) {
    return [
      warning(
        'batch-max-requests',
        `kinto.batch_max_requests = ${n}${from(config, 'batch_max_requests')}: one batch runs all its sub-requests in one transaction, holding a database connection meanwhile.`,
        'Set kinto.batch_max_requests = 25 unless clients really need larger batches.',
      ),
    ]
  }
  return [ok('batch-max-requests', `kinto.batch_max_requests = ${n}.`)]
}

/** The production guide's pool size. */
const SUGGESTED_POOL = 50

export const checkPoolSizes: SettingsCheck = (config) => {
  const s = config.settings
  const findings: Finding[] = []
  const seen = new Map<string, string>()
  // Upstream's order: storage, permission, cache.
  for (const backend of ['storage', 'permission', 'cache'] as const) {
    if (backendKind(s[`${backend}_backend`]) !== 'postgresql') continue
    const url = (asString(s, `${backend}_url`) ?? '').trim()
    let key = url
    try {
      const p = parseDbUrl(url, config.dir)
      key = p.driver === 'pglite' ? `pglite:${p.dataDir}` : p.connectionString
      if (p.driver === 'pglite') {
        findings.push(ok('pool-size', `kinto.${backend}_url is an embedded database (one connection, no pool).`))
        continue
      }
    } catch {
      // validated by loadConfig already
    }
    // One pool per URL for storage and permission (they share the request's transaction); the
    // cache, which commits on its own, always gets its own pool (upstream's client registry).
    if (backend === 'cache') key = `cache|${key}`
    const owner = seen.get(key)
    const source = config.sources[`${backend}_pool_size`]
    const explicit = source !== undefined && source.kind !== 'default'
    if (owner) {
      // Only worth a word when its own size says something else than the pool it really gets.
      const own = asInt(s, `${backend}_pool_size`, 25)
      if (explicit && own !== (asInt(s, `${owner}_pool_size`, 25) ?? 25)) {
        findings.push(
          warning(
            'pool-size',
            `kinto.${backend}_pool_size${from(config, `${backend}_pool_size`)} = ${own} has no effect: kinto.${backend}_url is the same database as kinto.${owner}_url, and the pool they share is sized by kinto.${owner}_pool_size (${asInt(s, `${owner}_pool_size`, 25) ?? 25}).`,
            `Remove kinto.${backend}_pool_size, or size kinto.${owner}_pool_size for both.`,
          ),
        )
      }
      continue
    }
    seen.set(key, backend)
    const size = asInt(s, `${backend}_pool_size`, 25) ?? 25
    const overflow = asInt(s, `${backend}_max_overflow`, 10) ?? 10
    if (!explicit) {
      findings.push(
        warning(
          'pool-size',
          `kinto.${backend}_pool_size is not set: the ${backend} pool uses the default of 25 connections (+${overflow} overflow) per process.`,
          `Set kinto.${backend}_pool_size (the production guide suggests ${SUGGESTED_POOL}) to what one process needs, keeping processes × (pool_size + max_overflow) under PostgreSQL's max_connections.`,
        ),
      )
    } else if (size === 0) {
      findings.push(
        error(
          'pool-size',
          `kinto.${backend}_pool_size is 0${from(config, `${backend}_pool_size`)}: the ${backend} backend would have only overflow connections (${overflow}).`,
          `Set kinto.${backend}_pool_size to a positive number such as ${SUGGESTED_POOL}.`,
        ),
      )
    } else {
      findings.push(ok('pool-size', `kinto.${backend}_pool_size = ${size} (+${overflow} overflow) per process.`))
    }
  }
  return findings
}

export const checkBackends: SettingsCheck = (config) => {
  const s = config.settings
  const findings: Finding[] = []
  for (const backend of ['storage', 'permission'] as const) {
    const kind = backendKind(s[`${backend}_backend`])
    if (kind === 'memory') {
      findings.push(
        error(
          `${backend}-backend`,
          `kinto.${backend}_backend is ${s[`${backend}_backend`]}${from(config, `${backend}_backend`)}: everything it holds is lost on restart and not shared between processes.`,
          `Set kinto.${backend}_backend = kinto.core.${backend}.postgresql and kinto.${backend}_url to your database, then run kinto migrate.`,
        ),
      )
    } else {
      findings.push(...(embeddedFindings(config, backend) ?? [ok(`${backend}-backend`, `kinto.${backend}_backend is ${s[`${backend}_backend`]}.`)]))
    }
  }
  const cache = backendKind(s.cache_backend)
  if (cache === 'memory') {
    findings.push(
      warning(
        'cache-backend',
        `kinto.cache_backend is ${s.cache_backend}${from(config, 'cache_backend')}: each process keeps its own cache, so pagination tokens of DELETE requests and cached account logins are not shared between processes.`,
        'Set kinto.cache_backend = kinto.core.cache.postgresql (or redis/memcached) and its URL.',
      ),
    )
  } else {
    findings.push(...(embeddedFindings(config, 'cache') ?? [ok('cache-backend', `kinto.cache_backend is ${s.cache_backend}.`)]))
  }
  return findings
}

/** Findings for a postgresql backend on the embedded engine; undefined for a PostgreSQL server. */
function embeddedFindings(config: KintoConfig, backend: 'storage' | 'permission' | 'cache'): Finding[] | undefined {
  if (backendKind(config.settings[`${backend}_backend`]) !== 'postgresql') return undefined
  let parsed
  try {
    parsed = parseDbUrl(asString(config.settings, `${backend}_url`) ?? '', config.dir)
  } catch {
    return undefined
  }
  if (parsed.driver !== 'pglite') return undefined
  const id = `${backend}-backend`
  if (parsed.dataDir === null) {
    return [
      (backend === 'cache' ? warning : error)(
        id,
        `kinto.${backend}_url is an in-memory embedded database${from(config, `${backend}_url`)}: it starts empty at every start and each process has its own.`,
        `Point kinto.${backend}_url at a PostgreSQL server (postgresql://user:password@host/dbname).`,
      ),
    ]
  }
  return [
    warning(
      id,
      `kinto.${backend}_url is the embedded engine (${parsed.dataDir}): one process at a time, one connection, no replicas; fine for small setups, not what the production guide recommends.`,
      `Point kinto.${backend}_url at a PostgreSQL server (postgresql://user:password@host/dbname) and run kinto migrate.`,
    ),
  ]
}

export const checkBucketReadPrincipals: SettingsCheck = (config) => {
  const principals = asList(config.settings, 'bucket_read_principals')
  if (principals.length === 0) {
    return [ok('bucket-read-principals', 'kinto.bucket_read_principals is not set: nobody may list every bucket (the default).')]
  }
  const everyone = principals.includes('system.Everyone')
  const authenticated = principals.includes('system.Authenticated')
  const who = everyone ? 'everyone, even anonymous clients,' : authenticated ? 'every authenticated user' : `${principals.join(', ')}`
  return [
    warning(
      'bucket-read-principals',
      `kinto.bucket_read_principals = ${principals.join(' ')}${from(config, 'bucket_read_principals')}: ${who} can read every bucket and list them all, including users' personal (default) buckets.`,
      'Remove kinto.bucket_read_principals unless that is intended; grant read on specific buckets with their permissions instead.',
    ),
  ]
}

/**
 * `DELETE /__user_data__/<principal>` deletes what a principal alone may write, for whoever
 * `user-data_delete_principals` names (nobody by default, as upstream): reported when set.
 */
export const checkUserDataDeletePrincipals: SettingsCheck = (config) => {
  const principals = asList(config.settings, 'user-data_delete_principals')
  if (principals.length === 0) return []
  const id = 'user-data-delete-principals'
  const shown = `kinto.user-data_delete_principals = ${principals.join(' ')}${from(config, 'user-data_delete_principals')}`
  const who = principals.includes('system.Everyone') ? 'anyone, even an anonymous client,' : principals.includes('system.Authenticated') ? 'every authenticated user' : null
  if (who !== null) {
    return [
      error(
        id,
        `${shown}: ${who} can delete any user's data (DELETE /v1/__user_data__/<principal>): their buckets, collections, records and account.`,
        'Name only the administrators who handle data deletion requests (e.g. kinto.user-data_delete_principals = account:admin).',
      ),
    ]
  }
  return [ok(id, `${shown}: they may delete any user's data (DELETE /v1/__user_data__/<principal>).`)]
}

export const checkAuthPolicies: SettingsCheck = (config) => {
  const policies = asList(config.settings, 'multiauth.policies')
  if (policies.length > 0) return [ok('multiauth-policies', `multiauth.policies = ${policies.join(' ')}.`)]
  return [
    warning(
      'multiauth-policies',
      `multiauth.policies is empty${from(config, 'multiauth.policies')}: ${EMPTY_POLICIES_MEANING}`,
      'Set multiauth.policies to the policies this server accepts (e.g. account, with kinto.plugins.accounts), or to basicauth to say that this is meant.',
    ),
  ]
}

/**
 * Secrets published in upstream's documentation, tests and tutorials, and placeholders people
 * type: whoever uses one has no secret at all.
 */
const PUBLISHED_SECRETS = new Set(
  [
    'secret',
    'changeme',
    'change-me',
    'change_me',
    'password',
    'default',
    'kinto',
    'bucket_id_salt',
    'secret_hmac_for_userids',
    'have-you-seen-the-new-carioca',
    'bucket-id-random-salt-garam',
    'tr0ub4d@ur',
    'b6626ff6d28b02367127d80e2e9b596034af6c49c23eb02995dc8a76049f7b65',
    '{secret}',
    '{bucket_id_salt}',
  ].map((s) => s.toLowerCase()),
)

/** Shorter than this (or fewer distinct characters) is guessable; `kinto init` writes 64 hex characters. */
const MIN_SECRET = 16
const GOOD_SECRET = 32

type SecretVerdict = 'empty' | 'published' | 'weak' | 'short' | 'good'

function judgeSecret(value: string | null): SecretVerdict {
  const v = (value ?? '').trim()
  if (v === '') return 'empty'
  if (PUBLISHED_SECRETS.has(v.toLowerCase())) return 'published'
  if (v.length < MIN_SECRET || new Set(v).size < 6) return 'weak'
  if (v.length < GOOD_SECRET) return 'short'
  return 'good'
}

const SECRET_RECIPE = 'a fresh random value of at least 32 characters, e.g. the output of `openssl rand -hex 32`'

export const checkSecrets: SettingsCheck = (config) => {
  const s = config.settings
  const findings: Finding[] = []

  const userid = judgeSecret(asString(s, 'userid_hmac_secret'))
  const useridWhere = from(config, 'userid_hmac_secret')
  const consequence =
    'user ids (basicauth:<hmac>, shown in permissions other users can read) can be brute-forced back to passwords'
  const rotate = ' Changing it changes every basicauth user id, so ACLs naming the old ids must be rewritten.'
  if (userid === 'empty' || userid === 'published' || userid === 'weak') {
    const what = userid === 'empty' ? 'is empty' : userid === 'published' ? 'is a value published in documentation or tests' : 'is too short or too simple'
    findings.push(
      error('userid-hmac-secret', `kinto.userid_hmac_secret ${what}${useridWhere}: ${consequence}.`, `Set kinto.userid_hmac_secret to ${SECRET_RECIPE}.${rotate}`),
    )
  } else if (userid === 'short') {
    findings.push(
      warning(
        'userid-hmac-secret',
        `kinto.userid_hmac_secret is shorter than ${GOOD_SECRET} characters${useridWhere}; kinto init writes 64 random hex characters.`,
        `Set kinto.userid_hmac_secret to ${SECRET_RECIPE}.${rotate}`,
      ),
    )
  } else {
    findings.push(ok('userid-hmac-secret', 'kinto.userid_hmac_secret is set to a long value that is not a published one.'))
  }

  if (asList(s, 'includes').includes('kinto.plugins.default_bucket')) {
    const bucket = judgeSecret(asString(s, 'default_bucket_hmac_secret'))
    const where = from(config, 'default_bucket_hmac_secret')
    if (bucket === 'good') {
      findings.push(ok('default-bucket-hmac-secret', 'kinto.default_bucket_hmac_secret is set to a long value that is not a published one.'))
    } else {
      const what =
        bucket === 'empty'
          ? 'is empty'
          : bucket === 'published'
            ? 'is a value published in documentation or tests'
            : `is shorter than ${bucket === 'weak' ? MIN_SECRET : GOOD_SECRET} characters or too simple`
      findings.push(
        warning(
          'default-bucket-hmac-secret',
          `kinto.default_bucket_hmac_secret ${what}${where} while kinto.plugins.default_bucket is included: anyone can compute the id of another user's personal bucket (access is still checked).`,
          `Set kinto.default_bucket_hmac_secret to ${SECRET_RECIPE}. Changing it moves every user's default bucket to a new id.`,
        ),
      )
    }
  }
  return findings
}

/** Database passwords from upstream's docs, docker-compose and kinto init. */
const PUBLISHED_DB_PASSWORDS = new Set(['postgres', 'dbpassword', 'password', 'kinto', 'changeme'])

export const checkDatabasePasswords: SettingsCheck = (config) => {
  const s = config.settings
  const findings: Finding[] = []
  const reported = new Set<string>()
  for (const backend of ['storage', 'cache', 'permission'] as const) {
    if (backendKind(s[`${backend}_backend`]) !== 'postgresql') continue
    const url = (asString(s, `${backend}_url`) ?? '').trim()
    const m = /^[a-z0-9+]+:\/\/[^:/@?#]*:([^@/?#]*)@/i.exec(url)
    if (!m) continue
    let password = m[1]
    try {
      password = decodeURIComponent(password)
    } catch {
      // keep it raw
    }
    if (!PUBLISHED_DB_PASSWORDS.has(password.toLowerCase()) || reported.has(url)) continue
    reported.add(url)
    findings.push(
      warning(
        'db-password',
        `kinto.${backend}_url${from(config, `${backend}_url`)} uses a password from the documentation examples.`,
        'Give the database role a strong password (ALTER ROLE … PASSWORD) and put it in the URL, or use ~/.pgpass.',
      ),
    )
  }
  return findings
}

/**
 * The settings of the ini that hold a secret, as the ini names them: those whose name says so
 * (isSecretKey: hmac secrets, OpenID client secrets, passwords, tokens, the Sentry DSN) and every
 * URL with a password (what maskUrl would hide: `user:password@`, `?password=`).
 */
function iniHoldsSecrets(config: KintoConfig): string[] {
  const keys: string[] = []
  for (const [key, value] of Object.entries(config.settings)) {
    const source = config.sources[key]
    if (source?.kind !== 'ini' || !isSet(value)) continue
    if (isSecretKey(key) || (typeof value === 'string' && maskUrl(value) !== value)) keys.push(source.key)
  }
  return keys
}

export const checkIniPermissions: SettingsCheck = (config) => {
  if (process.platform === 'win32') return []
  const secrets = iniHoldsSecrets(config)
  let mode: number
  try {
    mode = statSync(config.path).mode & 0o777
  } catch {
    return []
  }
  const octal = mode.toString(8).padStart(3, '0')
  const fix = `chmod 600 ${shellArg(config.path)} (or 640 with a group for the service)${secrets.length > 0 ? ', or move the secrets to environment variables (KINTO_USERID_HMAC_SECRET…)' : ''}.`
  // Whoever can write the ini decides what Kinto runs with, secrets or not.
  const writers = mode & 0o002 ? 'any user of this machine' : mode & 0o020 ? 'the users of its group' : undefined
  if (writers) {
    return [
      (mode & 0o002 ? error : warning)(
        'ini-permissions',
        `${config.path}: ${writers} can change it (mode ${octal}), so they could point Kinto at another database, grant themselves permissions or turn on plugins at the next start or reload.`,
        fix,
      ),
    ]
  }
  if (secrets.length === 0) return []
  if ((mode & 0o004) !== 0) {
    return [warning('ini-permissions', `${config.path} holds secrets (${secrets.join(', ')}) and any user of this machine can read it (mode ${octal}).`, fix)]
  }
  return [ok('ini-permissions', `${config.path} holds secrets and is not readable by other users (mode ${octal}).`)]
}

export const checkHttpHost: SettingsCheck = (config) => {
  const host = asString(config.settings, 'http_host')
  if (!isSet(host)) {
    return [
      warning(
        'http-host',
        'kinto.http_host is not set: URLs Kinto builds (hello\'s url, Next-Page) use the Host header of each request, so behind a CDN that reaches this server under its own name, the main server host leaks to clients.',
        'Behind a CDN or a proxy that rewrites Host, set kinto.http_host to the public host name (e.g. kinto.http_host = cdn.example.com).',
      ),
    ]
  }
  try {
    serverNameFromHttpHost(host!)
  } catch {
    return [
      error(
        'http-host',
        `kinto.http_host = ${JSON.stringify(host)}${from(config, 'http_host')} is not a host name (with an optional :port); a scheme or a path here ends up inside every URL Kinto builds.`,
        'Set kinto.http_host to the bare public host, e.g. kinto.http_host = kinto.example.com; the scheme goes in kinto.http_scheme.',
      ),
    ]
  }
  return [ok('http-host', `kinto.http_host = ${host}: URLs Kinto builds name the public host whatever the Host header.`)]
}

export const checkFlushEndpoint: SettingsCheck = (config) => {
  const includes = asList(config.settings, 'includes')
  if (includes.includes('kinto.plugins.flush')) {
    return [
      error(
        'flush-endpoint',
        `kinto.includes lists kinto.plugins.flush${from(config, 'includes')}: POST /v1/__flush__ deletes every bucket, collection, record and permission, and needs no authentication.`,
        'Remove kinto.plugins.flush from kinto.includes (it is meant for test servers).',
      ),
    ]
  }
  if (config.sources.flush_endpoint_enabled?.kind !== 'default' && asBool(config.settings, 'flush_endpoint_enabled')) {
    return [
      warning(
        'flush-endpoint',
        `kinto.flush_endpoint_enabled is true${from(config, 'flush_endpoint_enabled')}: Kinto 7 and later ignore it (only kinto.plugins.flush adds __flush__), but older Kinto exposed an unauthenticated POST /v1/__flush__ that deletes everything.`,
        'Remove kinto.flush_endpoint_enabled.',
      ),
    ]
  }
  return [ok('flush-endpoint', 'The __flush__ endpoint is not enabled.')]
}

/** kinto.account_validation of Kinto 19 and older: no longer validates anything. */
export const checkAccountValidation: SettingsCheck = (config) => {
  const message = accountValidationWarning(config.settings)
  if (message === null) return []
  return [
    warning(
      'account-validation',
      message.replace('is true,', `is true${from(config, 'account_validation')},`),
      'Remove kinto.account_validation and its account_validation.* settings; to keep unvalidated accounts out, delete the accounts whose data.validated is false (or set validated to true on those you trust), and limit kinto.account_create_principals to administrators if sign-ups must be vetted.',
    ),
  ]
}

/** kinto.plugins.admin: the console the server will serve, or why it will not start / serve one. */
export const checkAdminConsole: SettingsCheck = (config) => {
  if (!asList(config.settings, 'includes').includes('kinto.plugins.admin')) return []
  let build: AdminBuild | null
  try {
    build = findAdminBuild(config.settings, config.dir)
  } catch (e) {
    if (!isKintoError(e)) throw e
    return [error('admin-console', `${e.message.replace(/\.$/, '')}${from(config, 'admin_assets_path')}: the server refuses to start.`, e.hint ?? '')]
  }
  if (!build) {
    return [
      warning(
        'admin-console',
        'kinto.includes lists kinto.plugins.admin but this kinto-ops has no built Kinto Admin console (dist/admin): /v1/admin/ answers 404.',
        'Run npm run build in kinto-ops, or set kinto.admin_assets_path to a Kinto Admin build.',
      ),
    ]
  }
  const source = build.bundled ? 'bundled with kinto-ops' : `from ${build.dir}`
  return [ok('admin-console', `The Kinto Admin console ${build.version} (${source}) is served at /v1/admin/.`)]
}

/**
 * What a browser puts in Origin for an entry of cors_origins meant for one site, or undefined when
 * the entry is already that (or a pattern this cannot judge). Origin is `scheme://host[:port]`: no
 * path, no trailing slash, a lower-case host, no default port; the entries are matched whole
 * (globs), so `https://app.example.com/` or `app.example.com` lets no page in.
 */
function originMeant(entry: string): string | undefined {
  if (entry === '*' || entry === 'null') return undefined
  if (/[*?[]/.test(entry)) {
    if (entry.endsWith('/')) return entry.replace(/\/+$/, '')
    return /^[*?[]/.test(entry) || entry.includes('://') ? undefined : `https://${entry}`
  }
  if (!entry.includes('://')) {
    try {
      return new URL(`https://${entry}`).origin
    } catch {
      return 'https://HOST[:PORT]'
    }
  }
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return undefined
  }
  // Other schemes (moz-extension://…): only their path can be told wrong.
  const origin = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : `${url.protocol}//${url.host}`
  return origin === entry ? undefined : origin
}

export const checkCorsOrigins: SettingsCheck = (config) => {
  const entries = asList(config.settings, 'cors_origins')
  const findings: Finding[] = []
  for (const entry of entries) {
    const meant = originMeant(entry)
    if (meant === undefined) continue
    findings.push(
      warning(
        'cors-origins',
        `kinto.cors_origins has ${JSON.stringify(entry)}${from(config, 'cors_origins')}, which no Origin header matches: browsers send scheme://host[:port] alone (no path, no trailing slash, no default port), so the pages of that site cannot call this Kinto.`,
        `Write ${meant} instead in kinto.cors_origins.`,
      ),
    )
  }
  if (findings.length > 0) return findings
  const shown = entries.length === 0 ? 'empty: no browser page of another site may call this Kinto' : entries.includes('*') ? '*: pages of any site may call this Kinto (the default)' : entries.join(' ')
  return [ok('cors-origins', `kinto.cors_origins is ${shown}.`)]
}

export const SETTINGS_CHECKS: readonly SettingsCheck[] = [
  checkBackends,
  checkHttpScheme,
  checkHttpHost,
  checkPaginateBy,
  checkBatchMaxRequests,
  checkPoolSizes,
  checkBucketReadPrincipals,
  checkUserDataDeletePrincipals,
  checkAuthPolicies,
  checkSecrets,
  checkDatabasePasswords,
  checkIniPermissions,
  checkFlushEndpoint,
  checkAccountValidation,
  checkAdminConsole,
  checkCorsOrigins,
]

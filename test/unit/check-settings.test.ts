/**
 * `kinto check` settings checks, in process: a good production ini gives no error and no
 * warning; each mistake of the production checklist gives its finding (id, level, and a fix);
 * secrets never appear in any finding.
 */
import {appendFileSync, chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {checkIni, type Finding, runChecks} from '../../src/lib/check/index.js'
import {parseStatsdUrl} from '../../src/lib/monitoring/statsd-settings.js'
import {loadConfig} from '../../src/lib/config/index.js'

const SECRET = '5f0c1e9a7b3d42e8a6c0f19d2b7e4a3c8d1f6b0e9a2c5d7f3b8e1a4c6d9f0b2e'
const DB_PASSWORD = 'Xq7-vT2p-Lm9w'
const URL = `postgresql://kinto:${DB_PASSWORD}@db.internal:5432/kinto`

/** A production ini following upstream's production guide. */
const GOOD: Record<string, string> = {
  'kinto.storage_backend': 'kinto.core.storage.postgresql',
  'kinto.storage_url': URL,
  'kinto.permission_backend': 'kinto.core.permission.postgresql',
  'kinto.permission_url': URL,
  'kinto.cache_backend': 'kinto.core.cache.postgresql',
  'kinto.cache_url': URL,
  'kinto.storage_pool_size': '20',
  'kinto.cache_pool_size': '20',
  'kinto.http_scheme': 'https',
  'kinto.http_host': 'kinto.example.com',
  'kinto.paginate_by': '100',
  'kinto.batch_max_requests': '25',
  'kinto.userid_hmac_secret': SECRET,
  'kinto.includes': 'kinto.plugins.statsd',
  'kinto.statsd_url': 'udp://statsd.internal:8125',
  'multiauth.policies': 'basicauth',
}

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function writeIni(settings: Record<string, string | undefined>, mode = 0o600): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-check-'))
  dirs.push(dir)
  const file = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'use = egg:kinto']
  for (const [k, v] of Object.entries(settings)) if (v !== undefined) lines.push(`${k} = ${v}`)
  writeFileSync(file, lines.join('\n') + '\n')
  chmodSync(file, mode)
  return file
}

/** statsd.internal resolves; anything named `nowhere…` does not (no real DNS in unit tests). */
async function resolve(host: string): Promise<string[]> {
  if (host.startsWith('nowhere')) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {code: 'ENOTFOUND'})
  return ['10.0.0.7']
}

async function lint(changes: Record<string, string | undefined> = {}, mode = 0o600): Promise<Finding[]> {
  const file = writeIni({...GOOD, ...changes}, mode)
  return runChecks(loadConfig(file, {env: {}}), {db: false, resolve})
}

const problems = (findings: Finding[]) => findings.filter((f) => f.level !== 'ok')

describe('a good production ini', () => {
  it('has no error and no warning, and each item of the checklist is reported ok', async () => {
    const findings = await lint()
    expect(problems(findings)).toEqual([])
    const ids = new Set(findings.map((f) => f.id))
    for (const id of ['http-scheme', 'http-host', 'paginate-by', 'batch-max-requests', 'pool-size', 'bucket-read-principals', 'userid-hmac-secret', 'flush-endpoint', 'statsd', 'storage-backend', 'ini-permissions']) {
      expect(ids, id).toContain(id)
    }
    for (const f of findings) expect(f.fix).toBeNull()
  })

  it('with kinto.plugins.admin: the console and its version are reported as served (no warning)', async () => {
    const findings = await lint({'kinto.includes': 'kinto.plugins.statsd kinto.plugins.admin'})
    expect(problems(findings)).toEqual([])
    const admin = findings.find((f) => f.id === 'admin-console')!
    expect(admin.level).toBe('ok')
    expect(admin.message).toMatch(/^The Kinto Admin console \d+\.\d+\.\d+ \(bundled with kinto-ops\) is served at \/v1\/admin\/\.$/)
  })

  it('says precisely what the statsd check verified', async () => {
    const statsd = (await lint()).find((f) => f.id === 'statsd')!
    expect(statsd.message).toContain('statsd.internal resolves to 10.0.0.7')
    expect(statsd.message).toMatch(/UDP.*cannot be confirmed/)
  })
})

type Case = [name: string, changes: Record<string, string | undefined>, id: string, level: 'error' | 'warning', text: RegExp]

const CASES: Case[] = [
  ['http_scheme missing', {'kinto.http_scheme': undefined}, 'http-scheme', 'error', /not set/],
  ['http_scheme http', {'kinto.http_scheme': 'http'}, 'http-scheme', 'error', /"http"/],
  ['paginate_by missing', {'kinto.paginate_by': undefined}, 'paginate-by', 'warning', /up to storage_max_fetch_size \(10000\)/],
  ['paginate_by above the fetch cap', {'kinto.paginate_by': '20000'}, 'paginate-by', 'warning', /larger than kinto.storage_max_fetch_size/],
  ['batch_max_requests unlimited', {'kinto.batch_max_requests': '0'}, 'batch-max-requests', 'error', /unlimited/],
  ['batch_max_requests empty', {'kinto.batch_max_requests': ''}, 'batch-max-requests', 'error', /is empty.*which means unlimited/],
  ['batch_max_requests huge', {'kinto.batch_max_requests': '1000'}, 'batch-max-requests', 'warning', /= 1000/],
  ['storage pool size missing', {'kinto.storage_pool_size': undefined}, 'pool-size', 'warning', /default of 25/],
  ['storage pool size 0', {'kinto.storage_pool_size': '0'}, 'pool-size', 'error', /is 0/],
  ['permission pool size ignored', {'kinto.permission_pool_size': '5'}, 'pool-size', 'warning', /has no effect.*storage_pool_size \(20\)/],
  ['bucket_read_principals Everyone', {'kinto.bucket_read_principals': 'system.Everyone'}, 'bucket-read-principals', 'warning', /everyone, even anonymous clients, can read every bucket and list them all/],
  ['bucket_read_principals Authenticated', {'kinto.bucket_read_principals': 'system.Authenticated'}, 'bucket-read-principals', 'warning', /every authenticated user can read every bucket/],
  ['user-data deletion by Everyone', {'kinto.user-data_delete_principals': 'system.Everyone'}, 'user-data-delete-principals', 'error', /anyone, even an anonymous client, can delete any user's data/],
  ['user-data deletion by Authenticated', {'kinto.user-data_delete_principals': 'account:admin system.Authenticated'}, 'user-data-delete-principals', 'error', /every authenticated user can delete any user's data/],
  ['userid secret empty', {'kinto.userid_hmac_secret': undefined}, 'userid-hmac-secret', 'error', /is empty/],
  ['userid secret from the docs', {'kinto.userid_hmac_secret': 'have-you-seen-the-new-carioca'}, 'userid-hmac-secret', 'error', /published/],
  ['userid secret weak', {'kinto.userid_hmac_secret': 'hunter2'}, 'userid-hmac-secret', 'error', /too short or too simple/],
  ['userid secret repetitive', {'kinto.userid_hmac_secret': 'a'.repeat(64)}, 'userid-hmac-secret', 'error', /too short or too simple/],
  ['userid secret short', {'kinto.userid_hmac_secret': 'kT9-qL2x-Vb7m-Zr4w'}, 'userid-hmac-secret', 'warning', /shorter than 32/],
  ['default bucket without its secret', {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.default_bucket'}, 'default-bucket-hmac-secret', 'warning', /personal bucket/],
  ['database password from the docs', {'kinto.storage_url': 'postgresql://postgres:postgres@db.internal/kinto'}, 'db-password', 'warning', /documentation/],
  ['http_host missing', {'kinto.http_host': undefined}, 'http-host', 'warning', /main server host leaks/],
  ['http_host as a URL', {'kinto.http_host': 'https://kinto.example.com/'}, 'http-host', 'error', /not a host name/],
  ['flush plugin', {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.flush'}, 'flush-endpoint', 'error', /deletes every bucket/],
  ['old flush setting', {'kinto.flush_endpoint_enabled': 'true'}, 'flush-endpoint', 'warning', /ignore it/],
  ['account validation of Kinto 19 and older', {'kinto.account_validation': 'true'}, 'account-validation', 'warning', /Kinto 20 and later.*log in.*data\.validated false/],
  ['memory storage', {'kinto.storage_backend': 'kinto.core.storage.memory'}, 'storage-backend', 'error', /lost on restart/],
  ['memory permission', {'kinto.permission_backend': 'kinto.core.permission.memory'}, 'permission-backend', 'error', /lost on restart/],
  ['memory cache', {'kinto.cache_backend': 'kinto.core.cache.memory'}, 'cache-backend', 'warning', /each process keeps its own cache/],
  ['in-memory embedded storage', {'kinto.storage_url': 'pglite:memory:'}, 'storage-backend', 'error', /in-memory embedded database/],
  ['embedded storage folder', {'kinto.storage_url': 'pglite:data'}, 'storage-backend', 'warning', /embedded engine/],
  ['no metrics', {'kinto.statsd_url': undefined, 'kinto.includes': undefined}, 'statsd', 'warning', /No metrics/],
  ['statsd plugin without its URL', {'kinto.statsd_url': undefined}, 'statsd', 'error', /refuses to start/],
  ['statsd over http', {'kinto.statsd_url': 'http://statsd.internal:8125'}, 'statsd', 'error', /StatsD takes udp/],
  ['statsd without port', {'kinto.statsd_url': 'udp://statsd.internal'}, 'statsd', 'error', /no port/],
  ['statsd host unknown', {'kinto.statsd_url': 'udp://nowhere.invalid:8125'}, 'statsd', 'error', /does not resolve \(no such host\)/],
  ['statsd without the plugin', {'kinto.includes': undefined}, 'statsd-plugin', 'warning', /upstream Kinto sends no metrics/],
  ['an event listener', {'kinto.event_listeners': 'redis', 'kinto.event_listeners.redis.use': 'kinto_redis.listeners'}, 'event-listeners', 'error', /'redis' \(kinto_redis\.listeners\).*line \d+, key 'kinto\.event_listeners'\): kinto start refuses to start/],
  ['no authentication policy', {'multiauth.policies': undefined}, 'multiauth-policies', 'warning', /any Basic Auth credentials.*upstream Kinto authenticates nobody/],
  ['an authentication policy without its class', {'multiauth.policies': 'ldap'}, 'auth-policies', 'error', /'ldap' in multiauth\.policies has no multiauth\.policy\.ldap\.use setting \(.*key 'multiauth\.policies'\): kinto start refuses to start/],
  [
    'an authentication policy class kinto-ops does not know',
    {'multiauth.policies': 'fxa', 'multiauth.policy.fxa.use': 'kinto_fxa.authentication.FxAOAuthAuthenticationPolicy'},
    'auth-policies',
    'error',
    /Unknown authentication policy 'kinto_fxa\.authentication\.FxAOAuthAuthenticationPolicy'.*refuses to start/,
  ],
  [
    'an OpenID provider whose verification TTL is no whole number of seconds',
    {
      'kinto.includes': 'kinto.plugins.statsd kinto.plugins.openid',
      'multiauth.policies': 'google',
      'multiauth.policy.google.use': 'kinto.plugins.openid.OpenIDConnectPolicy',
      'multiauth.policy.google.issuer': 'https://accounts.google.com',
      'multiauth.policy.google.client_id': 'kinto-client',
      'multiauth.policy.google.verification_ttl_seconds': '1h',
    },
    'openid',
    'error',
    /^multiauth\.policy\.google\.verification_ttl_seconds must be a whole number of seconds, not '1h'\. The server refuses to start\.$/,
  ],
  [
    'a custom authorization policy',
    {'multiauth.authorization_policy': 'myproject.authz.StrictPolicy'},
    'auth-policies',
    'error',
    /^multiauth\.authorization_policy = myproject\.authz\.StrictPolicy: kinto-ops uses upstream's own kinto\.authorization\.AuthorizationPolicy and cannot load another: kinto start refuses to start\.$/,
  ],
  ['an id generator kinto-ops does not know', {'kinto.collection_id_generator': 'name_generator.CollectionGenerator'}, 'id-generators', 'error', /Unknown id generator 'name_generator\.CollectionGenerator' in setting 'collection_id_generator': kinto start refuses to start/],
  [
    'accounts creators who are not administrators',
    {
      'kinto.includes': 'kinto.plugins.statsd kinto.plugins.accounts',
      'multiauth.policies': 'account',
      'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
      'kinto.account_create_principals': 'account:bob',
    },
    'includes',
    'error',
    /account_create_principals lists account:bob, not in kinto\.account_write_principals.*refuses to start/,
  ],
  [
    'history: an excluded resource that is no URI',
    {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.history', 'kinto.history.exclude_resources': '/not/a/uri'},
    'includes',
    'error',
    /^kinto\.history\.exclude_resources: Invalid URI: \/not\/a\/uri: kinto start refuses to start\.$/,
  ],
  [
    'prometheus: a histogram bound that is no number',
    {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.prometheus', 'kinto.prometheus_histogram_buckets': '0.1 fast Inf'},
    'includes',
    'error',
    /"fast", which is not a number: kinto start refuses to start/,
  ],
  [
    'prometheus: histogram bounds out of order',
    {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.prometheus', 'kinto.prometheus_histogram_buckets': '0.5 0.1 Inf'},
    'includes',
    'error',
    /"0\.1", which is not above the bound before it \(0\.5\): kinto start refuses to start/,
  ],
  [
    'prometheus: a prefix metric names cannot start with',
    {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.prometheus', 'kinto.prometheus_prefix': '1kinto'},
    'includes',
    'error',
    /kinto\.prometheus_prefix = 1kinto makes metric names .*: kinto start refuses to start/,
  ],
  [
    'an upstream plugin kinto-ops skips',
    {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.quotas'},
    'includes',
    'warning',
    /kinto\.plugins\.quotas .*line \d+, key 'kinto\.includes'.*skipped \(upstream Kinto removed it in version 20\.0\.0\)/,
  ],
  ['a key in the wrong case', {'kinto.PAGINATE_BY': '50'}, 'config-warning', 'warning', /case-sensitive/],
  [
    'a CORS origin with a trailing slash (browsers send Origin without one: it never matches)',
    {'kinto.cors_origins': 'https://app.example.com/'},
    'cors-origins',
    'warning',
    /^kinto\.cors_origins has "https:\/\/app\.example\.com\/" \(.*kinto\.ini, line \d+, key 'kinto\.cors_origins'\), which no Origin header matches/,
  ],
  ['a CORS origin without its scheme', {'kinto.cors_origins': 'https://ok.example.com app.example.com'}, 'cors-origins', 'warning', /"app\.example\.com".*no Origin header matches/],
  ['a CORS origin with a path', {'kinto.cors_origins': 'https://app.example.com/editor'}, 'cors-origins', 'warning', /"https:\/\/app\.example\.com\/editor".*no Origin header matches/],
  ['admin console folder missing', {'kinto.includes': 'kinto.plugins.statsd kinto.plugins.admin', 'kinto.admin_assets_path': 'no-such-build'}, 'admin-console', 'error', /no-such-build: no such folder .*refuses to start/],
]

describe('each mistake of the checklist', () => {
  it.each(CASES)('%s', async (_name, changes, id, level, text) => {
    const findings = await lint(changes)
    const found = findings.filter((f) => f.id === id && f.level === level)
    expect(found, JSON.stringify(problems(findings), null, 1)).toHaveLength(1)
    expect(found[0].message).toMatch(text)
    expect(found[0].fix).toBeTruthy()
    // exactly this problem: nothing else of the good ini turned bad (the statsd plugin cases give two)
    const others = problems(findings).filter((f) => f !== found[0])
    expect(others.every((f) => ['statsd-plugin', 'statsd', 'pool-size'].includes(f.id) || f.id === 'flush-endpoint'), JSON.stringify(others)).toBe(true)
  })

  it('user-data_delete_principals naming administrators: reported, no problem; unset: nothing to report', async () => {
    const named = await lint({'kinto.user-data_delete_principals': 'account:admin'})
    expect(problems(named)).toEqual([])
    expect(named.find((f) => f.id === 'user-data-delete-principals')?.message).toMatch(/= account:admin.*: they may delete any user's data/)
    expect((await lint()).some((f) => f.id === 'user-data-delete-principals')).toBe(false)
  })

  it('[uwsgi] processes with memory storage: kinto start refuses that many workers, so check says so', async () => {
    const file = writeIni({...GOOD, 'kinto.storage_backend': 'kinto.core.storage.memory'})
    appendFileSync(file, '\n[uwsgi]\nprocesses = 3\n')
    const f = (await runChecks(loadConfig(file, {env: {}}), {db: false, resolve})).find((x) => x.id === 'workers')
    expect(f?.level).toBe('error')
    expect(f?.message).toBe(
      '[uwsgi] processes = 3 makes kinto start (without --workers) serve with 3 workers, but the storage backend is memory: each process would hold its own data: kinto start refuses to start.',
    )
    expect(f?.fix).toMatch(/--workers 1/)
    // With the default (one process), nothing to say.
    expect((await lint({'kinto.storage_backend': 'kinto.core.storage.memory'})).find((x) => x.id === 'workers')).toBeUndefined()
  })

  it('CORS origins as browsers send them (a port, a glob, a default port spelled out aside) give no warning', async () => {
    const findings = await lint({'kinto.cors_origins': 'https://app.example.com http://localhost:3000 https://*.example.org null'})
    expect(problems(findings)).toEqual([])
    expect(findings.find((f) => f.id === 'cors-origins')?.level).toBe('ok')
    // The fix gives the form a browser sends.
    const fixes = (await lint({'kinto.cors_origins': 'https://App.example.com:443/ moz-extension://5a7c/ app.example.net'})).filter((f) => f.id === 'cors-origins').map((f) => f.fix)
    expect(fixes).toEqual([
      'Write https://app.example.com instead in kinto.cors_origins.',
      'Write moz-extension://5a7c instead in kinto.cors_origins.',
      'Write https://app.example.net instead in kinto.cors_origins.',
    ])
  })

  it('names where a bad value was set', async () => {
    const f = (await lint({'kinto.batch_max_requests': '0'})).find((x) => x.id === 'batch-max-requests')!
    expect(f.message).toMatch(/kinto\.ini, line \d+, key 'kinto\.batch_max_requests'/)
  })

  it('names the environment variable when the value came from there', async () => {
    const file = writeIni(GOOD)
    const findings = await runChecks(loadConfig(file, {env: {KINTO_HTTP_SCHEME: 'http'}}), {db: false, resolve})
    expect(findings.find((f) => f.id === 'http-scheme')!.message).toContain('environment variable KINTO_HTTP_SCHEME')
  })

  it('warns when an ini holding secrets is readable by other users', async () => {
    const findings = await lint({}, 0o644)
    const f = findings.find((x) => x.id === 'ini-permissions')!
    expect(f.level).toBe('warning')
    expect(f.message).toContain('mode 644')
    expect(f.fix).toMatch(/^chmod 600 /)
  })

  it('the chmod it proposes runs as printed for a path with a space (quoted for the shell)', async () => {
    const file = writeIni(GOOD, 0o644)
    const spaced = path.join(path.dirname(file), 'my kinto.ini')
    renameSync(file, spaced)
    const findings = await runChecks(loadConfig(spaced, {env: {}}), {db: false, resolve})
    expect(findings.find((x) => x.id === 'ini-permissions')!.fix).toMatch(new RegExp(`^chmod 600 '${spaced.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' `))
  })

  it.each([
    ['602', 0o602, 'error', /any user of this machine can change it \(mode 602\)/],
    ['620', 0o620, 'warning', /the users of its group can change it \(mode 620\)/],
  ])('an ini other users can write (mode %s) is reported as such, not as readable', async (_label, mode, level, text) => {
    const found = (await lint({}, mode)).filter((x) => x.id === 'ini-permissions')
    expect(found).toHaveLength(1)
    expect(found[0].level).toBe(level)
    expect(found[0].message).toMatch(text)
    expect(found[0].message).toMatch(/point Kinto at another database/)
    expect(found[0].message).not.toMatch(/can read/)
    expect(found[0].fix).toMatch(/^chmod 600 /)
  })

  it('an ini without secrets that any user can change is still reported', async () => {
    const file = writeIni({'kinto.storage_backend': 'kinto.core.storage.memory'}, 0o666)
    const found = (await runChecks(loadConfig(file, {env: {}}), {db: false, resolve})).filter((x) => x.id === 'ini-permissions')
    expect(found.map((f) => f.level)).toEqual(['error'])
  })

  it('counts an OpenID Connect client secret among the secrets of an ini', async () => {
    const findings = await lint({'multiauth.policy.google.client_secret': 'UAlL-054uyh5in4b6u8jhg5o3hnj'}, 0o644)
    const f = findings.find((x) => x.id === 'ini-permissions')!
    expect(f.message).toContain('multiauth.policy.google.client_secret')
    expect(f.message).not.toContain('UAlL-054uyh5in4b6u8jhg5o3hnj')
  })

  it.each([
    ['a database URL with libpq\'s ?password=', {'kinto.storage_url': `postgresql://kinto@db.internal/kinto?password=${DB_PASSWORD}`}, 'kinto.storage_url'],
    ['a database password with a /, read up to the first @', {'kinto.storage_url': `postgresql://kinto:${DB_PASSWORD}/x@db.internal/kinto`}, 'kinto.storage_url'],
    ['a Sentry DSN', {'kinto.sentry_dsn': 'https://0123456789abcdef@o0.ingest.sentry.io/42'}, 'kinto.sentry_dsn'],
  ])('counts %s among the secrets of an ini', async (_label, changes, key) => {
    // Only that secret in the ini: the hmac secret and the database URLs come from the environment.
    const fromEnv = {'kinto.userid_hmac_secret': undefined, 'kinto.storage_url': undefined, 'kinto.permission_url': undefined, 'kinto.cache_url': undefined}
    const file = writeIni({...GOOD, ...fromEnv, ...changes}, 0o644)
    const env: Record<string, string> = {KINTO_USERID_HMAC_SECRET: SECRET, KINTO_STORAGE_URL: URL, KINTO_PERMISSION_URL: URL, KINTO_CACHE_URL: URL}
    delete env[key.toUpperCase().replace('.', '_')]
    const config = loadConfig(file, {env})
    const f = (await runChecks(config, {db: false, resolve})).find((x) => x.id === 'ini-permissions')
    expect(f?.level).toBe('warning')
    expect(f?.message).toContain(`holds secrets (${key}) and any user of this machine can read it (mode 644)`)
    expect(f?.message).not.toContain(DB_PASSWORD)
  })

  it('reports every mistake of a bad ini at once', async () => {
    const findings = await lint({
      'kinto.http_scheme': undefined,
      'kinto.batch_max_requests': '0',
      'kinto.userid_hmac_secret': 'secret',
      'kinto.includes': 'kinto.plugins.flush',
      'kinto.bucket_read_principals': 'system.Everyone',
    })
    const errors = findings.filter((f) => f.level === 'error').map((f) => f.id)
    expect(errors).toEqual(expect.arrayContaining(['http-scheme', 'batch-max-requests', 'userid-hmac-secret', 'flush-endpoint']))
    expect(findings.find((f) => f.id === 'bucket-read-principals')!.level).toBe('warning')
  })
})

describe('secrets', () => {
  it('never appear in findings, whatever is wrong', async () => {
    const weak = 'hunter2'
    const all = [
      ...(await lint()),
      ...(await lint({}, 0o644)),
      ...(await lint({'kinto.userid_hmac_secret': weak})),
      ...(await lint({'kinto.storage_url': 'postgresql://postgres:postgres@db.internal/kinto'})),
      ...(await lint({'kinto.storage_backend': 'kinto.core.storage.memory'})),
      ...(await lint({'kinto.statsd_url': `udp://kinto:${DB_PASSWORD}@statsd.internal:8125`})),
    ]
    const text = JSON.stringify(all)
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain(DB_PASSWORD)
    expect(text).not.toContain(weak)
    expect(text).not.toContain('postgres:postgres@')
  })
})

describe('an ini that does not load', () => {
  it('is one config error finding, not a crash', async () => {
    const report = await checkIni(path.join(os.tmpdir(), 'kinto-check-no-such-dir', 'kinto.ini'), {db: false, resolve})
    expect(report.summary).toEqual({errors: 1, warnings: 0, ok: 0})
    expect(report.findings[0]).toMatchObject({id: 'config', level: 'error'})
    expect(report.findings[0].fix).toBeTruthy()
  })

  it('reports an invalid setting with where it is', async () => {
    const file = writeIni({...GOOD, 'kinto.paginate_by': 'many'})
    const report = await checkIni(file, {db: false, resolve, env: {}})
    expect(report.findings).toHaveLength(1)
    expect(report.findings[0].message).toMatch(/line \d+, key 'kinto.paginate_by'.*"many" is not valid/)
  })
})

describe('parseStatsdUrl', () => {
  it('reads udp://host:port and refuses the rest', () => {
    expect(parseStatsdUrl('udp://localhost:8125')).toEqual({host: 'localhost', port: 8125})
    expect(parseStatsdUrl('udp://[::1]:8125')).toEqual({host: '::1', port: 8125})
    expect(parseStatsdUrl('localhost:8125')).toHaveProperty('problem')
    expect(parseStatsdUrl('udp://localhost:8125/x')).toHaveProperty('problem')
    expect(parseStatsdUrl('not a url')).toHaveProperty('problem')
  })
})

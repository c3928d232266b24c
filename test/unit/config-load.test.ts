import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {displayValue, loadConfig, parseDuration, resolveIniPath, tryParseDuration} from '../../src/lib/config/index.js'
import {repoRoot} from '../helpers/cli.js'
import {kintoErrorOf} from '../helpers/errors.js'
import {tempFiles} from '../helpers/tmp.js'

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'ini')
const fixture = (name: string) => path.join(fixtures, name)

const tmpFile = tempFiles('load')
const tmpIni = (text: string) => tmpFile('kinto.ini', text)
const errorOf = kintoErrorOf

const APP = '[app:main]\nuse = egg:kinto\n'

describe('loadConfig', () => {
  it('loads upstream init layout: settings, server with %(http_port)s, path and folder', () => {
    const file = fixture('kinto-tpl-rendered.ini')
    const c = loadConfig(file, {env: {}})
    expect(c.path).toBe(file)
    expect(c.dir).toBe(fixtures)
    expect(c.appSection).toBe('app:main')
    expect(c.server).toEqual({host: '127.0.0.1', port: 8888})
    expect(loadConfig(file, {env: {}, httpPort: 9000}).server.port).toBe(9000)
    expect(c.settings.storage_backend).toBe('kinto.core.storage.postgresql')
    expect(c.settings.includes).toBe('kinto.plugins.default_bucket\nkinto.plugins.admin\nkinto.plugins.accounts')
    expect(c.settings['multiauth.policy.account.use']).toBe('kinto.plugins.accounts.AccountsPolicy')
    expect(c.settings.readonly).toBe(false)
    expect(c.settings.batch_max_requests).toBe(25)
    expect(c.settings).not.toHaveProperty('use')
    expect(c.sources.storage_url).toEqual({kind: 'ini', key: 'kinto.storage_url', line: 31})
    expect(c.sources.retry_after_seconds).toEqual({kind: 'default'})
    expect(c.warnings).toEqual([])
    expect(c.ini.get('logger_kinto', 'qualname')).toBe('kinto')
  })

  it('loads the production-guide style: postgres:// URLs, pool sizes, plugin settings kept and ignored', () => {
    const c = loadConfig(fixture('production.ini'), {env: {}})
    expect(c.server).toEqual({host: '0.0.0.0', port: 8000})
    expect(c.settings.storage_url).toBe('postgres://dbuser:dbpassword@db.internal/kinto')
    expect(c.settings.storage_pool_size).toBe(50)
    expect(c.settings.paginate_by).toBe(100)
    expect(c.settings.http_scheme).toBe('https')
    expect(c.settings['fxa-oauth.cache_ttl_seconds']).toBe(3600)
    expect(c.settings['attachment.folder']).toBe('{bucket_id}/{collection_id}')
    expect(c.settings.eos).toBe('2030-12-31')
  })

  it('follows PasteDeploy: [DEFAULT] keys feed interpolation but are not settings, nor are app keys [DEFAULT] also sets', () => {
    const c = loadConfig(fixture('interpolation.ini'), {env: {}})
    expect(c.settings.storage_url).toBe('postgresql://kinto:secret@db.internal/kinto_prod')
    expect(c.settings.cache_url).toBe(`pglite:${fixtures}/data`)
    expect(c.settings.project_name).toBe('100% kinto')
    expect(c.settings).not.toHaveProperty('dbname')
    expect(c.settings).not.toHaveProperty('dsn')
    expect(c.settings).not.toHaveProperty('here')
  })

  it('continuation file: list settings, `key: value`, CRLF, no trailing newline', () => {
    const c = loadConfig(fixture('continuation.ini'), {env: {}})
    expect(c.settings['multiauth.policies']).toBe('\naccount\nbasicauth')
    expect(c.settings.readonly).toBe(true)
    expect(c.server).toEqual({host: 'localhost', port: 9999})
    expect(loadConfig(fixture('crlf.ini'), {env: {}}).settings.includes).toBe('kinto.plugins.default_bucket\nkinto.plugins.admin')
    expect(loadConfig(fixture('no-trailing-newline.ini'), {env: {}}).settings.readonly).toBe(false)
  })

  it('has no [server:main]: 127.0.0.1 and the http port', () => {
    expect(loadConfig(tmpIni(APP), {env: {}}).server).toEqual({host: '127.0.0.1', port: 8888})
    expect(loadConfig(tmpIni(`${APP}[server:main]\nlisten = *:6543\n`), {env: {}}).server).toEqual({host: '0.0.0.0', port: 6543})
    const sock = loadConfig(tmpIni(`${APP}[server:main]\nunix_socket = run/kinto.sock\n`), {env: {}})
    expect(sock.server.unixSocket).toBe(path.join(sock.dir, 'run/kinto.sock'))
  })

  it('reads an empty boolean as false, as upstream\'s asbool (from the ini or the environment)', () => {
    const c = loadConfig(tmpIni(`${APP}kinto.readonly =\nkinto.version_prefix_redirect_enabled =\n`), {env: {KINTO_EXPLICIT_PERMISSIONS: ''}})
    expect(c.settings.readonly).toBe(false)
    expect(c.settings.version_prefix_redirect_enabled).toBe(false)
    expect(c.settings.explicit_permissions).toBe(false)
  })

  it('warns that a filter-with of [app:main] is not applied (kinto-ops runs no PasteDeploy filter)', () => {
    const file = tmpIni(`${APP}filter-with = proxy-prefix\n\n[filter:proxy-prefix]\nuse = egg:PasteDeploy#prefix\nprefix = /kinto\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.settings).not.toHaveProperty('filter-with')
    expect(c.keyProblems).toEqual([
      {
        error: false,
        message: `${file}, line 3, key 'filter-with': kinto-ops runs no PasteDeploy filter, so [filter:proxy-prefix] (egg:PasteDeploy#prefix) is not applied: the app is served as if filter-with were not there.`,
        fix: 'Do what the filter did in front of kinto start (a URL prefix or proxy headers in the reverse proxy), then remove filter-with.',
      },
    ])
    expect(c.warnings).toEqual([c.keyProblems[0].message])
  })

  it('warns about the waitress options of [server:main] that would change the URLs Kinto builds', () => {
    const file = tmpIni(`${APP}\n[server:main]\nuse = egg:waitress#main\nport = 8000\nthreads = 8\nurl_scheme = https\ntrusted_proxy_headers = x-forwarded-proto\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.server.port).toBe(8000)
    expect(c.keyProblems).toEqual([
      {
        error: false,
        message: `${file}, line 8, key 'url_scheme': kinto start does not read this waitress option, so the URLs Kinto builds (hello's url, Next-Page) do not follow it.`,
        fix: 'Remove url_scheme from [server:main] and set kinto.http_scheme in [app:main] instead.',
      },
      {
        error: false,
        message: `${file}, line 9, key 'trusted_proxy_headers': kinto start does not read this waitress option, so the URLs Kinto builds (hello's url, Next-Page) do not follow it.`,
        fix: 'Remove trusted_proxy_headers from [server:main] and set kinto.http_scheme and kinto.http_host in [app:main] instead.',
      },
    ])
  })

  it('warns about principals separated by commas (upstream reads them as one principal, as we do)', () => {
    const file = tmpIni(`${APP}kinto.bucket_create_principals = account:admin,account:bob\nkinto.record_read_principals = system.Everyone\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.settings.bucket_create_principals).toBe('account:admin,account:bob')
    expect(c.keyProblems).toEqual([
      {
        error: false,
        message: `${file}, line 3, key 'kinto.bucket_create_principals': principals are separated by spaces or new lines, not commas: Kinto (upstream Kinto too) reads 'account:admin,account:bob' as one principal.`,
        fix: 'Write kinto.bucket_create_principals = account:admin account:bob',
      },
    ])
  })

  it('warns about a comment after a value (configparser keeps it in the value)', () => {
    const file = tmpIni(`${APP}kinto.http_host = kinto.example.com  # public name\nkinto.eos_url = https://example.com/eol#notice\nkinto.userid_hmac_secret = 5f0c1e9a7b3d ;S3cretTail\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.settings.http_host).toBe('kinto.example.com  # public name')
    expect(c.keyProblems).toEqual([
      {
        error: false,
        message: `${file}, line 3, key 'kinto.http_host': ini files have no comments after a value, so '# public name' is part of this setting's value (for Kinto too).`,
        fix: 'Move the comment to a line of its own, starting with #.',
      },
      {
        // a secret is never shown, not even its tail
        error: false,
        message: `${file}, line 5, key 'kinto.userid_hmac_secret': ini files have no comments after a value, so the text from its ';' on is part of this setting's value (for Kinto too).`,
        fix: 'Move the comment to a line of its own, starting with ;.',
      },
    ])
  })

  it('warns about an app key that [DEFAULT] also sets (PasteDeploy passes neither to Kinto)', () => {
    const file = tmpIni(`[DEFAULT]\nkinto.readonly = false\n\n${APP}kinto.readonly = true\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.settings.readonly).toBe(false)
    expect(c.keyProblems).toEqual([
      {
        error: false,
        message: `${file}, line 6, key 'kinto.readonly': [DEFAULT] sets this key too, so PasteDeploy passes it to Kinto as a global value and the setting stays at its default (in upstream Kinto too).`,
        fix: 'Remove kinto.readonly from [DEFAULT] (or give the [DEFAULT] entry another name for %(name)s references).',
      },
    ])
  })

  it('warns about a known setting written in the wrong case (Kinto would ignore it)', () => {
    const file = tmpIni(`${APP}kinto.ReadOnly = true\n`)
    const c = loadConfig(file, {env: {}})
    expect(c.settings.readonly).toBe(false)
    expect(c.warnings).toEqual([
      `${file}, line 3, key 'kinto.ReadOnly': keys are case-sensitive, so Kinto ignores this one; did you mean 'kinto.readonly'?`,
    ])
  })
})

describe('environment overrides (upstream rules)', () => {
  const file = fixture('kinto-tpl-rendered.ini')

  it('KINTO_X wins over X, which wins over the ini', () => {
    const both = loadConfig(file, {env: {STORAGE_URL: 'postgresql://plain/db', KINTO_STORAGE_URL: 'postgresql://prefixed/db'}})
    expect(both.settings.storage_url).toBe('postgresql://prefixed/db')
    expect(both.sources.storage_url).toEqual({kind: 'env', variable: 'KINTO_STORAGE_URL'})
    const plain = loadConfig(file, {env: {STORAGE_URL: 'postgresql://plain/db'}})
    expect(plain.settings.storage_url).toBe('postgresql://plain/db')
  })

  it('overrides defaults and un-prefixed keys, decodes JSON, and cannot add keys', () => {
    const c = loadConfig(file, {
      env: {
        KINTO_READONLY: 'true',
        KINTO_MULTIAUTH_POLICIES: 'account basicauth',
        KINTO_ACCOUNT_WRITE_PRINCIPALS: 'account:root',
        KINTO_SOMETHING_NEW: 'x',
        KINTO_FXA_OAUTH_CACHE_TTL_SECONDS: '5',
      },
    })
    expect(c.settings.readonly).toBe(true)
    expect(c.settings['multiauth.policies']).toBe('account basicauth')
    expect(c.settings.account_write_principals).toBe('account:root')
    expect(c.settings).not.toHaveProperty('something_new')
    expect(c.settings).not.toHaveProperty('fxa-oauth.cache_ttl_seconds')
    const prod = loadConfig(fixture('production.ini'), {env: {FXA_OAUTH_CACHE_TTL_SECONDS: '5'}})
    expect(prod.settings['fxa-oauth.cache_ttl_seconds']).toBe(5)
  })

  it('Sentry levels: numbers or Python level names, as upstream (Python logging) takes them', () => {
    const named = loadConfig(tmpIni(`${APP}kinto.sentry_events_min_level = ERROR\nkinto.sentry_breadcrumbs_min_level = info\n`), {env: {}})
    expect(named.settings.sentry_events_min_level).toBe(40)
    expect(named.settings.sentry_breadcrumbs_min_level).toBe(20)
    const fromEnv = loadConfig(tmpIni(APP), {env: {SENTRY_EVENTS_MIN_LEVEL: 'CRITICAL', SENTRY_BREADCRUMBS_MIN_LEVEL: '25'}})
    expect(fromEnv.settings.sentry_events_min_level).toBe(50)
    expect(fromEnv.settings.sentry_breadcrumbs_min_level).toBe(25)
  })

  it('validates env values and names the variable', () => {
    const err = errorOf(() => loadConfig(file, {env: {KINTO_BATCH_MAX_REQUESTS: 'lots'}}))
    expect(err.code).toBe('KINTO_CONFIG_INVALID')
    expect(err.message).toBe(
      `environment variable KINTO_BATCH_MAX_REQUESTS (setting 'batch_max_requests'): "lots" is not valid; expected a whole number (0 or more), or empty.`,
    )
    expect(err.hint).toBe('Fix or unset KINTO_BATCH_MAX_REQUESTS.')
    const url = errorOf(() => loadConfig(file, {env: {STORAGE_URL: 'mysql://root:hunter2@db/kinto'}}))
    expect(url.message).toBe(
      `environment variable STORAGE_URL (setting 'storage_url'): "mysql://root:***@db/kinto" is not a database URL kinto-ops can use; ` +
        'expected postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine.',
    )
    expect(url.message).not.toContain('hunter2')
  })
})

describe('bad values: one error naming file, line and key, and what is allowed', () => {
  const cases: Array<[string, string, string]> = [
    ['kinto.batch_max_requests = many', 'line 3, key \'kinto.batch_max_requests\': "many" is not valid; expected a whole number (0 or more), or empty.', ''],
    ['kinto.paginate_by = -5', 'line 3, key \'kinto.paginate_by\': "-5" is not valid; expected a whole number (0 or more), or empty.', ''],
    ['kinto.backoff_percentage = 150', 'line 3, key \'kinto.backoff_percentage\': "150" is not valid; expected a number from 0 to 100, or empty.', ''],
    ['kinto.storage_pool_size = 2.5', 'line 3, key \'kinto.storage_pool_size\': "2.5" is not valid; expected a whole number (0 or more).', ''],
    [
      'kinto.pagination_token_validity_seconds = soon',
      'line 3, key \'kinto.pagination_token_validity_seconds\': "soon" is not valid; expected a whole number (0 or more).',
      '',
    ],
    // Node fires a timer longer than 2^31-1 ms after 1 ms: such a wait would be none at all
    [
      'kinto.storage_connect_timeout = 99999999999999999999',
      'line 3, key \'kinto.storage_connect_timeout\': "99999999999999999999" is not valid; expected a number of seconds from 0 to 2147483 (about 24 days, the longest wait a timer holds).',
      '',
    ],
    [
      'kinto.heartbeat_timeout_seconds = 3000000',
      'line 3, key \'kinto.heartbeat_timeout_seconds\': "3000000" is not valid; expected a number of seconds from 0 to 2147483 (about 24 days, the longest wait a timer holds).',
      '',
    ],
    ['kinto.readonly = maybe', 'line 3, key \'kinto.readonly\': "maybe" is not valid; expected true or false.', ''],
    [
      'kinto.storage_poolclass = sqlalchemy.pool.StaticPool',
      'line 3, key \'kinto.storage_poolclass\': "sqlalchemy.pool.StaticPool" is not valid; expected one of kinto.core.storage.postgresql.pool.QueuePoolWithMaxBacklog, sqlalchemy.pool.QueuePool, sqlalchemy.pool.impl.QueuePool, sqlalchemy.pool.NullPool, sqlalchemy.pool.impl.NullPool.',
      '',
    ],
    ['flush_endpoint_enabled = 2', 'line 3, key \'flush_endpoint_enabled\': "2" is not valid; expected true or false.', ''],
    ['kinto.includes = 12', 'line 3, key \'kinto.includes\': "12" is not valid; expected names separated by spaces or new lines.', ''],
    ['kinto.eos = someday', 'line 3, key \'kinto.eos\': "someday" is not valid; expected a date such as 2030-01-31, or empty.', ''],
    // what JavaScript's parser takes for a date, and would put the service past its end (every request a 410)
    ['kinto.eos = 0', 'line 3, key \'kinto.eos\': "0" is not valid; expected a date such as 2030-01-31, or empty.', ''],
    ['kinto.eos = 1.5', 'line 3, key \'kinto.eos\': "1.5" is not valid; expected a date such as 2030-01-31, or empty.', ''],
    ['kinto.eos = 2030-02-30', 'line 3, key \'kinto.eos\': "2030-02-30" is not valid; expected a date such as 2030-01-31, or empty.', ''],
    [
      'kinto.sentry_events_min_level = LOUD',
      'line 3, key \'kinto.sentry_events_min_level\': "LOUD" is not valid; expected a logging level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a number such as 30.',
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.mysql',
      'line 3, key \'kinto.storage_backend\': "kinto.core.storage.mysql" is not a storage backend kinto-ops provides; expected one of kinto.core.storage.postgresql, kinto.core.storage.memory.',
      '',
    ],
    [
      'kinto.cache_backend = kinto_redis.cache',
      'line 3, key \'kinto.cache_backend\': "kinto_redis.cache" is not a cache backend kinto-ops provides; expected one of kinto.core.cache.postgresql, kinto.core.cache.memory, kinto.core.cache.memcached, kinto.core.cache.redis.',
      '',
    ],
    [
      'kinto.permission_backend = kinto.core.permission.postgresql',
      "line 3, key 'kinto.permission_backend': kinto.core.permission.postgresql needs kinto.permission_url, which is empty; set it (in the ini, or in the environment as KINTO_PERMISSION_URL) to postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine.",
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = sqlite:///tmp/db',
      'line 4, key \'kinto.storage_url\': "sqlite:///tmp/db" is not a database URL kinto-ops can use; expected postgresql://user:password@host:5432/dbname, or pglite:<folder> for the embedded engine.',
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto:s3cr3t@db/kinto?sslmode=on',
      'line 4, key \'kinto.storage_url\': Invalid sslmode "on" in the database URL postgresql://kinto:***@db/kinto?sslmode=on. Use one of disable, allow, prefer, require, verify-ca, verify-full (libpq\'s values).',
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto:s3cr3t@db/kinto?port=abc',
      'line 4, key \'kinto.storage_url\': Invalid port "abc" in the database URL postgresql://kinto:***@db/kinto?port=abc. The port is a number from 1 to 65535 (5432 by default): postgresql://user:password@host:5432/dbname.',
      '',
    ],
    // node-postgres connects to ?port= over the host's port, and sent parseInt of these timeouts ("NaN")
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto:s3cr3t@db:5432/kinto?port=-1',
      'line 4, key \'kinto.storage_url\': Invalid port "-1" in the database URL postgresql://kinto:***@db:5432/kinto?port=-1. The port is a number from 1 to 65535 (5432 by default): postgresql://user:password@host:5432/dbname.',
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto:s3cr3t@db/kinto?idle_in_transaction_session_timeout=abc',
      'line 4, key \'kinto.storage_url\': Invalid idle_in_transaction_session_timeout "abc" in the database URL postgresql://kinto:***@db/kinto?idle_in_transaction_session_timeout=abc. idle_in_transaction_session_timeout is a whole number of milliseconds (0 for none), such as idle_in_transaction_session_timeout=30000: the driver sends only the number, without a unit.',
      '',
    ],
    [
      'kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto:s3cr3t@db/kinto?lock_timeout=10s',
      'line 4, key \'kinto.storage_url\': Invalid lock_timeout "10s" in the database URL postgresql://kinto:***@db/kinto?lock_timeout=10s. lock_timeout is a whole number of milliseconds (0 for none), such as lock_timeout=30000: the driver sends only the number, without a unit.',
      '',
    ],
    [
      'kinto.cache_backend = kinto.core.cache.redis\nkinto.cache_url = localhost:6379',
      'line 4, key \'kinto.cache_url\': "localhost:6379" is not a Redis URL; expected redis://host:port/db (or rediss://, unix://).',
      '',
    ],
    // A URL of the right form that the cache client cannot open is refused here, with the line,
    // not found out when the cache is first used (KINTO_UNEXPECTED in check, flush-cache, start).
    [
      'kinto.cache_backend = kinto.core.cache.redis\nkinto.cache_url = redis://:s3cr3t@127.0.0.1:99999/0',
      'line 4, key \'kinto.cache_url\': "redis://:***@127.0.0.1:99999/0" is not a valid URL (a port from 1 to 65535, a host name or address, special characters of the password percent-encoded); expected redis://host:port/db (or rediss://, unix://).',
      '',
    ],
    [
      'kinto.cache_backend = kinto.core.cache.redis\nkinto.cache_url = redis://:s3cr3t@127.0.0.1:6379/cache',
      'line 4, key \'kinto.cache_url\': "redis://:***@127.0.0.1:6379/cache" names the database "cache", and Redis databases are numbers; expected redis://host:port/db (or rediss://, unix://).',
      '',
    ],
    [
      'kinto.cache_backend = kinto.core.cache.memcached\nkinto.cache_hosts = 127.0.0.1:11211 127.0.0.1:99999',
      'line 4, key \'kinto.cache_hosts\': "127.0.0.1:99999" has port 99999, and ports go from 1 to 65535; expected host:port such as 127.0.0.1:11211.',
      '',
    ],
    // memcached servers take no credentials; a user:password@ written anyway is not quoted back
    [
      'kinto.cache_backend = kinto.core.cache.memcached\nkinto.cache_hosts = 127.0.0.1:11211 kinto:s3cr3t@127.0.0.1:11211',
      'line 4, key \'kinto.cache_hosts\': "kinto:***@127.0.0.1:11211" is not a memcached server; expected host:port such as 127.0.0.1:11211.',
      '',
    ],
    [
      'kinto.cache_backend = kinto.core.cache.memcached\nkinto.cache_url = 127.0.0.1:11211',
      "line 3, key 'kinto.cache_backend': kinto.core.cache.memcached reads its servers from kinto.cache_hosts, which is empty; set it to host:port entries separated by spaces, such as 127.0.0.1:11211.",
      '',
    ],
    [
      'kinto.userid_hmac_secret = s3cr3t\nuserid_hmac_secret = other',
      "lines 3 and 4: 'kinto.userid_hmac_secret' and 'userid_hmac_secret' set the same setting to different values.",
      'KINTO_CONFIG_CONFLICT',
    ],
  ]
  for (const [lines, message, code] of cases) {
    it(lines.split('\n').at(-1)!, () => {
      const file = tmpIni(`${APP}${lines}\n`)
      const err = errorOf(() => loadConfig(file, {env: {}}))
      expect(err.code).toBe(code || 'KINTO_CONFIG_INVALID')
      expect(err.message).toBe(`${file}, ${message}`)
      expect(err.message).not.toContain('s3cr3t')
    })
  }

  it('a bad port, a missing [app:main], a bad reference in a setting', () => {
    const port = tmpIni(`${APP}[server:main]\nport = http\n`)
    expect(errorOf(() => loadConfig(port, {env: {}})).message).toBe(
      `${port}, line 4, key 'port': "http" is not a TCP port; expected a whole number from 1 to 65535 (or %(http_port)s).`,
    )
    const noApp = tmpIni('[server:main]\nport = 8000\n')
    expect(errorOf(() => loadConfig(noApp, {env: {}})).message).toBe(
      `${noApp}: there is no [app:main] section; Kinto reads its settings from [app:main].`,
    )
    const ref = tmpIni(`${APP}kinto.storage_url = postgresql://%(dbhost)s/kinto\n`)
    expect(errorOf(() => loadConfig(ref, {env: {}})).message).toBe(
      `${ref}, line 3, key 'kinto.storage_url': %(dbhost)s refers to 'dbhost', which is not set in [app:main] or [DEFAULT]; define it there, or write %% for a literal '%'.`,
    )
  })

  it('an [app:main] inheriting another file (use = config:…) is refused: its settings would be missed', () => {
    const file = tmpIni('[app:main]\nuse = config:base.ini#main\nkinto.storage_url =\n')
    expect(errorOf(() => loadConfig(file, {env: {}})).message).toBe(
      `${file}, line 2, key 'use': [app:main] takes its settings from another file (config:base.ini#main), which kinto-ops does not read; copy that file's settings into [app:main] and write use = egg:kinto.`,
    )
  })

  it('a [pipeline:main] instead of [app:main] is refused, naming the app section to move', () => {
    const file = tmpIni('[pipeline:main]\npipeline =\n    translogger\n    kinto\n\n[filter:translogger]\nuse = egg:Paste#translogger\n\n[app:kinto]\nuse = egg:kinto\nkinto.readonly = true\n')
    expect(errorOf(() => loadConfig(file, {env: {}})).message).toBe(
      `${file}, line 1: [pipeline:main] builds the app from other sections (WSGI filters, URL maps), which kinto-ops does not run; move the settings of [app:kinto] to [app:main] and remove [pipeline:main].`,
    )
  })

  it('hides secrets and URL passwords in messages', () => {
    expect(displayValue('userid_hmac_secret', 'abc')).toBe('"***"')
    expect(displayValue('default_bucket_hmac_secret', 'abc')).toBe('"***"')
    expect(displayValue('sentry_dsn', 'https://key@sentry.example/1')).toBe('"***"')
    expect(displayValue('event_listeners.x.api_token', 'abc')).toBe('"***"')
    expect(displayValue('pagination_token_validity_seconds', 'soon')).toBe('"soon"')
    expect(displayValue('storage_url', 'postgresql://u:pw@h/d')).toBe('"postgresql://u:***@h/d"')
    // Not quite URLs (a typo, a bad environment value) are masked too; a URL without password is left.
    expect(displayValue('storage_url', 'postgresql//u:TypoS3cret@h/d')).toBe('"postgresql//u:***@h/d"')
    expect(displayValue('storage_url', 'garb:EnvS3cretPW@x')).toBe('"garb:***@x"')
    expect(displayValue('storage_url', 'postgresql://u@h/d')).toBe('"postgresql://u@h/d"')
    expect(displayValue('storage_url', 'pglite:/data/kinto')).toBe('"pglite:/data/kinto"')
    const file = tmpIni(`${APP}kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = mysql://kinto:hunter2@db/x\n`)
    const err = errorOf(() => loadConfig(file, {env: {}}))
    expect(err.message).toContain('"mysql://kinto:***@db/x"')
    expect(err.message).not.toContain('hunter2')
  })
})

describe('resolveIniPath and parseDuration', () => {
  it('flag, then KINTO_INI, then config/kinto.ini, from the current folder', () => {
    expect(resolveIniPath('a/b.ini', {env: {KINTO_INI: 'x.ini'}, cwd: '/srv'})).toBe('/srv/a/b.ini')
    expect(resolveIniPath(undefined, {env: {KINTO_INI: 'x.ini'}, cwd: '/srv'})).toBe('/srv/x.ini')
    expect(resolveIniPath(undefined, {env: {}, cwd: '/srv'})).toBe('/srv/config/kinto.ini')
    // an empty --ini (an unset shell variable) never falls back to another ini
    for (const empty of ['', '  ']) expect(() => resolveIniPath(empty, {env: {KINTO_INI: 'x.ini'}, cwd: '/srv'})).toThrow(/--ini is empty/)
    expect(resolveIniPath('/etc/kinto.ini', {env: {}, cwd: '/srv'})).toBe('/etc/kinto.ini')
    // '-' is not standard input: the ini is a file servers read again and commands edit
    expect(() => resolveIniPath('-', {env: {}, cwd: '/srv'})).toThrow(/is '-': the ini is read from a file/)
    expect(() => resolveIniPath(undefined, {env: {KINTO_INI: ' - '}, cwd: '/srv'})).toThrow(/is '-'/)
    expect(resolveIniPath('./-', {env: {}, cwd: '/srv'})).toBe('/srv/-')
  })

  it('parses 90s, 30m, 2h, 1d, 1h30m and plain seconds; rejects the rest', () => {
    expect(parseDuration('90s')).toBe(90)
    expect(parseDuration('30m')).toBe(1800)
    expect(parseDuration('2h')).toBe(7200)
    expect(parseDuration('1d')).toBe(86400)
    expect(parseDuration('1h30m')).toBe(5400)
    expect(parseDuration('1h 30m')).toBe(5400)
    expect(parseDuration('600')).toBe(600)
    expect(parseDuration('500ms')).toBe(0.5)
    for (const bad of ['', 'soon', '10x', '-5s', 'h', '5s!']) expect(tryParseDuration(bad)).toBeNull()
    expect(errorOf(() => parseDuration('soon', '--lock-timeout')).message).toBe(
      '--lock-timeout: "soon" is not a duration; expected a duration such as 90s, 30m, 2h, 1d or 1h30m (or a number of seconds).',
    )
  })
})

// An ini shaped as upstream Kinto's `kinto init` writes it (test/fixtures/ini/upstream-kinto-tpl.ini),
// rendered as that command does, must load.
const upstreamTemplate = readFileSync(fixture('upstream-kinto-tpl.ini'), 'utf8')

describe("upstream's kinto.tpl rendered", () => {
  for (const backend of ['postgresql', 'memory'] as const) {
    it(`loads with the ${backend} backends`, () => {
      const url = backend === 'postgresql' ? 'postgresql://postgres:postgres@localhost/postgres' : ''
      const values: Record<string, string> = {
        config_file_timestamp: 'Thu, 26 Nov 2026 12:00:00 +0000',
        kinto_version: '26.3.1',
        host: '127.0.0.1',
        secret: 'a'.repeat(64),
        bucket_id_salt: 'b'.repeat(64),
        storage_backend: `kinto.core.storage.${backend}`,
        storage_url: url,
        permission_backend: `kinto.core.permission.${backend}`,
        permission_url: url,
        cache_backend: `kinto.core.cache.${backend}`,
        cache_url: url,
      }
      const text = upstreamTemplate.replace(/\{([a-z_]+)\}/g, (m, name: string) => values[name] ?? m)
      const c = loadConfig(tmpIni(text), {env: {}})
      expect(c.settings.storage_backend).toBe(`kinto.core.storage.${backend}`)
      expect(c.settings.userid_hmac_secret).toBe('a'.repeat(64))
      expect(c.server).toEqual({host: '127.0.0.1', port: 8888})
      expect(c.ini.sectionNames()).toContain('formatter_json')
    })
  }
})

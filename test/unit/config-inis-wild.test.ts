/**
 * Kinto ini files as found in public repositories (re-created in test/fixtures/inis-wild, each
 * naming the file whose shape it has): every one loads as upstream Kinto reads it, or is refused
 * with one clear sentence naming what kinto-ops cannot run.
 */
import {readdirSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {runChecks} from '../../src/lib/check/index.js'
import {asList, loadConfig} from '../../src/lib/config/index.js'
import {uwsgiOption} from '../../src/lib/config/uwsgi.js'
import {workersFromIni} from '../../src/lib/serve/options.js'
import {pluginsFromSettings} from '../../src/lib/server/plugins/index.js'
import {repoRoot} from '../helpers/cli.js'
import {kintoErrorOf} from '../helpers/errors.js'

const dir = path.join(repoRoot, 'test', 'fixtures', 'inis-wild')
const fixture = (name: string) => path.join(dir, name)
const PG = 'postgresql://postgres:postgres@localhost/postgres'

/** Environment a fixture is served with (the platform sets the rest). */
const ENV: Record<string, NodeJS.ProcessEnv> = {
  'heroku.ini': {KINTO_STORAGE_URL: PG, KINTO_CACHE_URL: PG, KINTO_PERMISSION_URL: PG, KINTO_USERID_HMAC_SECRET: 'f'.repeat(64)},
}

/** Fixtures kinto-ops refuses, and the words of the refusal. */
const REFUSED: Record<string, {at: 'load' | 'plugins'; message: RegExp}> = {
  'kinto-dist-2016-redis.ini': {at: 'load', message: /"cliquet\.storage\.redis" is not a storage backend kinto-ops provides/},
  'remote-settings-local.ini': {at: 'plugins', message: /'kinto_emailer', 'kinto_slack', 'kinto_remote_settings'/},
  'remote-settings-changes.ini': {at: 'plugins', message: /'kinto_remote_settings\.changes'/},
  'kinto-dist-2021-listeners.ini': {at: 'plugins', message: /'kinto_changes', 'kinto_signer', 'kinto_megaphone'/},
  'comma-lists.ini': {at: 'plugins', message: /'kinto\.plugins\.default_bucket,'/},
}

const names = readdirSync(dir).filter((n) => n.endsWith('.ini')).sort()

describe('ini files from the wild', () => {
  it('has the fixtures', () => {
    expect(names.length).toBeGreaterThanOrEqual(15)
  })

  for (const name of names) {
    const refused = REFUSED[name]
    it(`${name}: ${refused ? `refused at ${refused.at}` : 'loads, its plugins and [uwsgi] workers too'}`, () => {
      const load = () => loadConfig(fixture(name), {env: ENV[name] ?? {}})
      if (refused?.at === 'load') {
        expect(kintoErrorOf(load).message).toMatch(refused.message)
        return
      }
      const config = load()
      if (refused?.at === 'plugins') {
        const error = kintoErrorOf(() => pluginsFromSettings(config.settings))
        expect(error.code).toBe('KINTO_PLUGIN_UNKNOWN')
        expect(error.message).toMatch(refused.message)
        expect(error.message).not.toMatch(/\n\s+at /)
        // Before: only the list of plugins kinto-ops carries, not what to do.
        expect(error.hint).toMatch(/^kinto-ops runs no Python package \(kinto_signer, kinto_emailer…\): remove (them|it) from kinto\.includes|^'kinto\.plugins\.default_bucket,': entries are separated by spaces or new lines, not commas\./)
        return
      }
      expect(() => pluginsFromSettings(config.settings)).not.toThrow()
      expect(() => workersFromIni(config, {})).not.toThrow()
    })
  }

  it('comma-lists.ini: every list written with commas is pointed out, not only principals', () => {
    const config = loadConfig(fixture('comma-lists.ini'), {env: {}})
    // Before: only *_principals were checked; kinto.includes failed as an unknown Python package.
    expect(config.keyProblems.map((p) => p.message.replace(/^.*key /, 'key '))).toEqual([
      "key 'kinto.includes': the entries of this list are separated by spaces or new lines, not commas: Kinto (upstream Kinto too) reads 'kinto.plugins.default_bucket,' as one entry.",
      "key 'kinto.cors_origins': the entries of this list are separated by spaces or new lines, not commas: Kinto (upstream Kinto too) reads 'https://a.example.com,https://b.example.com' as one entry.",
    ])
    expect(config.keyProblems[0].fix).toBe('Write kinto.includes = kinto.plugins.default_bucket kinto.plugins.history')
    const hint = kintoErrorOf(() => pluginsFromSettings(config.settings)).hint ?? ''
    expect(hint).not.toContain('Python package')
  })

  it('a typo of a carried plugin is named as such, not as a Python package', () => {
    const hint = kintoErrorOf(() => pluginsFromSettings({includes: 'kinto.plugins.histroy'})).hint ?? ''
    expect(hint).toMatch(/^'kinto\.plugins\.histroy': did you mean 'kinto\.plugins\.history'\?/)
  })

  it('kinto check (settings, no database) on every fixture that loads: one includes error for the refused ones, no stack trace', async () => {
    for (const name of names.filter((n) => REFUSED[n]?.at !== 'load')) {
      const config = loadConfig(fixture(name), {env: ENV[name] ?? {}})
      const findings = await runChecks(config, {db: false, timeoutMs: 1000, resolve: async () => ['127.0.0.1']})
      const includes = findings.filter((f) => f.id === 'includes' && f.level === 'error')
      expect([name, includes.length]).toEqual([name, REFUSED[name] ? 1 : 0])
      for (const f of findings) expect([name, f.message]).not.toEqual([name, expect.stringMatching(/\n\s+at /)])
    }
  }, 60_000)

  it('bom-crlf-tabs.ini reads as kinto-tpl-2017.ini: the BOM, CRLF and tabs change nothing', () => {
    const a = loadConfig(fixture('bom-crlf-tabs.ini'), {env: {}}).settings
    const b = loadConfig(fixture('kinto-tpl-2017.ini'), {env: {}}).settings
    expect(a).toEqual(b)
    expect(a.storage_backend).toBe('kinto.core.storage.postgresql')
  })

  it('a comment line inside a continued value is skipped, as configparser does (the empty first line kept)', () => {
    const config = loadConfig(fixture('remote-settings-local.ini'), {env: {}})
    expect(String(config.settings['signer.resources']).split('\n')).toEqual([
      '',
      '/buckets/main-workspace -> /buckets/main-preview -> /buckets/main',
      '/buckets/staging -> /buckets/blocklists-preview -> /buckets/blocklists',
    ])
  })

  it('[DEFAULT] values and %(here)s are interpolated into the settings', () => {
    const config = loadConfig(fixture('default-section-interpolation.ini'), {env: {}})
    expect(config.settings.storage_url).toBe(PG)
    expect(config.settings.version_json_path).toBe(path.join(dir, 'version.json'))
  })

  it('heroku.ini without its platform variables: the error names the variable that sets the URL', () => {
    // Before: only "set it to postgresql://…", as if the ini were the only place.
    expect(kintoErrorOf(() => loadConfig(fixture('heroku.ini'), {env: {}})).message).toContain(
      "kinto.core.storage.postgresql needs kinto.storage_url, which is empty; set it (in the ini, or in the environment as KINTO_STORAGE_URL) to postgresql://",
    )
  })

  it('heroku.ini takes its URLs and secret from KINTO_* variables', () => {
    const config = loadConfig(fixture('heroku.ini'), {env: ENV['heroku.ini']})
    expect(config.settings.storage_url).toBe(PG)
    expect(config.sources.storage_url).toEqual({kind: 'env', variable: 'KINTO_STORAGE_URL'})
  })

  it('the old AccountsPolicy path and quoted JSON strings load', () => {
    const s = loadConfig(fixture('classroom-accounts-attachments.ini'), {env: {}}).settings
    expect(s['multiauth.policy.account.use']).toBe('kinto.plugins.accounts.AccountsPolicy')
    expect(s['account_validation.email_sender']).toBe('site@example.org')
    expect(asList(s, 'multiauth.policies')).toEqual(['account', 'basicauth'])
  })

  it('[uwsgi] is read as uWSGI reads it: %k is the CPU count, $(ENV) the environment, %(option) another option', () => {
    const config = loadConfig(fixture('uwsgi-magic.ini'), {env: {}})
    // Before: configparser's interpolation refused '%k' ("a '%' must be followed by…"), so kinto start did not start.
    expect(workersFromIni(config, {})).toBe(availableParallelism())
    expect(uwsgiOption(config.ini, 'socket', {env: {XDG_RUNTIME_DIR: '/run/user/1'}})).toBe('/run/user/1/kinto.sock')
    expect(uwsgiOption(config.ini, 'wsgi-file', {env: {}})).toBe('/srv/kinto/app.wsgi')
    expect(uwsgiOption(config.ini, 'processes', {env: {}, cpus: 3})).toBe('3')
    expect(workersFromIni(loadConfig(fixture('dist-2017-uwsgi-sentry.ini'), {env: {}}), {})).toBe(3)
  })
})

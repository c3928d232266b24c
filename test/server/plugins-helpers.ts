/** Helpers for the plugin tests: apps with the plugins' settings and a logger that keeps warnings. */
import {createHmac} from 'node:crypto'

import type {FastifyInstance} from 'fastify'
import pino from 'pino'
import {afterEach} from 'vitest'

import {createBackends} from '../../src/lib/backends.js'
import {buildSettings} from '../../src/lib/config/settings.js'
import {createApp} from '../../src/lib/server/app.js'
import type {Logger} from '../../src/lib/logger.js'
import {ALICE, client} from './helpers.js'

/** The userid_hmac_secret of pluginApp's apps. */
const PLUGIN_SECRET = 'plugin-tests'

/** The settings http_checks.py's `plugins` group needs (shared/acceptance/README.md). */
export const ACCEPTANCE_PLUGINS: Record<string, string> = {
  'kinto.includes': 'kinto.plugins.default_bucket kinto.plugins.history kinto.plugins.accounts kinto.plugins.flush',
  'kinto.flush_endpoint_enabled': 'true',
  'kinto.experimental_permissions_endpoint': 'true',
  'multiauth.policies': 'account basicauth',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.AccountsPolicy',
  'kinto.account_create_principals': 'system.Everyone',
}

/** Accounts only (upstream's AccountsWebTest settings). */
export const ACCOUNTS: Record<string, string> = {
  'kinto.includes': 'kinto.plugins.accounts',
  'multiauth.policies': 'account',
  'multiauth.policy.account.use': 'kinto.plugins.accounts.authentication.AccountsAuthenticationPolicy',
  'kinto.account_create_principals': 'system.Everyone',
}

export interface Captured {
  /** Messages logged at warn level. */
  warnings: string[]
  errors: string[]
  /** Every line written, as JSON text. */
  lines: string[]
  logger: Logger & object
}

/** A pino logger writing into arrays (warn and error messages). */
export function capturingLogger(): Captured {
  const warnings: string[] = []
  const errors: string[] = []
  const lines: string[] = []
  const stream = {
    write(line: string) {
      lines.push(line)
      const entry = JSON.parse(line) as {level: number; msg?: string}
      if (entry.level === 40) warnings.push(entry.msg ?? '')
      if (entry.level >= 50) errors.push(entry.msg ?? '')
    },
  }
  return {warnings, errors, lines, logger: pino({level: 'warn'}, stream)}
}

/** An app on fresh memory backends; `logger` receives the startup warnings. */
export function pluginApp(raw: Record<string, string>, captured: Captured = capturingLogger()): FastifyInstance {
  const settings = buildSettings({'kinto.userid_hmac_secret': PLUGIN_SECRET, ...raw}, {})
  const backends = createBackends(settings)
  const app = createApp({settings, backends, logger: captured.logger})
  app.addHook('onClose', async () => backends.close())
  return app
}

/** The basicauth user id of user:password on a pluginApp (the hmac of the credentials, as upstream derives it). */
export function pluginPrincipal(user: string, password = 'secret'): string {
  return `basicauth:${createHmac('sha256', PLUGIN_SECRET).update(`${user}:${password}`).digest('hex')}`
}

/**
 * A test file's setup(raw): a pluginApp with these settings (raw over them) and a client on it
 * sending `defaultAuth` (ALICE unless given); the apps are closed after each test.
 */
export function pluginSetup(base: Record<string, string>, defaultAuth: string | null = ALICE) {
  const apps: FastifyInstance[] = []
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()))
  })
  return (raw: Record<string, string> = {}) => {
    const app = pluginApp({...base, ...raw})
    apps.push(app)
    return {app, req: client(app, defaultAuth)}
  }
}

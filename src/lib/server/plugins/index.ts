/**
 * `kinto.includes` plugins, keyed by upstream's module names. A plugin adds services, resources,
 * capabilities, event listeners, authentication policies or hello `user` fields when the app is
 * built. An unknown name is a startup error, so a typo never silently drops a feature; upstream
 * plugins that kinto-ops does not carry are reported once at startup (a warning in the log) and
 * skipped, so an ini written for upstream Kinto still starts.
 *
 * Writing one (src/lib/server/plugins/<name>.ts, exporting a KintoPlugin, listed in BUILTIN; the
 * module must not import this one's values, only its types, so BUILTIN's imports form no cycle):
 * - services: `api.addService({name, pattern, views})`; views get a RequestContext whose `tx`
 *   is the request transaction (storage, permission). Set `noTransaction` for views that manage
 *   backends themselves (flush). `matchFirst` puts a service before the core routes (aliases).
 * - resources: `api.addResource(definition)` gives plural and object endpoints with the whole
 *   resource framework (filters, pagination, permissions…); permission inheritance for a new
 *   resource type: registerInheritance() in authorization.ts.
 * - events: `api.runtime.events.onChanged(filter, listener)` runs in the transaction (history),
 *   `afterCommit` after it (notifications).
 * - authentication: registerAuthenticationPolicy(dotted name of `multiauth.policy.<n>.use`, factory),
 *   at import time: policies are built with the runtime, before plugins are included (and, as
 *   upstream, a policy works even when its plugin is not included).
 * - hello: `api.addUserInfo(hook)` (default bucket's `user.bucket`), `api.runtime.addCapability()`.
 * - the cache is never part of the request transaction, and PGlite (one connection) cannot
 *   serve it while a transaction is open: reach it in `beforeTransaction`, in
 *   `ctx.bound.afterTransaction`, from authentication policies (they run before the
 *   transaction), or in `noTransaction` views.
 * - includeme runs synchronously: createApp throws configuration errors as KintoError.
 */
import {KintoError} from '../../errors.js'
import {nearest} from '../../text/nearest.js'
import {asBool, asList, asString} from '../../config/settings.js'
import type {ResourceDefinition} from '../resource/definition.js'
import {resourceServices} from '../resource/services.js'
import type {Runtime} from '../runtime.js'
import type {Service} from '../router.js'
import type {UserInfoHook} from '../views.js'
import {accountsPlugin} from './accounts.js'
import {adminPlugin} from './admin.js'
import {attachmentPlugin} from './attachment/index.js'
import {defaultBucketPlugin} from './default-bucket.js'
import {flushPlugin} from './flush.js'
import {historyPlugin} from './history.js'
import {openidPlugin} from './openid/index.js'
import {permissionsEndpoint} from './permissions.js'
import {countersPlugin} from './counters.js'
import {prometheusPlugin} from './prometheus.js'
import {statsdPlugin} from './statsd.js'

/** What a plugin may do while the app is built. */
export interface PluginApi {
  readonly runtime: Runtime
  /** The ini's folder: relative path settings are looked up there too (settingPathCandidates). */
  readonly baseDir?: string
  addService(service: Service): void
  addResource(def: ResourceDefinition): void
  addUserInfo(hook: UserInfoHook): void
}

export interface KintoPlugin {
  /** Upstream's module name, as written in `kinto.includes`. */
  name: string
  /** Runs synchronously while the app is built (a returned promise is not awaited). */
  includeme(api: PluginApi): void | Promise<void>
  /**
   * Throws the KintoError its includeme would for these settings, without building anything
   * (`kinto check` runs it, so that it agrees with the start).
   */
  checkSettings?(settings: Record<string, unknown>): void
}

const REGISTRY = new Map<string, KintoPlugin>()

/** Upstream plugins we do not carry, and what including them means here. */
const NOT_CARRIED = new Map<string, string>([
  ['kinto.plugins.quotas', 'upstream Kinto removed it in version 20.0.0'],
])

/** Plugins shipped with kinto-ops. */
const BUILTIN: KintoPlugin[] = [flushPlugin, accountsPlugin, defaultBucketPlugin, historyPlugin, adminPlugin, statsdPlugin, prometheusPlugin, countersPlugin, openidPlugin, attachmentPlugin]

/** Adds a plugin (or replaces an upstream one listed as not carried). */
export function registerPlugin(plugin: KintoPlugin): void {
  REGISTRY.set(plugin.name, plugin)
  NOT_CARRIED.delete(plugin.name)
}

export function knownPlugins(): string[] {
  return [...REGISTRY.keys()].sort()
}

function notCarriedMessage(name: string, consequence: string): string {
  return `kinto.includes lists ${name}, an upstream Kinto plugin that kinto-ops does not carry: skipped (${consequence}).`
}

function notCarried(name: string, consequence: string): KintoPlugin {
  return {
    name,
    includeme(api) {
      api.runtime.logger.warn({plugin: name}, notCarriedMessage(name, consequence))
    },
  }
}

/** The warning kinto start logs for each plugin of `includes` it skips (`kinto check` shows the same). */
export function skippedPluginWarnings(settings: Record<string, unknown>): {plugin: string; message: string}[] {
  return [...new Set(asList(settings, 'includes'))]
    .filter((name) => !REGISTRY.has(name) && NOT_CARRIED.has(name))
    .map((name) => ({plugin: name, message: notCarriedMessage(name, NOT_CARRIED.get(name)!)}))
}

/**
 * What to do about names of `includes` that are no plugin here: a comma glued to a name, a typo of
 * one we carry, or a Python package for upstream Kinto (kinto_signer…), which kinto-ops cannot run.
 */
function unknownPluginsHint(unknown: string[]): string {
  const known = knownPlugins()
  const advice: string[] = []
  const packages: string[] = []
  for (const name of unknown) {
    const close = nearest(name.replace(/,+$/, ''), known, 2)
    if (name.includes(',')) advice.push(`'${name}': entries are separated by spaces or new lines, not commas.`)
    else if (close.length > 0) advice.push(`'${name}': did you mean '${close[0]}'?`)
    else packages.push(name)
  }
  if (packages.length > 0) {
    const one = packages.length === 1
    advice.push(
      `kinto-ops runs no Python package (kinto_signer, kinto_emailer…): remove ${one ? 'it' : 'them'} from kinto.includes ` +
        `(with ${one ? 'its' : 'their'} settings) to serve without what ${one ? 'it adds' : 'they add'}, or keep serving this ini with upstream Kinto.`,
    )
  }
  advice.push(`Plugins kinto-ops carries: ${known.join(', ')}; skipped with a warning: ${[...NOT_CARRIED.keys()].join(', ')}.`)
  return advice.join(' ')
}

/**
 * The plugins named in `includes`, in order (each once), then what core settings switch on
 * (`/permissions`). Throws a KintoError for names that are no plugin we know.
 */
export function pluginsFromSettings(settings: Record<string, unknown>): KintoPlugin[] {
  const names = [...new Set(asList(settings, 'includes'))]
  // Every name nobody knows in one message, so that an ini is not fixed one start at a time.
  const unknown = names.filter((name) => !REGISTRY.has(name) && !NOT_CARRIED.has(name))
  if (unknown.length > 0) {
    throw new KintoError(`Unknown ${unknown.length === 1 ? 'plugin' : 'plugins'} ${unknown.map((name) => `'${name}'`).join(', ')} in kinto.includes.`, {
      code: 'KINTO_PLUGIN_UNKNOWN',
      hint: unknownPluginsHint(unknown),
    })
  }
  const plugins = names.map((name) => REGISTRY.get(name) ?? notCarried(name, NOT_CARRIED.get(name)!))
  // As upstream: /permissions with the admin plugin, or when asked for.
  if (names.includes('kinto.plugins.admin') || asBool(settings, 'experimental_permissions_endpoint')) {
    plugins.push(permissionsEndpoint)
  }
  return plugins
}

/**
 * `event_listeners`: upstream imports each listed listener (the module of
 * `event_listeners.<name>.use`, e.g. kinto_redis.listeners) and sends it every change. kinto-ops
 * runs no listener module, so a listed one is a startup error: its consumers would otherwise
 * silently stop receiving events.
 */
export function checkEventListeners(settings: Record<string, unknown>): void {
  const names = [...new Set(asList(settings, 'event_listeners'))]
  if (names.length === 0) return
  const described = names.map((name) => {
    const use = asString(settings, `event_listeners.${name}.use`)
    return use ? `'${name}' (${use})` : `'${name}'`
  })
  throw new KintoError(
    `kinto.event_listeners lists ${described.join(', ')}: kinto-ops runs no event listener modules, so nothing would receive the events.`,
    {
      code: 'KINTO_PLUGIN_UNKNOWN',
      hint: 'Remove kinto.event_listeners (and its kinto.event_listeners.<name>.* settings) to serve without them, or keep serving this ini with upstream Kinto.',
    },
  )
}

/** Builds the plugin API over a runtime. */
export function pluginApi(runtime: Runtime, userInfoHooks: UserInfoHook[], baseDir?: string): PluginApi {
  return {
    runtime,
    baseDir,
    addService: (service) => runtime.addService(service),
    addResource: (def) => {
      for (const s of resourceServices(def, {settings: runtime.settings, readonly: runtime.readonly})) runtime.addService(s)
    },
    addUserInfo: (hook) => userInfoHooks.push(hook),
  }
}

for (const plugin of BUILTIN) registerPlugin(plugin)

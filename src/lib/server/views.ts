/**
 * Utility endpoints: hello `/`, `__heartbeat__`, `__lbheartbeat__`, `__version__`,
 * `/contribute.json`. The batch endpoint is in batch.ts.
 */
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {asInt, asString, settingPathCandidates} from '../config/settings.js'
import {packageRoot, packageVersion} from '../version.js'
import {RequestContext} from './context.js'
import {cacheExpiresHeaders} from './headers.js'
import {saidWhole} from './error-mapping.js'
import {type OpenApiHints, type Service, type ViewDef} from './router.js'
import type {Runtime} from './runtime.js'
import type {ViewResult} from './types.js'

export function service(name: string, pattern: string, views: ViewDef[], options: Partial<Service> = {}): Service {
  return {name, pattern, views: new Map(views.map((v) => [v.method, v])), ...options}
}

/** How `/__api__` names a utility endpoint's GET (upstream's tag and operationId) and its answers. */
export function utility(operationId: string, responses: OpenApiHints['responses']): OpenApiHints {
  return {tags: ['Utilities'], operationIds: {GET: operationId}, responses}
}

export function publicGet(handler: (ctx: RequestContext) => Promise<ViewResult>): ViewDef {
  return {method: 'GET', permission: 'public', handler}
}

/** Extra `user` fields in hello (the default bucket plugin adds `bucket`). */
export type UserInfoHook = (ctx: RequestContext, info: Record<string, unknown>) => Promise<void>

export function helloService(runtime: Runtime, userInfoHooks: UserInfoHook[]): Service {
  return service(
    'hello',
    '/',
    [
      publicGet(async (ctx) => {
        const s = runtime.settings
        const data: Record<string, unknown> = {
          project_name: s.project_name,
          project_version: asString(s, 'project_version') || packageVersion(),
          http_api_version: asString(s, 'http_api_version'),
          project_docs: s.project_docs,
          url: ctx.absoluteUrl('/'),
          config: runtime.configInfo,
        }
        if (s.eos) data.eos = s.eos
        const shown: Record<string, unknown> = Object.fromEntries([...runtime.publicSettings].map((k) => [k, s[k]]))
        // The toggles in force (a `*_expires` date may have turned them off); maintenance only when on.
        if ('readonly' in shown) shown.readonly = runtime.readonly
        if (runtime.maintenance) shown.maintenance = true
        data.settings = shown
        const identity = await ctx.identity()
        if (identity.userId !== null) {
          const user: Record<string, unknown> = {id: identity.userId, principals: identity.principals}
          for (const hook of userInfoHooks) await hook(ctx, user)
          data.user = user
        }
        data.capabilities = runtime.capabilities
        const headers = runtime.readonly ? cacheExpiresHeaders(asInt(s, 'root_cache_expires_seconds', 86400) ?? 86400) : {}
        return {headers, body: data}
      }),
    ],
    {noTransaction: true, openapi: utility('server_info', {'200': 'What this server is, serves and knows of the caller.'})},
  )
}

export function heartbeatService(runtime: Runtime): Service {
  return service(
    'heartbeat',
    '/__heartbeat__',
    [
      publicGet(async (ctx) => {
        const rid = ctx.req.scope?.rid
        const seconds = Number(runtime.settings.heartbeat_timeout_seconds ?? 10)
        const status: Record<string, boolean | null> = {}
        const pending = new Set<string>()
        const checks = [...runtime.heartbeats.entries()].map(async ([name, check]) => {
          status[name] = false
          pending.add(name)
          try {
            // In maintenance the checks only read, as in readonly (a migration may hold the tables).
            status[name] = await check(runtime.backends, runtime.readonly || runtime.maintenance)
          } catch (err) {
            // A condition said whole by its message (an unreachable database): no stack at every probe.
            runtime.logger.error(saidWhole(err) ? {rid, reason: (err as Error).message} : {rid, err}, `'${name}' heartbeat failed.`)
            status[name] = false
          } finally {
            pending.delete(name)
          }
        })
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), Math.max(0, seconds) * 1000)
        })
        const outcome = await Promise.race([Promise.all(checks).then(() => 'done' as const), timeout])
        clearTimeout(timer)
        // As upstream: one line per check still running, naming it (which backend hangs).
        if (outcome === 'timeout') for (const name of pending) runtime.logger.error({rid}, `'${name}' heartbeat has exceeded timeout of ${seconds} seconds.`)
        const snapshot = {...status}
        const failed = Object.values(snapshot).some((v) => v === false)
        // Reads are served in maintenance, so the heartbeat stays 200 and says why writes are not.
        if (runtime.maintenance) snapshot.maintenance = true
        return {status: failed ? 503 : 200, body: snapshot}
      }),
    ],
    {noTransaction: true, openapi: utility('__heartbeat__', {'200': 'Every backend answers.', '503': {description: 'A backend failed or did not answer in time.', schema: {type: 'object'}}})},
  )
}

export function lbHeartbeatService(): Service {
  return service('lbheartbeat', '/__lbheartbeat__', [publicGet(async () => ({body: {}}))], {
    noTransaction: true,
    openapi: utility('__lbheartbeat__', {'200': 'The server answers requests.'}),
  })
}

/** Upstream's `/contribute.json` (Mozilla's format): where the project lives and how to take part. */
export function contributeService(runtime: Runtime): Service {
  return service(
    'contribute.json',
    '/contribute.json',
    [
      publicGet(async () => ({
        body: {
          name: asString(runtime.settings, 'project_name') ?? 'kinto',
          description: 'JSON storage service: buckets, collections and records with permissions (Kinto HTTP API v1).',
          repository: {url: 'https://github.com/Kinto/kinto', license: 'Apache License (2.0)'},
          participate: {docs: asString(runtime.settings, 'project_docs') ?? 'https://kinto.readthedocs.io/'},
          keywords: ['JSON', 'Offline', 'Sync', 'Storage'],
        },
      })),
    ],
    {noTransaction: true, openapi: utility('contribute', {'200': 'Where the project lives and how to take part.'})},
  )
}

export function versionService(runtime: Runtime, baseDir: string | undefined): Service {
  let memo: unknown
  return service(
    'version',
    '/__version__',
    [
      publicGet(async () => {
        if (memo === undefined) memo = readVersionFile(runtime, baseDir)
        return {body: memo}
      }),
    ],
    {noTransaction: true, openapi: utility('__version__', {'200': 'The version of the running server.'})},
  )
}

/**
 * The first of `version_json_path` (relative to the current folder, then to the ini's folder) and
 * the package's version.json; without any, a version object made from package.json (upstream
 * answers 500 when the file is missing).
 */
function readVersionFile(runtime: Runtime, baseDir: string | undefined): unknown {
  const configured = asString(runtime.settings, 'version_json_path') ?? 'version.json'
  const candidates = settingPathCandidates(configured, baseDir)
  candidates.push(path.join(packageRoot, 'version.json'))
  for (const file of candidates) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8'))
      } catch (err) {
        runtime.logger.error({err, file}, 'Invalid version file.')
      }
    }
  }
  return {name: 'kinto-ops', version: packageVersion(), source: '', commit: '', build: ''}
}

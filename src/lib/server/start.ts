/**
 * `kinto start`: builds the backends and the app from a loaded config, checks that PostgreSQL
 * schemas are installed, listens as [server:main] says (flags override), and closes gracefully:
 * stop accepting, finish in-flight requests, close the pools.
 */
import {createHash} from 'node:crypto'
import {readFileSync, statSync} from 'node:fs'

import type {FastifyInstance} from 'fastify'

import {createBackends} from '../backends.js'
import type {KintoConfig} from '../config/index.js'
import {asString} from '../config/settings.js'
import {DatabaseRegistry, maskUrl, type SqlClient} from '../db/index.js'
import {KintoError} from '../errors.js'
import {planBackend, type BackendName, CURRENT_VERSIONS} from '../schema/index.js'
import {createLogging} from '../monitoring/index.js'
import {createApp} from './app.js'
import type {ConfigInfo, Logger} from './runtime.js'

export interface StartServerOptions {
  /** Overrides [server:main] host. */
  host?: string
  /** Overrides [server:main] port (0: any free port). */
  port?: number
  /** Default: the ini's logging sections (createLogging: mozlog JSON when they ask for it; readable lines on stderr without them). */
  logger?: Logger & object
  /** Skip the schema check (tests that install the schema themselves do not need it). */
  skipSchemaCheck?: boolean
}

export interface RunningServer {
  app: FastifyInstance
  /** Base URL of the API (`http://127.0.0.1:8888/v1/`), or the unix socket path. */
  url: string
  /** Stops accepting, waits for in-flight requests, closes the backends. Idempotent. */
  close(): Promise<void>
}

/** hello's `config` block: path, sha256 of the file and its modification time (local, as upstream). */
export function configAttributes(iniPath: string): ConfigInfo | null {
  try {
    const content = readFileSync(iniPath)
    const mtime = statSync(iniPath).mtime
    return {path: iniPath, hash: createHash('sha256').update(content).digest('hex'), modified: localIso(mtime)}
  } catch {
    return null
  }
}

function localIso(d: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return d.getMilliseconds() ? `${base}.${pad(d.getMilliseconds() * 1000, 6)}` : base
}

const POSTGRESQL_BACKENDS: Record<string, BackendName> = {
  'kinto.core.storage.postgresql': 'storage',
  'kinto.core.permission.postgresql': 'permission',
  'kinto.core.cache.postgresql': 'cache',
}

/** Refuses to serve a database whose schema is missing or not the version we serve. */
async function checkSchemas(config: KintoConfig, registry: DatabaseRegistry): Promise<void> {
  for (const [module, backend] of Object.entries(POSTGRESQL_BACKENDS)) {
    if (asString(config.settings, `${backend}_backend`) !== module) continue
    const url = asString(config.settings, `${backend}_url`) ?? ''
    const client: SqlClient = registry.get(url)
    const plan = await planBackend(client, backend)
    if (plan.state === 'current') continue
    const where = `${maskUrl(url)} (${backend})`
    const hint = `Run \`kinto migrate --ini ${config.path}\` first.`
    if (plan.state === 'missing') {
      throw new KintoError(`The ${backend} schema is not installed in ${where}.`, {code: 'KINTO_SCHEMA_MISSING', hint})
    }
    if (plan.state === 'behind') {
      throw new KintoError(`The ${backend} schema of ${where} is at version ${plan.installed ?? '?'}; this server needs ${CURRENT_VERSIONS[backend]}.`, {
        code: 'KINTO_SCHEMA_BEHIND',
        hint,
      })
    }
    throw new KintoError(`The ${backend} schema of ${where} is newer (${plan.installed ?? '?'}) than this server knows (${CURRENT_VERSIONS[backend]}).`, {
      code: 'KINTO_SCHEMA_NEWER',
      hint: 'Upgrade kinto-ops, or serve this database with the Kinto that migrated it.',
    })
  }
}

export async function startServer(config: KintoConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogging(config).root
  const registry = new DatabaseRegistry(config.dir)
  let backends
  try {
    backends = createBackends(config.settings, {registry, baseDir: config.dir})
    if (!options.skipSchemaCheck) await checkSchemas(config, registry)
  } catch (err) {
    await backends?.close().catch(() => {})
    await registry.closeAll()
    throw err
  }
  let app: FastifyInstance
  try {
    app = createApp({
      settings: config.settings,
      backends,
      configInfo: () => configAttributes(config.path),
      logger,
      baseDir: config.dir,
    })
  } catch (err) {
    await backends.close().catch(() => {})
    await registry.closeAll()
    throw err
  }
  const host = options.host ?? config.server.host
  const port = options.port ?? config.server.port
  let url: string
  try {
    if (config.server.unixSocket && options.host === undefined && options.port === undefined) {
      await app.listen({path: config.server.unixSocket})
      url = config.server.unixSocket
    } else {
      await app.listen({host, port})
      const address = app.server.address()
      const actualPort = typeof address === 'object' && address ? address.port : port
      const shownHost = host.includes(':') ? `[${host}]` : host
      url = `http://${shownHost}:${actualPort}/v1/`
    }
  } catch (err) {
    await app.close().catch(() => {})
    await backends.close().catch(() => {})
    await registry.closeAll()
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
      throw new KintoError(`Cannot listen on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the address is already in use' : e.message}.`, {
        code: 'KINTO_LISTEN_FAILED',
        hint: 'Choose another --port or --host, or stop the process using it.',
      })
    }
    throw err
  }
  logger.info({url}, `Running ${String(config.settings.project_name ?? 'kinto')} on ${url}`)
  let closing: Promise<void> | undefined
  return {
    app,
    url,
    close() {
      closing ??= (async () => {
        // Node closes idle keep-alive connections only when close() starts; connections whose
        // request finishes later would hold the close for the whole keep-alive timeout.
        const sweep = setInterval(() => app.server.closeIdleConnections?.(), 100)
        try {
          await app.close()
        } finally {
          clearInterval(sweep)
        }
        await backends.close().catch((err) => logger.error({err}, 'Closing the backends failed.'))
        await registry.closeAll()
      })()
      return closing
    },
  }
}

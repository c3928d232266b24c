/** What `kinto start` serves with: its options, and the number of worker processes and whether the config allows them. */
import type {KintoConfig} from '../config/index.js'
import {backendKind} from '../config/backend-modules.js'
import {uwsgiOption, uwsgiSection} from '../config/uwsgi.js'
import {KintoError} from '../errors.js'
import {configuredBackends} from '../schema/targets.js'

export interface ServeOptions {
  config: KintoConfig
  host?: string
  port?: number
  /** `%(http_port)s` the config was loaded with (reloads use it again). */
  httpPort?: number
  /** From --workers; undefined: the ini's [uwsgi] processes, else 1. */
  workers?: number
  migrate?: boolean
  /**
   * A PostgreSQL database that cannot be reached at start is served all the same (503 until it
   * answers, as upstream Kinto starts), its schema left unchecked, instead of an exit 1.
   */
  serveUnreachable?: boolean
  /** Reload the ini when its content changes (as on SIGHUP). */
  reload?: boolean
  shutdownTimeoutMs?: number
  /** A serving worker silent this long is killed and replaced (0: never; default 30 s). */
  workerTimeoutMs?: number
  /** Lines for the operator (stderr). */
  log: (line: string) => void
}

/**
 * Workers from the ini: `[uwsgi] processes` (or its alias `workers`), as a uwsgi deployment says,
 * read with uWSGI's own expansions (`%k`, `$(ENV)`, `%(option)`).
 */
export function workersFromIni(config: KintoConfig, env: NodeJS.ProcessEnv = process.env): number | undefined {
  for (const key of ['processes', 'workers']) {
    const raw = uwsgiOption(config.ini, key, {env})?.trim()
    if (raw === undefined || raw === '') continue
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
    if (!(n >= 1 && n <= 256)) {
      const written = config.ini.ownEntry(uwsgiSection(config.ini)!, key)?.value.trim()
      const shown = written !== undefined && written !== raw ? `${JSON.stringify(written)} (${JSON.stringify(raw)} here)` : JSON.stringify(raw)
      throw new KintoError(`${config.path}: [uwsgi] ${key} = ${shown} is not a number of processes (1 to 256).`, {
        code: 'KINTO_CONFIG_INVALID',
        hint: 'Fix the value, or give --workers.',
      })
    }
    return n
  }
  return undefined
}

const FAMILY_ORDER = ['storage', 'permission', 'cache']

/** Why N processes cannot serve this config, or null. */
export function workersRefusal(config: KintoConfig, workers: number): string | null {
  if (workers <= 1) return null
  // Named storage first (configuredBackends lists them in upstream's migration order, cache first).
  const embedded = configuredBackends(config.settings, config.dir)
    .filter((b) => b.pgliteDir !== undefined)
    .sort((a, b) => FAMILY_ORDER.indexOf(a.backend) - FAMILY_ORDER.indexOf(b.backend))
  if (embedded.length > 0) {
    const names = embedded.map((b) => b.backend)
    const which = names.length === 1 ? `the ${names[0]} backend uses` : `the ${names.slice(0, -1).join(', ')} and ${names.at(-1)} backends use`
    return `${which} the ${embedded[0].database}, which one process at a time may open`
  }
  for (const family of ['storage', 'permission'] as const) {
    if (backendKind(config.settings[`${family}_backend`]) === 'memory') {
      return `the ${family} backend is memory: each process would hold its own data`
    }
  }
  return null
}

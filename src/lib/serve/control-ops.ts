/**
 * The operations a running server offers on its control channel (src/lib/ops/control.ts): the
 * maintenance commands that need its embedded database, run on the clients it serves from, with
 * the settings it runs with. Each takes the JSON arguments its command sends and returns the
 * result object the command prints; errors are the same KintoErrors (codes, exit codes).
 */
import {Writable} from 'node:stream'

import {accountCacheKey} from '../accounts/index.js'
import {createUser} from '../accounts/create-user.js'
import {readBackup} from '../backup/index.js'
import type {Settings} from '../config/settings.js'
import type {DatabaseRegistry} from '../db/index.js'
import {ExitCode, KintoError, UsageError} from '../errors.js'
import {migrate, type MigrateMode, type MigrateResult} from '../schema/migrate.js'
import {databaseStatusReport} from '../schema/status.js'
import type {ControlOperation} from '../ops/control.js'
import {flushCache, purgeDeleted} from '../maintenance/index.js'
import {shellArg} from '../text/shell.js'

/** What the operations need from the server: where its ini is, its settings now, its databases. */
export interface ControlTarget {
  iniPath: string
  dir: string
  settings(): Settings
  registry: DatabaseRegistry
  /** The server's own cache (a memory cache lives in that process only). */
  cache: {delete(key: string): Promise<unknown>}
}

const strings = (value: unknown, name: string): string[] => {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new UsageError(`${name} must be a list of strings.`)
  return value as string[]
}

const text = (value: unknown, name: string): string => {
  if (typeof value !== 'string') throw new UsageError(`${name} must be a string.`)
  return value
}

export function controlOperations(target: ControlTarget): Record<string, ControlOperation> {
  const base = () => ({settings: target.settings(), dir: target.dir, iniPath: target.iniPath, registry: target.registry})
  return {
    ping: async () => ({pid: process.pid}),
    'flush-cache': async () => flushCache(base()),
    'purge-deleted': async (args) => {
      const maxRetained = args.maxRetained
      if (typeof maxRetained !== 'number' || !Number.isInteger(maxRetained) || maxRetained < 0) throw new UsageError('maxRetained must be a whole number.')
      return purgeDeleted({...base(), resources: strings(args.resources, 'resources'), maxRetained})
    },
    'create-user': async (args) => {
      const username = text(args.username, 'username')
      const {settings, dir, iniPath, registry} = base()
      const result = await createUser({config: {settings, dir, path: iniPath}, username, password: text(args.password, 'password'), registry})
      // This server may hold the old password in its own cache (a memory cache lives here only).
      await target.cache.delete(accountCacheKey(settings, username)).catch(() => undefined)
      return result
    },
    // The snapshot read here, its compressed bytes streamed to `kinto backup`, which writes the file.
    backup: async (args, stream) => {
      const sink = () =>
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            stream.chunk(chunk).then(() => done(), done)
          },
        })
      const onProgress = args.progress === true ? (event: unknown) => stream.event(event) : undefined
      return readBackup({settings: target.settings(), dir: target.dir, registry: target.registry, onProgress}, sink)
    },
    'db-status': async () => databaseStatusReport({settings: target.settings(), dir: target.dir, registry: target.registry}),
    migrate: async (args, stream) => {
      const mode = args.mode as MigrateMode
      if (mode !== 'check' && mode !== 'dry-run' && mode !== 'apply') throw new UsageError('mode must be apply, check or dry-run.')
      const report = (event: unknown) => stream.event(event)
      const read = await migrate({settings: target.settings(), dir: target.dir, mode: mode === 'apply' ? 'check' : mode, registry: target.registry, report})
      if (mode !== 'apply') return read
      // A schema change under a serving runtime is not safe: only "nothing to do" is answered here.
      if (read.pending || read.drift.length > 0) {
        throw new KintoError(`The schema in ${describe(read)} needs changes, and a running server (process ${process.pid}) serves from it; it cannot be changed under that server.`, {
          code: 'KINTO_DB_IN_USE',
          exit: ExitCode.LOCK_TIMEOUT,
          hint: `Restart the server with \`kinto start --migrate --ini ${shellArg(target.iniPath)}\` (it upgrades the schema before serving), or stop it (kill -TERM ${process.pid}) and run kinto migrate.`,
        })
      }
      return {...read, mode: 'apply'}
    },
  }
}

const describe = (r: MigrateResult) => [...new Set(r.backends.flatMap((b) => (b.database ? [b.database] : [])))].join(', ')

/**
 * `kinto backup`, `kinto restore` and `kinto db copy` as library verbs (docs/backup.md).
 *
 * backup: a consistent snapshot (snapshot.ts) streamed through the format's encoder and gzip into
 * FILE.partial, renamed when complete, or into stdout (stream.ts). restore: the file (or stdin)
 * decoded as it streams into one transaction per database (restore.ts). copy: snapshot into restore.
 * Embedded folders are locked first. A backup of a folder a running server holds is read by that
 * server (its control channel) and streamed here; restore and copy refuse such a folder.
 */
import {closeSync, createWriteStream, existsSync, fsyncSync, linkSync, openSync, renameSync, statSync, unlinkSync, writeSync} from 'node:fs'
import path from 'node:path'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'

import {FileExistsError, writeFailureReason} from '../config/atomic.js'
import {loadConfig} from '../config/index.js'
import {asBool, type Settings} from '../config/settings.js'
import {DatabaseRegistry, isPostgresUrl, maskUrl, type Queryable, type SqlClient, withRegistry} from '../db/index.js'
import {ExitCode, isKintoError, KintoError, UsageError} from '../errors.js'
import {runViaServer, serverHolding} from '../ops/control.js'
import {withMigrationLocks} from '../schema/migrate.js'
import {clientFor, type ConfiguredBackend} from '../schema/targets.js'
import {packageVersion} from '../version.js'
import {type BackupHeader, type Counts, decodeBackup, emptyCounts, encodeBackup, FORMAT_NAME, FORMAT_VERSION, type RowBatch, type TableName} from './format.js'
import {folderProblem, nonRegularKind} from '../fs.js'
import {markerPath, writeMarker} from './marker.js'
import {restoreInto} from './restore.js'
import {countingInto, STANDARD_INPUT, STANDARD_OUTPUT, streamStopped, writeWaiting} from './stream.js'
import {assertNoUpgrade, checkFileSchema, migrateTargets, pendingSchema, schemaTargets} from './target-schema.js'
import {type ProgressEvent, snapshotRows, snapshotSchema, withSnapshot} from './snapshot.js'
import {assertNotServed, backendsForUrl, type DataBackends, dataBackends, sameDatabase} from './targets.js'

export {countsText, FORMAT_VERSION, TABLE_NAMES, type Counts, type TableName} from './format.js'
export {markerPath, readMarker, RECENT_BACKUP_DAYS} from './marker.js'
export {STANDARD_INPUT, STANDARD_OUTPUT} from './stream.js'
export type {ProgressEvent} from './snapshot.js'

/**
 * How long backup, restore and copy wait by default for another command holding the database (a
 * migration, a backup: the lock file of an embedded folder, the migration lock on PostgreSQL);
 * their --lock-timeout.
 */
export const FOLDER_LOCK_SECONDS = 10
/** What the operator can do when that wait ends. */
const FOLDER_LOCK_HINT = 'Another kinto command (a migration, backup, restore or copy) is using this database: run this again once it has finished.'
const lockOptions = (lockTimeoutMs = FOLDER_LOCK_SECONDS * 1000) => ({lockTimeoutMs, timeoutHint: FOLDER_LOCK_HINT})

const engine = (b: ConfiguredBackend) => (b.pgliteDir !== undefined ? 'pglite' : 'postgresql')
const where = (b: DataBackends) => ({storage: b.storage.database!, permission: b.permission.database!})

/** The snapshot's own time (the transaction's start, on the database's clock). */
async function snapshotTime(conn: Queryable): Promise<string> {
  const res = await conn.query<{t: string}>(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`)
  return res.rows[0].t
}

// ---- backup

export interface BackupOptions {
  settings: Settings
  /** The ini's folder: relative pglite: URLs, and where the backup marker is written. */
  dir: string
  /**
   * The ini file: a running server of it holding an embedded folder reads the backup through its
   * control channel (without it such a folder is refused).
   */
  iniPath?: string
  /** Absolute path of the file to write (ignored when `stream` is given). */
  file: string
  /**
   * Write the backup to this stream instead of a file (standard output, for `-o -`): the same
   * bytes, as they are produced, waiting for the reader (backpressure). Refused when it is a
   * terminal. A failure midway leaves the reader a backup without its trailer, which restore refuses.
   */
  stream?: Writable & {isTTY?: boolean}
  /** Replace an existing file. */
  force?: boolean
  /** How long to wait for another command holding the database (default FOLDER_LOCK_SECONDS). */
  lockTimeoutMs?: number
  /** Count each table first and report progress (a terminal). */
  onProgress?: (event: ProgressEvent) => void
  /** When aborted the backup stops, and FILE.partial is removed. */
  signal?: AbortSignal
}

export interface BackupResult {
  file: string
  /** Size of the compressed file. */
  bytes: number
  /** sha256 of the uncompressed content before the trailer (as in the trailer). */
  sha256: string
  counts: Counts
  createdAt: string
  schema: {storage: number; permission: number}
  source: {storage: string; permission: string}
  /** The marker written (`kinto check` reads it), or null when it could not be: see markerError. */
  marker: string | null
  /** Why the marker could not be written (the backup itself is complete). */
  markerError?: string
  seconds: number
}

/** Default file name: kinto-backup-20261204T230552Z.ndjson.gz */
export function defaultBackupName(at: Date): string {
  return `kinto-backup-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.ndjson.gz`
}

function fsyncPath(p: string): void {
  let fd: number | undefined
  try {
    fd = openSync(p, 'r')
    fsyncSync(fd)
  } catch {
    // folders cannot be fsynced everywhere; the rename is atomic anyway
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * Makes way for a new FILE.partial: whatever a killed run (or anyone) left there is removed (a link
 * itself, never its target), so that the partial is created here, by this run, with mode 0600; it
 * is then opened exclusively (O_EXCL), which also refuses a link put there meanwhile.
 */
function clearPartial(partial: string): void {
  try {
    unlinkSync(partial)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

/** FILE.partial becomes FILE (refused when FILE appeared meanwhile, unless force). */
function publish(partial: string, file: string, force: boolean): void {
  fsyncPath(partial)
  if (force) renameSync(partial, file)
  else {
    try {
      linkSync(partial, file)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(file)
      throw error
    }
    unlinkSync(partial)
  }
  fsyncPath(path.dirname(file))
}

async function* abortable(batches: AsyncIterable<RowBatch>, signal: AbortSignal | undefined): AsyncGenerator<RowBatch> {
  for await (const batch of batches) {
    if (signal?.aborted) throw new KintoError('Interrupted: no backup was written.', {code: 'KINTO_INTERRUPTED'})
    yield batch
  }
}

/** What a snapshot read put in the file (the rest of BackupResult is about the file written here). */
export interface BackupContent {
  sha256: string
  counts: Counts
  createdAt: string
  schema: {storage: number; permission: number}
}

export interface ReadBackupOptions {
  settings: Settings
  dir: string
  /** The open databases of a running server (its control channel): no lock taken, nothing closed. */
  registry?: DatabaseRegistry
  /** How long to wait for another command holding the database (default FOLDER_LOCK_SECONDS). */
  lockTimeoutMs?: number
  /** Count each table first and report progress. */
  onProgress?: (event: ProgressEvent) => void
  signal?: AbortSignal
}

/**
 * The reading half of a backup: one consistent snapshot encoded and gzip-compressed into the
 * stream `sink()` opens once the snapshot is taken (nothing is opened when the read fails first).
 * Runs in `kinto backup`, or in the server holding the embedded folder (src/lib/serve/control-ops.ts).
 */
export async function readBackup(options: ReadBackupOptions, sink: () => Writable): Promise<BackupContent> {
  const b = dataBackends(options.settings, options.dir, 'kinto backup')
  const lockOpts = {...lockOptions(options.lockTimeoutMs), held: options.registry !== undefined}
  return withRegistry(
    options.dir,
    (registry) =>
      withMigrationLocks([b.storage, b.permission], registry, lockOpts, false, async () => {
        const clients = {storage: clientFor(registry, b.storage), permission: clientFor(registry, b.permission)}
        return withSnapshot(clients, async (conns) => {
          const schema = await snapshotSchema(conns, where(b))
          const header: BackupHeader = {
            format: FORMAT_NAME,
            version: FORMAT_VERSION,
            created_at: await snapshotTime(conns.storage),
            kinto_ops: packageVersion(),
            source: {storage: engine(b.storage), permission: engine(b.permission)},
            schema,
          }
          const written: {counts?: Counts; sha256?: string} = {}
          const rows = abortable(snapshotRows(conns, {countFirst: Boolean(options.onProgress), onProgress: options.onProgress}), options.signal)
          await pipeline(Readable.from(encodeBackup(header, rows, written)), createGzip(), sink())
          return {sha256: written.sha256!, counts: written.counts!, createdAt: header.created_at, schema}
        })
      }),
    {borrowed: options.registry},
  )
}

/**
 * The file's bytes as the server sends them, written as they come (memory stays flat): `write`
 * returns a promise when the sink must be waited for (a pipe), and the socket pauses meanwhile.
 */
async function receiveBackup(control: string, write: (chunk: Buffer) => void | Promise<void>, options: BackupOptions): Promise<BackupContent> {
  return runViaServer<BackupContent>(
    control,
    'backup',
    {progress: Boolean(options.onProgress)},
    {
      onChunk: write,
      onEvent: (event) => options.onProgress?.(event as ProgressEvent),
      signal: options.signal,
    },
  )
}

async function receiveBackupFile(control: string, partial: string, options: BackupOptions): Promise<BackupContent> {
  const fd = openSync(partial, 'wx', 0o600)
  try {
    return await receiveBackup(control, (chunk) => void writeSync(fd, chunk), options)
  } finally {
    closeSync(fd)
  }
}

/**
 * `kinto backup -o -`: the snapshot encoded and compressed by the same code as a file, into
 * `stream` as it is produced. Nothing is written before the snapshot is taken; a failure after
 * that leaves the reader a stream without a trailer (kinto restore refuses it), and says so.
 */
async function backupToStream(options: BackupOptions & {stream: Writable & {isTTY?: boolean}}, b: DataBackends, server: {control: string} | null): Promise<BackupResult> {
  const started = Date.now()
  const out = options.stream
  if (out.isTTY) {
    throw new UsageError('-o - writes the compressed backup to standard output, which is a terminal here.', {
      hint: 'Pipe it (kinto backup -o - | ssh host \'cat > kinto.ndjson.gz\') or redirect it to a file, or give -o a file name.',
    })
  }
  const counter = {bytes: 0}
  const write = writeWaiting(out, counter)
  let opened = false
  // (a reader that goes away is said once, by the failure below; never an unhandled error event)
  const ignore = () => {}
  out.on('error', ignore)
  let content: BackupContent
  try {
    content = server
      ? await receiveBackup(
          server.control,
          (chunk) => {
            opened = true
            return write(chunk)
          },
          options,
        )
      : await readBackup(options, () => {
          opened = true
          return countingInto(out, counter)
        })
    // (the server path ends the stream here; the file path's pipeline has ended it)
    if (server) await new Promise<void>((resolve, reject) => out.end(() => (out.errored ? reject(out.errored) : resolve())))
  } catch (error) {
    if (!opened) throw error
    throw streamStopped(error, counter.bytes)
  } finally {
    out.off('error', ignore)
  }
  // Complete: every byte, trailer included, went to the reader (whether the far end kept it is the pipeline's exit status).
  let marker: string | null = null
  let markerError: string | undefined
  try {
    marker = writeMarker(options.dir, {at: content.createdAt, file: STANDARD_OUTPUT, sha256: content.sha256, counts: content.counts})
  } catch (error) {
    markerError = `${markerPath(options.dir)} could not be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); kinto check will not know of this backup`
  }
  return {file: STANDARD_OUTPUT, bytes: counter.bytes, ...content, source: where(b), marker, ...(markerError ? {markerError} : {}), seconds: (Date.now() - started) / 1000}
}

export async function backup(options: BackupOptions): Promise<BackupResult> {
  const started = Date.now()
  const b = dataBackends(options.settings, options.dir, 'kinto backup')
  const server = options.iniPath ? serverHolding({settings: options.settings, dir: options.dir, path: options.iniPath}) : null
  if (!server) assertNotServed([b.storage, b.permission], 'back up')
  if (options.stream) return backupToStream({...options, stream: options.stream}, b, server)
  const file = options.file
  const kind = nonRegularKind(file)
  if (kind) {
    // The file is written beside and renamed into place: that would replace the device or the link.
    throw new UsageError(`${file} is ${kind}: a backup is written to a regular file.`, {hint: 'Give -o the path of a new file (or of an earlier backup, with --force).'})
  }
  if (!options.force && existsSync(file)) throw new FileExistsError(file)
  const parent = folderProblem(path.dirname(file))
  if (parent) {
    const message = parent === 'missing' ? `The folder of ${file} does not exist.` : `Cannot write ${file}: ${parent}.`
    throw new UsageError(message, {hint: 'Create the folder, or give -o a file in an existing folder.'})
  }
  const partial = `${file}.partial`
  try {
    clearPartial(partial)
    const content = server
      ? await receiveBackupFile(server.control, partial, options)
      : await readBackup(options, () => createWriteStream(partial, {mode: 0o600, flags: 'wx'}))
    publish(partial, file, Boolean(options.force))
    // The file is complete from here on: a marker that cannot be written is said, not a failure.
    let marker: string | null = null
    let markerError: string | undefined
    try {
      marker = writeMarker(options.dir, {at: content.createdAt, file, sha256: content.sha256, counts: content.counts})
    } catch (error) {
      markerError = `${markerPath(options.dir)} could not be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); kinto check will not know of this backup`
    }
    return {file, bytes: statSync(file).size, ...content, source: where(b), marker, ...(markerError ? {markerError} : {}), seconds: (Date.now() - started) / 1000}
  } catch (error) {
    try {
      unlinkSync(partial)
    } catch {}
    // (EEXIST: another backup to the same file made its .partial meanwhile; not a disk problem)
    const reason = isKintoError(error) || (error as NodeJS.ErrnoException).code === 'EEXIST' ? undefined : writeFailureReason(error)
    if (reason) {
      throw new KintoError(`Cannot write the backup ${file}: ${reason}; nothing was left there.`, {
        code: 'KINTO_BACKUP_WRITE_FAILED',
        hint: 'Give -o a file on a file system with room, in a folder this user may write.',
        cause: error,
      })
    }
    throw error
  }
}

// ---- restore

/** Reads a whole file, checking its checksum and counts; throws KINTO_BACKUP_INVALID when it is damaged. */
export async function verifyBackup(file: string): Promise<{header: BackupHeader; counts: Counts}> {
  const decoded = await decodeBackup(file)
  for await (const batch of decoded.batches) void batch
  return {header: decoded.header, counts: decoded.trailer.counts!}
}

export interface RestoreOptions {
  settings: Settings
  dir: string
  /** The backup file (absolute path); ignored when `stream` is given. */
  file: string
  /**
   * Read the backup from this stream instead (standard input, for `restore -`), once: refused when
   * it is a terminal, or when the target's schema must be upgraded first (that would be changed
   * before the input is verified; a target without any schema gets it installed).
   */
  stream?: Readable & {isTTY?: boolean}
  force?: boolean
  /** How long to wait for another command holding the database (default FOLDER_LOCK_SECONDS). */
  lockTimeoutMs?: number
  signal?: AbortSignal
  onProgress?: (table: TableName, done: number, total: number | null) => void
}

export interface RestoreResult {
  file: string
  createdAt: string
  /** The kinto-ops that wrote the file. */
  writtenBy: string
  schema: {storage: number; permission: number}
  target: {storage: string; permission: string}
  counts: Counts
  /** Rows the target held before and that --force replaced. */
  replaced: Counts
  /** Migration steps run on the target first. */
  migrated: string[]
  notes: string[]
  seconds: number
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now()
  // As migrate and purge-deleted: an ini that says its database is not to be written (a replica,
  // a read-only role) is not written.
  if (asBool(options.settings, 'readonly')) {
    throw new KintoError('kinto.readonly is true, so kinto restore writes nothing.', {
      code: 'KINTO_READONLY',
      exit: ExitCode.FAILED,
      hint: 'Restore with the ini of a writable instance (kinto.readonly = false, or KINTO_READONLY=false).',
    })
  }
  const b = dataBackends(options.settings, options.dir, 'kinto restore')
  const stream = options.stream
  if (stream?.isTTY) {
    throw new UsageError('restore - reads the backup from standard input, which is a terminal here.', {
      hint: 'Pipe the backup in (ssh host cat kinto.ndjson.gz | kinto restore - --ini …), or give the path of the file.',
    })
  }
  const file = stream ? STANDARD_INPUT : options.file
  const decoded = await decodeBackup(file, {}, stream)
  try {
    const notes = checkFileSchema(decoded.header, file)
    assertNotServed([b.storage, b.permission], 'restore into')
    const registry = new DatabaseRegistry(options.dir)
    try {
      return await withMigrationLocks([b.storage, b.permission], registry, lockOptions(options.lockTimeoutMs), false, async () => {
        const targets = schemaTargets(b)
        // A target that needs migrations is changed before the first row: check the whole file
        // first. Standard input is read once: a target without any schema gets it (an empty
        // database stays empty of rows whatever the input); one to upgrade is left to kinto migrate.
        if (stream) await assertNoUpgrade(registry, targets)
        else if (await pendingSchema(registry, targets)) await verifyBackup(options.file)
        const migrated = await migrateTargets(registry, targets)
        const clients = {storage: clientFor(registry, b.storage), permission: clientFor(registry, b.permission)}
        const res = await restoreInto(clients, decoded, {force: options.force, signal: options.signal, where: where(b), onProgress: options.onProgress}).catch((error: unknown) => {
          if (!(stream && migrated.length > 0 && isKintoError(error))) throw error
          throw new KintoError(`${error.message} The target's schema was installed first; it holds no rows.`, {code: error.code, exit: error.exit, hint: error.hint, cause: error})
        })
        return {
          file,
          createdAt: decoded.header.created_at,
          writtenBy: decoded.header.kinto_ops,
          schema: decoded.header.schema,
          target: where(b),
          ...res,
          migrated,
          notes,
          seconds: (Date.now() - started) / 1000,
        }
      })
    } finally {
      await registry.closeAll()
    }
  } finally {
    decoded.close()
  }
}

// ---- db copy

export interface CopyOptions {
  settings: Settings
  dir: string
  /** A database URL (postgresql://…, pglite:<folder>) or the path of another ini. */
  to: string
  /** Folder a relative --to (URL folder or ini path) is resolved against. */
  cwd: string
  force?: boolean
  /** How long to wait for another command holding the database (default FOLDER_LOCK_SECONDS). */
  lockTimeoutMs?: number
  signal?: AbortSignal
  onProgress?: (table: TableName, done: number, total: number | null) => void
}

export interface CopyResult {
  from: {storage: string; permission: string}
  to: {storage: string; permission: string}
  /** The ini that already points at the target, when --to named one. */
  toIni?: string
  counts: Counts
  replaced: Counts
  schema: {storage: number; permission: number}
  migrated: string[]
  /** The lines that make an ini use the target (password masked). */
  iniLines: string[]
  seconds: number
}

function targetOf(options: CopyOptions): {backends: DataBackends; dir: string; ini?: string; url?: string} {
  const what = 'Give --to a PostgreSQL URL (postgresql://user:password@host/dbname), pglite:<folder>, or the path of an existing ini.'
  if (isPostgresUrl(options.to)) {
    let backends: DataBackends
    try {
      backends = backendsForUrl(options.to, options.cwd)
    } catch (error) {
      // Worded for an ini ("kinto.storage_url is an in-memory embedded database"): this is --to.
      if (isKintoError(error) && error.code === 'KINTO_BACKUP_UNSUPPORTED') {
        throw new UsageError(`--to ${maskUrl(options.to)} is an in-memory embedded database: the copy would be gone when this command exits.`, {hint: what})
      }
      throw error
    }
    return {backends, dir: options.cwd, url: options.to}
  }
  // Read as a path, `mysql://…` was "Config file <cwd>/mysql:/… does not exist: run kinto init --ini …".
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(options.to)) {
    throw new UsageError(`--to ${maskUrl(options.to)} is not a database kinto-ops can copy to.`, {hint: what})
  }
  const iniPath = path.resolve(options.cwd, options.to)
  if (!existsSync(iniPath)) throw new UsageError(`--to ${maskUrl(iniPath)}: no such ini.`, {hint: what}) // `user:pw@host/db`: masked
  // Read as an ini, a folder was "this is a folder; --ini takes the path of an ini file".
  if (statSync(iniPath).isDirectory()) throw new UsageError(`--to ${iniPath} is a folder: an embedded database folder is given as pglite:<folder>.`, {hint: what})
  let config
  try {
    config = loadConfig(iniPath)
  } catch (error) {
    // "<path>: there is no [app:main] section", "<path>, line 3: …": say it is the ini of --to.
    if (isKintoError(error) && error.message.startsWith(iniPath)) {
      throw new KintoError(`--to ${error.message}`, {code: error.code, exit: error.exit, hint: error.hint, cause: error})
    }
    throw error
  }
  // As restore: the ini of a read-only instance (a replica, a read-only role) is not written.
  if (asBool(config.settings, 'readonly')) {
    throw new KintoError(`kinto.readonly is true in ${config.path}, so kinto db copy writes nothing there.`, {
      code: 'KINTO_READONLY',
      exit: ExitCode.FAILED,
      hint: 'Give --to the ini of a writable instance (kinto.readonly = false), or its database URL.',
    })
  }
  return {backends: dataBackends(config.settings, config.dir, 'kinto db copy'), dir: config.dir, ini: config.path}
}

/** Counts rows as they go by; fills `trailer.counts` at the end (what restoreInto verifies against). */
async function* counted(batches: AsyncIterable<RowBatch>, trailer: {counts?: Counts}): AsyncGenerator<RowBatch> {
  const counts = emptyCounts()
  for await (const batch of batches) {
    counts[batch.table] += batch.rows.length
    yield batch
  }
  trailer.counts = counts
}

/**
 * Whether a source connection and a target client reach the same database of the same server,
 * whatever the URLs say (localhost and 127.0.0.1, a DNS alias): the target sees the source's
 * session in its pg_stat_activity, on a server started at the same instant.
 */
async function sameServerDatabase(source: Queryable, target: SqlClient): Promise<boolean> {
  const s = (await source.query<{pid: number; db: string; started: string}>('SELECT pg_backend_pid() AS pid, current_database() AS db, pg_postmaster_start_time()::text AS started')).rows[0]
  return target.withConnection(async (t) => {
    const sql = 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND datname = $2 AND datname = current_database() AND pg_postmaster_start_time()::text = $3'
    return (await t.query<{n: number}>(sql, [s.pid, s.db, s.started])).rows[0].n > 0
  })
}

export async function copy(options: CopyOptions): Promise<CopyResult> {
  const started = Date.now()
  const src = dataBackends(options.settings, options.dir, 'kinto db copy')
  const tgt = targetOf(options)
  for (const s of [src.storage, src.permission]) {
    for (const t of [tgt.backends.storage, tgt.backends.permission]) {
      if (sameDatabase(s, t)) throw new UsageError(`The target ${t.database} is the source database: copy it to another one.`)
    }
  }
  assertNotServed([src.storage, src.permission, tgt.backends.storage, tgt.backends.permission], 'copy')
  const srcRegistry = new DatabaseRegistry(options.dir)
  const tgtRegistry = new DatabaseRegistry(tgt.dir)
  const lockOpts = lockOptions(options.lockTimeoutMs)
  try {
    return await withMigrationLocks([src.storage, src.permission], srcRegistry, lockOpts, false, () =>
      withMigrationLocks([tgt.backends.storage, tgt.backends.permission, tgt.backends.cache].filter((x) => x.kind === 'postgresql'), tgtRegistry, lockOpts, false, async () => {
        const srcClients = {storage: clientFor(srcRegistry, src.storage), permission: clientFor(srcRegistry, src.permission)}
        const tgtClients = {storage: clientFor(tgtRegistry, tgt.backends.storage), permission: clientFor(tgtRegistry, tgt.backends.permission)}
        return withSnapshot(srcClients, async (conns) => {
          // the same database under another name: a copy onto itself (with --force it would empty the source)
          for (const s of ['storage', 'permission'] as const) {
            for (const t of ['storage', 'permission'] as const) {
              if (src[s].pgliteDir !== undefined || tgt.backends[t].pgliteDir !== undefined) continue
              if (await sameServerDatabase(conns[s], tgtClients[t])) {
                throw new UsageError(`The target ${tgt.backends[t].database} is the source database ${src[s].database} under another name: copy it to another one.`)
              }
            }
          }
          // The target's schema only once the source is open and known to be another database:
          // a source that cannot be read leaves the target as it was (no new folder, no tables).
          const migrated = await migrateTargets(tgtRegistry, schemaTargets(tgt.backends))
          const schema = await snapshotSchema(conns, where(src))
          const trailer: {counts?: Counts} = {}
          const res = await restoreInto(tgtClients, {batches: counted(snapshotRows(conns), trailer), trailer}, {
            force: options.force,
            signal: options.signal,
            where: where(tgt.backends),
            onProgress: options.onProgress,
            copy: true,
          })
          // A relative pglite: folder was resolved against the current folder; an ini reads one
          // from its own folder: name the folder itself.
          const url = tgt.backends.storage.pgliteDir ? `pglite:${tgt.backends.storage.pgliteDir}` : maskUrl(tgt.url ?? '')
          const iniLines = tgt.url ? (['storage', 'permission', 'cache'] as const).flatMap((x) => [`kinto.${x}_backend = kinto.core.${x}.postgresql`, `kinto.${x}_url = ${url}`]) : []
          return {
            from: where(src),
            to: where(tgt.backends),
            ...(tgt.ini ? {toIni: tgt.ini} : {}),
            ...res,
            schema,
            migrated,
            iniLines,
            seconds: (Date.now() - started) / 1000,
          }
        })
      }),
    )
  } finally {
    await srcRegistry.closeAll()
    await tgtRegistry.closeAll()
  }
}

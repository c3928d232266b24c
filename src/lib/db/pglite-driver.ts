import type {PGlite as PGliteType, PGliteOptions, Transaction} from '@electric-sql/pglite'

import {parseJson} from '../json.js'
import {loadTemplate, prepareDataDir, refuseForeignFolder, unopenableFolder} from './pglite-template.js'
import type {Queryable, QueryResult, SqlClient} from './types.js'

function wrap(db: PGliteType | Transaction): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
      const res = await db.query<T>(sql, params as unknown[] | undefined)
      return {rows: res.rows, rowCount: res.affectedRows ?? 0}
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql)
    },
  }
}

// Same parsing as the pg driver: timestamps as strings, int8 as numbers.
const parsers = {
  1114: (v: string) => v,
  20: (v: string) => Number(v),
  114: parseJson,
  3802: parseJson,
}

/**
 * PostgreSQL's default of 128MB of shared buffers lives in the wasm memory: an idle `kinto start`
 * was ~360 MB, ~220 MB with 16MB; reads of a database far larger than that are as fast (pages
 * outside the buffers come from the OS cache; see README).
 */
export const DEFAULT_SHARED_BUFFERS = '16MB'

export interface PgliteOptions {
  /** PostgreSQL's shared_buffers (a size such as `16MB`; validated by url.ts). */
  sharedBuffers?: string
}

/**
 * One-shot commands (migrate, create-user, status…) open PGlite, run a few statements and exit:
 * V8's optimising compile of the 10 MB PostgreSQL wasm module never pays off there, competes for
 * the CPU while PostgreSQL starts and is waited for when the process ends (~0.1 s). With this set
 * before the module is loaded, the process keeps the baseline compiler only. `kinto start` does
 * not set it: a server wants the optimised code.
 */
let baselineOnly = false
let wasmLoaded = false
export function useBaselineWasm(): void {
  baselineOnly = true
}

async function importPglite() {
  if (baselineOnly && !wasmLoaded) {
    const v8 = await import('node:v8')
    v8.setFlagsFromString('--liftoff-only')
  }
  wasmLoaded = true
  return import('@electric-sql/pglite')
}

/** PGlite.create options for these settings: PGlite's own start parameters plus ours. */
export async function pgliteCreateOptions(options: PgliteOptions = {}): Promise<PGliteOptions> {
  const {PGlite} = await importPglite()
  return {
    parsers,
    // startParams replaces PGlite's defaults (single-user mode, io_method=sync, …): extend them.
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${options.sharedBuffers ?? DEFAULT_SHARED_BUFFERS}`],
  }
}

/**
 * Opens (creating when needed) the embedded database in `dataDir` (null: in memory). A new folder
 * is unpacked from the build's template instead of running initdb (see pglite-template.ts).
 */
export async function openPglite(dataDir: string | null, options: PgliteOptions = {}): Promise<PGliteType> {
  const {PGlite} = await importPglite()
  const createOptions = await pgliteCreateOptions(options)
  if (dataDir === null) {
    const {template} = loadTemplate()
    if (template) {
      try {
        return await PGlite.create({...createOptions, loadDataDir: new Blob([template.bytes], {type: 'application/x-gzip'})})
      } catch {
        // an unusable template: a normal initdb below
      }
    }
    return PGlite.create(createOptions)
  }
  refuseForeignFolder(dataDir)
  await prepareDataDir(dataDir, async (dir) => {
    const db = await PGlite.create(dir, createOptions)
    await db.close()
  })
  try {
    return await PGlite.create(dataDir, createOptions)
  } catch (error) {
    throw unopenableFolder(dataDir, error)
  }
}

/**
 * Embedded PostgreSQL. PGlite is one connection: statements and transactions are queued by PGlite
 * itself. withConnection() is that connection taken for fn alone, as a pool's checked-out
 * connection is: the client's other calls (the server's requests) wait until fn ends, so a
 * session fn opens (a backup's snapshot transaction, a lock) never runs their statements.
 */
export class PgliteClient implements SqlClient {
  readonly kind = 'pglite' as const
  readonly displayUrl: string
  private db: PGliteType | undefined
  private opening: Promise<PGliteType> | undefined
  private readonly dataDir: string | null
  private options: PgliteOptions

  constructor(dataDir: string | null, options: PgliteOptions = {}) {
    this.dataDir = dataDir
    this.options = options
    this.displayUrl = dataDir ? `pglite:${dataDir}` : 'pglite:memory:'
  }

  /**
   * Takes options given on another URL of the same folder: false when they conflict (another
   * shared_buffers, or this one is already open with another).
   */
  adopt(options: PgliteOptions): boolean {
    if (options.sharedBuffers === undefined || options.sharedBuffers === this.options.sharedBuffers) return true
    if (this.options.sharedBuffers !== undefined || this.opening) return false
    this.options = {...this.options, ...options}
    return true
  }

  private async open(): Promise<PGliteType> {
    if (this.db) return this.db
    this.opening ??= (async () => {
      const db = await openPglite(this.dataDir, this.options)
      this.db = db
      return db
    })()
    return this.opening
  }

  /**
   * Runs fn on the engine. An engine that died under it (the wasm module aborted: out of memory,
   * a PANIC such as a failed WAL write) is unusable: it is dropped, so that the next call opens
   * the folder again (PostgreSQL's crash recovery replays the WAL) instead of failing forever.
   * An engine in memory has nothing to reopen.
   */
  private async use<R>(fn: (db: PGliteType) => Promise<R>): Promise<R> {
    const db = await this.open()
    try {
      return await fn(db)
    } catch (error) {
      if (this.dataDir !== null && this.db === db && (db.closed || (error as Error)?.name === 'RuntimeError')) {
        this.db = undefined
        this.opening = undefined
        await db.close().catch(() => {})
      }
      throw error
    }
  }

  /** Set while a withConnection() holds the engine; resolved when it lets go. */
  private held: Promise<void> | null = null

  /**
   * Runs fn once no withConnection() holds the engine: at once in the usual case (no extra turn),
   * else after it lets go. fn starts in the same turn as the last check, so it may take the engine.
   */
  private whenFree<R>(fn: () => Promise<R>): Promise<R> {
    if (!this.held) return fn()
    return (async () => {
      // Checked again after each wait: another caller may have taken it first.
      while (this.held) await this.held
      return fn()
    })()
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    return this.whenFree(() => this.use((db) => wrap(db).query<T>(sql, params)))
  }

  exec(sql: string): Promise<void> {
    return this.whenFree(() => this.use((db) => wrap(db).exec(sql)))
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.whenFree(() => this.use((db) => db.transaction((tx) => fn(wrap(tx)))))
  }

  withConnection<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    return this.whenFree(async () => {
      let release!: () => void
      this.held = new Promise((resolve) => (release = resolve))
      try {
        return await this.use((db) => fn(wrap(db)))
      } finally {
        this.held = null
        release()
      }
    })
  }

  async close(): Promise<void> {
    const db = this.db ?? (this.opening ? await this.opening.catch(() => undefined) : undefined)
    this.db = undefined
    this.opening = undefined
    if (db && !db.closed) await db.close()
  }
}

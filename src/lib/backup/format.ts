/**
 * The backup file format (docs/backup.md): gzip of newline-delimited JSON.
 *
 *   line 1        header  {"format":"kinto-backup","version":1,"created_at":…,"kinto_ops":…,"source":…,"schema":{…}}
 *   then per table        {"table":"objects","columns":[…]}  followed by one JSON array per row
 *   last line     trailer {"trailer":{"counts":{…},"sha256":"…"}}
 *
 * The sha256 covers every byte before the trailer line (header included). Both directions stream:
 * the encoder is an async generator of lines fed to gzip, the decoder reads gunzip's output line
 * by line and checks the trailer when it reaches it, so neither holds more than one batch.
 */
import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import type {Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {maskUrl} from '../db/url.js'
import {KintoError} from '../errors.js'

export const FORMAT_NAME = 'kinto-backup'
export const FORMAT_VERSION = 1

/** The tables, in file order (restore inserts in this order), and their columns. */
export const TABLES = {
  objects: ['id', 'parent_id', 'resource_name', 'last_modified', 'deleted', 'data'],
  timestamps: ['parent_id', 'resource_name', 'last_modified'],
  access_control_entries: ['object_id', 'permission', 'principal'],
  user_principals: ['user_id', 'principal'],
} as const
export type TableName = keyof typeof TABLES
export const TABLE_NAMES = Object.keys(TABLES) as TableName[]
/** Which backend each table belongs to. */
export const TABLE_BACKEND: Record<TableName, 'storage' | 'permission'> = {
  objects: 'storage',
  timestamps: 'storage',
  access_control_entries: 'permission',
  user_principals: 'permission',
}

export interface BackupHeader {
  format: typeof FORMAT_NAME
  version: number
  /** ISO time the snapshot was taken. */
  created_at: string
  kinto_ops: string
  /** What the data came from: `postgresql` (a server) or `pglite` (embedded), per backend. */
  source: {storage: string; permission: string}
  /** Schema versions of the source (upstream's numbering). */
  schema: {storage: number; permission: number}
}

export type Counts = Record<TableName, number>

/** One batch of rows of one table (values in TABLES order; last_modified as PostgreSQL's text, data as JSON text). */
export interface RowBatch {
  table: TableName
  rows: unknown[][]
}

/** The counts as the commands print them: `N objects, N list timestamps, N permissions, N principals`. */
export function countsText(c: Counts): string {
  return `${c.objects} objects, ${c.timestamps} list timestamps, ${c.access_control_entries} permissions, ${c.user_principals} principals`
}

export const emptyCounts = (): Counts => ({objects: 0, timestamps: 0, access_control_entries: 0, user_principals: 0})

function corrupt(file: string, problem: string): KintoError {
  return new KintoError(`${file} is not a usable kinto backup: ${problem}; nothing was restored.`, {
    code: 'KINTO_BACKUP_INVALID',
    hint: 'Use another backup file (a complete one, as `kinto backup` wrote it), or take a new backup.',
  })
}

/**
 * The file's lines: header, then each table's rows, then the trailer. Counts and hash are
 * computed as the lines go; `result` is filled once the generator has finished.
 */
export async function* encodeBackup(
  header: BackupHeader,
  batches: AsyncIterable<RowBatch>,
  result: {counts?: Counts; sha256?: string; bytes?: number},
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256')
  const counts = emptyCounts()
  let bytes = 0
  const out = (text: string): Buffer => {
    const b = Buffer.from(text, 'utf8')
    hash.update(b)
    bytes += b.length
    return b
  }
  yield out(JSON.stringify(header) + '\n')
  let current: TableName | undefined
  const order = [...TABLE_NAMES]
  const start = (table: TableName) => out(JSON.stringify({table, columns: TABLES[table]}) + '\n')
  for await (const batch of batches) {
    if (batch.table !== current) {
      // tables come in file order; a table without rows still gets its line
      while (order.length > 0 && order[0] !== batch.table) yield start((current = order.shift()!))
      if (order.length === 0) throw new Error(`backup: table ${batch.table} out of order`)
      yield start((current = order.shift()!))
    }
    if (batch.rows.length === 0) continue
    counts[batch.table] += batch.rows.length
    yield out(batch.rows.map((r) => JSON.stringify(r)).join('\n') + '\n')
  }
  while (order.length > 0) yield start(order.shift()!)
  const sha256 = hash.digest('hex')
  result.counts = counts
  result.sha256 = sha256
  result.bytes = bytes
  yield Buffer.from(JSON.stringify({trailer: {counts, sha256}}) + '\n', 'utf8')
}

/** Longest line the decoder accepts (a row is one line): a damaged file without newlines fails here. */
const MAX_LINE = 512 * 1024 * 1024

export interface DecodeOptions {
  /** Rows per batch handed out (default 1000), and a byte bound per batch (default 8 MB). */
  batchRows?: number
  batchBytes?: number
}

export interface DecodedBackup {
  header: BackupHeader
  /** Batches of rows in file order; throws KINTO_BACKUP_INVALID on a damaged file, at the latest after the last row. */
  batches: AsyncGenerator<RowBatch>
  /** Set once batches has finished: the verified trailer. */
  trailer: {counts?: Counts; sha256?: string}
  close(): void
}

/** Splits a stream of Buffers into lines (without the newline); the last piece must end with one. */
async function* lines(chunks: AsyncIterable<Buffer>, file: string): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0)
  for await (const chunk of chunks) {
    let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk
    let start = 0
    for (;;) {
      const nl = buf.indexOf(0x0a, start)
      if (nl < 0) break
      yield buf.subarray(start, nl)
      start = nl + 1
    }
    buf = buf.subarray(start)
    if (buf.length > MAX_LINE) throw corrupt(file, 'a line is longer than any backup writes')
    rest = Buffer.from(buf)
  }
  if (rest.length > 0) throw corrupt(file, 'it ends in the middle of a line (truncated)')
}

function parseLine(line: Buffer, file: string, what: string): unknown {
  try {
    return JSON.parse(line.toString('utf8'))
  } catch {
    throw corrupt(file, `${what} is not valid JSON`)
  }
}

function checkHeader(value: unknown, file: string): BackupHeader {
  const h = value as Partial<BackupHeader> | null
  if (!h || typeof h !== 'object' || h.format !== FORMAT_NAME) throw corrupt(file, 'its first line is not a kinto-backup header')
  if (typeof h.version !== 'number' || h.version > FORMAT_VERSION) {
    throw new KintoError(`${file} is in backup format version ${String(h.version)}; this kinto-ops reads version ${FORMAT_VERSION}; nothing was restored.`, {
      code: 'KINTO_BACKUP_NEWER',
      hint: 'Restore it with the kinto-ops release that wrote it (or a newer one).',
    })
  }
  const ok =
    typeof h.created_at === 'string' &&
    typeof h.kinto_ops === 'string' &&
    h.schema !== undefined &&
    Number.isSafeInteger(h.schema.storage) &&
    Number.isSafeInteger(h.schema.permission) &&
    h.source !== undefined
  if (!ok) throw corrupt(file, 'its header lacks the time, version or schema versions')
  return h as BackupHeader
}

function checkRow(row: unknown, table: TableName, file: string): unknown[] {
  const columns = TABLES[table]
  if (!Array.isArray(row) || row.length !== columns.length) throw corrupt(file, `a row of ${table} does not have its ${columns.length} columns`)
  for (let i = 0; i < row.length; i++) {
    const v = row[i]
    const ok = columns[i] === 'deleted' ? typeof v === 'boolean' : typeof v === 'string'
    if (!ok) throw corrupt(file, `a row of ${table} has a bad ${columns[i]}`)
  }
  return row
}

/** Reads the file's gzip stream (or `source`, named `file` in messages); the underlying error becomes one clear line. */
async function* gunzipped(file: string, source?: Readable): AsyncGenerator<Buffer> {
  const input = source ?? createReadStream(file)
  const gunzip = createGunzip()
  input.on('error', (error: Error) => gunzip.destroy(error))
  input.pipe(gunzip)
  try {
    for await (const chunk of gunzip) yield chunk as Buffer
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    if (e.code === 'ENOENT') {
      throw new KintoError(`${maskUrl(file)} does not exist.`, {code: 'KINTO_BACKUP_INVALID', hint: 'Give the path of a file written by `kinto backup`.'})
    }
    if (e.code === 'EISDIR') throw corrupt(file, 'it is a folder')
    if (e.code === 'EACCES' || e.code === 'EPERM') {
      throw new KintoError(`${file} cannot be read (permission denied); nothing was restored.`, {
        code: 'KINTO_BACKUP_INVALID',
        hint: 'Run as a user that may read it (kinto backup writes it with mode 0600, for the user that took it), or fix its mode.',
      })
    }
    if (e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message)) throw corrupt(file, 'it is truncated (the compressed data ends early)')
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) throw corrupt(file, `the compressed data is damaged (${e.message})`)
    throw error
  } finally {
    input.destroy()
    gunzip.destroy()
  }
}

/**
 * Opens a backup file: reads and checks the header at once (a newer format, a damaged start),
 * then hands out the rows; the checksum and counts are checked when the trailer is reached.
 * With `source` (standard input) that stream is read instead, once, and `file` only names it.
 */
export async function decodeBackup(file: string, options: DecodeOptions = {}, source?: Readable): Promise<DecodedBackup> {
  const it = lines(gunzipped(file, source), file)
  const first = await it.next()
  if (first.done) throw corrupt(file, 'it is empty')
  const hash: Hash = createHash('sha256')
  hash.update(first.value)
  hash.update('\n')
  const header = checkHeader(parseLine(first.value, file, 'the header'), file)
  const trailer: DecodedBackup['trailer'] = {}
  const batchRows = options.batchRows ?? 1000
  const batchBytes = options.batchBytes ?? 8 * 1024 * 1024

  async function* batches(): AsyncGenerator<RowBatch> {
    const counts = emptyCounts()
    const order = [...TABLE_NAMES]
    let table: TableName | undefined
    let rows: unknown[][] = []
    let bytes = 0
    let ended = false
    for await (const line of it) {
      if (ended) throw corrupt(file, 'there is data after its trailer')
      if (line[0] === 0x5b /* [ */) {
        hash.update(line)
        hash.update('\n')
        if (!table) throw corrupt(file, 'a row comes before any table line')
        rows.push(checkRow(parseLine(line, file, 'a row'), table, file))
        counts[table]++
        bytes += line.length
        if (rows.length >= batchRows || bytes >= batchBytes) {
          yield {table, rows}
          rows = []
          bytes = 0
        }
        continue
      }
      const value = parseLine(line, file, 'a line') as {table?: string; columns?: unknown; trailer?: {counts?: Counts; sha256?: string}}
      if (value && typeof value === 'object' && 'trailer' in value) {
        if (table && rows.length > 0) yield {table, rows}
        rows = []
        const t = value.trailer
        if (order.length > 0) throw corrupt(file, `the table ${order[0]} is missing`)
        const sha256 = hash.digest('hex')
        if (!t || t.sha256 !== sha256) throw corrupt(file, 'its checksum does not match its content (the file was changed or damaged)')
        for (const name of TABLE_NAMES) {
          if (t.counts?.[name] !== counts[name]) {
            throw corrupt(file, `its trailer counts ${String(t.counts?.[name])} rows of ${name} but it holds ${counts[name]}`)
          }
        }
        trailer.counts = counts
        trailer.sha256 = sha256
        ended = true
        continue
      }
      hash.update(line)
      hash.update('\n')
      const expected = order.shift()
      if (!expected || !value || typeof value !== 'object' || value.table !== expected) {
        throw corrupt(file, expected ? `the table ${expected} was expected, found ${JSON.stringify(value?.table ?? null)}` : 'it has more tables than this format')
      }
      if (JSON.stringify(value.columns) !== JSON.stringify(TABLES[expected])) throw corrupt(file, `the columns of ${expected} are not this format's`)
      if (table && rows.length > 0) yield {table, rows}
      rows = []
      bytes = 0
      table = expected
    }
    if (!ended) throw corrupt(file, 'it has no trailer (truncated)')
  }

  return {
    header,
    batches: batches(),
    trailer,
    close: () => void it.return(undefined),
  }
}

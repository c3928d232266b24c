/** The backup file format (src/lib/backup/format.ts): what the encoder writes, the decoder reads back, and every damage it refuses. */
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {gzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {type BackupHeader, decodeBackup, encodeBackup, type RowBatch} from '../../src/lib/backup/format.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('backup-format')

const header: BackupHeader = {
  format: 'kinto-backup',
  version: 1,
  created_at: '2026-12-04T23:05:52.123Z',
  kinto_ops: '0.1.0',
  source: {storage: 'pglite', permission: 'pglite'},
  schema: {storage: 26, permission: 2},
}

const objects: unknown[][] = [
  ['b1', '', 'bucket', '2026-12-04 23:05:51.061', false, '{}'],
  ['r1', '/buckets/b1/collections/c1', 'record', '2026-12-04 23:05:51.062', false, '{"n": 12345678901234567890, "t": "ünï\\n"}'],
  ['r2', '/buckets/b1/collections/c1', 'record', '2026-12-04 23:05:51.063', true, '{"deleted": true}'],
]
const aces: unknown[][] = [['/buckets/b1', 'write', 'basicauth:abc']]

async function* batches(): AsyncGenerator<RowBatch> {
  yield {table: 'objects', rows: objects.slice(0, 2)}
  yield {table: 'objects', rows: objects.slice(2)}
  // no timestamps batch at all: its table line is still written
  yield {table: 'access_control_entries', rows: aces}
  yield {table: 'user_principals', rows: []}
}

async function encoded(): Promise<{text: string; sha256: string}> {
  const result: {sha256?: string} = {}
  const parts: Buffer[] = []
  for await (const b of encodeBackup(header, batches(), result)) parts.push(b)
  return {text: Buffer.concat(parts).toString('utf8'), sha256: result.sha256!}
}

function file(text: string | Buffer, gzip = true): string {
  const f = path.join(tmp(), 'b.gz')
  writeFileSync(f, gzip ? gzipSync(typeof text === 'string' ? Buffer.from(text, 'utf8') : text) : text)
  return f
}

async function readAll(f: string): Promise<{rows: Record<string, unknown[][]>; trailer: unknown}> {
  const d = await decodeBackup(f, {batchRows: 2})
  const rows: Record<string, unknown[][]> = {}
  for await (const b of d.batches) (rows[b.table] ??= []).push(...b.rows)
  return {rows, trailer: d.trailer}
}

describe('backup format', () => {
  it('round trip: header, every table in order, rows exactly (JSON text kept as text), trailer', async () => {
    const {text, sha256} = await encoded()
    const lines = text.trimEnd().split('\n')
    expect(JSON.parse(lines[0])).toEqual(header)
    expect(lines.filter((l) => l.startsWith('{"table"')).map((l) => JSON.parse(l).table)).toEqual(['objects', 'timestamps', 'access_control_entries', 'user_principals'])
    expect(JSON.parse(lines.at(-1)!)).toEqual({trailer: {counts: {objects: 3, timestamps: 0, access_control_entries: 1, user_principals: 0}, sha256}})
    const back = await readAll(file(text))
    expect(back.rows).toEqual({objects, access_control_entries: aces})
    expect(back.trailer).toEqual({counts: {objects: 3, timestamps: 0, access_control_entries: 1, user_principals: 0}, sha256})
  })

  const damaged: Array<[string, (text: string) => string | Buffer, RegExp]> = [
    ['a changed byte', (t) => t.replace('ünï', 'üni'), /checksum does not match/],
    ['a missing row', (t) => t.split('\n').filter((l) => !l.startsWith('["r2"')).join('\n'), /checksum|counts/],
    ['no trailer', (t) => t.split('\n').slice(0, -2).join('\n') + '\n', /no trailer/],
    ['a line cut short', (t) => t.slice(0, t.length - 10), /middle of a line/],
    ['data after the trailer', (t) => t + '["x"]\n', /after its trailer/],
    ['tables out of order', (t) => t.replace('{"table":"timestamps"', '{"table":"user_principalz"'), /table timestamps was expected/],
    ['a row with a wrong column', (t) => t.replace('"bucket","2026-12-04 23:05:51.061",false', '"bucket","2026-12-04 23:05:51.061","no"'), /bad deleted/],
    ['a newer format', (t) => t.replace('"version":1', '"version":2'), /format version 2/],
    ['not a backup', () => 'hello\n', /not valid JSON|not a kinto-backup header/],
  ]
  for (const [name, damage, message] of damaged) {
    it(`refuses ${name}`, async () => {
      const {text} = await encoded()
      await expect(readAll(file(damage(text)))).rejects.toThrow(message)
    })
  }

  it('refuses a truncated gzip stream and bytes that are not gzip', async () => {
    const {text} = await encoded()
    const gz = gzipSync(Buffer.from(text, 'utf8'))
    await expect(readAll(file(gz.subarray(0, gz.length - 12), false))).rejects.toThrow(/truncated/)
    await expect(readAll(file('plain text, not gzip', false))).rejects.toThrow(/damaged/)
  })
})

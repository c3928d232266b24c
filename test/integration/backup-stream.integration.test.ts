/**
 * `kinto backup -o -` and `kinto restore -`: the backup through pipes, as operators script it
 * (`kinto backup -o - | ssh host 'cat > f'`, `ssh host cat f | kinto restore - --ini …`). Real
 * processes and real pipes throughout: what matters is what goes through the file descriptors.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openDatabase} from '../../src/lib/db/index.js'
import {cliBin, repoRoot} from '../helpers/cli.js'
import {createServerDatabase, realServerUrl, serverSkip, type TestDatabase} from '../helpers/db.js'
import {tempFolders} from '../helpers/tmp.js'
import {BACKUP_TABLES, embedded as embeddedIn, insertBulkRows, migrated, openApp, populate, populatedEmbedded, rowCounts, writeIni} from './backup-helpers.js'

const tmp = tempFolders('backup-stream')
const embedded = (bare = false) => embeddedIn(tmp, bare)

const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})

interface Run {
  code: number | null
  stdout: Buffer
  stderr: string
}

/** `kinto ARGS` as a process: stdin from `input` (a Buffer, or another process's stdout), stdout collected unless `stdout` handles it. */
function kinto(args: string[], options: {input?: Buffer | NodeJS.ReadableStream; onStdout?: (child: ChildProcess) => void} = {}): {child: ChildProcess; done: Promise<Run>} {
  const child = spawn(process.execPath, [cliBin, ...args], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', KINTO_INI: undefined}, stdio: ['pipe', 'pipe', 'pipe']})
  children.push(child)
  const out: Buffer[] = []
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  if (options.onStdout) options.onStdout(child)
  else child.stdout!.on('data', (d: Buffer) => out.push(d))
  child.stdin!.on('error', () => {})
  if (Buffer.isBuffer(options.input)) child.stdin!.end(options.input)
  else if (options.input) options.input.pipe(child.stdin!)
  else child.stdin!.end()
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({code, stdout: Buffer.concat(out), stderr})))
  return {child, done}
}

const noStack = (stderr: string) => expect(stderr).not.toMatch(/^\s+at /m)

describe('kinto backup -o - and kinto restore - on the embedded engine', () => {
  let source: {ini: string; url: string; dir: string}
  let sourceCounts: number[]

  beforeAll(async () => {
    source = await populatedEmbedded(tmp)
    sourceCounts = await rowCounts(source.url)
  }, 120_000)

  it('backup -o - writes the backup format to stdout and nothing else; --json goes to stderr as one line; the marker says (standard output)', async () => {
    const r = await kinto(['backup', '-o', '-', '--ini', source.ini, '--json']).done
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stderr.trim().split('\n').pop()!)
    expect(result).toMatchObject({file: '(standard output)', bytes: r.stdout.length, schema: {storage: 26, permission: 2}})
    expect(BACKUP_TABLES.map((t) => result.counts[t])).toEqual(sourceCounts)
    // the file format: header, tables, trailer with counts and the sha256 of what precedes it
    const lines = gunzipSync(r.stdout).toString('utf8').split('\n')
    expect(lines.pop()).toBe('')
    expect(JSON.parse(lines[0])).toMatchObject({format: 'kinto-backup', version: 1})
    const trailer = JSON.parse(lines.pop()!).trailer
    expect(trailer).toEqual({counts: result.counts, sha256: result.sha256})
    expect(createHash('sha256').update(lines.join('\n') + '\n').digest('hex')).toBe(result.sha256)
    const marker = JSON.parse(readFileSync(path.join(source.dir, '.kinto-backup'), 'utf8'))
    expect(marker).toMatchObject({file: '(standard output)', sha256: result.sha256, at: result.createdAt})
    const check = await kinto(['check', '--ini', source.ini, '--json']).done
    const findings = (JSON.parse(check.stdout.toString('utf8')) as {findings: Array<{id: string; message: string}>}).findings
    expect(findings.find((f) => f.id === 'backup')?.message).toBe(`Last kinto backup at ${result.createdAt} (standard output).`)
    // no file left anywhere in the ini's folder (no '-', no .partial)
    expect(readdirSync(source.dir).sort()).toEqual(['.kinto-backup', 'data', 'kinto.ini'])

    // the bytes are a backup file: restore by path into a new folder, the same rows
    const file = path.join(tmp(), 'piped.ndjson.gz')
    writeFileSync(file, r.stdout)
    const target = await embedded(true)
    const restored = await kinto(['restore', file, '--ini', target.ini, '--json']).done
    expect(restored.code, restored.stderr).toBe(0)
    expect(await rowCounts(target.url)).toEqual(sourceCounts)

    // without --json: the summary on stderr, stdout still only the backup
    const human = await kinto(['backup', '-o', '-', '--ini', source.ini]).done
    expect(human.code, human.stderr).toBe(0)
    expect(human.stderr).toMatch(/^Backup written to \(standard output\) /)
    expect(human.stderr).toContain('kinto restore - --ini')
    expect(JSON.parse(gunzipSync(human.stdout).toString('utf8').split('\n')[0]).format).toBe('kinto-backup')
  }, 120_000)

  it('backup -o - | restore -: two processes, one pipe, every row back (the target without a schema gets it)', async () => {
    const target = await embedded(true)
    const b = kinto(['backup', '-o', '-', '--ini', source.ini, '-q'], {onStdout: () => {}})
    const r = kinto(['restore', '-', '--ini', target.ini, '--json'], {input: b.child.stdout!})
    const [backedUp, restored] = await Promise.all([b.done, r.done])
    expect(backedUp.code, backedUp.stderr).toBe(0)
    expect(restored.code, restored.stderr).toBe(0)
    const result = JSON.parse(restored.stdout.toString())
    expect(result.file).toBe('(standard input)')
    expect(BACKUP_TABLES.map((t) => result.counts[t])).toEqual(sourceCounts)
    expect(await rowCounts(target.url)).toEqual(sourceCounts)
  }, 120_000)

  it('a reader that closes early: backup exits 1 with one clear line (EPIPE), no stack, marker not rewritten', async () => {
    const big = await embedded()
    await insertBulkRows(big.url, 30_000)
    const markerFile = path.join(big.dir, '.kinto-backup')
    writeFileSync(markerFile, '{"at":"2020-01-01T00:00:00.000Z","file":"old","sha256":"x","counts":{}}\n')
    let got = 0
    const b = kinto(['backup', '-o', '-', '--ini', big.ini], {
      onStdout: (child) =>
        child.stdout!.on('data', (d: Buffer) => {
          got += d.length
          // `| head -c 1000`: read a little, then go away
          if (got >= 1000) child.stdout!.destroy()
        }),
    })
    const r = await b.done
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: The backup written to standard output stopped after \d+ bytes: its reader went away \(EPIPE\)\. What was written has no trailer, so kinto restore refuses it; no marker was recorded\.\nHint: /)
    noStack(r.stderr)
    expect(JSON.parse(readFileSync(markerFile, 'utf8')).file).toBe('old')
  }, 120_000)

  it('restore - of a truncated or trailerless stream: refused (exit 1), nothing restored, the target empty', async () => {
    const whole = (await kinto(['backup', '-o', '-', '--ini', source.ini, '-q']).done).stdout
    const lines = gunzipSync(whole).toString('utf8').split('\n')
    const cases: Array<[string, Buffer, RegExp]> = [
      ['cut in the middle', whole.subarray(0, Math.floor(whole.length / 2)), /truncated \(the compressed data ends early\)/],
      // a complete gzip stream that stops after a row: what a backup that failed midway leaves
      ['without its trailer', gzipSync(lines.slice(0, -2).join('\n') + '\n'), /it has no trailer \(truncated\)/],
    ]
    for (const [what, input, message] of cases) {
      const target = await embedded(true)
      const r = await kinto(['restore', '-', '--ini', target.ini], {input}).done
      expect(r.code, what).toBe(1)
      expect(r.stderr, what).toMatch(/^Error: \(standard input\) is not a usable kinto backup: /)
      expect(r.stderr, what).toMatch(message)
      expect(r.stderr, what).toContain("nothing was restored. The target's schema was installed first; it holds no rows.")
      noStack(r.stderr)
      expect(await rowCounts(target.url), what).toEqual([0, 0, 0, 0])
    }
    // a migrated target that holds data, with --force: left exactly as it was
    const held = await embedded()
    await insertBulkRows(held.url, 5)
    const r = await kinto(['restore', '-', '--ini', held.ini, '--force'], {input: whole.subarray(0, whole.length - 20)}).done
    expect(r.code).toBe(1)
    expect(await rowCounts(held.url)).toEqual([5, 0, 0, 0])
  }, 180_000)

  it('restore - into a target whose schema must be upgraded: refused (exit 2) before anything changes; kinto migrate, then it restores', async () => {
    const whole = (await kinto(['backup', '-o', '-', '--ini', source.ini, '-q']).done).stdout
    const target = await embedded(true)
    const storageVersion = async () => {
      const c = openDatabase(target.url)
      try {
        return (await c.query<{value: string}>("SELECT value FROM metadata WHERE name = 'storage_schema_version'")).rows[0].value
      } finally {
        await c.close()
      }
    }
    // upstream Kinto's storage schema 20 (a deployment of long ago)
    const c = openDatabase(target.url)
    try {
      for (const f of ['storage_v020.sql', 'permission_v001.sql']) await c.exec(readFileSync(path.join(repoRoot, 'test', 'fixtures', 'sql', f), 'utf8'))
    } finally {
      await c.close()
    }
    expect(await storageVersion()).toBe('20')
    const r = await kinto(['restore', '-', '--ini', target.ini], {input: whole}).done
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/^Error: The storage schema of .* is at version 20, behind 26: restore - reads standard input once, so it cannot verify the backup before upgrading the schema; nothing was changed\.\nHint: Run kinto migrate with the same --ini first/)
    expect(await storageVersion()).toBe('20')
    expect((await kinto(['migrate', '--ini', target.ini]).done).code).toBe(0)
    // (the fixture holds rows of its own: --force replaces them)
    const again = await kinto(['restore', '-', '--ini', target.ini, '--force'], {input: whole}).done
    expect(again.code, again.stderr).toBe(0)
    expect(await rowCounts(target.url)).toEqual(sourceCounts)
  }, 180_000)

  it.skipIf(!existsSync('/usr/bin/script'))('on a terminal: backup -o - and restore - are refused (exit 2), nothing written', async () => {
    const target = await embedded(true)
    const cmd = (args: string[]) => [process.execPath, cliBin, ...args].map((a) => `'${a}'`).join(' ')
    const run = (args: string[]) => spawnSync('script', ['-qec', cmd(args), '/dev/null'], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', KINTO_INI: undefined}, encoding: 'utf8', timeout: 60_000})
    const b = run(['backup', '-o', '-', '--ini', source.ini])
    expect(b.status, b.stdout).toBe(2)
    expect(b.stdout).toContain('Error: -o - writes the compressed backup to standard output, which is a terminal here.')
    const r = run(['restore', '-', '--ini', target.ini])
    expect(r.status, r.stdout).toBe(2)
    expect(r.stdout).toContain('Error: restore - reads the backup from standard input, which is a terminal here.')
    expect(existsSync(path.join(target.dir, 'data'))).toBe(false)
    // ./- still names a file called '-'
    const dir = tmp()
    const file = spawnSync(process.execPath, [cliBin, 'backup', '-o', './-', '--ini', source.ini, '-q'], {cwd: dir, encoding: 'utf8'})
    expect(file.status, file.stderr).toBe(0)
    expect(statSync(path.join(dir, '-')).size).toBeGreaterThan(100)
  }, 120_000)

  it('a folder held by kinto start: backup -o - streams through its control socket', async () => {
    const server = spawn(process.execPath, [cliBin, 'start', '--ini', source.ini, '--port', '0'], {cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe']})
    children.push(server)
    let log = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kinto start did not start: ${log}`)), 60_000)
      server.stdout!.resume()
      server.stderr!.on('data', (d) => {
        log += d
        if (/Serving \S+/.test(log)) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    try {
      // a slow reader: the stream waits for it (the socket pauses), and the result is whole
      const chunks: Buffer[] = []
      const b = kinto(['backup', '-o', '-', '--ini', source.ini, '--json'], {
        onStdout: (child) => {
          child.stdout!.on('data', (d: Buffer) => {
            chunks.push(d)
            child.stdout!.pause()
            setTimeout(() => child.stdout!.resume(), 5)
          })
        },
      })
      const r = await b.done
      expect(r.code, r.stderr).toBe(0)
      const result = JSON.parse(r.stderr.trim().split('\n').pop()!)
      const bytes = Buffer.concat(chunks)
      expect(result.bytes).toBe(bytes.length)
      const target = await embedded(true)
      const restored = await kinto(['restore', '-', '--ini', target.ini], {input: bytes}).done
      expect(restored.code, restored.stderr).toBe(0)
      expect(await rowCounts(target.url)).toEqual(sourceCounts)
    } finally {
      server.kill('SIGTERM')
      await new Promise((resolve) => server.once('exit', resolve))
    }
  }, 180_000)
})

describe.skipIf(!realServerUrl)(`kinto backup -o - | kinto restore - on PostgreSQL${serverSkip}`, () => {
  const dbs: TestDatabase[] = []
  afterAll(async () => {
    for (const db of dbs) await db.drop().catch(() => {})
  })

  it('one PostgreSQL database streamed into another: every row; a truncated stream leaves the target empty', async () => {
    const [from, to] = [await createServerDatabase(realServerUrl!), await createServerDatabase(realServerUrl!)]
    dbs.push(from, to)
    await migrated(from.url)
    const t = openApp(from.url)
    try {
      await populate(t)
    } finally {
      await t.close()
    }
    const expected = await rowCounts(from.url)
    const [fromIni, toIni] = [writeIni(tmp(), from.url), writeIni(tmp(), to.url)]
    const b = await kinto(['backup', '-o', '-', '--ini', fromIni, '-q']).done
    expect(b.code, b.stderr).toBe(0)
    const whole = b.stdout
    const cut = await kinto(['restore', '-', '--ini', toIni], {input: whole.subarray(0, whole.length - 30)}).done
    expect(cut.code, cut.stderr).toBe(1)
    expect(await rowCounts(to.url)).toEqual([0, 0, 0, 0])
    const r = await kinto(['restore', '-', '--ini', toIni, '--json'], {input: whole}).done
    expect(r.code, r.stderr).toBe(0)
    expect(await rowCounts(to.url)).toEqual(expected)
  }, 180_000)
})

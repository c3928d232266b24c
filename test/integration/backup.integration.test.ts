/**
 * kinto backup / restore / db copy, for real: the CLI (run in this process, see `kinto` below; a
 * subprocess where one is needed) on embedded folders and (with KINTO_TEST_DATABASE_URL)
 * PostgreSQL databases; the data written and compared through the HTTP API, request by request
 * (bodies, ETags, Last-Modified, permissions, `_since`); every bad file a clear error with the
 * target unchanged.
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'
import {gunzipSync, gzipSync} from 'node:zlib'

import Pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openDatabase} from '../../src/lib/db/index.js'
import {pgliteLockPath, withFileLock} from '../../src/lib/schema/lock.js'
import {cliBin, repoRoot} from '../helpers/cli.js'
import {runCliInProcess} from '../helpers/cli-in-process.js'
import {createServerDatabase, realServerUrl, serverSkip, type TestDatabase} from '../helpers/db.js'
import {acceptanceHttpChecks} from '../helpers/schema-catalog.js'
import {tempFolders} from '../helpers/tmp.js'
import {startTestServer} from '../client/helpers.js'
import {ALICE, type Answer, apiAnswers, embedded as embeddedIn, insertBulkRows, migrated, openApp, populate, populatedEmbedded, rowCounts, writeIni} from './backup-helpers.js'

const tmp = tempFolders('backup')
const embedded = (bare = false) => embeddedIn(tmp, bare)
const execFileP = promisify(execFile)
const acceptanceScript = acceptanceHttpChecks

async function answersOf(url: string): Promise<Record<string, Answer>> {
  const t = openApp(url)
  try {
    return await apiAnswers(t)
  } finally {
    await t.close()
  }
}

/**
 * `kinto ARGS` run in this process (runCliInProcess: the same exit code and output, without the
 * second or more of starting a process each call); what needs a process of its own (kinto start,
 * a restore sent SIGTERM) is spawned where it is used.
 */
const kinto = (args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv} = {}) => runCliInProcess(args, {cwd: options.cwd, env: {KINTO_INI: undefined, ...options.env}})

function json(stdout: string): any {
  try {
    return JSON.parse(stdout)
  } catch {
    throw new Error(`not JSON: ${stdout}`)
  }
}

/** Rewrites a backup's uncompressed lines (then gzips them again). */
function rewrite(src: string, dest: string, edit: (lines: string[]) => string[]): string {
  const lines = gunzipSync(readFileSync(src)).toString('utf8').split('\n')
  writeFileSync(dest, gzipSync(Buffer.from(edit(lines).join('\n'), 'utf8')))
  return dest
}

describe('kinto backup and restore on the embedded engine', () => {
  let source: {ini: string; url: string; dir: string}
  let answers: Record<string, Answer>
  let file = ''
  let restored: {ini: string; url: string; dir: string}

  beforeAll(async () => {
    source = await populatedEmbedded(tmp)
    answers = await answersOf(source.url)
  }, 120_000)

  it('the dataset covers what must come back', () => {
    const keys = Object.keys(answers)
    expect(keys.length).toBeGreaterThan(150)
    const tombstones = answers['alice /v1/buckets/main/collections/articles/records?_since=0&_sort=last_modified'].body as {data: Array<{deleted?: boolean}>}
    expect(tombstones.data.filter((r) => r.deleted).length).toBe(10)
    expect((answers['alice /v1/buckets/main/history?_sort=last_modified,uri'].body as {data: unknown[]}).data.length).toBeGreaterThan(50)
    expect(answers['carol /v1/accounts/carol'].status).toBe(200)
  })

  it('kinto check reminds once when data has no backup', async () => {
    const r = await kinto(['check', '--ini', source.ini, '--json'])
    const backup = (json(r.stdout).findings as Array<{id: string; level: string; message: string}>).filter((f) => f.id === 'backup')
    expect(backup.map((f) => f.level)).toEqual(['warning'])
    expect(backup[0].message).toMatch(/No backup/)
  })

  it('backup --json writes the file atomically, 0600, and the marker', async () => {
    file = path.join(source.dir, 'nightly.ndjson.gz')
    const r = await kinto(['backup', '--ini', source.ini, '-o', file, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = json(r.stdout)
    expect(out.file).toBe(file)
    expect(out.counts.objects).toBeGreaterThan(100)
    expect(out.counts.access_control_entries).toBeGreaterThan(10)
    expect(out.counts.user_principals).toBeGreaterThan(0)
    expect(out.counts.timestamps).toBeGreaterThan(0)
    expect(out.schema).toEqual({storage: 26, permission: 2})
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readdirSync(source.dir).filter((f) => f.endsWith('.partial'))).toEqual([])
    const header = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8').split('\n')[0])
    expect(header).toMatchObject({format: 'kinto-backup', version: 1, schema: {storage: 26, permission: 2}, source: {storage: 'pglite'}})
    expect(JSON.parse(readFileSync(path.join(source.dir, '.kinto-backup'), 'utf8')).sha256).toBe(out.sha256)
    // the reminder is satisfied
    const c = await kinto(['check', '--ini', source.ini, '--json'])
    expect((json(c.stdout).findings as Array<{id: string; level: string}>).filter((f) => f.id === 'backup').map((f) => f.level)).toEqual(['ok'])
    // an existing file is not replaced without --force
    const again = await kinto(['backup', '--ini', source.ini, '-o', file, '--json'])
    expect(again.code).toBe(1)
    expect(json(again.stdout).error.code).toBe('KINTO_FILE_EXISTS')
    // what is not a regular file is never replaced, --force or not (the file is renamed into place)
    const link = path.join(source.dir, 'link.gz')
    symlinkSync(file, link)
    for (const [target, kind] of [[source.dir, 'a folder'], ['/dev/null', 'a device'], [link, 'a symbolic link']]) {
      const r = await kinto(['backup', '--ini', source.ini, '-o', target, '--force', '--json'])
      expect(r.code, r.stdout).toBe(2)
      expect(json(r.stdout).error.message).toBe(`${target} is ${kind}: a backup is written to a regular file.`)
    }
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    // a folder on the path that is a file, or missing: a usage error naming it (was KINTO_UNEXPECTED for a file)
    for (const [target, message] of [
      [path.join(file, 'x.gz'), `Cannot write ${path.join(file, 'x.gz')}: ${file} is a file, not a folder.`],
      [path.join(file, 'sub', 'x.gz'), `Cannot write ${path.join(file, 'sub', 'x.gz')}: a folder on its path is a file.`],
      [path.join(source.dir, 'none', 'x.gz'), `The folder of ${path.join(source.dir, 'none', 'x.gz')} does not exist.`],
    ]) {
      const r = await kinto(['backup', '--ini', source.ini, '-o', target, '--json'])
      expect(r.code, r.stdout).toBe(2)
      expect(json(r.stdout).error).toMatchObject({code: 'KINTO_USAGE', message})
    }
  }, 120_000)

  it('a FILE.partial left behind (a killed run, or planted) never decides the mode or the place of the backup', async () => {
    const dir = tmp()
    const decoy = path.join(dir, 'decoy')
    writeFileSync(decoy, 'not a backup\n', {mode: 0o644})
    // a stale partial with a wider mode, and a symbolic link where FILE.partial goes
    const stale = path.join(dir, 'stale.ndjson.gz')
    writeFileSync(`${stale}.partial`, 'junk', {mode: 0o644})
    chmodSync(`${stale}.partial`, 0o644)
    const linked = path.join(dir, 'linked.ndjson.gz')
    symlinkSync(decoy, `${linked}.partial`)
    for (const out of [stale, linked]) {
      const r = await kinto(['backup', '--ini', source.ini, '-o', out, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(lstatSync(out).isFile()).toBe(true)
      expect(statSync(out).mode & 0o777).toBe(0o600)
      expect(existsSync(`${out}.partial`)).toBe(false)
    }
    expect(readFileSync(decoy, 'utf8')).toBe('not a backup\n')
  }, 120_000)

  it('db copy --to a relative pglite: folder prints ini lines naming that folder wherever the ini is', async () => {
    const cwd = tmp()
    const r = await kinto(['db', 'copy', '--ini', source.ini, '--to', 'pglite:moved/data', '--json'], {cwd})
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const folder = path.join(cwd, 'moved', 'data')
    expect(json(r.stdout).to.storage).toContain(folder)
    // an ini reads a relative pglite: folder from its own folder: the lines must name this one
    expect(json(r.stdout).iniLines).toContain(`kinto.storage_url = pglite:${folder}`)
    expect(json(r.stdout).iniLines).toContain(`kinto.permission_url = pglite:${folder}`)
    expect((await rowCounts(`pglite:${folder}`))[0]).toBeGreaterThan(100)
    // Without --json: the lines to paste, and no password to put back into an embedded URL.
    const text = await kinto(['db', 'copy', '--ini', source.ini, '--to', 'pglite:moved2/data'], {cwd})
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('To serve it, set these lines in [app:main] of the ini, then kinto start:')
    expect(text.stdout).toContain(`  kinto.storage_url = pglite:${path.join(cwd, 'moved2', 'data')}`)
  }, 120_000)

  it('db copy from a source it cannot reach leaves the target as it was: no folder created, nothing migrated', async () => {
    const cwd = tmp()
    // nothing listens on port 1: refused at once
    const ini = writeIni(cwd, 'postgresql://postgres@127.0.0.1:1/kinto')
    const r = await kinto(['db', 'copy', '--ini', ini, '--to', 'pglite:never/data', '--json'], {cwd})
    expect(r.code).toBe(1)
    expect(json(r.stdout).error.code).toBe('KINTO_DB_UNREACHABLE')
    expect(existsSync(path.join(cwd, 'never', 'data'))).toBe(false)
  }, 60_000)

  it('the password of an unreachable database URL (the ini\'s, or --to) never shows in db copy or backup, text or JSON', async () => {
    const cwd = tmp()
    const secret = 'Sup3rSecret-5f2a'
    // nothing listens on port 1: refused at once
    const ini = writeIni(cwd, `postgresql://postgres:${secret}@127.0.0.1:1/kinto`)
    const source = await embedded()
    for (const args of [
      ['db', 'copy', '--ini', ini, '--to', 'pglite:never/data'],
      ['db', 'copy', '--ini', ini, '--to', 'pglite:never/data', '--json'],
      ['backup', '--ini', ini, '-o', path.join(cwd, 'x.gz')],
      ['backup', '--ini', ini, '-o', path.join(cwd, 'x.gz'), '--json'],
      ['db', 'copy', '--ini', source.ini, '--to', `postgresql://postgres:${secret}@127.0.0.1:1/other`],
      ['db', 'copy', '--ini', source.ini, '--to', `postgresql://postgres:${secret}@127.0.0.1:1/other`, '--json'],
    ]) {
      const r = await kinto(args, {cwd})
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stdout + r.stderr, args.join(' ')).toMatch(/127\.0\.0\.1:1/)
      expect(r.stdout + r.stderr, args.join(' ')).not.toContain(secret)
    }
  }, 60_000)

  it('db copy --to what it cannot copy to is a usage error naming --to; a target that holds data says nothing was copied', async () => {
    const cwd = tmp()
    const what = 'Give --to a PostgreSQL URL (postgresql://user:password@host/dbname), pglite:<folder>, or the path of an existing ini.'
    // These said "Config file <cwd>/mysql:/… does not exist" with "Run `kinto init --ini …`".
    for (const [to, message] of [
      ['mysql://kinto:secret@db/kinto', '--to mysql://kinto:***@db/kinto is not a database kinto-ops can copy to.'],
      ['missing.ini', `--to ${path.join(cwd, 'missing.ini')}: no such ini.`],
      // A URL whose scheme was forgotten is read as a path, and its password not shown.
      ['kinto:secret@db/kinto', `--to ${path.join(cwd, 'kinto:***@db/kinto')}: no such ini.`],
    ]) {
      const r = await kinto(['db', 'copy', '--ini', source.ini, '--to', to!, '--json'], {cwd})
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(json(r.stdout).error).toEqual({code: 'KINTO_USAGE', message, hint: what})
    }
    expect(readdirSync(cwd)).toEqual([])
    // These blamed kinto.storage_url and --ini: the message is about --to.
    mkdirSync(path.join(cwd, 'folder'))
    writeFileSync(path.join(cwd, 'notes.txt'), 'not an ini\n')
    for (const [to, code, exit, message] of [
      ['pglite:memory:', 'KINTO_USAGE', 2, '--to pglite:memory: is an in-memory embedded database: the copy would be gone when this command exits.'],
      ['folder', 'KINTO_USAGE', 2, `--to ${path.join(cwd, 'folder')} is a folder: an embedded database folder is given as pglite:<folder>.`],
      ['notes.txt', 'KINTO_CONFIG_INVALID', 1, `--to ${path.join(cwd, 'notes.txt')}, line 1: "not an ini" comes before any [section] header`],
    ] as const) {
      const r = await kinto(['db', 'copy', '--ini', source.ini, '--to', to, '--json'], {cwd})
      expect(r.code, to).toBe(exit)
      expect(json(r.stdout).error.code, to).toBe(code)
      expect(json(r.stdout).error.message, to).toContain(message)
    }
    expect(readdirSync(cwd).sort()).toEqual(['folder', 'notes.txt'])
    rmSync(path.join(cwd, 'folder'), {recursive: true})
    rmSync(path.join(cwd, 'notes.txt'))
    const first = await kinto(['db', 'copy', '--ini', source.ini, '--to', 'pglite:full/data', '--json'], {cwd})
    expect(first.code, first.stdout + first.stderr).toBe(0)
    const again = await kinto(['db', 'copy', '--ini', source.ini, '--to', 'pglite:full/data', '--json'], {cwd})
    expect(again.code).toBe(2)
    expect(json(again.stdout).error).toMatchObject({
      code: 'KINTO_RESTORE_NOT_EMPTY',
      message: expect.stringMatching(/ is not empty \(.*\); nothing was copied\.$/),
      hint: 'Add --force to replace everything it holds with the copy (in the same transaction), or copy into an empty database.',
    })
  }, 240_000)


  it('db copy into a target that refuses the rows says nothing was copied (not restored), and leaves it empty', async () => {
    const target = await embedded()
    const c = openDatabase(target.url)
    try {
      // A foreign trigger that moves timestamps: the copy must not keep rows it did not write as read.
      await c.exec(`CREATE FUNCTION shift_ts() RETURNS trigger AS $$ BEGIN NEW.last_modified := NEW.last_modified + interval '1 second'; RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER shift_ts BEFORE INSERT ON objects FOR EACH ROW EXECUTE FUNCTION shift_ts();`)
    } finally {
      await c.close()
    }
    const r = await kinto(['db', 'copy', '--ini', source.ini, '--to', target.url, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(json(r.stdout).error).toMatchObject({
      code: 'KINTO_RESTORE_FAILED',
      message: expect.stringMatching(/^The target changed the last_modified of \d+ copied object\(s\) \(\d+ of \d+ inserted\); nothing was copied\.$/),
    })
    expect(await rowCounts(target.url)).toEqual([0, 0, 0, 0])
  }, 180_000)
  it('a folder another command holds (a long restore): backup and restore time out with a hint they can follow', async () => {
    const other = await embedded()
    const taken = path.join(other.dir, 'taken.gz')
    expect((await kinto(['backup', '--ini', other.ini, '-o', taken])).code).toBe(0)
    await withFileLock(pgliteLockPath(path.join(other.dir, 'data')), {target: 'test', owner: {command: 'kinto restore'}}, async () => {
      for (const args of [['backup', '-o', path.join(other.dir, 'x.gz')], ['restore', taken, '--force']]) {
        // --lock-timeout 1: the wait it bounds (10 s by default) ends in a second
        const r = await kinto([...args, '--ini', other.ini, '--lock-timeout', '1', '--json'])
        expect(r.code, r.stdout + r.stderr).toBe(4)
        const error = json(r.stdout).error
        expect(error.message).toMatch(/^Timed out after 1 s /)
        expect(error.message).toContain('kinto restore')
        // what holds the folder need not be a migration: not migrate's hint (wait for the other
        // migration, or raise --lock-timeout)
        expect(error.hint).not.toMatch(/--lock-timeout|other migration/)
        expect(error.hint).toMatch(/run this again/i)
      }
    })
  }, 120_000)

  it('a marker that cannot be written is a warning: the backup is complete and exits 0', async () => {
    const other = await embedded()
    // A folder where the marker file goes: its atomic rename fails (as a read-only ini folder would).
    mkdirSync(path.join(other.dir, '.kinto-backup'))
    const out = path.join(other.dir, 'b.ndjson.gz')
    const r = await kinto(['backup', '--ini', other.ini, '-o', out, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const result = json(r.stdout)
    expect(result).toMatchObject({file: out, marker: null})
    expect(result.markerError).toMatch(/\.kinto-backup could not be written \(E[A-Z]+\); kinto check will not know of this backup$/)
    expect(statSync(out).size).toBe(result.bytes)
    const text = await kinto(['backup', '--ini', other.ini, '-o', out, '--force'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain(`Backup written to ${out}`)
    expect(text.stderr).toMatch(/^Warning: .*\.kinto-backup could not be written/m)
  }, 120_000)

  it('restore into a new folder answers every request exactly as the original', async () => {
    restored = await embedded(true) // not even migrated: restore runs the migrations
    const r = await kinto(['restore', file, '--ini', restored.ini, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = json(r.stdout)
    expect(out.migrated.length).toBeGreaterThan(0)
    expect(out.counts).toEqual(json((await kinto(['backup', '--ini', source.ini, '-o', path.join(source.dir, 'b2.gz'), '--json'])).stdout).counts)
    expect(await answersOf(restored.url)).toEqual(answers)
  }, 180_000)

  it('restore into an ini that says kinto.readonly = true writes nothing (KINTO_READONLY), as migrate and purge-deleted', async () => {
    const target = await embedded()
    const before = await answersOf(target.url)
    const r = await kinto(['restore', file, '--ini', target.ini, '--json'], {env: {KINTO_READONLY: 'true'}})
    expect(r.code, r.stderr).toBe(1)
    expect(json(r.stdout).error).toEqual(expect.objectContaining({code: 'KINTO_READONLY', message: expect.stringMatching(/kinto\.readonly is true, so kinto restore writes nothing/)}))
    expect(await answersOf(target.url)).toEqual(before)
    // db copy --to that ini, the same (it copied into it)
    const c = await kinto(['db', 'copy', '--ini', source.ini, '--to', target.ini, '--force', '--json'], {env: {KINTO_READONLY: 'true'}})
    expect(c.code, c.stdout).toBe(1)
    expect(json(c.stdout).error).toEqual(expect.objectContaining({code: 'KINTO_READONLY', message: `kinto.readonly is true in ${target.ini}, so kinto db copy writes nothing there.`}))
    expect(await answersOf(target.url)).toEqual(before)
  }, 120_000)

  describe('bad files: a clear error, nothing written', () => {
    let target: {ini: string; url: string; dir: string}
    beforeAll(async () => {
      target = await embedded()
    })

    const cases: Array<[string, () => string, string, RegExp]> = [
      [
        'truncated',
        () => {
          const f = path.join(target.dir, 'truncated.gz')
          writeFileSync(f, readFileSync(file))
          truncateSync(f, Math.floor(statSync(f).size / 2))
          return f
        },
        'KINTO_BACKUP_INVALID',
        /truncated/,
      ],
      [
        'a corrupted byte',
        () => {
          const bytes = readFileSync(file)
          bytes[Math.floor(bytes.length / 2)] ^= 0x55
          const f = path.join(target.dir, 'flipped.gz')
          writeFileSync(f, bytes)
          return f
        },
        'KINTO_BACKUP_INVALID',
        // Where the flip lands decides which check sees it first: each of these came up in 3,000
        // random flips of a backup of this dataset (the table and column lines too, 7 times).
        /damaged|checksum|not valid JSON|truncated|row|the columns of|was expected/,
      ],
      [
        'a changed row (checksum)',
        () => rewrite(file, path.join(target.dir, 'edited.gz'), (l) => l.map((x) => x.replace('Article 7 ', 'Article 8 '))),
        'KINTO_BACKUP_INVALID',
        /checksum does not match/,
      ],
      [
        'a wrong checksum in the trailer',
        () =>
          rewrite(file, path.join(target.dir, 'sha.gz'), (l) =>
            l.map((x) => (x.startsWith('{"trailer"') ? x.replace(/"sha256":"[0-9a-f]{4}/, '"sha256":"0000') : x)),
          ),
        'KINTO_BACKUP_INVALID',
        /checksum does not match/,
      ],
      [
        'a newer schema',
        () => rewrite(file, path.join(target.dir, 'newer.gz'), (l) => [l[0].replace('"storage":26', '"storage":27'), ...l.slice(1)]),
        'KINTO_BACKUP_NEWER',
        /newer than this kinto-ops knows/,
      ],
      [
        // The damage reaches the database before the checksum is read: the file is still said damaged.
        'a row the database refuses, not signed again',
        () =>
          rewrite(file, path.join(target.dir, 'badts.gz'), (l) => {
            const at = l.findIndex((x) => x.startsWith('{"table":"objects"'))
            const column = (JSON.parse(l[at]) as {columns: string[]}).columns.indexOf('last_modified')
            const row = JSON.parse(l[at + 1]) as unknown[]
            row[column] = 'not a time'
            return [...l.slice(0, at + 1), JSON.stringify(row), ...l.slice(at + 2)]
          }),
        'KINTO_BACKUP_INVALID',
        /checksum does not match/,
      ],
      [
        // A file another tool made (or edited, then signed again): its rows are what the database refuses.
        'a duplicated row, signed again',
        () =>
          rewrite(file, path.join(target.dir, 'dup.gz'), (l) => {
            const at = l.findIndex((x) => x.startsWith('{"table":"objects"')) + 1
            const end = l.findIndex((x) => x.startsWith('{"trailer"'))
            const body = [...l.slice(0, at + 1), l[at], ...l.slice(at + 1, end)]
            const sha256 = createHash('sha256').update(body.map((x) => `${x}\n`).join('')).digest('hex')
            const {counts} = (JSON.parse(l[end]) as {trailer: {counts: Record<string, number>}}).trailer
            counts.objects += 1
            return [...body, JSON.stringify({trailer: {counts, sha256}}), '']
          }),
        'KINTO_RESTORE_FAILED',
        /refused the backup's objects rows \(duplicate key value violates unique constraint .*\); nothing was restored\.$/,
      ],
      ['not a backup', () => (writeFileSync(path.join(target.dir, 'x.gz'), 'hello'), path.join(target.dir, 'x.gz')), 'KINTO_BACKUP_INVALID', /damaged|not a/],
      ['missing', () => path.join(target.dir, 'nope.gz'), 'KINTO_BACKUP_INVALID', /does not exist/],
    ]
    for (const [name, make, code, message] of cases) {
      it(name, async () => {
        const bad = make()
        const r = await kinto(['restore', bad, '--ini', target.ini, '--json'])
        expect(r.code, r.stdout + r.stderr).toBe(1)
        const error = json(r.stdout).error
        expect(error.code).toBe(code)
        expect(error.message).toMatch(message)
        expect(r.stderr).not.toMatch(/at .*\.ts:\d+/)
        expect(await rowCounts(target.url)).toEqual([0, 0, 0, 0])
        if (name !== 'truncated') return
        // human output: one line and a hint
        const h = await kinto(['restore', bad, '--ini', target.ini])
        expect(h.code).toBe(1)
        expect(h.stderr).toMatch(/^Error: .+\nHint: .+\n$/)
      }, 60_000)
    }

    it('a non-empty target is refused without --force (exit 2), replaced with it', async () => {
      const before = await rowCounts(restored.url)
      const r = await kinto(['restore', file, '--ini', restored.ini, '--json'])
      expect(r.code).toBe(2)
      expect(json(r.stdout).error).toMatchObject({code: 'KINTO_RESTORE_NOT_EMPTY'})
      expect(json(r.stdout).error.hint).toMatch(/--force/)
      expect(await rowCounts(restored.url)).toEqual(before)
      // a damaged file with --force still changes nothing
      const bad = rewrite(file, path.join(target.dir, 'edited2.gz'), (l) => l.map((x) => x.replace('Article 9 ', 'Article 1 ')))
      const f1 = await kinto(['restore', bad, '--ini', restored.ini, '--force', '--json'])
      expect(f1.code).toBe(1)
      expect(await answersOf(restored.url)).toEqual(answers)
      // write something, then --force replaces it with the backup
      const t = openApp(restored.url)
      await t.request('PUT', '/v1/buckets/extra', {body: {data: {}}})
      await t.close()
      const f = await kinto(['restore', file, '--ini', restored.ini, '--force', '--json'])
      expect(f.code, f.stdout + f.stderr).toBe(0)
      expect(json(f.stdout).replaced.objects).toBeGreaterThan(before[0])
      expect(await answersOf(restored.url)).toEqual(answers)
    }, 180_000)
  })

  describe('a folder held by kinto start', () => {
    const servers: ChildProcess[] = []
    afterAll(() => {
      for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL')
    })
    /** `kinto start` on the ini; resolves with the process and the URL it serves. */
    async function serve(ini: string): Promise<{server: ChildProcess; url: string}> {
      const server = spawn(process.execPath, [cliBin, 'start', '--ini', ini, '--port', '0'], {cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe']})
      servers.push(server)
      let stderr = ''
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`kinto start did not start: ${stderr}`)), 60_000)
        server.stdout!.resume()
        server.stderr!.on('data', (d) => {
          stderr += d
          const serving = /Serving (\S+)/.exec(stderr)
          if (serving) {
            clearTimeout(timer)
            resolve(serving[1])
          }
        })
      })
      return {server, url}
    }

    it('backup goes through the serving server (its control socket) and restores elsewhere intact; restore into that folder is refused', async () => {
      const {server, url} = await serve(source.ini)
      const held = path.join(source.dir, 'held.ndjson.gz')
      const b = await kinto(['backup', '--ini', source.ini, '-o', held, '--json'])
      expect(b.code, b.stdout + b.stderr).toBe(0)
      const out = json(b.stdout)
      expect(out).toMatchObject({file: held, schema: {storage: 26, permission: 2}})
      expect(out.counts.objects).toBeGreaterThan(100)
      expect(out.bytes).toBe(statSync(held).size)
      expect(statSync(held).mode & 0o777).toBe(0o600)
      expect(existsSync(`${held}.partial`)).toBe(false)
      expect(JSON.parse(readFileSync(path.join(source.dir, '.kinto-backup'), 'utf8')).sha256).toBe(out.sha256)
      // the server kept serving, and it is the same process
      expect((await fetch(`${url}__heartbeat__`)).status).toBe(200)
      expect(server.exitCode).toBeNull()

      // the file restores elsewhere, every answer identical to the source's
      const elsewhere = await embedded()
      const r = await kinto(['restore', held, '--ini', elsewhere.ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(json(r.stdout).counts).toEqual(out.counts)
      expect(await answersOf(elsewhere.url)).toEqual(answers)

      // a restore would replace what the server serves: refused at once, naming it
      const into = await kinto(['restore', held, '--ini', source.ini, '--force', '--json'])
      expect(into.code).toBe(4)
      const err = json(into.stdout).error
      expect(err.code).toBe('KINTO_DB_IN_USE')
      expect(err.message).toMatch(new RegExp(`running server holds it \\(kinto start.*pid ${server.pid}\\)`))
      expect(err.hint).toBe(`Stop that server (kill -TERM ${server.pid}), run this again, then start it again.`)
      server.kill('SIGTERM')
      await new Promise((resolve) => server.once('exit', resolve))
    }, 180_000)

    it('a backup while the server takes writes: every request answered, the snapshot consistent', async () => {
      const live = await embedded()
      // Rows enough for the snapshot to stay open a while.
      await insertBulkRows(live.url, 20_000)
      const {server, url} = await serve(live.ini)
      const call = (method: string, p: string, body?: unknown) =>
        fetch(`${url}${p}`, {method, headers: {Authorization: ALICE, 'Content-Type': 'application/json'}, body: body === undefined ? undefined : JSON.stringify(body)})
      expect((await call('PUT', 'buckets/load', {data: {}})).status).toBe(201)
      expect((await call('PUT', 'buckets/load/collections/c', {data: {}})).status).toBe(201)
      let created = 0
      const statuses: number[] = []
      let stop = false
      // Four clients: creates in one collection, and reads of it.
      const client = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const write = w % 2 === 0
          const r = write ? await call('POST', 'buckets/load/collections/c/records', {data: {w, i}}) : await call('GET', 'buckets/load/collections/c/records?_limit=5')
          statuses.push(r.status)
          await r.arrayBuffer()
          if (write && r.status === 201) created++
        }
      }
      const clients = Promise.all([0, 1, 2, 3].map(client))
      while (created < 20) await new Promise((r) => setTimeout(r, 20))
      const before = created
      const file = path.join(live.dir, 'live.ndjson.gz')
      const b = await kinto(['backup', '--ini', live.ini, '-o', file, '--json'])
      const after = created
      stop = true
      await clients
      expect(b.code, b.stdout + b.stderr).toBe(0)
      expect(after).toBeGreaterThan(before)
      // No request failed while the snapshot was open (they waited for the engine instead).
      expect(statuses.filter((st) => st >= 300)).toEqual([])
      server.kill('SIGTERM')
      await new Promise((resolve) => server.once('exit', resolve))

      const elsewhere = await embedded()
      const r = await kinto(['restore', file, '--ini', elsewhere.ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      const t = openApp(elsewhere.url)
      try {
        const n = Number((await t.request('HEAD', '/v1/buckets/load/collections/c/records')).headers['total-records'])
        // (the two writers may each have had one write committed but not yet answered)
        expect(n).toBeGreaterThanOrEqual(before)
        expect(n).toBeLessThanOrEqual(after + 2)
      } finally {
        await t.close()
      }
    }, 180_000)
  })

  describe.skipIf(!realServerUrl)(`with PostgreSQL: db copy embedded -> PostgreSQL -> embedded, backup under write load${serverSkip}`, () => {
    const dbs: TestDatabase[] = []
    const pgDatabase = async () => {
      const db = await createServerDatabase(realServerUrl!)
      dbs.push(db)
      return db
    }
    afterAll(async () => {
      for (const db of dbs) await db.drop().catch(() => {})
    })

    it('SIGTERM stops a restore stuck waiting on the database (a long transaction holds its tables)', async () => {
      const pg = await pgDatabase()
      await migrated(pg.url)
      const t = openApp(pg.url)
      try {
        await populate(t)
      } finally {
        await t.close()
      }
      const dir = tmp()
      const ini = writeIni(dir, pg.url)
      const file = path.join(dir, 'b.ndjson.gz')
      expect((await kinto(['backup', '--ini', ini, '-o', file])).code).toBe(0)
      const before = await rowCounts(pg.url)
      const holder = new Pg.Client({connectionString: pg.url})
      await holder.connect()
      try {
        await holder.query('BEGIN')
        await holder.query('LOCK TABLE objects IN ACCESS EXCLUSIVE MODE')
        const child = spawn(process.execPath, [cliBin, 'restore', file, '--ini', ini, '--force', '--json'], {cwd: repoRoot, env: {...process.env, KINTO_INI: undefined}})
        let stdout = ''
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
        await new Promise((resolve) => setTimeout(resolve, 6000))
        const sent = Date.now()
        child.kill('SIGTERM')
        const code = await exited
        // it waited on the lock (up to 30 s) instead of stopping
        expect(Date.now() - sent, stdout).toBeLessThan(15_000)
        expect(code).toBe(1)
        expect(json(stdout).error.code).toBe('KINTO_INTERRUPTED')
      } finally {
        await holder.query('ROLLBACK').catch(() => {})
        await holder.end()
      }
      expect(await rowCounts(pg.url)).toEqual(before)
    }, 120_000)

    it('db copy refuses its own source under another host name (with --force it deadlocked on itself)', async () => {
      const pg = await pgDatabase()
      await migrated(pg.url)
      const dir = tmp()
      const ini = writeIni(dir, pg.url)
      const other = new URL(pg.url)
      other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost'
      const r = await kinto(['db', 'copy', '--ini', ini, '--to', other.toString(), '--force', '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(json(r.stdout).error.message).toMatch(/is the source database .* under another name/)
    }, 120_000)

    it('db copy: embedded -> PostgreSQL -> embedded, every answer identical', async () => {
      const pg = await pgDatabase()
      const r = await kinto(['db', 'copy', '--ini', source.ini, '--to', pg.url, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      const out = json(r.stdout)
      expect(out.iniLines).toContain('kinto.storage_backend = kinto.core.storage.postgresql')
      expect(out.counts.objects).toBeGreaterThan(100)
      expect(await answersOf(pg.url)).toEqual(answers)
      // copying again onto the filled target is refused
      const again = await kinto(['db', 'copy', '--ini', source.ini, '--to', pg.url, '--json'])
      expect(again.code).toBe(2)
      expect(json(again.stdout).error.code).toBe('KINTO_RESTORE_NOT_EMPTY')
      // and back to a new embedded folder, through the ini of each side
      const pgDir = tmp()
      const pgIni = writeIni(pgDir, pg.url)
      const back = await embedded(true)
      const b = await kinto(['db', 'copy', '--ini', pgIni, '--to', back.ini, '--json'])
      expect(b.code, b.stdout + b.stderr).toBe(0)
      expect(json(b.stdout).toIni).toBe(back.ini)
      expect(await answersOf(back.url)).toEqual(answers)

      // the PostgreSQL database made by the copy, served by kinto start, passes the acceptance checks
      if (!acceptanceScript) {
        console.log('SKIPPED: acceptance checks on the copied database (shared/acceptance/http_checks.py not found)')
        return
      }
      const srv = await startTestServer('postgresql', {}, {...pg, drop: async () => {}})
      try {
        let stdout = ''
        try {
          ;({stdout} = await execFileP('python3', [acceptanceScript, srv.remote, 'core'], {timeout: 180_000}))
        } catch (err) {
          stdout = (err as {stdout?: string}).stdout ?? String(err)
        }
        expect(stdout.trim().split('\n').pop()).toBe('40 passed, 0 failed')
      } finally {
        await srv.close()
      }
    }, 480_000)

    it('a backup under write load restores a consistent snapshot', async () => {
      const pg = await pgDatabase()
      await migrated(pg.url)
      const app = openApp(pg.url)
      const dir = tmp()
      const ini = writeIni(dir, pg.url)
      try {
        await populate(app)
        await app.request('PUT', '/v1/buckets/bulk', {body: {data: {}}})
        await app.request('PUT', '/v1/buckets/bulk/collections/rows', {body: {data: {}}})
        // bulk rows so that the dump takes a while
        await insertBulkRows(pg.url, 30_000)
        // a first read of every list: reading an empty list stores its timestamp (a write), which
        // must happen before the snapshot for the answers after it to be comparable
        await apiAnswers(app)
        await app.request('PUT', '/v1/buckets/load', {body: {data: {}}})
        await app.request('PUT', '/v1/buckets/load/collections/c', {body: {data: {}}})
        // each op is one batch (one transaction): create l<i>, delete l<i-1> every third op
        let ops = 0
        let stop = false
        const op = async (i: number) => {
          const requests: unknown[] = [{method: 'PUT', path: `/buckets/load/collections/c/records/l${i}`, body: {data: {n: i}}}]
          if (i % 3 === 2) requests.push({method: 'DELETE', path: `/buckets/load/collections/c/records/l${i - 1}`})
          const res = await app.request('POST', '/v1/batch', {body: {requests}})
          if (res.status !== 200 || (res.body.responses as Array<{status: number}>).some((x) => x.status >= 300)) throw new Error(`op ${i}: ${res.raw}`)
          ops = i + 1
        }
        const load = (async () => {
          for (let i = 0; !stop; i++) await op(i)
        })()
        while (ops < 20) await new Promise((r) => setTimeout(r, 20))
        const opsBefore = ops
        const file2 = path.join(dir, 'live.gz')
        const b = await kinto(['backup', '--ini', ini, '-o', file2, '--json'])
        const opsAfter = ops
        stop = true
        await load
        expect(b.code, b.stdout + b.stderr).toBe(0)
        expect(opsAfter - opsBefore).toBeGreaterThan(0)

        const target = await pgDatabase()
        const tdir = tmp()
        const r = await kinto(['restore', file2, '--ini', writeIni(tdir, target.url), '--json'])
        expect(r.code, r.stdout + r.stderr).toBe(0)

        const now = await apiAnswers(app)
        const restoredAnswers = await answersOf(target.url)
        // everything the load did not touch answers exactly as the source does now
        const untouched = (k: string) => !k.includes('/buckets/load') && !k.includes('/v1/permissions')
        const pick = (a: Record<string, Answer>) => Object.fromEntries(Object.entries(a).filter(([k]) => untouched(k)))
        expect(pick(restoredAnswers)).toEqual(pick(now))

        // the load collection is the state after exactly k whole ops, for some k
        const t = openApp(target.url)
        try {
          const list = await t.request('GET', '/v1/buckets/load/collections/c/records?_since=0&_sort=last_modified')
          const rows = list.body.data as Array<{id: string; n?: number; deleted?: boolean; last_modified: number}>
          const k = Math.max(...rows.map((x) => Number(x.id.slice(1)))) + 1
          expect(k).toBeGreaterThanOrEqual(opsBefore)
          expect(k).toBeLessThanOrEqual(opsAfter + 1)
          const live = new Set<string>()
          const gone = new Set<string>()
          for (let i = 0; i < k; i++) {
            live.add(`l${i}`)
            if (i % 3 === 2) {
              live.delete(`l${i - 1}`)
              gone.add(`l${i - 1}`)
            }
          }
          expect(new Set(rows.filter((x) => !x.deleted).map((x) => x.id))).toEqual(live)
          expect(new Set(rows.filter((x) => x.deleted).map((x) => x.id))).toEqual(gone)
          // each restored record has its permissions, and the same ETag as in the source when unchanged there
          for (const id of live) {
            const got = await t.request('GET', `/v1/buckets/load/collections/c/records/${id}`)
            expect(got.status).toBe(200)
            expect(got.body.permissions.write.length).toBe(1)
            const there = await app.request('GET', `/v1/buckets/load/collections/c/records/${id}`, {auth: ALICE})
            if (there.status === 200) expect(got.headers.etag).toBe(there.headers.etag)
          }
        } finally {
          await t.close()
        }
      } finally {
        await app.close()
      }
    }, 240_000)
  })
})

describe('backends with nothing to back up', () => {
  it('memory storage: backup, restore and db copy say so (exit 1, JSON error)', async () => {
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.memory\nkinto.permission_backend = kinto.core.permission.memory\nkinto.cache_backend = kinto.core.cache.memory\n')
    for (const args of [['backup', '-o', path.join(dir, 'x.gz')], ['restore', path.join(dir, 'x.gz')], ['db', 'copy', '--to', 'pglite:' + path.join(dir, 'data')]]) {
      const r = await kinto([...args, '--ini', ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      expect(json(r.stdout).error.code).toBe('KINTO_BACKUP_UNSUPPORTED')
      expect(json(r.stdout).error.message).toMatch(/memory/)
    }
    expect(readdirSync(dir)).toEqual(['kinto.ini'])
  }, 120_000)
})

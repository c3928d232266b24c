/**
 * Errors that tell the truth: known conditions get known messages (schema missing, permission
 * denied, an owner role that does not exist), and commands that only read create nothing.
 */
import {randomBytes} from 'node:crypto'
import {gzipSync} from 'node:zlib'
import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import pg from 'pg'
import {describe, expect, it, type TestContext} from 'vitest'

import {encodeBackup, FORMAT_NAME, FORMAT_VERSION} from '../../src/lib/backup/format.js'
import {scramVerifier} from '../../src/lib/db/scram.js'
import {processIdentity} from '../../src/lib/process.js'
import {CURRENT_VERSIONS} from '../../src/lib/schema/sql-files.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {runCliInProcess} from '../helpers/cli-in-process.js'
import {realServerUrl} from '../helpers/db.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('ops-errors')

/*
 * The commands run in this process (runCliInProcess: a second or more saved on each) unless the
 * test needs a process of its own: another user (runuser), a server (kinto start), a lock file
 * naming a pid, a file system that is full, read-only or frozen (the engine would fail in the
 * test's own process).
 */

function embeddedIni(dir: string, extra = ''): string {
  const ini = path.join(dir, 'kinto.ini')
  const lines = ['[app:main]', 'kinto.includes = kinto.plugins.accounts']
  for (const b of ['storage', 'permission', 'cache']) lines.push(`kinto.${b}_backend = kinto.core.${b}.postgresql`, `kinto.${b}_url = pglite:data`)
  writeFileSync(ini, `${lines.join('\n')}\n${extra}`)
  return ini
}

/**
 * The user a test runs the CLI as to meet another user's files: `nobody` when this runs as root
 * (runuser switches to it), undefined otherwise (the test then takes permissions away from its
 * files instead). Skips the test when root has no way to switch.
 */
function otherUser(ctx: TestContext): 'nobody' | undefined {
  if (process.getuid?.() !== 0) return undefined
  if (spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status !== 0) {
    ctx.skip('SKIPPED: running as root without runuser and a nobody user to run as')
  }
  return 'nobody'
}

describe('commands that only read create nothing', () => {
  it('migrate --check, migrate --dry-run, db status and check on a folder that does not exist leave it absent', async () => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const check = await runCliInProcess(['migrate', '--check', '--ini', ini])
    expect(check.code, check.stderr).toBe(3)
    expect(check.stdout).toContain('Migrations are pending.')
    const dry = await runCliInProcess(['migrate', '--dry-run', '--ini', ini])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain('would install')
    const status = await runCliInProcess(['db', 'status', '--ini', ini, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).backends[1]).toMatchObject({backend: 'storage', state: 'missing'})
    await runCliInProcess(['check', '--ini', ini])
    expect(readdirSync(dir)).toEqual(['kinto.ini'])
  }, 120_000)
})

describe('a path that is not an embedded database is refused and left as it is', () => {
  it('a folder with files but no PG_VERSION, another major, a file: KINTO_DB_FOLDER_INVALID, nothing written', async () => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const made = await runCliInProcess(['migrate', '--ini', ini])
    expect(made.code, made.stderr).toBe(0)
    const data = path.join(dir, 'data')
    const version = readFileSync(path.join(data, 'PG_VERSION'), 'utf8').trim()
    // PGlite would run initdb over this folder (a new catalog over the user's tables).
    rmSync(path.join(data, 'PG_VERSION'))
    const before = readFileSync(path.join(data, 'global', 'pg_control'))
    const runs = [
      ['backup', '--ini', ini, '-o', path.join(dir, 'b.ndjson.gz'), '--json'],
      ['migrate', '--ini', ini, '--json'],
      ['migrate', '--check', '--ini', ini, '--json'],
      ['db', 'status', '--ini', ini, '--json'],
      ['flush-cache', '--ini', ini, '--json'],
    ]
    for (const args of runs) {
      const r = await runCliInProcess(args)
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string}
      expect(error.code, args.join(' ')).toBe('KINTO_DB_FOLDER_INVALID')
      expect(error.message).toContain(`${data} holds files but no database`)
    }
    const start = await runCli(['start', '--ini', ini, '--port', '0'], {timeoutMs: 60_000})
    expect(start.code, start.stderr).toBe(1)
    expect(start.stderr).toContain('holds files but no database')
    expect(existsSync(path.join(data, 'PG_VERSION'))).toBe(false)
    expect(readFileSync(path.join(data, 'global', 'pg_control')).equals(before)).toBe(true)
    // No backup file, no lock left; the run registry's folder holds no entry of the failed start.
    expect(readdirSync(dir).sort()).toEqual(['.kinto-run', 'data', 'kinto.ini'])
    expect(readdirSync(path.join(dir, '.kinto-run'))).toEqual([])

    // Written by another PostgreSQL major: both majors named, with the way across.
    writeFileSync(path.join(data, 'PG_VERSION'), '16\n')
    const other = await runCliInProcess(['db', 'status', '--ini', ini, '--json'])
    expect(other.code, other.stdout).toBe(1)
    const otherError = JSON.parse(other.stdout).error as {code: string; message: string; hint: string}
    expect(otherError).toMatchObject({code: 'KINTO_DB_FOLDER_INVALID'})
    expect(otherError.message).toBe(`The embedded database folder ${data} was written by PostgreSQL 16, and this kinto-ops embeds PostgreSQL ${version}.`)
    expect(otherError.hint).toMatch(/kinto backup.*kinto restore/)
    expect(readFileSync(path.join(data, 'global', 'pg_control')).equals(before)).toBe(true)

    // A file where the folder should be.
    const fileIni = path.join(dir, 'file.ini')
    writeFileSync(fileIni, readFileSync(ini, 'utf8').replaceAll('pglite:data', 'pglite:kinto.ini'))
    const file = await runCliInProcess(['migrate', '--ini', fileIni, '--json'])
    expect(file.code, file.stdout).toBe(1)
    expect(JSON.parse(file.stdout).error).toMatchObject({code: 'KINTO_DB_FOLDER_INVALID', message: `The embedded database folder ${path.join(dir, 'kinto.ini')} is not a folder.`})
  }, 180_000)
})

/**
 * Makes a folder refuse new files: chmod for a user, the immutable attribute for root (whom
 * permissions do not stop). Returns how to undo it, or why it cannot be done here.
 */
function freezeFolder(dir: string): {undo: () => void} | {skip: string} {
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555)
    return {undo: () => chmodSync(dir, 0o755)}
  }
  try {
    execFileSync('chattr', ['+i', dir], {stdio: 'ignore'})
  } catch {
    return {skip: 'SKIPPED: running as root on a file system without chattr +i (nothing else stops root writing a folder)'}
  }
  return {undo: () => execFileSync('chattr', ['-i', dir], {stdio: 'ignore'})}
}

describe('an embedded folder this user cannot read', () => {
  it('is named as such (run as its owner), not as a folder that holds no database', async (ctx: TestContext) => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const migrated = await runCli(['migrate', '--ini', ini])
    expect(migrated.code, migrated.stderr).toBe(0)
    const data = path.join(dir, 'data')
    // Root reads every folder: as root, the commands run as nobody, who may read the ini only.
    const user = otherUser(ctx)
    if (user) {
      // (its folder open to it: the lock files go beside the database folder)
      chmodSync(dir, 0o777)
      chmodSync(ini, 0o644)
      chmodSync(data, 0o700)
    } else {
      chmodSync(data, 0o000)
    }
    try {
      for (const args of [['db', 'status'], ['migrate', '--check'], ['flush-cache']]) {
        const r = await runCli([...args, '--ini', ini, '--json'], {user})
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
        expect(JSON.parse(r.stdout).error, args.join(' ')).toEqual({
          code: 'KINTO_DB_FOLDER_INVALID',
          message: `The embedded database folder ${data} cannot be read and written by this user.`,
          hint: 'Run as the user that owns the folder, or fix its permissions (the engine writes to it on every start).',
        })
      }
    } finally {
      chmodSync(data, 0o700)
    }
  }, 120_000)
})

describe("another user's lock on an embedded folder (a server of another user holds it)", () => {
  it('is named at once (exit 1, KINTO_DB_FOLDER_INVALID), not waited for forever; a backup it may not read neither', async (ctx: TestContext) => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const migrated = await runCli(['migrate', '--ini', ini])
    expect(migrated.code, migrated.stderr).toBe(0)
    const backup = path.join(dir, 'b.ndjson.gz')
    const taken = await runCli(['backup', '--ini', ini, '-o', backup])
    expect(taken.code, taken.stderr).toBe(0)
    const data = path.join(dir, 'data')
    const lock = `${data}.kinto-migrate.lock`
    // What a live `kinto start` leaves there, with mode 0600 (this process stands for that server).
    writeFileSync(lock, `${process.pid}\n${JSON.stringify({command: 'kinto start', serves: true, detail: ini})}\n`, {mode: 0o600})
    const user = otherUser(ctx)
    if (user) {
      chmodSync(dir, 0o777)
      chmodSync(ini, 0o644)
    } else {
      chmodSync(lock, 0o000)
      chmodSync(backup, 0o000)
    }
    try {
      // Each read the lock file in a loop that never yielded (100% CPU, deaf to SIGTERM).
      for (const args of [['flush-cache'], ['backup', '-o', path.join(dir, 'other.ndjson.gz')], ['migrate'], ['purge-deleted', 'record', '1']]) {
        const r = await runCli([...args, '--ini', ini, '--json'], {user, timeoutMs: 30_000})
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
        expect(JSON.parse(r.stdout).error, args.join(' ')).toEqual({
          code: 'KINTO_DB_FOLDER_INVALID',
          message: `Cannot read the lock file ${lock} of the embedded database in ${data}: permission denied.`,
          hint: 'Run as the user that owns the embedded folder (and runs its server, if one holds it).',
        })
      }
      // status said "not open" while another user's server held it.
      const status = await runCli(['status', '--ini', ini, '--json'], {user, timeoutMs: 30_000})
      expect(status.code, status.stdout + status.stderr).toBe(0)
      expect(JSON.parse(status.stdout).embedded).toEqual([
        {folder: data, heldBy: null, unknown: `its lock file ${lock} cannot be read by this user (a process of another user may hold it)`},
      ])
      // The backup file (0600, the user that took it) was an "unexpected failure".
      const r = await runCli(['restore', backup, '--ini', ini, '--force', '--json'], {user, timeoutMs: 30_000})
      expect(r.code, r.stdout + r.stderr).toBe(1)
      expect(JSON.parse(r.stdout).error).toEqual({
        code: 'KINTO_BACKUP_INVALID',
        message: `${backup} cannot be read (permission denied); nothing was restored.`,
        hint: 'Run as a user that may read it (kinto backup writes it with mode 0600, for the user that took it), or fix its mode.',
      })
    } finally {
      chmodSync(lock, 0o600)
      chmodSync(backup, 0o600)
    }
  }, 240_000)
})

describe('the lock file of a server killed before a reboot', () => {
  it('does not block the commands when its pid now names another process', async (ctx: TestContext) => {
    const me = processIdentity(process.pid)
    if (me === null) {
      return ctx.skip('SKIPPED: no /proc to tell processes apart')
    }
    const dir = tmp()
    const ini = embeddedIni(dir)
    expect((await runCli(['migrate', '--ini', ini])).code).toBe(0)
    // A server SIGKILLed, then the machine restarted: this process was given its pid.
    writeFileSync(`${path.join(dir, 'data')}.kinto-migrate.lock`, `${process.pid}\n${JSON.stringify({command: 'kinto start', serves: true, detail: ini, process: {...me, start: '1'}})}\n`)
    const r = await runCli(['db', 'status', '--ini', ini, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  }, 60_000)
})

describe('an ini this user may not read', () => {
  it('kinto status says so (exit 1, configError), not "unexpected failure"', async (ctx: TestContext) => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const user = otherUser(ctx)
    if (user) {
      chmodSync(dir, 0o755)
      chmodSync(ini, 0o600)
    } else {
      chmodSync(ini, 0o000)
    }
    try {
      const r = await runCli(['status', '--ini', ini, '--json'], {user, timeoutMs: 30_000})
      expect(r.code, r.stdout + r.stderr).toBe(1)
      const out = JSON.parse(r.stdout)
      expect(out.configError).toEqual({code: 'KINTO_CONFIG_INVALID', message: `${ini}: the file cannot be read (permission denied); run as its owner or fix its mode.`})
      expect(out.servers).toEqual([])
    } finally {
      chmodSync(ini, 0o600)
    }
  }, 60_000)
})

describe("an embedded folder of another user, run as root (sudo kinto …)", () => {
  it('is refused before the engine writes files of root into it; files of root left there are named with the chown that fixes them', async (ctx: TestContext) => {
    if (process.getuid?.() !== 0 || spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status !== 0) {
      return ctx.skip('SKIPPED: needs root and runuser to run as nobody')
    }
    const dir = tmp()
    const ini = embeddedIni(dir)
    chmodSync(ini, 0o644)
    execFileSync('chown', ['nobody', dir])
    const migrated = await runCli(['migrate', '--ini', ini], {user: 'nobody'})
    expect(migrated.code, migrated.stderr).toBe(0)
    const data = path.join(dir, 'data')
    // root's flush-cache left root-owned files there, and nobody's server then said "it may be damaged".
    for (const args of [['flush-cache'], ['backup', '-o', path.join(tmp(), 'b.ndjson.gz')]]) {
      const r = await runCli([...args, '--ini', ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      expect(JSON.parse(r.stdout).error).toEqual({
        code: 'KINTO_DB_FOLDER_INVALID',
        message: `The embedded database folder ${data} belongs to nobody, not to root: the files the engine writes there on every opening would be root's, and nobody's server could no longer open it.`,
        hint: 'Run it as nobody (e.g. sudo -u nobody kinto …).',
      })
    }
    expect(execFileSync('find', [data, '!', '-user', 'nobody'], {encoding: 'utf8'})).toBe('')
    // A folder an earlier release let root write into: named, with the fix.
    const rootFile = path.join(data, 'pg_logical', 'replorigin_checkpoint')
    const bytes = readFileSync(rootFile)
    rmSync(rootFile)
    writeFileSync(rootFile, bytes, {mode: 0o600})
    const status = await runCli(['db', 'status', '--ini', ini, '--json'], {user: 'nobody'})
    expect(status.code, status.stdout + status.stderr).toBe(1)
    expect(JSON.parse(status.stdout).error).toEqual({
      code: 'KINTO_DB_FOLDER_INVALID',
      message: `The embedded database folder ${data} cannot be opened: it holds files of root (pg_logical/replorigin_checkpoint), which nobody may not be able to change.`,
      hint: `Give them back to nobody: chown -R nobody ${data} (as root), then run this again.`,
    })
  }, 120_000)
})

describe('a full disk', () => {
  it('a write the database has no room for is KINTO_DB_DISK_FULL; a lock file that cannot be written is named and not left behind', async (ctx: TestContext) => {
    const dir = tmp()
    // A small file system of its own (root only): the embedded database fills it.
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', dir], {stdio: 'ignore'})
    } catch {
      return ctx.skip('SKIPPED: cannot mount a tmpfs (needs root) to fill a file system')
    }
    try {
      const ini = embeddedIni(dir)
      const migrated = await runCli(['migrate', '--ini', ini])
      expect(migrated.code, migrated.stderr).toBe(0)
      const fill = (leaveBytes: number) => {
        const {bavail, bsize} = statfsSync(dir)
        writeFileSync(path.join(dir, `filler-${randomBytes(4).toString('hex')}`), Buffer.alloc(Math.max(0, bavail * bsize - leaveBytes)))
      }
      // Room for the lock file, not for the rows.
      fill(8192)
      const user = await runCli(['create-user', '--ini', ini, '-u', 'carol', '--generate-password', '--json'])
      expect(user.code, user.stdout + user.stderr).toBe(1)
      expect(JSON.parse(user.stdout).error).toMatchObject({code: 'KINTO_DB_DISK_FULL', message: expect.stringMatching(/^The database has no space left to write \(.*\); the transaction was rolled back\.$/)})
      // No room at all: the lock files cannot be filled, and none is left to hold off the next command.
      try {
        fill(0)
      } catch {}
      const status = await runCli(['db', 'status', '--ini', ini, '--json'])
      expect(status.code, status.stdout + status.stderr).toBe(1)
      expect(JSON.parse(status.stdout).error).toMatchObject({code: 'KINTO_DB_FOLDER_INVALID', message: expect.stringMatching(/: no space left on the device\.$/)})
      const toggle = await runCli(['readonly', 'on', '--ini', ini, '--json'])
      expect(toggle.code, toggle.stdout + toggle.stderr).toBe(1)
      expect(JSON.parse(toggle.stdout).error).toMatchObject({code: 'KINTO_CONFIG_WRITE_FAILED', message: `Cannot write ${ini}: no space left on the device; it was left as it was.`})
      expect(readdirSync(dir).filter((f) => f.endsWith('.lock'))).toEqual([])
      // A backup (of a database elsewhere) written to the full file system: said so, nothing left.
      const elsewhere = embeddedIni(tmp())
      expect((await runCli(['migrate', '--ini', elsewhere])).code).toBe(0)
      const file = path.join(dir, 'kinto.kbak')
      const backup = await runCli(['backup', '--ini', elsewhere, '-o', file, '--json'])
      expect(backup.code, backup.stdout + backup.stderr).toBe(1)
      expect(JSON.parse(backup.stdout).error).toMatchObject({code: 'KINTO_BACKUP_WRITE_FAILED', message: `Cannot write the backup ${file}: no space left on the device; nothing was left there.`})
      expect(readdirSync(dir).filter((f) => f.startsWith('kinto.kbak'))).toEqual([])
    } finally {
      execFileSync('umount', [dir], {stdio: 'ignore'})
    }
  }, 120_000)
})

describe('an embedded folder on a read-only file system', () => {
  it('is named as such, with a way out that works (not "run as the user that owns the folder")', async (ctx: TestContext) => {
    const dir = tmp()
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', dir], {stdio: 'ignore'})
    } catch {
      return ctx.skip('SKIPPED: cannot mount a tmpfs (needs root) to make a read-only file system')
    }
    try {
      const ini = embeddedIni(dir)
      expect((await runCli(['migrate', '--ini', ini])).code).toBe(0)
      execFileSync('mount', ['-o', 'remount,ro', dir], {stdio: 'ignore'})
      for (const args of [['db', 'status'], ['backup', '-o', path.join(tmp(), 'b.ndjson.gz')]]) {
        const r = await runCli([...args, '--ini', ini, '--json'])
        expect(r.code, r.stdout + r.stderr).toBe(1)
        expect(JSON.parse(r.stdout).error).toEqual({
          code: 'KINTO_DB_FOLDER_INVALID',
          message: `Cannot create the lock file ${path.join(dir, 'data')}.kinto-migrate.lock of the embedded database in ${path.join(dir, 'data')}: the file system is read-only.`,
          hint: 'Remount that file system read-write, or copy the embedded folder to a writable place and point the ini at the copy (the engine writes to its folder even to read it).',
        })
      }
    } finally {
      execFileSync('umount', [dir], {stdio: 'ignore'})
    }
  }, 120_000)
})

describe('an ini that cannot be written', () => {
  it('readonly, backoff and maintenance say KINTO_CONFIG_WRITE_FAILED and leave the ini as it was; migrate names the lock file it cannot make', async (ctx: TestContext) => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const before = readFileSync(ini, 'utf8')
    const frozen = freezeFolder(dir)
    if ('skip' in frozen) {
      return ctx.skip(frozen.skip)
    }
    try {
      for (const args of [['readonly', 'on'], ['backoff', '30'], ['maintenance', 'on']]) {
        const r = await runCli([...args, '--ini', ini, '--json'])
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
        const error = JSON.parse(r.stdout).error as {code: string; message: string}
        expect(error).toMatchObject({code: 'KINTO_CONFIG_WRITE_FAILED', message: `Cannot write ${ini}: permission denied; it was left as it was.`})
      }
      // The embedded folder's lock file goes beside it, in the same folder.
      const m = await runCli(['migrate', '--ini', ini, '--json'])
      expect(m.code, m.stdout + m.stderr).toBe(1)
      expect(JSON.parse(m.stdout).error).toMatchObject({
        code: 'KINTO_DB_FOLDER_INVALID',
        message: `Cannot create the lock file ${path.join(dir, 'data')}.kinto-migrate.lock of the embedded database in ${path.join(dir, 'data')}: permission denied.`,
      })
    } finally {
      frozen.undo()
    }
    expect(readFileSync(ini, 'utf8')).toBe(before)
    expect(readdirSync(dir)).toEqual(['kinto.ini'])
  }, 120_000)
})

describe('a missing schema is named as such, with the fix', () => {
  it('flush-cache, purge-deleted and create-user say KINTO_SCHEMA_MISSING and `kinto migrate`, not "report it as a bug"', async () => {
    const dir = tmp()
    const ini = embeddedIni(dir)
    const runs = [
      ['flush-cache', '--ini', ini, '--json'],
      ['purge-deleted', 'record', '10', '--ini', ini, '--json'],
      ['create-user', '-u', 'bob', '--password-stdin', '--ini', ini, '--json'],
    ]
    for (const args of runs) {
      const r = await runCliInProcess(args, {input: 'a-password\n'})
      expect(r.code, `${args[0]}: ${r.stdout}${r.stderr}`).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code, args[0]).toBe('KINTO_SCHEMA_MISSING')
      expect(error.hint).toContain(`kinto migrate --ini ${ini}`)
      expect(error.message).not.toMatch(/unexpected/)
    }
    // and in text, the same line as kinto start's
    const text = await runCliInProcess(['flush-cache', '--ini', ini])
    expect(text.stderr).toMatch(/^Error: The cache schema is not installed in embedded database in .*\.\nHint: Run `kinto migrate --ini /m)
  }, 120_000)
})

interface RoleRig {
  /** A role and a database of names of their own on the real server; neither exists yet. */
  role: string
  database: string
  /** A connection to the real server as its administrator. */
  admin: pg.Client
  /** An ini whose storage_url connects as the role (no password) to the database. */
  ini: string
}

/**
 * Runs `fn` with a role and a database name of its own on the real server (skipped without one);
 * whatever `fn` created of them is dropped after, pass or fail.
 */
async function withRoleRig(ctx: TestContext, prefix: string, fn: (rig: RoleRig) => Promise<void>): Promise<void> {
  if (!realServerUrl) {
    return ctx.skip('SKIPPED: KINTO_TEST_DATABASE_URL is not set (needs a real PostgreSQL server)')
  }
  const suffix = randomBytes(4).toString('hex')
  const role = `kinto_${prefix}_role_${suffix}`
  const database = `kinto_${prefix}_db_${suffix}`
  const admin = new pg.Client({connectionString: realServerUrl})
  await admin.connect()
  try {
    const url = new URL(realServerUrl)
    url.username = role
    url.password = ''
    url.pathname = `/${database}`
    const ini = path.join(tmp(), 'kinto.ini')
    writeFileSync(ini, `[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = ${url}\n`)
    await fn({role, database, admin, ini})
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  }
}

/** The owner of a database on the real server, or undefined when there is no such database. */
async function ownerOf(admin: pg.Client, database: string): Promise<string | undefined> {
  return (await admin.query<{o: string}>('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [database])).rows[0]?.o
}

describe('PostgreSQL roles', () => {
  it('migrate with a role that may not create in schema public names the role and the fix', (ctx) =>
    withRoleRig(ctx, 'low', async ({role, database, admin, ini}) => {
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const r = await runCliInProcess(['migrate', '--ini', ini, '--json'])
      expect(r.code).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code).toBe('KINTO_DB_PERMISSION')
      expect(error.message).toContain(`Role ${role} may not install the storage schema`)
      expect(error.hint).toContain(`GRANT CREATE ON SCHEMA public TO ${role}`)
    }), 60_000)

  it("migrate with a role that may create but owns none of the tables (upstream's schema installed by a superuser) says who must run it", (ctx) =>
    withRoleRig(ctx, 'nown', async ({role, database, admin, ini}) => {
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const ownerUrl = new URL(realServerUrl!)
      ownerUrl.pathname = `/${database}`
      const owner = new pg.Client({connectionString: ownerUrl.toString()})
      await owner.connect()
      try {
        await owner.query(readFileSync(path.join(repoRoot, 'test', 'fixtures', 'sql', 'storage_v020.sql'), 'utf8'))
        // the privileges an operator gives the application's role, short of ownership
        await owner.query(`GRANT CREATE ON SCHEMA public TO ${role}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
      } finally {
        await owner.end()
      }
      const r = await runCliInProcess(['migrate', '--ini', ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code).toBe('KINTO_DB_PERMISSION')
      expect(error.message).toMatch(new RegExp(`^Role ${role} may not change the storage schema in \\S+/${database}: must be owner of table records\\.$`))
      expect(error.hint).toContain('the role that owns the Kinto tables')
      expect(error.hint).toContain(`OWNER TO ${role}`)
      expect(error.hint).not.toContain('GRANT CREATE')
    }), 60_000)

  /** A valid backup file with these objects rows and no other (as kinto backup writes it). */
  async function emptyBackup(objects: unknown[][] = []): Promise<string> {
    const header = {format: FORMAT_NAME, version: FORMAT_VERSION, created_at: new Date().toISOString(), kinto_ops: '0.1.0', source: {storage: 'postgresql', permission: 'postgresql'}, schema: {storage: CURRENT_VERSIONS.storage, permission: CURRENT_VERSIONS.permission}}
    const chunks: Buffer[] = []
    const rows = (async function* () {
      if (objects.length > 0) yield {table: 'objects' as const, rows: objects}
    })()
    for await (const chunk of encodeBackup(header as never, rows, {})) chunks.push(chunk)
    const file = path.join(tmp(), 'empty.ndjson.gz')
    writeFileSync(file, gzipSync(Buffer.concat(chunks)))
    return file
  }

  /** The rig's ini with the permission backend on the same database (what restore needs). */
  function withPermission(ini: string): string {
    const url = /kinto\.storage_url = (.*)/.exec(readFileSync(ini, 'utf8'))![1]
    writeFileSync(ini, `${readFileSync(ini, 'utf8')}kinto.permission_backend = kinto.core.permission.postgresql\nkinto.permission_url = ${url}\n`)
    return ini
  }

  it('restore with a role that may not create in schema public names the role and the fix', (ctx) =>
    withRoleRig(ctx, 'rlow', async ({role, database, admin, ini}) => {
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const r = await runCliInProcess(['restore', await emptyBackup(), '--ini', withPermission(ini), '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
      expect(error.code).toBe('KINTO_DB_PERMISSION')
      expect(error.message).toContain(`Role ${role} may not install the storage schema`)
      expect(error.hint).toContain(`GRANT CREATE ON SCHEMA public TO ${role}`)
    }), 60_000)

  it('restore and migrate with a role that may not read the installed schema name the role, not a bug', (ctx) =>
    withRoleRig(ctx, 'rread', async ({role, database, admin, ini}) => {
      await admin.query(`CREATE ROLE ${role} LOGIN`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const ownerUrl = new URL(realServerUrl!)
      ownerUrl.pathname = `/${database}`
      const ownerIni = path.join(tmp(), 'kinto.ini')
      writeFileSync(ownerIni, `[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = ${ownerUrl}\n`)
      withPermission(ownerIni)
      withPermission(ini)
      const installed = await runCliInProcess(['migrate', '--ini', ownerIni])
      expect(installed.code, installed.stderr).toBe(0)
      for (const args of [['restore', await emptyBackup()], ['migrate'], ['migrate', '--check']]) {
        const r = await runCliInProcess([...args, '--ini', ini, '--json'])
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
        const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
        expect(error.code, args.join(' ')).toBe('KINTO_DB_PERMISSION')
        expect(error.message).toContain(`Role ${role} may not read the storage schema`)
        expect(error.hint).toContain('owner')
      }
    }), 90_000)

  it('restore and migrate into a read-only database (a standby, default_transaction_read_only) say so, not a bug', (ctx) =>
    withRoleRig(ctx, 'rdo', async ({database, admin, ini}) => {
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      await admin.query(`ALTER DATABASE ${database} SET default_transaction_read_only = on`)
      const url = new URL(realServerUrl!)
      url.pathname = `/${database}`
      writeFileSync(ini, `[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = ${url}\n`)
      withPermission(ini)
      for (const args of [['restore', await emptyBackup()], ['migrate']]) {
        const r = await runCliInProcess([...args, '--ini', ini, '--json'])
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1)
        const error = JSON.parse(r.stdout).error as {code: string; message: string; hint: string}
        expect(error.code, args.join(' ')).toBe('KINTO_DB_READONLY')
        expect(error.message).toContain(`is read-only`)
        expect(error.hint).toContain('primary')
      }
      // the schema installed while writable, then the database turned read-only: the rows are refused as such
      await admin.query(`ALTER DATABASE ${database} RESET default_transaction_read_only`)
      expect((await runCliInProcess(['migrate', '--ini', ini])).code).toBe(0)
      await admin.query(`ALTER DATABASE ${database} SET default_transaction_read_only = on`)
      const r = await runCliInProcess(['restore', await emptyBackup([['b1', '', 'bucket', '2026-01-01 00:00:00.001', false, '{}']]), '--ini', ini, '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      expect(JSON.parse(r.stdout).error.code).toBe('KINTO_DB_READONLY')
    }), 90_000)

  it('db create creates the owner role that does not exist (with the URL\'s password), and fixes the owner of an existing database', (ctx) =>
    withRoleRig(ctx, 'owner', async ({role, database, admin, ini}) => {
      const owner = () => ownerOf(admin, database)
      const adminUrl = new URL(realServerUrl!)
      adminUrl.pathname = '/postgres'
      // the URL with a password (a '/' in it, as generated base64 passwords have)
      const password = `s3cr/et-${randomBytes(6).toString('hex')}`
      const withPassword = path.join(tmp(), 'kinto.ini')
      writeFileSync(withPassword, readFileSync(ini, 'utf8').replace(`://${role}@`, `://${role}:${password}@`))
      const made = await runCliInProcess(['db', 'create', '--ini', withPassword, '--admin-url', adminUrl.toString(), '--json'])
      expect(made.code, made.stderr).toBe(0)
      const result = JSON.parse(made.stdout)
      expect(result).toMatchObject({created: true, owner: role, roleCreated: true})
      expect(result.statements[0]).toBe(`CREATE ROLE "${role}" LOGIN PASSWORD '***'`)
      expect(made.stdout + made.stderr).not.toContain(password)
      expect(await owner()).toBe(role)
      // the role logs in; its stored password is a SCRAM verifier of the URL's
      const stored = (await admin.query<{p: string; login: boolean}>('SELECT rolpassword AS p, rolcanlogin AS login FROM pg_authid WHERE rolname = $1', [role])).rows[0]
      expect(stored.login).toBe(true)
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored.p)!
      expect(stored.p).toBe(scramVerifier(password, Buffer.from(m[2], 'base64'), Number(m[1])))
      // the database is the role's: migrate as the role installs the schema
      const migrated = await runCliInProcess(['migrate', '--ini', withPassword])
      expect(migrated.code, migrated.stderr).toBe(0)
      // again: nothing to create
      const again = await runCliInProcess(['db', 'create', '--ini', withPassword, '--admin-url', adminUrl.toString(), '--json'])
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse(again.stdout)).toMatchObject({created: false, owner: role})
      expect(JSON.parse(again.stdout).roleCreated).toBeUndefined()

      // a database created by hand (owned by the admin): a rerun gives it to the role
      await admin.query(`DROP DATABASE ${database} WITH (FORCE)`)
      await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`)
      const fixed = await runCliInProcess(['db', 'create', '--ini', ini, '--admin-url', adminUrl.toString(), '--json'])
      expect(fixed.code, fixed.stderr).toBe(0)
      expect(JSON.parse(fixed.stdout)).toMatchObject({created: false, owner: role, ownerChanged: true})
      expect(await owner()).toBe(role)
    }), 60_000)

  it('db create refuses an owner role it may not create (an admin without CREATEROLE), creating nothing', (ctx) =>
    withRoleRig(ctx, 'norole', async ({role, database, admin, ini}) => {
      const creator = `${role}_dbonly`
      await admin.query(`CREATE ROLE ${creator} LOGIN CREATEDB`)
      try {
        const adminUrl = new URL(realServerUrl!)
        adminUrl.username = creator
        adminUrl.password = ''
        adminUrl.pathname = '/postgres'
        const r = await runCliInProcess(['db', 'create', '--ini', ini, '--admin-url', adminUrl.toString(), '--json'])
        expect(r.code, r.stdout + r.stderr).toBe(1)
        const error = JSON.parse(r.stdout).error
        expect(error.code).toBe('KINTO_DB_ROLE_MISSING')
        expect(error.message).toContain(`The role ${role} of kinto.storage_url does not exist on`)
        expect(error.message).toContain(`${creator} may not create it`)
        expect(error.hint).toContain('CREATEROLE')
        expect(await ownerOf(admin, database)).toBeUndefined()
        expect((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount).toBe(0)
      } finally {
        await admin.query(`DROP ROLE IF EXISTS ${creator}`)
      }
    }), 60_000)
})

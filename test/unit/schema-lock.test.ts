import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {ExitCode, KintoError} from '../../src/lib/errors.js'
import {processIdentity} from '../../src/lib/process.js'
import {MIGRATION_LOCK_KEY, MIGRATION_LOCK_NAME, pgliteLockPath, readFileLockHolder, withFileLock} from '../../src/lib/schema/lock.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
})
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kinto-lock-'))
  dirs.push(d)
  return d
}

describe('migration lock', () => {
  it('uses the documented key: int64 of the first 8 bytes of sha256("kinto-ops:migrate")', () => {
    const digest = createHash('sha256').update(MIGRATION_LOCK_NAME).digest()
    expect(MIGRATION_LOCK_NAME).toBe('kinto-ops:migrate')
    expect(MIGRATION_LOCK_KEY).toBe(digest.readBigInt64BE(0).toString())
  })

  it('file lock: exclusive, released after, and released on error', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    expect(lock.endsWith('data.kinto-migrate.lock')).toBe(true)
    await withFileLock(lock, {target: 't'}, async () => {
      expect(readFileSync(lock, 'utf8')).toBe(String(process.pid))
    })
    expect(existsSync(lock)).toBe(false)
    await expect(withFileLock(lock, {target: 't'}, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(existsSync(lock)).toBe(false)
  })

  it('file lock: serialises concurrent holders in one process', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    let inside = 0
    let maxInside = 0
    await Promise.all(
      Array.from({length: 4}, () =>
        withFileLock(lock, {target: 't', pollMs: 5}, async () => {
          // the pid in the file is ours for all four: exclusivity comes from the 'wx' create
          inside++
          maxInside = Math.max(maxInside, inside)
          await new Promise((r) => setTimeout(r, 20))
          inside--
        }),
      ),
    )
    expect(maxInside).toBe(1)
  })

  it('file lock: a live holder makes --no-wait fail at once and a wait time out, both with exit 4', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    writeFileSync(lock, String(process.ppid)) // a live process that is not us
    const waits: string[] = []
    const noWait = await withFileLock(lock, {target: 'db', noWait: true}, async () => 1).catch((e: unknown) => e)
    expect(noWait).toBeInstanceOf(KintoError)
    expect((noWait as KintoError).exit).toBe(ExitCode.LOCK_TIMEOUT)
    expect((noWait as KintoError).message).toMatch(new RegExp(`held by process ${process.ppid}`))
    const timeout = await withFileLock(lock, {target: 'db', timeoutMs: 200, pollMs: 20, onWait: (h) => waits.push(h)}, async () => 1).catch(
      (e: unknown) => e,
    )
    expect((timeout as KintoError).code).toBe('KINTO_MIGRATE_LOCK_TIMEOUT')
    expect(waits).toEqual([`process ${process.ppid}`])
    expect(readFileSync(lock, 'utf8')).toBe(String(process.ppid)) // not ours: left alone
  })

  it('file lock: takes over a lock left by a dead process', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    writeFileSync(lock, '999999999')
    expect(await withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).toBe('ran')
    expect(existsSync(lock)).toBe(false)
  })

  it('file lock: takes over an empty lock file some seconds old (its writer could not write its pid: a full disk)', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    writeFileSync(lock, '')
    const old = new Date(Date.now() - 60_000)
    utimesSync(lock, old, old)
    // Before: every command waited for it until its timeout, then said a migration held it.
    expect(await withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).toBe('ran')
    expect(existsSync(lock)).toBe(false)
  })

  it('file lock: a fresh empty lock file is a writer about to write its pid: waited for', async () => {
    const lock = pgliteLockPath(path.join(tmp(), 'data'))
    writeFileSync(lock, '')
    await expect(withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).rejects.toMatchObject({code: 'KINTO_MIGRATE_LOCKED'})
    expect(existsSync(lock)).toBe(true)
  })

  describe('a server lock whose pid now names another process (a reboot, a reused pid)', () => {
    const serverLock = (pid: number, identity: unknown) => {
      const lock = pgliteLockPath(path.join(tmp(), 'data'))
      writeFileSync(lock, `${pid}\n${JSON.stringify({command: 'kinto start', serves: true, detail: '/srv/kinto.ini', process: identity})}\n`)
      return lock
    }
    const me = processIdentity(process.ppid)
    const noProc = me === null ? ' (SKIPPED: no /proc to read a process identity from)' : ''

    it.skipIf(me === null)(`is stale when that pid started at another time: taken over (it said "open in a running server" for ever)${noProc}`, async () => {
      const lock = serverLock(process.ppid, {...me, start: '1'})
      expect(readFileLockHolder(lock)).toBeNull()
      expect(await withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).toBe('ran')
    })

    it.skipIf(me === null)(`is stale after a reboot (another boot id), whatever runs with that pid now${noProc}`, async () => {
      const lock = serverLock(process.ppid, {...me, boot: '00000000-0000-0000-0000-000000000000'})
      expect(await withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).toBe('ran')
    })

    it.skipIf(me === null)(`holds while the very process that wrote it runs, and when its pid is of another namespace (cannot be checked)${noProc}`, async () => {
      for (const identity of [me, {...me, start: '1', pidns: 'pid:[1]'}]) {
        const lock = serverLock(process.ppid, identity)
        expect(readFileLockHolder(lock)?.pid).toBe(process.ppid)
        await expect(withFileLock(lock, {target: 'db', noWait: true}, async () => 'ran')).rejects.toMatchObject({code: 'KINTO_DB_IN_USE'})
      }
    })

    it.skipIf(me === null)(`is written by a server with its own identity${noProc}`, async () => {
      const lock = pgliteLockPath(path.join(tmp(), 'data'))
      await withFileLock(lock, {target: 'db', owner: {command: 'kinto start', serves: true}}, async () => {
        const [, owner] = readFileSync(lock, 'utf8').split('\n')
        expect(JSON.parse(owner!).process).toEqual(processIdentity(process.pid))
      })
    })
  })
})

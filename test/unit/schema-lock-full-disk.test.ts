/**
 * A lock file whose pid cannot be written (a full disk, a quota): the file is removed again and
 * the error says why, instead of an empty lock file that held every later command off (each
 * waited for its timeout, then blamed "another migration").
 */
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

const fault = vi.hoisted(() => ({full: false}))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
    if (fault.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC', syscall: 'write'})
    return (fs.writeSync as (...a: unknown[]) => number)(...args)
  }) as typeof fs.writeSync
  return {...fs, default: {...fs, writeSync}, writeSync}
})

const {acquireFileLock, pgliteLockPath} = await import('../../src/lib/schema/lock.js')

const dirs: string[] = []
afterEach(() => {
  fault.full = false
  for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
})

describe('lock file on a full disk', () => {
  it('is removed again, and the error names the cause; the next try, with space, takes the lock at once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-lock-full-'))
    dirs.push(dir)
    const lock = pgliteLockPath(path.join(dir, 'data'))
    fault.full = true
    await expect(acquireFileLock(lock, {target: 'embedded database in data', noWait: true})).rejects.toMatchObject({
      code: 'KINTO_DB_FOLDER_INVALID',
      message: `Cannot create the lock file ${lock} of the embedded database in data: no space left on the device.`,
    })
    expect(existsSync(lock)).toBe(false)
    fault.full = false
    const release = await acquireFileLock(lock, {target: 'embedded database in data', noWait: true})
    release()
    expect(existsSync(lock)).toBe(false)
  })
})

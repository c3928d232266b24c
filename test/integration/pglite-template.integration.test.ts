/**
 * New embedded folders: unpacked from the build's template (initdb only when it cannot be used),
 * complete or not at all.
 */
import {copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {openDatabase} from '../../src/lib/db/index.js'
import {isDatabaseFolder, loadTemplate, prepareDataDir, readTar, stampPath} from '../../src/lib/db/pglite-template.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('pglite-engine')

describe('new folders from the template', () => {
  const {template} = loadTemplate()
  /** A stand-in for initdb: a folder that PGlite would resume, made the slow way. */
  const fakeInitdb = (calls: string[]) => async (dir: string) => {
    calls.push(dir)
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'PG_VERSION'), '18\n')
  }

  it('the test run has a template (made by the build, or by global-setup for this run)', () => {
    expect(template).not.toBeNull()
    const entries = readTar(gunzipSync(template!.bytes))
    expect(entries.find((e) => e.name === 'PG_VERSION')?.data.toString().trim()).toBe(template!.stamp.pg)
  })

  it('unpacks into a missing or empty folder without initdb, under a temporary name first', async () => {
    const parent = tmp()
    const calls: string[] = []
    const target = path.join(parent, 'nested', 'data')
    expect(await prepareDataDir(target, fakeInitdb(calls))).toEqual({how: 'template'})
    expect(calls).toEqual([])
    expect(readFileSync(path.join(target, 'PG_VERSION'), 'utf8').trim()).toBe(template!.stamp.pg)
    expect(readdirSync(path.join(parent, 'nested'))).toEqual(['data'])

    const empty = path.join(parent, 'empty')
    mkdirSync(empty)
    expect(await prepareDataDir(empty, fakeInitdb(calls))).toEqual({how: 'template'})
    expect(isDatabaseFolder(empty)).toBe(true)
    // a database is left as it is
    expect(await prepareDataDir(empty, fakeInitdb(calls))).toEqual({how: 'existing'})
    expect(calls).toEqual([])
  })

  it('a folder unpacked from it is a working, empty database', async () => {
    const dir = path.join(tmp(), 'data')
    const c = openDatabase(`pglite:${dir}`)
    try {
      const r = await c.query<{n: number; version: string}>(
        "SELECT count(*)::int AS n, current_setting('server_version_num') AS version FROM pg_tables WHERE schemaname = 'public'",
      )
      expect(r.rows[0].n).toBe(0)
      expect(r.rows[0].version.slice(0, 2)).toBe(template!.stamp.pg)
    } finally {
      await c.close()
    }
  })

  it('fills the folder a symlink points to, keeping the link', async () => {
    const parent = tmp()
    mkdirSync(path.join(parent, 'disk'))
    symlinkSync(path.join(parent, 'disk'), path.join(parent, 'data'))
    expect(await prepareDataDir(path.join(parent, 'data'), fakeInitdb([]))).toEqual({how: 'template'})
    expect(lstatSync(path.join(parent, 'data')).isSymbolicLink()).toBe(true)
    expect(isDatabaseFolder(path.join(parent, 'disk'))).toBe(true)
  })

  it('leaves a folder with other files in it alone', async () => {
    const dir = path.join(tmp(), 'data')
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'notes.txt'), 'mine')
    const calls: string[] = []
    expect(await prepareDataDir(dir, fakeInitdb(calls))).toEqual({how: 'existing'})
    expect(readdirSync(dir)).toEqual(['notes.txt'])
    expect(calls).toEqual([])
  })

  it('runs initdb (atomically) when the template is of another PGlite release, missing or unreadable', async () => {
    const parent = tmp()
    const other = path.join(parent, 'other.tar.gz')
    copyFileSync(template!.file, other)
    writeFileSync(stampPath(other), JSON.stringify({pglite: '0.0.1', pg: template!.stamp.pg}))
    const broken = path.join(parent, 'broken.tar.gz')
    writeFileSync(broken, 'not a tarball')
    writeFileSync(stampPath(broken), JSON.stringify(template!.stamp))

    const cases: Array<[string, RegExp]> = [
      [other, /made by PGlite 0\.0\.1/],
      [path.join(parent, 'missing.tar.gz'), /cannot be read \(ENOENT\)/],
      [broken, /could not be unpacked/],
    ]
    for (const [file, reason] of cases) {
      const calls: string[] = []
      const dir = path.join(parent, `db-${path.basename(file)}`)
      const r = await prepareDataDir(dir, fakeInitdb(calls), file)
      expect(r.how).toBe('initdb')
      expect(r.reason).toMatch(reason)
      // initdb ran in a temporary sibling, renamed into place when done
      expect(calls).toHaveLength(1)
      expect(path.dirname(calls[0])).toBe(parent)
      expect(calls[0]).not.toBe(dir)
      expect(existsSync(calls[0])).toBe(false)
      expect(isDatabaseFolder(dir)).toBe(true)
    }
  })

  it('removes what a crashed run left under a temporary name, not what a live one is making', async () => {
    const parent = tmp()
    const dead = path.join(parent, '.data.new-999999999-0123abcd')
    const live = path.join(parent, `.data.new-${process.pid}-89abcdef`)
    for (const d of [dead, live]) {
      mkdirSync(d)
      writeFileSync(path.join(d, 'PG_VERSION'), '18\n')
    }
    expect(await prepareDataDir(path.join(parent, 'data'), fakeInitdb([]))).toEqual({how: 'template'})
    expect(readdirSync(parent).sort()).toEqual([path.basename(live), 'data'])
  })

  it('an initdb that fails leaves no folder behind', async () => {
    const parent = tmp()
    const dir = path.join(parent, 'data')
    const failing = async (tmpDir: string) => {
      mkdirSync(tmpDir)
      writeFileSync(path.join(tmpDir, 'PG_VERSION'), '18\n')
      throw new Error('initdb died')
    }
    await expect(prepareDataDir(dir, failing, path.join(parent, 'missing.tar.gz'))).rejects.toThrow('initdb died')
    expect(readdirSync(parent)).toEqual([])
  })
})

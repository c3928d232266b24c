/** writeFileAtomic: what it refuses to replace, whatever `overwrite` says. */
import {execFileSync} from 'node:child_process'
import {lstatSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {writeFileAtomic} from '../../src/lib/config/atomic.js'
import {ExitCode} from '../../src/lib/errors.js'
import {tempFolders} from '../helpers/tmp.js'

const folder = tempFolders('atomic')

describe('writeFileAtomic', () => {
  it('replaces a regular file, and the target of a link to one (the link kept)', () => {
    const dir = folder()
    const file = path.join(dir, 'a.ini')
    writeFileSync(file, 'old')
    symlinkSync(file, path.join(dir, 'link.ini'))
    writeFileAtomic(path.join(dir, 'link.ini'), 'new', {mode: 0o600})
    expect(readFileSync(file, 'utf8')).toBe('new')
    expect(lstatSync(path.join(dir, 'link.ini')).isSymbolicLink()).toBe(true)
  })

  it('leaves a named pipe, a link to one and a dangling link as they were, even with overwrite', () => {
    const dir = folder()
    const fifo = path.join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    symlinkSync(fifo, path.join(dir, 'to-fifo'))
    symlinkSync(path.join(dir, 'gone', 'x'), path.join(dir, 'dangling'))
    for (const [name, kind] of [
      ['fifo', 'a named pipe'],
      ['to-fifo', 'a named pipe'],
      ['dangling', 'a symbolic link that leads nowhere'],
    ]) {
      const file = path.join(dir, name)
      let caught: unknown
      try {
        writeFileAtomic(file, 'text', {mode: 0o600, overwrite: true})
      } catch (error) {
        caught = error
      }
      expect(caught, name).toMatchObject({code: 'KINTO_NOT_A_FILE', exit: ExitCode.USAGE})
      expect((caught as Error).message, name).toContain(kind)
    }
    expect(lstatSync(fifo).isFIFO()).toBe(true)
    expect(lstatSync(path.join(dir, 'dangling')).isSymbolicLink()).toBe(true)
  })
})

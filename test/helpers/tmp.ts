import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll} from 'vitest'

/** A maker of temporary folders named `kinto-<prefix>-…`, all removed when the test file ends. */
export function tempFolders(prefix: string): () => string {
  const made: string[] = []
  afterAll(() => {
    for (const d of made) rmSync(d, {recursive: true, force: true})
  })
  return () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), `kinto-${prefix}-`))
    made.push(dir)
    return dir
  }
}

/** A maker of files, each alone in a new folder of tempFolders(prefix): file(name, text) writes it and gives its path. */
export function tempFiles(prefix: string): (name: string, text: string) => string {
  const folder = tempFolders(prefix)
  return (name, text) => {
    const file = path.join(folder(), name)
    writeFileSync(file, text)
    return file
  }
}

import {mkdtempSync, rmSync} from 'node:fs'
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

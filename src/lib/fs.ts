/** File-system helpers shared by the areas of src/lib. */
import {existsSync, mkdirSync} from 'node:fs'
import path from 'node:path'

/**
 * `mkdir -p`: makes dir and its missing parents (mode for each one made). Node's own recursive
 * mkdir never returns where mkdir answers ENOENT under a parent that exists (`/proc/x`): it makes
 * the parent again and again. Here each missing folder is made in turn, from the nearest one that
 * exists, and any refusal is thrown.
 */
export function mkdirs(dir: string, mode?: number): void {
  const missing: string[] = []
  for (let current = path.resolve(dir); !existsSync(current); current = path.dirname(current)) {
    missing.push(current)
    if (path.dirname(current) === current) break
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder, mode === undefined ? undefined : {mode})
    } catch (error) {
      // Made meanwhile by another process (two commands starting together).
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  }
}

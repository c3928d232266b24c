/** File-system helpers shared by the areas of src/lib. */
import {existsSync, lstatSync, mkdirSync, statSync} from 'node:fs'
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

/**
 * What stands at `file` when it is not a regular file, in words (`a folder`, `a symbolic link`,
 * `a named pipe`, `a socket`, `a device`), or null (a regular file, or nothing there). A link is
 * not followed.
 */
export function nonRegularKind(file: string): string | null {
  let st
  try {
    st = lstatSync(file)
  } catch {
    return null
  }
  if (st.isFile()) return null
  if (st.isDirectory()) return 'a folder'
  if (st.isSymbolicLink()) return 'a symbolic link'
  if (st.isFIFO()) return 'a named pipe'
  if (st.isSocket()) return 'a socket'
  return 'a device'
}

/**
 * Why a file cannot be written in folder `dir`: `missing` (no such folder), the reason in words
 * (`<dir> is a file, not a folder`, `a folder on its path is a file`), or null (a folder, or one
 * that cannot be looked at: the write then says why).
 */
export function folderProblem(dir: string): 'missing' | string | null {
  try {
    return statSync(dir).isDirectory() ? null : `${dir} is a file, not a folder`
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') return 'a folder on its path is a file'
    return code === 'ENOENT' ? 'missing' : null
  }
}

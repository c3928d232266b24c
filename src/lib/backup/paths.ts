/** What stands where `kinto backup` writes its file, checked before anything is read. */
import {lstatSync, statSync} from 'node:fs'
import path from 'node:path'

/** What stands at `file` when it is not a regular file (a folder, a device, a link…), or null. */
export function nonRegular(file: string): string | null {
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
 * What is wrong with the folder `file` would go in (missing, a file, a file on its path), or null
 * (a folder, or one that cannot be looked at: the write then says why).
 */
export function parentProblem(file: string): string | null {
  const dir = path.dirname(file)
  try {
    return statSync(dir).isDirectory() ? null : `Cannot write ${file}: ${dir} is a file, not a folder.`
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') return `Cannot write ${file}: a folder on its path is a file.`
    return code === 'ENOENT' ? `The folder of ${file} does not exist.` : null
  }
}

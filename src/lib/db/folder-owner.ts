/**
 * Who owns an embedded database folder. The engine writes files into its folder whenever it opens
 * it, as the user running the command: `sudo kinto …` on the folder of a service user leaves files
 * of root there, and that user's server can no longer open it. PostgreSQL refuses a data directory
 * its user does not own for the same reason ("data directory has wrong ownership").
 */
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'

/** The user name of `uid` (from /etc/passwd), or `uid N`. */
export function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':')
      if (name && Number(id) === uid) return name
    }
  } catch {}
  return `uid ${uid}`
}

function currentUid(): number | null {
  return typeof process.geteuid === 'function' ? process.geteuid() : null
}

/** The owner of dir when it is not the user running this process (null: ours, or not known). */
export function foreignOwner(dir: string): number | null {
  const me = currentUid()
  if (me === null) return null
  try {
    const uid = statSync(dir).uid
    return uid === me ? null : uid
  } catch {
    return null
  }
}

/** A file under dir that the user running this process does not own (the first found), or null. */
export function foreignFile(dir: string, limit = 20_000): {file: string; uid: number} | null {
  const me = currentUid()
  if (me === null) return null
  const queue = [dir]
  let seen = 0
  while (queue.length > 0 && seen < limit) {
    const current = queue.shift()!
    let names: string[]
    try {
      names = readdirSync(current)
    } catch {
      continue
    }
    for (const name of names) {
      const file = path.join(current, name)
      seen++
      try {
        const st = statSync(file)
        if (st.uid !== me) return {file, uid: st.uid}
        if (st.isDirectory()) queue.push(file)
      } catch {}
    }
  }
  return null
}

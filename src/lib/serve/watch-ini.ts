/**
 * `kinto start --reload`: the ini watched, and reloaded when its content changes (as a SIGHUP
 * does). Upstream's `kinto start --reload` restarts the process on a change of its code or config;
 * ours takes what a reload takes (live settings) and says what needs a restart.
 */
import {realpathSync, watch} from 'node:fs'
import path from 'node:path'

import {sha256File} from '../runs/registry.js'

/** How long writes to the file must be quiet before it is read (an editor writes it in steps). */
const SETTLE_MS = 200

/**
 * Calls `onChange` once per change of the file's content. The folder is watched, not the file:
 * editors that save by writing a new file and renaming it over the old one replace the inode a
 * file watcher would follow, and a Kubernetes ConfigMap swaps a symlink (`..data`) beside the file,
 * under another name. So any event in the folder leads to the file being read once the folder is
 * quiet, and only a different content counts. A file missing or unreadable for a moment
 * (mid-rename) is no change. Returns the function that stops watching.
 */
export function watchIni(file: string, onChange: () => void, onError: (error: Error) => void): () => void {
  let last = hashOrNull(file)
  let timer: NodeJS.Timeout | undefined
  const settled = () => {
    timer = undefined
    const now = hashOrNull(file)
    if (now === null || now === last) return
    last = now
    onChange()
  }
  const changed = () => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(settled, SETTLE_MS)
  }
  // A symlinked ini is edited where it points: that folder is watched too.
  const folders = new Set([path.dirname(file), path.dirname(realPathOr(file))])
  const watchers = [...folders].map((folder) => watch(folder, {persistent: false}, changed).on('error', onError))
  return () => {
    if (timer) clearTimeout(timer)
    for (const w of watchers) w.close()
  }
}

function realPathOr(file: string): string {
  try {
    return realpathSync(file)
  } catch {
    return file
  }
}

function hashOrNull(file: string): string | null {
  try {
    return sha256File(file)
  } catch {
    return null
  }
}

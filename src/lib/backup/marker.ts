/**
 * The backup marker: `.kinto-backup` beside the ini, rewritten by every successful `kinto backup`
 * (time, file, counts). `kinto check` reads it to remind, once, when a deployment that keeps its
 * data in PostgreSQL (server or embedded folder) has no recent backup.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {writeFileAtomic} from '../config/atomic.js'
import type {Counts} from './format.js'

export const MARKER_NAME = '.kinto-backup'
/** A backup older than this is not recent (kinto check). */
export const RECENT_BACKUP_DAYS = 7

export interface BackupMarker {
  /** ISO time of the snapshot. */
  at: string
  file: string
  sha256: string
  counts: Counts
}

export const markerPath = (iniDir: string) => path.join(iniDir, MARKER_NAME)

export function writeMarker(iniDir: string, marker: BackupMarker): string {
  return writeFileAtomic(markerPath(iniDir), JSON.stringify(marker, null, 2) + '\n', {mode: 0o644})
}

/** The marker, or null when there is none (or it cannot be read). */
export function readMarker(iniDir: string): BackupMarker | null {
  try {
    const m = JSON.parse(readFileSync(markerPath(iniDir), 'utf8')) as BackupMarker
    return typeof m?.at === 'string' && Number.isFinite(Date.parse(m.at)) ? m : null
  } catch {
    return null
  }
}

/**
 * New embedded databases without initdb. initdb of a PGlite folder takes 2.5–3 s; the cluster it
 * makes is the same every time for one PGlite release. So the build (`npm run build`) makes one
 * once — `dist/pglite-template.tar.gz`, PGlite's own dumpDataDir() tarball (4–5 MB) with a stamp
 * naming the PGlite release and PostgreSQL major that made it — and a new folder is unpacked from
 * it (~0.1 s). The template is used only when its stamp names the PGlite release installed and its
 * PG_VERSION matches the stamp; otherwise (missing, unreadable, another release) the folder is
 * made by a normal initdb. Either way the folder is made under a temporary sibling name and renamed
 * into place when complete, so a crash never leaves a half folder that later looks like a database.
 *
 * KINTO_PGLITE_TEMPLATE names another template tarball (its stamp beside it, `<file>.json`): the
 * test suite makes one when the build's is missing or stale.
 */
import {randomBytes} from 'node:crypto'
import {accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {gunzipSync} from 'node:zlib'

import {KintoError} from '../errors.js'
import {mkdirs} from '../fs.js'
import {lazy} from '../lazy.js'
import {processAlive} from '../process.js'
import {foreignFile, foreignOwner, userName} from './folder-owner.js'
import {shellArg} from '../text/shell.js'
import {docsFile} from '../version.js'

export interface TemplateStamp {
  /** @electric-sql/pglite version that made the template. */
  pglite: string
  /** Content of its PG_VERSION file (PostgreSQL major). */
  pg: string
}

export interface Template {
  file: string
  stamp: TemplateStamp
  /** The gzipped tarball. */
  bytes: Buffer
}

const TEMPLATE_FILE = 'pglite-template.tar.gz'

/** The installed @electric-sql/pglite version. */
export const pgliteVersion = lazy((): string => {
  // dist/index.cjs → the package folder (package.json itself is not exported)
  const pkg = path.join(path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..', 'package.json')
  return String(JSON.parse(readFileSync(pkg, 'utf8')).version)
})

/** Where the build puts the template: dist/ of this package (also when running from src/). */
export function shippedTemplatePath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = path.join(dir, 'package.json')
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'kinto-ops') return path.join(dir, 'dist', TEMPLATE_FILE)
      } catch {
        // not ours: keep looking
      }
    }
    const parent = path.dirname(dir)
    if (parent === dir) return path.join(path.dirname(fileURLToPath(import.meta.url)), TEMPLATE_FILE)
    dir = parent
  }
}

export const stampPath = (file: string) => `${file}.json`

/**
 * The template to use, or null with the reason (missing, unreadable, another release). Read once
 * per process (and per path).
 */
const loaded = new Map<string, Template | string>()
export function loadTemplate(file = process.env.KINTO_PGLITE_TEMPLATE || shippedTemplatePath()): {template: Template | null; reason?: string} {
  let entry = loaded.get(file)
  if (entry === undefined) {
    try {
      const stamp = JSON.parse(readFileSync(stampPath(file), 'utf8')) as TemplateStamp
      const version = pgliteVersion()
      if (stamp.pglite !== version) entry = `made by PGlite ${stamp.pglite}, not ${version}`
      else entry = {file, stamp, bytes: readFileSync(file)}
    } catch (error) {
      entry = `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`
    }
    loaded.set(file, entry)
  }
  return typeof entry === 'string' ? {template: null, reason: `${file} ${entry}`} : {template: entry}
}

interface TarEntry {
  name: string
  type: 'file' | 'dir'
  data: Buffer
}

/** The entries of a ustar archive (regular files and folders only; anything else is refused). */
export function readTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = []
  const text = (h: Buffer, from: number, to: number) => {
    const s = h.subarray(from, to)
    const end = s.indexOf(0)
    return s.subarray(0, end < 0 ? s.length : end).toString('utf8')
  }
  let off = 0
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512)
    if (h.every((b) => b === 0)) break
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]
    if (sum !== parseInt(text(h, 148, 156).trim(), 8)) throw new Error(`bad tar header checksum at ${off}`)
    const prefix = text(h, 257, 262) === 'ustar' ? text(h, 345, 500) : ''
    const name = (prefix ? `${prefix}/` : '') + text(h, 0, 100)
    const size = parseInt(text(h, 124, 136).trim() || '0', 8)
    const flag = String.fromCharCode(h[156] || 48)
    const parts = name.split('/').filter((p) => p !== '' && p !== '.')
    if (parts.some((p) => p === '..')) throw new Error(`tar entry outside the folder: ${name}`)
    if (flag !== '0' && flag !== '5') throw new Error(`unsupported tar entry type ${flag} (${name})`)
    if (off + 512 + size > tar.length) throw new Error(`truncated tar entry ${name}`)
    if (parts.length > 0) entries.push({name: parts.join('/'), type: flag === '5' ? 'dir' : 'file', data: tar.subarray(off + 512, off + 512 + size)})
    off += 512 + Math.ceil(size / 512) * 512
  }
  return entries
}

/** Unpacks the template into `dir` (which must not exist); throws when its content does not match its stamp. */
export function unpackTemplate(template: Template, dir: string): void {
  const entries = readTar(gunzipSync(template.bytes))
  const version = entries.find((e) => e.name === 'PG_VERSION')
  if (!version || version.data.toString('utf8').trim() !== template.stamp.pg) throw new Error(`${template.file}: PG_VERSION does not match its stamp`)
  mkdirSync(dir, {mode: 0o700})
  for (const e of entries) {
    const target = path.join(dir, e.name)
    if (e.type === 'dir') mkdirSync(target, {recursive: true, mode: 0o700})
    else {
      mkdirSync(path.dirname(target), {recursive: true, mode: 0o700})
      writeFileSync(target, e.data, {mode: 0o600})
    }
  }
}

/** A folder holds a database when PGlite would resume it (its PG_VERSION file). */
export function isDatabaseFolder(dir: string): boolean {
  return existsSync(path.join(dir, 'PG_VERSION'))
}

function folderError(dir: string, what: string, hint: string, cause?: unknown): KintoError {
  return new KintoError(`The embedded database folder ${dir} ${what}.`, {code: 'KINTO_DB_FOLDER_INVALID', hint, cause})
}

/**
 * Refuses a data path PGlite must not open: a file, or a folder with files but no database in it
 * (no PG_VERSION: a wrong path, or a damaged folder). PGlite would run initdb over such a folder,
 * and the files there would be lost. A missing or empty folder is fine (a new database).
 */
export function refuseForeignFolder(dir: string): void {
  let isDir: boolean
  try {
    isDir = statSync(dir).isDirectory()
  } catch {
    return
  }
  if (!isDir) throw folderError(dir, 'is not a folder', 'Point the storage URL (pglite:<folder>) at a folder.')
  // A folder this user cannot list looks empty of PG_VERSION: say what it is, not "no database".
  if (!accessible(dir)) throw unwritableFolder(dir)
  const owner = isDatabaseFolder(dir) ? foreignOwner(dir) : null
  if (owner !== null) {
    const me = userName(process.geteuid!())
    throw folderError(
      dir,
      `belongs to ${userName(owner)}, not to ${me}: the files the engine writes there on every opening would be ${me}'s, and ${userName(owner)}'s server could no longer open it`,
      `Run it as ${userName(owner)} (e.g. sudo -u ${userName(owner)} kinto …).`,
    )
  }
  if (!isDatabaseFolder(dir) && !isEmptyOrMissing(dir)) {
    throw folderError(
      dir,
      'holds files but no database (it has no PG_VERSION file); it was left as it is',
      'Point the storage URL at the folder of the database, or restore the database from a backup into a new folder (kinto restore).',
    )
  }
}

/**
 * Why PGlite could not open a database folder, as an error naming it: another PostgreSQL major
 * (a folder written by another PGlite release), read-only, or damaged.
 */
export function unopenableFolder(dir: string, error: unknown): KintoError {
  let version: string | null = null
  try {
    version = readFileSync(path.join(dir, 'PG_VERSION'), 'utf8').trim()
  } catch {
    // unreadable: said below
  }
  const embedded = loadTemplate().template?.stamp.pg ?? null
  if (version !== null && embedded !== null && version !== embedded) {
    return folderError(
      dir,
      `was written by PostgreSQL ${version}, and this kinto-ops embeds PostgreSQL ${embedded}`,
      `Back it up with the kinto-ops release that wrote it (kinto backup), then restore the file into a new folder with this one (kinto restore); see ${docsFile('upgrade.md')}.`,
      error,
    )
  }
  if (!accessible(dir)) return unwritableFolder(dir, error)
  // Files another user left (e.g. root, before commands refused a folder that is not theirs).
  const foreign = foreignFile(dir)
  if (foreign) {
    const me = userName(process.geteuid!())
    return folderError(
      dir,
      `cannot be opened: it holds files of ${userName(foreign.uid)} (${path.relative(dir, foreign.file)}), which ${me} may not be able to change`,
      `Give them back to ${me}: chown -R ${me} ${shellArg(dir)} (as root), then run this again.`,
      error,
    )
  }
  const reason = error instanceof Error && error.message && !/^Aborted\(/.test(error.message) ? error.message : 'the engine stopped while reading it'
  return folderError(dir, `cannot be opened (${reason}); it may be damaged`, 'Restore the database from a backup into a new folder (kinto restore); keep this folder for inspection.', error)
}

/** Whether this user may list, read and write in dir (the engine writes to it on every start). */
function accessible(dir: string): boolean {
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}

function unwritableFolder(dir: string, cause?: unknown): KintoError {
  return folderError(dir, 'cannot be read and written by this user', 'Run as the user that owns the folder, or fix its permissions (the engine writes to it on every start).', cause)
}

function isEmptyOrMissing(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
  }
}

/** A temporary sibling of dir, on the same file system (so that the rename is atomic). */
function siblingTemp(dir: string): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.new-${process.pid}-${randomBytes(4).toString('hex')}`)
}

/** Removes the temporary siblings of dir that a process which has since died left (a crash mid-way). */
function removeAbandoned(dir: string): void {
  const prefix = `.${path.basename(dir)}.new-`
  let names: string[]
  try {
    names = readdirSync(path.dirname(dir))
  } catch {
    return
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length)) : null
    if (m && !processAlive(Number(m[1]))) rmSync(path.join(path.dirname(dir), name), {recursive: true, force: true})
  }
}

/** Moves a complete folder into place; false when another process put one there first. */
function moveIntoPlace(tmp: string, dir: string): boolean {
  try {
    renameSync(tmp, dir) // replaces an empty folder
    return true
  } catch (error) {
    rmSync(tmp, {recursive: true, force: true})
    const code = (error as NodeJS.ErrnoException).code
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && isDatabaseFolder(dir)) return false
    throw error
  }
}

export type Initdb = (dir: string) => Promise<void>

export interface PrepareResult {
  /** template: unpacked; initdb: made by initdb; existing: nothing to do. */
  how: 'template' | 'initdb' | 'existing'
  /** Why the template was not used. */
  reason?: string
}

/**
 * Makes `dir` a new empty database when it is missing or an empty folder: from the template when
 * it can be used, else by `initdb` (which creates the folder it is given and must leave it closed).
 * A folder with anything else in it is left alone.
 */
export async function prepareDataDir(dir: string, initdb: Initdb, templateFile?: string): Promise<PrepareResult> {
  if (isDatabaseFolder(dir) || !isEmptyOrMissing(dir)) return {how: 'existing'}
  // a symlink to an empty folder: fill that folder (a rename would not replace the link)
  if (existsSync(dir)) dir = realpathSync(dir)
  mkdirs(path.dirname(dir))
  removeAbandoned(dir)
  const {template, reason} = loadTemplate(templateFile)
  let why = reason
  if (template) {
    const tmp = siblingTemp(dir)
    try {
      unpackTemplate(template, tmp)
      moveIntoPlace(tmp, dir)
      return {how: 'template'}
    } catch (error) {
      rmSync(tmp, {recursive: true, force: true})
      if (isDatabaseFolder(dir)) return {how: 'existing'}
      why = `${template.file} could not be unpacked: ${(error as Error).message}`
    }
  }
  const tmp = siblingTemp(dir)
  try {
    await initdb(tmp)
    moveIntoPlace(tmp, dir)
  } catch (error) {
    rmSync(tmp, {recursive: true, force: true})
    throw error
  }
  return {how: 'initdb', reason: why}
}

/**
 * Makes a template: initdb in a scratch folder, PGlite's dumpDataDir() tarball written (atomically)
 * to `file`, its stamp beside it. Used by the build and by the test suite's setup.
 */
export async function buildTemplate(file: string): Promise<TemplateStamp> {
  const {PGlite} = await import('@electric-sql/pglite')
  const scratch = path.join(os.tmpdir(), `kinto-pglite-template-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    const db = await PGlite.create(scratch)
    let bytes: Buffer
    try {
      bytes = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer())
    } finally {
      await db.close()
    }
    const stamp: TemplateStamp = {pglite: pgliteVersion(), pg: readFileSync(path.join(scratch, 'PG_VERSION'), 'utf8').trim()}
    mkdirs(path.dirname(file))
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, bytes)
    writeFileSync(`${tmp}.json`, JSON.stringify(stamp) + '\n')
    // stamp last: a template without its stamp is never used
    rmSync(stampPath(file), {force: true})
    renameSync(tmp, file)
    renameSync(`${tmp}.json`, stampPath(file))
    loaded.delete(file)
    return stamp
  } finally {
    rmSync(scratch, {recursive: true, force: true})
  }
}

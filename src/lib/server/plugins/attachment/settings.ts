/**
 * kinto-attachment's settings (`kinto.attachment.*`), read once when the plugin is included:
 * base_path (local storage, required), base_url, extra.base_url, folder, keep_old_files,
 * gzipped, randomize, filename_pattern, extensions, mimetypes, max_size_bytes, and the
 * per-bucket / per-collection overrides `attachment.resources.<bid>[.<cid>].<name>`.
 */
import path from 'node:path'

import {asBool, asInt, asString, type Settings} from '../../../config/settings.js'
import {KintoError} from '../../../errors.js'
import {docsFile} from '../../../version.js'

/** Allowed extensions by group name, as upstream (`kinto.attachment.extensions = default+video`). */
const EXTENSION_GROUPS: Record<string, string[]> = {
  documents: 'pdf rtf odf ods gnumeric abw doc docx xls xlsx'.split(' '),
  text: ['txt'],
  images: 'jpg jpe jpeg png gif svg bmp tiff'.split(' '),
  audio: 'wav mp3 aac ogg oga flac'.split(' '),
  video: 'mpeg 3gp avi divx dvr flv mp4 wmv'.split(' '),
  data: 'csv ini json plist xml yaml yml'.split(' '),
  scripts: 'js php pl py rb sh'.split(' '),
  archives: 'gz bz2 zip tar tgz txz 7z'.split(' '),
  executables: 'so exe dll'.split(' '),
}
EXTENSION_GROUPS.default = [...EXTENSION_GROUPS.documents, ...EXTENSION_GROUPS.text, ...EXTENSION_GROUPS.images, ...EXTENSION_GROUPS.data]
EXTENSION_GROUPS.any = []

/** Mimetypes upstream forces for some extensions, before `kinto.attachment.mimetypes`. */
const DEFAULT_MIMETYPES: Record<string, string> = {'.pem': 'application/x-pem-file', '.geojson': 'application/geojson'}

/** The settings that may differ per bucket or collection. */
export interface ResourceOptions {
  folder: string
  keepOldFiles: boolean
  gzipped: boolean
  randomize: boolean
  filenamePattern: string | null
  /** 0: no limit. */
  maxSizeBytes: number
}

const OVERRIDABLE = new Set(['folder', 'keep_old_files', 'gzipped', 'randomize', 'filename_pattern', 'max_size_bytes'])

export interface AttachmentSettings {
  basePath: string
  /** As configured ('' gives relative locations). */
  baseUrl: string
  /** What the capability advertises (extra.base_url or base_url, with a trailing slash). */
  capabilityBaseUrl: string | null
  /** Allowed extensions, lower-case, no dot; empty: any. */
  extensions: Set<string>
  /** Extension (with dot) → mimetype. */
  mimetypes: Record<string, string>
  global: ResourceOptions
  /** `/buckets/b` or `/buckets/b/collections/c` → the overrides given for it. */
  overrides: Map<string, Partial<ResourceOptions>>
}

/** `images+pdf`, `default`, `any`… → the set of extensions (empty: any). */
export function resolveExtensions(spec: string): Set<string> {
  const out = new Set<string>()
  for (const group of spec.split('+')) {
    const known = EXTENSION_GROUPS[group]
    if (known) for (const e of known) out.add(e)
    else for (const e of group.split(/\s+/).filter(Boolean)) out.add(e.toLowerCase())
  }
  return out
}

function configError(message: string): KintoError {
  return new KintoError(message, {code: 'KINTO_CONFIG_INVALID', hint: `See ${docsFile('attachments.md')} for the kinto.attachment.* settings.`})
}

function parseMimetypes(raw: string | null): Record<string, string> {
  const out = {...DEFAULT_MIMETYPES}
  if (!raw) return out
  for (const entry of raw.split(';').map((s) => s.trim()).filter(Boolean)) {
    const [ext, type, ...rest] = entry.split(':')
    if (!ext || !type || rest.length > 0) {
      throw configError(`Invalid kinto.attachment.mimetypes entry '${entry}': expected '.ext:type/subtype' entries separated by ';'.`)
    }
    out[ext.trim()] = type.trim()
  }
  return out
}

function readOption(settings: Settings, key: string, name: string): unknown {
  switch (name) {
    case 'folder': {
      // Ids hold no `/` nor `..`: whether the folder stays below base_path is known now.
      const folder = asString(settings, key) ?? ''
      const sample = path.posix.normalize(folder.replace(/\{(bucket_id|collection_id|id)\}/g, 'x').replace(/^\/+/, ''))
      if (sample === '..' || sample.startsWith('../')) throw configError(`Invalid value for '${key}': '${folder}' leaves kinto.attachment.base_path.`)
      return folder
    }
    case 'filename_pattern':
      return asString(settings, key) || null
    case 'max_size_bytes': {
      const n = asInt(settings, key, 0) ?? 0
      if (n < 0) throw configError(`Invalid value for '${key}': expected 0 (no limit) or a positive number of bytes.`)
      return n
    }
    default:
      return asBool(settings, key)
  }
}

const FIELD: Record<string, keyof ResourceOptions> = {
  folder: 'folder',
  keep_old_files: 'keepOldFiles',
  gzipped: 'gzipped',
  randomize: 'randomize',
  filename_pattern: 'filenamePattern',
  max_size_bytes: 'maxSizeBytes',
}

/** Reads and checks the settings (a KintoError for a missing base_path or a malformed override). */
export function readAttachmentSettings(settings: Settings): AttachmentSettings {
  const basePath = asString(settings, 'attachment.base_path')
  if (!basePath) {
    throw configError(
      'Attachment backend is not configured: set kinto.attachment.base_path (kinto-ops stores attachments on local disk only).',
    )
  }
  const global: ResourceOptions = {
    folder: readOption(settings, 'attachment.folder', 'folder') as string,
    keepOldFiles: readOption(settings, 'attachment.keep_old_files', 'keep_old_files') as boolean,
    gzipped: readOption(settings, 'attachment.gzipped', 'gzipped') as boolean,
    randomize: settings['attachment.randomize'] === undefined ? true : (readOption(settings, 'attachment.randomize', 'randomize') as boolean),
    filenamePattern: readOption(settings, 'attachment.filename_pattern', 'filename_pattern') as string | null,
    maxSizeBytes: readOption(settings, 'attachment.max_size_bytes', 'max_size_bytes') as number,
  }
  const overrides = new Map<string, Partial<ResourceOptions>>()
  for (const key of Object.keys(settings)) {
    if (!key.startsWith('attachment.resources.')) continue
    const parts = key.slice('attachment.resources.'.length).split('.')
    let uri: string
    if (parts.length === 3) uri = `/buckets/${parts[0]}/collections/${parts[1]}`
    else if (parts.length === 2) uri = `/buckets/${parts[0]}`
    else throw configError(`Configuration rule malformed: 'kinto.${key}'.`)
    const name = parts[parts.length - 1]
    if (!OVERRIDABLE.has(name)) throw configError(`'${name}' is not a supported setting name. Read 'kinto.${key}'.`)
    const entry = overrides.get(uri) ?? {}
    ;(entry as Record<string, unknown>)[FIELD[name]] = readOption(settings, key, name)
    overrides.set(uri, entry)
  }
  const baseUrl = asString(settings, 'attachment.base_url') ?? ''
  // As upstream: an empty base_url is advertised as '' (clients prefix relative locations with it).
  let capabilityBaseUrl = asString(settings, 'attachment.extra.base_url') ?? asString(settings, 'attachment.base_url')
  if (capabilityBaseUrl && !capabilityBaseUrl.endsWith('/')) capabilityBaseUrl += '/'
  return {
    basePath,
    baseUrl,
    capabilityBaseUrl,
    extensions: resolveExtensions(asString(settings, 'attachment.extensions') || 'default'),
    mimetypes: parseMimetypes(asString(settings, 'attachment.mimetypes')),
    global,
    overrides,
  }
}

/** The options that apply below a bucket and collection (collection over bucket over global). */
export function optionsFor(s: AttachmentSettings, bucketId: string, collectionId: string): ResourceOptions {
  return {...s.global, ...s.overrides.get(`/buckets/${bucketId}`), ...s.overrides.get(`/buckets/${bucketId}/collections/${collectionId}`)}
}

/** Python's urljoin for our case: a relative location below base_url ('' keeps it relative). */
export function locationUrl(baseUrl: string, relative: string): string {
  if (!baseUrl) return relative
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl)) return new URL(relative, baseUrl).href
  const resolved = new URL(relative, new URL(baseUrl, 'http://placeholder.invalid/'))
  return baseUrl.startsWith('/') ? resolved.pathname : resolved.pathname.slice(1)
}

/** The URL path below which base_url's files live (`/attachments/`), unless it is `/` or below the API. */
export function servedPrefix(baseUrl: string, routePrefix: string): string | null {
  if (!baseUrl) return null
  let pathname: string
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl)) pathname = new URL(baseUrl).pathname
  else if (baseUrl.startsWith('/')) pathname = baseUrl
  else return null
  if (!pathname.endsWith('/')) pathname = pathname.slice(0, pathname.lastIndexOf('/') + 1)
  if (pathname === '/' || pathname.startsWith(`/${routePrefix}/`)) return null
  return pathname
}

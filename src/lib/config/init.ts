/**
 * `kinto init`: writes a new Kinto ini from templates/kinto.ini, with upstream's layout and keys,
 * the chosen backends, and two fresh secrets. The file is created with mode 0600, atomically; an
 * existing file is only replaced with `force`.
 */
import {randomBytes} from 'node:crypto'
import {constants, copyFileSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'

import {describeDbUrl, maskUrl, parseDbUrl} from '../db/url.js'
import {KintoError, UsageError} from '../errors.js'
import {askInput, askPassword, askSelect} from '../interactive.js'
import {packageRoot, packageVersion} from '../version.js'
import {assertFilePath, configWriteError, FileExistsError, writeFileAtomic} from './atomic.js'
import {parseMemcachedHost, parseRedisUrl} from './cache-addresses.js'
import {parseIni} from './ini.js'
import {displayValue} from './validate.js'
import {shellArg} from '../text/shell.js'

export const STORAGE_CHOICES = ['embedded', 'postgresql', 'memory'] as const
export const CACHE_CHOICES = ['embedded', 'postgresql', 'memory', 'memcached', 'redis'] as const
export type StorageChoice = (typeof STORAGE_CHOICES)[number]
export type CacheChoice = (typeof CACHE_CHOICES)[number]

/** Upstream's `kinto init` PostgreSQL URL. */
/** The ini read when neither --ini nor KINTO_INI says otherwise (relative to the current folder). */
export const DEFAULT_INI_PATH = 'config/kinto.ini'

export const DEFAULT_POSTGRESQL_URL = 'postgresql://postgres:postgres@localhost/postgres'
/** The embedded database: folder kinto-data beside the ini, whatever the current folder. */
export const EMBEDDED_URL = 'pglite:%(here)s/kinto-data'
export const DEFAULT_MEMCACHED_HOSTS = '127.0.0.1:11211'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379/0'

/** Asks for what the flags did not say. Only given when a person can answer (canPrompt()). */
export interface InitPrompter {
  backend(defaultValue: StorageChoice): Promise<StorageChoice>
  storageUrl(defaultValue: string): Promise<string>
  cacheBackend(defaultValue: CacheChoice): Promise<CacheChoice>
  /** The Redis URL (cache backend redis). */
  cacheUrl(defaultValue: string): Promise<string>
  /** The memcached servers (cache backend memcached), host:port separated by spaces. */
  cacheHosts(defaultValue: string): Promise<string>
  /** The public URL clients use (https://host[:port]), or '' for none yet. */
  publicUrl(): Promise<string>
}

export interface InitOptions {
  /** Where to write (relative paths from `cwd`). */
  iniPath: string
  /** The --ini as given, repeated in the next steps unless every command reads it by default. */
  iniArg?: string
  cwd?: string
  backend?: StorageChoice
  cacheBackend?: CacheChoice
  /** redis://[:password@]host:port/db (cache backend redis). */
  cacheUrl?: string
  /** host:port entries separated by spaces or commas (cache backend memcached). */
  cacheHosts?: string
  /** PostgreSQL URL (backend postgresql), or a pglite: URL (backend embedded). */
  storageUrl?: string
  host?: string
  /** The URL clients use (https://kinto.example.com): written as kinto.http_scheme and kinto.http_host. */
  publicUrl?: string
  /** Turn kinto_attachment on, files stored in this folder (relative paths from `cwd`). */
  attachments?: string
  force?: boolean
  /** Asked for missing choices; without it, defaults are used. */
  prompter?: InitPrompter
  /** Lines telling what was chosen (the command prints them on stderr). */
  report?: (line: string) => void
  now?: Date
}

export interface InitResult {
  path: string
  backend: StorageChoice
  cacheBackend: CacheChoice
  host: string
  /** True when an existing file was replaced (--force). */
  replaced: boolean
  /** Where the replaced file was kept (its secrets and settings), when one was replaced. */
  previous?: string
  /** The commands that bring the new configuration into service, in order. */
  nextSteps: string[]
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0')
}

/** Local time as `Thu, 26 Nov 2026 12:55:11 +0000` (upstream's header timestamp format). */
export function formatTimestamp(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const off = -d.getTimezoneOffset()
  const sign = off >= 0 ? '+' : '-'
  const tz = `${sign}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`
  return (
    `${days[d.getDay()]}, ${pad(d.getDate())} ${months[d.getMonth()]} ${d.getFullYear()} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tz}`
  )
}

/** 32 bytes from the CSPRNG as 64 hex characters (upstream's random_bytes_hex(32)). */
export function newSecret(): string {
  return randomBytes(32).toString('hex')
}

/** A value written into the ini: a literal '%' must be doubled (configparser interpolation). */
function iniLiteral(value: string): string {
  return value.replaceAll('%', '%%')
}

function checkHost(host: string): string {
  const h = host.trim()
  if (h === '' || !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._:*-]+)$/.test(h)) {
    throw new UsageError(`--host ${JSON.stringify(host)} is not a host name or IP address.`, {
      hint: 'Use e.g. --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface).',
    })
  }
  return h
}

/** kinto.http_scheme and kinto.http_host from a public URL (scheme and host only, no path). */
export function publicUrlParts(given: string): {scheme: 'http' | 'https'; host: string} {
  let url: URL | undefined
  try {
    url = new URL(given.trim())
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new UsageError(`--public-url ${JSON.stringify(maskUrl(given))} is not a public URL (a scheme and a host, nothing else).`, {
      hint: 'Use e.g. --public-url https://kinto.example.com (the address clients use; the /v1 prefix is added by Kinto).',
    })
  }
  return {scheme: url.protocol === 'https:' ? 'https' : 'http', host: url.host}
}

/** The production lines: http_scheme and http_host written when the public URL is known. */
function publicValues(publicUrl: string | undefined): Record<string, string> {
  if (publicUrl === undefined || publicUrl.trim() === '') {
    return {public_settings: '# kinto.http_scheme = https\n# kinto.http_host = kinto.example.com'}
  }
  const {scheme, host} = publicUrlParts(publicUrl)
  return {public_settings: `kinto.http_scheme = ${scheme}\nkinto.http_host = ${host}`}
}

/** The storage URL to write, as ini text (with `%` doubled, except our own %(here)s). */
function storageUrlFor(backend: StorageChoice, given: string | undefined): string {
  if (backend === 'memory') {
    if (given !== undefined) {
      throw new UsageError('--storage-url does not apply to --backend memory (it keeps nothing on disk).', {
        hint: 'Drop --storage-url, or choose --backend postgresql or embedded.',
      })
    }
    return ''
  }
  if (backend === 'embedded') {
    if (given === undefined) return EMBEDDED_URL
    if (!/^pglite:/i.test(given.trim())) {
      throw new UsageError(`--storage-url ${JSON.stringify(maskUrl(given))} is not an embedded database URL.`, {
        hint: 'With --backend embedded use pglite:<folder> (relative to the ini folder); for a server use --backend postgresql.',
      })
    }
    return iniLiteral(given.trim())
  }
  const url = (given ?? DEFAULT_POSTGRESQL_URL).trim()
  if (!/^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i.test(url)) {
    throw new UsageError(`--storage-url ${JSON.stringify(maskUrl(url))} is not a PostgreSQL URL.`, {
      hint: 'Use postgresql://user:password@host:5432/dbname.',
    })
  }
  try {
    parseDbUrl(url)
  } catch {
    throw new UsageError(`--storage-url ${JSON.stringify(maskUrl(url))} is not a valid PostgreSQL URL.`, {
      hint: 'Use postgresql://user:password@host:5432/dbname (percent-encode special characters in the password).',
    })
  }
  return iniLiteral(url)
}

interface BackendValues {
  storage_backend: string
  storage_url: string
  permission_backend: string
  permission_url: string
  cache_backend: string
  cache_settings: string
}

const isRedisUrl = (url: string) => parseRedisUrl(url).ok
// What init writes names its port (the ini reader also takes upstream's forms without one).
const isMemcachedHost = (host: string) => parseMemcachedHost(host, {requirePort: true}).ok

/** The Redis URL to write (checked; `%` doubled). */
function redisUrlFor(cache: CacheChoice, given: string | undefined): string {
  if (given === undefined) return DEFAULT_REDIS_URL
  if (cache !== 'redis') {
    throw new UsageError(`--cache-url applies to --cache-backend redis, not ${cache}.`, {hint: 'Drop --cache-url, or add --cache-backend redis.'})
  }
  const url = given.trim()
  if (!isRedisUrl(url)) {
    throw new UsageError(`--cache-url ${JSON.stringify(maskUrl(url))} is not a Redis URL.`, {
      hint: 'Use redis://[:password@]host:6379/0 (percent-encode special characters in the password), rediss:// for TLS.',
    })
  }
  return iniLiteral(url)
}

/** The memcached servers to write: host:port entries, one space between them. */
function memcachedHostsFor(cache: CacheChoice, given: string | undefined): string {
  if (given === undefined) return DEFAULT_MEMCACHED_HOSTS
  if (cache !== 'memcached') {
    throw new UsageError(`--cache-hosts applies to --cache-backend memcached, not ${cache}.`, {hint: 'Drop --cache-hosts, or add --cache-backend memcached.'})
  }
  const hosts = given.split(/[\s,]+/).filter(Boolean)
  const bad = hosts.find((h) => !isMemcachedHost(h))
  if (hosts.length === 0 || bad !== undefined) {
    throw new UsageError(`--cache-hosts ${displayValue('cache_hosts', bad ?? given)} is not a list of memcached servers.`, {
      hint: 'Use host:port entries separated by spaces, e.g. --cache-hosts "10.0.0.5:11211 10.0.0.6:11211".',
    })
  }
  return hosts.join(' ')
}

function backendValues(backend: StorageChoice, cache: CacheChoice, storageUrl: string, cacheUrl?: string, cacheHosts?: string): BackendValues {
  const family = backend === 'memory' ? 'memory' : 'postgresql'
  // A PostgreSQL cache shares the storage database when there is one, as upstream's init does.
  const pgCacheUrl = backend === 'postgresql' ? storageUrl : iniLiteral(DEFAULT_POSTGRESQL_URL)
  const embeddedCacheUrl = backend === 'embedded' ? storageUrl : EMBEDDED_URL
  const cacheLines: Record<CacheChoice, [string, string]> = {
    embedded: ['kinto.core.cache.postgresql', `kinto.cache_url = ${embeddedCacheUrl}`],
    postgresql: ['kinto.core.cache.postgresql', `kinto.cache_url = ${pgCacheUrl}`],
    memory: ['kinto.core.cache.memory', 'kinto.cache_url ='],
    // The memcached backend reads cache_hosts (upstream's init writes cache_url, which it ignores).
    memcached: ['kinto.core.cache.memcached', `kinto.cache_hosts = ${memcachedHostsFor(cache, cacheHosts)}`],
    redis: ['kinto.core.cache.redis', `kinto.cache_url = ${redisUrlFor(cache, cacheUrl)}`],
  }
  return {
    storage_backend: `kinto.core.storage.${family}`,
    storage_url: storageUrl,
    permission_backend: `kinto.core.permission.${family}`,
    permission_url: storageUrl,
    cache_backend: cacheLines[cache][0],
    cache_settings: cacheLines[cache][1],
  }
}

export function templatePath(): string {
  return path.join(packageRoot, 'templates', 'kinto.ini')
}

/** Fills `{{name}}` placeholders; every placeholder must have a value. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([a-z_]+)\}\}/g, (_, name: string) => {
    const v = values[name]
    if (v === undefined) throw new Error(`templates/kinto.ini: no value for {{${name}}}`)
    return v
  })
}

function readableUrl(iniText: string, dir: string): string {
  // For messages: expand our own %(here)s, undo %% doubling, hide passwords.
  const url = iniText.replaceAll('%(here)s', dir).replaceAll('%%', '%')
  return describeDbUrl(url, dir)
}

function configExists(file: string): KintoError {
  return new KintoError(`${file} already exists.`, {
    code: 'KINTO_CONFIG_EXISTS',
    hint: 'Add --force to replace it (new secrets: user ids of existing accounts change), or choose another --ini.',
  })
}

/** Renders the ini text (no file access besides the template). */
export function renderKintoIni(options: {
  backend: StorageChoice
  cacheBackend: CacheChoice
  storageUrl?: string
  cacheUrl?: string
  cacheHosts?: string
  host: string
  publicUrl?: string
  /** Absolute folder for attachments (kinto_attachment on), or undefined (off). */
  attachments?: string
  now?: Date
}): string {
  const storageUrl = storageUrlFor(options.backend, options.storageUrl)
  const values: Record<string, string> = {
    created_at: formatTimestamp(options.now ?? new Date()),
    version: packageVersion(),
    host: checkHost(options.host),
    userid_hmac_secret: newSecret(),
    default_bucket_hmac_secret: newSecret(),
    ...backendValues(options.backend, options.cacheBackend, storageUrl, options.cacheUrl, options.cacheHosts),
    ...attachmentValues(options.attachments, options.host, options.publicUrl),
    ...publicValues(options.publicUrl),
  }
  return renderTemplate(readFileSync(templatePath(), 'utf8'), values)
}

/**
 * The attachment lines: on (include + base_path + base_url served by kinto start) or commented out.
 * base_url is what clients download from: below the public URL when there is one (the files are
 * served at its path by kinto start, or by the web server `kinto deploy nginx` configures), else
 * kinto start's own address.
 */
function attachmentValues(folder: string | undefined, host: string, publicUrl?: string): Record<string, string> {
  if (folder === undefined) {
    return {
      attachment_include: '#                kinto_attachment',
      attachment_settings: '# kinto.attachment.base_path = /var/lib/kinto/attachments\n# kinto.attachment.base_url = http://localhost:8888/attachments/',
    }
  }
  if (/[\r\n]/.test(folder)) throw new UsageError('--attachments: the folder name holds a line break.', {hint: 'Choose a plain folder path.'})
  const basePath = `kinto.attachment.base_path = ${folder.replaceAll('%', '%%')}`
  if (publicUrl !== undefined && publicUrl.trim() !== '') {
    const {scheme, host: publicHost} = publicUrlParts(publicUrl)
    return {
      attachment_include: '                 kinto_attachment',
      attachment_settings: [
        basePath,
        '# Where clients download the files, below the public URL: kinto start serves this path itself,',
        '# and `kinto deploy nginx` serves it from base_path.',
        `kinto.attachment.base_url = ${new URL(`${scheme}://${publicHost}`).origin}/attachments/`,
      ].join('\n'),
    }
  }
  const listenHost = ['0.0.0.0', '::', '[::]'].includes(host) ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return {
    attachment_include: '                 kinto_attachment',
    attachment_settings: [
      basePath,
      '# Where clients download the files: kinto start serves this path itself (change the port if',
      '# `kinto start --port` is not 8888, or use the public URL of the web server serving base_path).',
      `kinto.attachment.base_url = http://${listenHost}:8888/attachments/`,
    ].join('\n'),
  }
}

export async function initConfig(options: InitOptions): Promise<InitResult> {
  assertFilePath(options.iniArg?.trim() ?? options.iniPath, 'kinto.ini')
  const file = path.resolve(options.cwd ?? process.cwd(), options.iniPath)
  const report = options.report ?? (() => {})
  let existing = false
  try {
    const st = statSync(file)
    if (st.isDirectory()) {
      throw new UsageError(`${file} is a folder; --ini takes the path of the file to write.`, {
        hint: `Use e.g. --ini ${shellArg(path.join(file, 'kinto.ini'))}.`,
      })
    }
    existing = true
  } catch (error) {
    if (error instanceof KintoError) throw error
  }
  if (existing && !options.force) throw configExists(file)

  const ask = options.prompter
  const backend: StorageChoice = options.backend ?? (ask ? await ask.backend('embedded') : 'embedded')
  let storageUrl = options.storageUrl
  if (backend === 'postgresql' && storageUrl === undefined && ask) storageUrl = await ask.storageUrl(DEFAULT_POSTGRESQL_URL)
  const defaultCache: CacheChoice = backend
  const cacheBackend: CacheChoice = options.cacheBackend ?? (ask ? await ask.cacheBackend(defaultCache) : defaultCache)
  let {cacheUrl, cacheHosts} = options
  if (cacheBackend === 'redis' && cacheUrl === undefined && ask) cacheUrl = await ask.cacheUrl(DEFAULT_REDIS_URL)
  if (cacheBackend === 'memcached' && cacheHosts === undefined && ask) cacheHosts = await ask.cacheHosts(DEFAULT_MEMCACHED_HOSTS)
  const host = checkHost(options.host ?? '127.0.0.1')
  let publicUrl = options.publicUrl
  if (publicUrl === undefined && ask) publicUrl = await ask.publicUrl()

  // An empty --attachments resolved to the current folder: its files would have been served as attachments.
  if (options.attachments !== undefined && options.attachments.trim() === '') {
    throw new UsageError('--attachments is empty.', {hint: 'Give the folder that will hold the attached files, e.g. --attachments /var/lib/kinto/attachments, or leave it out.'})
  }
  const attachments = options.attachments === undefined ? undefined : path.resolve(options.cwd ?? process.cwd(), options.attachments)
  const text = renderKintoIni({backend, cacheBackend, storageUrl, cacheUrl, cacheHosts, host, publicUrl, attachments, now: options.now})
  // What we write must read back: parse it and expand every [app:main] and [server:main] value.
  const doc = parseIni(text, {path: file})
  doc.items('app:main')
  doc.items('server:main', {vars: {http_port: '8888'}})

  // Over an existing file (--force): it is kept beside, with its mode (its hmac secrets make the
  // user ids of existing accounts; losing them is not undone by anything else); then the write is
  // atomic, so a failure leaves it as it was (said).
  let previous: string | undefined
  try {
    if (existing && options.force) previous = keepPrevious(file, options.now ?? new Date())
    writeFileAtomic(file, text, {mode: 0o600, overwrite: Boolean(options.force), mkdirs: true})
  } catch (error) {
    if (error instanceof FileExistsError) throw configExists(file)
    throw configWriteError(file, error, {existing, hint: 'Choose another --ini, or run as a user allowed to write there.'}) ?? error
  }

  const dir = path.dirname(file)
  const storageUrlText = doc.get('app:main', 'kinto.storage_url', {raw: true}) ?? ''
  const storageLine: Record<StorageChoice, string> = {
    embedded: `embedded PostgreSQL (PGlite), ${readableUrl(storageUrlText, dir)}`,
    postgresql: `PostgreSQL server ${readableUrl(storageUrlText, dir)}`,
    memory: 'memory (nothing is kept when the server stops)',
  }
  report(`storage and permissions: ${backend} — ${storageLine[backend]}`)
  if (backend === 'postgresql' && storageUrl === undefined) {
    report(`  no --storage-url given: upstream's default ${maskUrl(DEFAULT_POSTGRESQL_URL)} was written; edit kinto.storage_url (and kinto.cache_url) or rerun with --storage-url`)
  }
  const cacheWhere: Partial<Record<CacheChoice, string>> = {
    redis: ` — ${maskUrl((doc.get('app:main', 'kinto.cache_url') ?? '').trim())}`,
    memcached: ` — ${doc.get('app:main', 'kinto.cache_hosts') ?? ''}`,
  }
  report(`cache: ${cacheBackend}${cacheBackend === backend && backend !== 'memory' ? ' (same database)' : (cacheWhere[cacheBackend] ?? '')}`)
  report(`host: ${host} (port from kinto start --port, 8888 by default)`)
  const httpHost = doc.get('app:main', 'kinto.http_host')
  if (httpHost) report(`public URL: ${doc.get('app:main', 'kinto.http_scheme')}://${httpHost} (kinto.http_scheme, kinto.http_host)`)
  else report('public URL: not set; kinto check reports kinto.http_scheme until it is (rerun with --public-url https://kinto.example.com, or set kinto.http_scheme and kinto.http_host)')
  if (attachments) report(`attachments: kinto_attachment, files in ${attachments}`)
  report(`secrets: new kinto.userid_hmac_secret and kinto.default_bucket_hmac_secret written (file mode 0600)`)
  if (previous) report(`replaced: the previous file is kept as ${previous} (its secrets and settings)`)
  const nextSteps = initNextSteps(backend, cacheBackend, options.iniArg)
  report('next steps:')
  for (const step of nextSteps) report(`  ${step}`)
  return {path: file, backend, cacheBackend, host, replaced: existing, ...(previous ? {previous} : {}), nextSteps}
}

/** A copy of the ini about to be replaced, beside it, never over another file: `kinto.ini.20261207T101500Z.bak`. */
function keepPrevious(file: string, now: Date): string | undefined {
  if (!statSync(file).isFile()) return undefined
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  for (let n = 0; ; n++) {
    const copy = `${file}.${stamp}${n === 0 ? '' : `-${n}`}.bak`
    try {
      copyFileSync(file, copy, constants.COPYFILE_EXCL)
      return copy
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  }
}

/**
 * What brings a new ini into service: the database (a server's), the schema, the check, the
 * server. `--ini` is repeated unless every command finds the file without it ($KINTO_INI, else
 * config/kinto.ini).
 */
export function initNextSteps(backend: StorageChoice, cacheBackend: CacheChoice, iniArg: string | undefined, env = process.env): string[] {
  const found = env.KINTO_INI?.trim() || DEFAULT_INI_PATH
  const given = iniArg?.trim()
  const ini = !given || given === found ? '' : ` --ini ${shellArg(given)}`
  const steps: string[] = []
  if (backend === 'postgresql') steps.push(`kinto db create${ini}`)
  if (backend !== 'memory' || cacheBackend === 'postgresql' || cacheBackend === 'embedded') steps.push(`kinto migrate${ini}`)
  steps.push(`kinto check${ini}`, `kinto start${ini}`)
  return steps
}

/** Prompts for `kinto init` (each goes through the canPrompt() gate in interactive.ts). */
export function interactiveInitPrompter(): InitPrompter {
  return {
    backend: (def) =>
      askSelect<StorageChoice>(
        'Storage and permission backend',
        [
          {value: 'embedded', name: 'embedded', description: 'PostgreSQL in-process (PGlite), data beside the ini; nothing to install'},
          {value: 'postgresql', name: 'postgresql', description: 'a PostgreSQL server (production)'},
          {value: 'memory', name: 'memory', description: 'in memory; lost when the server stops (tests, demos)'},
        ],
        {default: def, flagHint: 'Pass --backend embedded|postgresql|memory.'},
      ),
    storageUrl: (def) => askStorageUrl(def),
    cacheBackend: (def) =>
      askSelect<CacheChoice>(
        'Cache backend',
        CACHE_CHOICES.map((value) => ({value, name: value})),
        {default: def, flagHint: 'Pass --cache-backend embedded|postgresql|memory|memcached|redis.'},
      ),
    cacheUrl: (def) =>
      askInput('Redis URL', {
        default: def,
        flagHint: 'Pass --cache-url redis://[:password@]host:6379/0.',
        validate: (v) => (isRedisUrl(v) ? true : 'Expected redis://[:password@]host:6379/0'),
      }),
    cacheHosts: (def) =>
      askInput('memcached servers (host:port, separated by spaces)', {
        default: def,
        flagHint: 'Pass --cache-hosts "host:11211 host2:11211".',
        validate: (v) => {
          const hosts = v.split(/[\s,]+/).filter(Boolean)
          return hosts.length > 0 && hosts.every(isMemcachedHost) ? true : 'Expected host:port entries such as 127.0.0.1:11211'
        },
      }),
    publicUrl: () =>
      askInput('Public URL clients use (Enter: none yet)', {
        default: '',
        flagHint: 'Pass --public-url https://kinto.example.com.',
        validate: (v) => {
          if (v.trim() === '') return true
          try {
            publicUrlParts(v)
            return true
          } catch {
            return 'Expected https://host[:port], nothing after the host'
          }
        },
      }),
  }
}

/**
 * The PostgreSQL URL, asked without its password (which a terminal would echo), then the password
 * alone, masked. A password typed inside the URL is kept as typed.
 */
async function askStorageUrl(def: string): Promise<string> {
  const shown = new URL(def)
  const defaultPassword = decodeURIComponent(shown.password)
  shown.password = ''
  const typed = (
    await askInput('PostgreSQL URL (the password is asked next)', {
      default: shown.toString(),
      flagHint: 'Pass --storage-url postgresql://user:password@host:5432/dbname.',
      validate: (v) => (/^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\/\S+$/i.test(v.trim()) ? true : 'Expected postgresql://user@host:5432/dbname'),
    })
  ).trim()
  const url = new URL(typed)
  if (url.password !== '' || url.username === '') return typed
  const sameServer = url.username === shown.username && url.host === shown.host
  const fallback = sameServer ? defaultPassword : ''
  const password = await askPassword(`Password of ${decodeURIComponent(url.username)}${fallback ? ' (Enter: the default)' : ' (Enter: none)'}`, {
    flagHint: 'Pass --storage-url postgresql://user:password@host:5432/dbname.',
  })
  url.password = encodeURIComponent(password === '' ? fallback : password)
  return url.toString()
}

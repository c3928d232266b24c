/**
 * Kinto ini files, read the way Kinto reads them: Python's configparser (strict mode, `=` and `:`
 * delimiters, `#`/`;` full-line comments only, values continued by deeper indentation, blank lines
 * kept inside a continued value) as PasteDeploy sets it up (keys keep their case, `%(here)s` and
 * `%(__file__)s` predefined, `%(name)s` interpolation from the same section and [DEFAULT]).
 *
 * Interpolation is lazy, as in configparser: a value is only expanded when read with `get()` or
 * `items()`. So logging sections (`format = %(asctime)s …`, which the logging module reads raw)
 * load fine and are kept intact.
 *
 * The document keeps every line (and its line ending) so that edit.ts can change one key and keep
 * every other byte.
 */
import {readFileSync, statSync} from 'node:fs'
import path from 'node:path'

import {maskUrl} from '../db/url.js'
import {KintoError} from '../errors.js'
import {isSecretKey} from './validate.js'
import {shellArg} from '../text/shell.js'

export const DEFAULT_SECTION = 'DEFAULT'
/** configparser's MAX_INTERPOLATION_DEPTH. */
const MAX_INTERPOLATION_DEPTH = 10

export interface IniEntry {
  section: string
  /** The key as written (PasteDeploy keeps the case; surrounding blanks removed). */
  key: string
  /** The stored value before interpolation: lines stripped, joined by `\n`, right-trimmed. */
  value: string
  /** 1-based line of `key = value`. */
  line: number
  /** 1-based last line holding a piece of the value (continuation lines included). */
  endLine: number
  /** 0-based offset in the first line where the value starts (after the delimiter and blanks). */
  valueColumn: number
}

export interface IniSection {
  name: string
  /** 1-based line of the `[name]` header (0 for the implicit, header-less DEFAULT). */
  line: number
  /** Entries in file order. */
  entries: IniEntry[]
}

export interface IniParseOptions {
  /** Path of the file, for messages and `%(__file__)s`; `here` defaults to its folder. */
  path?: string
  /** Folder for `%(here)s` (defaults to the folder of `path`, else the current folder). */
  here?: string
}

export interface IniGetOptions {
  /** Return the stored value without interpolation. */
  raw?: boolean
  /**
   * Extra defaults, as PasteDeploy's global_conf (e.g. `{http_port: '8888'}` given by the server
   * runner). Values in the file's [DEFAULT] win over them.
   */
  vars?: Record<string, string>
}

/** Where an ini problem is: "FILE, line N, key 'K'". */
export function iniLocation(file: string | undefined, line?: number, key?: string): string {
  const parts = [file ?? '<ini text>']
  if (line !== undefined && line > 0) parts.push(`line ${line}`)
  if (key !== undefined) parts.push(`key '${key}'`)
  return parts.join(', ')
}

export function iniError(file: string | undefined, line: number | undefined, key: string | undefined, problem: string): KintoError {
  return new KintoError(`${iniLocation(file, line, key)}: ${problem}`, {code: 'KINTO_CONFIG_INVALID'})
}

/** A line of the file with its terminator (`\r\n`, `\n`, `\r` or '' on a last line without one). */
export interface IniLine {
  text: string
  eol: string
}

/** Splits text into lines, keeping each line's own terminator. */
export function splitLines(text: string): IniLine[] {
  const lines: IniLine[] = []
  const re = /([^\r\n]*)(\r\n|\n|\r|$)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(text)) !== null) {
    if (m[0] === '') break
    lines.push({text: m[1], eol: m[2]})
    if (m[2] === '') break
  }
  return lines
}

function quoteText(s: string): string {
  const shown = s.length > 60 ? s.slice(0, 57) + '...' : s
  return JSON.stringify(shown)
}

/**
 * A line of the file as an error quotes it, with no secret: the value of a secret setting
 * (`kinto.userid_hmac_secret s3cr3t`, its '=' forgotten) is replaced by ***, a URL's password is
 * masked. A line that follows a secret setting (an unindented continuation of its value may be
 * the secret itself) is named, not quoted.
 */
function quoteLine(text: string, previousKey?: string): string {
  if (previousKey !== undefined && isSecretKey(previousKey)) return `the line after ${previousKey} (not shown: it may hold the secret)`
  const m = /^(.*?)(\s*[=:]\s*|\s+)(\S.*)$/.exec(text)
  if (m && m[1] && isSecretKey(m[1])) return quoteText(`${m[1]}${m[2]}***`)
  return quoteText(text.split(/(\s+)/).map((word) => maskUrl(word)).join(''))
}

/** A value's text from `fragment` on, as an interpolation error shows it: none of a secret. */
function quoteFragment(key: string, value: string, fragment: string): {found: string; text: string} {
  if (isSecretKey(key)) return {found: ' (the value is a secret; not shown)', text: ' (the value is a secret; not shown)'}
  const masked = maskUrl(value)
  if (masked !== value) {
    const shown = `${quoteText(masked)} (its password is not shown)`
    return {found: `, found one in ${shown}`, text: ` in ${shown}`}
  }
  return {found: `, found ${quoteText(fragment)}`, text: ` ${quoteText(fragment)}`}
}

export class IniDocument {
  readonly path: string | undefined
  readonly here: string
  /** Whether the text started with a UTF-8 byte order mark (kept on edits, ignored on reads). */
  readonly bom: boolean
  readonly lines: IniLine[]
  /** Entries of [DEFAULT] (from every [DEFAULT] header, merged). */
  readonly defaults: IniSection
  /** Sections other than DEFAULT, in file order. */
  readonly sections: IniSection[]
  private readonly byName = new Map<string, IniSection>()

  constructor(text: string, options: IniParseOptions = {}) {
    this.path = options.path
    this.here = options.here ?? (options.path ? path.dirname(path.resolve(options.path)) : process.cwd())
    this.bom = text.startsWith('\uFEFF')
    this.lines = splitLines(this.bom ? text.slice(1) : text)
    this.defaults = {name: DEFAULT_SECTION, line: 0, entries: []}
    this.sections = []
    this.parse()
  }

  /** The text again, byte for byte. */
  toString(): string {
    return (this.bom ? '\uFEFF' : '') + this.lines.map((l) => l.text + l.eol).join('')
  }

  sectionNames(): string[] {
    return this.sections.map((s) => s.name)
  }

  hasSection(name: string): boolean {
    return name === DEFAULT_SECTION || this.byName.has(name)
  }

  section(name: string): IniSection | undefined {
    return name === DEFAULT_SECTION ? this.defaults : this.byName.get(name)
  }

  /** The entry for `key` in `section` itself (not [DEFAULT]). */
  ownEntry(section: string, key: string): IniEntry | undefined {
    return this.section(section)?.entries.find((e) => e.key === key)
  }

  /** The entry that `get(section, key)` reads: the section's own, else [DEFAULT]'s. */
  entry(section: string, key: string): IniEntry | undefined {
    return this.ownEntry(section, key) ?? this.defaults.entries.find((e) => e.key === key)
  }

  /** The defaults every section sees: here, __file__, then the file's [DEFAULT], then `vars` not already set. */
  defaultValues(vars: Record<string, string> = {}): Map<string, string> {
    const map = new Map<string, string>()
    map.set('here', this.here)
    if (this.path) map.set('__file__', path.resolve(this.path))
    for (const e of this.defaults.entries) map.set(e.key, e.value)
    for (const [k, v] of Object.entries(vars)) if (!map.has(k)) map.set(k, v)
    return map
  }

  /**
   * The value of `key` as configparser's `get(section, key)` returns it (interpolated unless raw),
   * or undefined when neither the section nor [DEFAULT] sets it.
   */
  get(section: string, key: string, options: IniGetOptions = {}): string | undefined {
    const map = this.lookupMap(section, options.vars)
    const value = map.get(key)
    if (value === undefined) return undefined
    if (options.raw) return value
    const entry = this.entry(section, key)
    return this.interpolate(section, key, value, map, entry?.line)
  }

  /** Every key the section sees (its own and [DEFAULT]'s), interpolated unless raw. */
  items(section: string, options: IniGetOptions = {}): Record<string, string> {
    const map = this.lookupMap(section, options.vars)
    const out: Record<string, string> = {}
    for (const [key, value] of map) {
      out[key] = options.raw ? value : this.interpolate(section, key, value, map, this.entry(section, key)?.line)
    }
    return out
  }

  private lookupMap(section: string, vars?: Record<string, string>): Map<string, string> {
    const sect = this.section(section)
    if (!sect) {
      throw iniError(this.path, undefined, undefined, `there is no [${section}] section.`)
    }
    const map = this.defaultValues(vars)
    if (sect !== this.defaults) for (const e of sect.entries) map.set(e.key, e.value)
    return map
  }

  /** configparser's BasicInterpolation: `%(name)s` and `%%`. */
  private interpolate(section: string, key: string, value: string, map: Map<string, string>, line?: number): string {
    const where = iniLocation(this.path, line, key)
    const fail = (problem: string) => new KintoError(`${where}: ${problem}`, {code: 'KINTO_CONFIG_INVALID'})
    const out: string[] = []
    const walk = (rest: string, depth: number): void => {
      // The text this level reads (the value, or the value of a reference), for messages.
      const whole = rest
      // The file's own folder (%(here)s, %(__file__)s) with a '%': no edit of the file can fix that.
      if (whole.includes('%') && (whole === this.here || (this.path !== undefined && whole === path.resolve(this.path)))) {
        throw new KintoError(
          `${this.path ?? 'the ini'}: its folder ${this.here} holds a '%', which the ini reader (configparser, as Kinto reads it) takes for the start of a reference when it expands %(here)s; move the ini to a folder whose path has no '%'.`,
          {code: 'KINTO_CONFIG_INVALID'},
        )
      }
      if (depth > MAX_INTERPOLATION_DEPTH) {
        throw fail(`%(name)s references are nested more than ${MAX_INTERPOLATION_DEPTH} levels deep (a reference loop?).`)
      }
      while (rest) {
        const p = rest.indexOf('%')
        if (p < 0) {
          out.push(rest)
          return
        }
        if (p > 0) {
          out.push(rest.slice(0, p))
          rest = rest.slice(p)
        }
        const c = rest.slice(1, 2)
        if (c === '%') {
          out.push('%')
          rest = rest.slice(2)
        } else if (c === '(') {
          const m = /^%\(([^)]+)\)s/.exec(rest)
          if (!m) {
            throw fail(
              `bad reference${quoteFragment(key, whole, rest).text}: a '%' starts a reference written %(name)s; write %% for a literal '%'.`,
            )
          }
          const name = m[1]
          rest = rest.slice(m[0].length)
          const v = map.get(name)
          if (v === undefined) {
            const scope = section === DEFAULT_SECTION ? '[DEFAULT]' : `[${section}] or [DEFAULT]`
            throw fail(
              `%(${name})s refers to '${name}', which is not set in ${scope}; define it there, or write %% for a literal '%'.`,
            )
          }
          if (v.includes('%')) walk(v, depth + 1)
          else out.push(v)
        } else {
          throw fail(`a '%' must be followed by '%' or '(name)s'${quoteFragment(key, whole, rest).found}; write %% for a literal '%'.`)
        }
      }
    }
    walk(value, 1)
    return out.join('')
  }

  private parse(): void {
    const file = this.path
    let cursect: IniSection | null = null
    let opt: {entry: IniEntry; parts: string[]} | null = null
    let indentLevel = 0
    const open: Array<{entry: IniEntry; parts: string[]}> = []
    const headerLines = new Map<string, number>()
    const keyLines = new Map<string, number>()

    for (let i = 0; i < this.lines.length; i++) {
      const lineno = i + 1
      const content = this.lines[i].text
      const value = content.trim()
      if (value.startsWith('#') || value.startsWith(';')) continue
      if (value === '') {
        // A blank line belongs to a continued value if another indented line follows.
        if (cursect && opt) opt.parts.push('')
        continue
      }
      const curIndent = /\S/.exec(content)?.index ?? 0
      if (cursect && opt && curIndent > indentLevel) {
        opt.parts.push(value)
        opt.entry.endLine = lineno
        continue
      }
      indentLevel = curIndent
      const header = /^\[(.+)\]/.exec(value)
      if (header) {
        const name = header[1]
        if (name === DEFAULT_SECTION) {
          cursect = this.defaults
          if (this.defaults.line === 0) this.defaults.line = lineno
        } else {
          const first = headerLines.get(name)
          if (first !== undefined) {
            throw iniError(
              file,
              lineno,
              undefined,
              `section [${name}] appears a second time (first at line ${first}); a section may appear only once, merge the two.`,
            )
          }
          headerLines.set(name, lineno)
          cursect = {name, line: lineno, entries: []}
          this.sections.push(cursect)
          this.byName.set(name, cursect)
        }
        opt = null
        continue
      }
      if (!cursect) {
        throw iniError(
          file,
          lineno,
          undefined,
          `${quoteLine(value)} comes before any [section] header; a Kinto ini starts with a section such as [server:main] or [app:main].`,
        )
      }
      const m = /^(.*?)\s*(=|:)\s*(.*)$/.exec(value)
      const key = m ? m[1].trimEnd() : ''
      if (!m || key === '') {
        throw iniError(
          file,
          lineno,
          undefined,
          `${quoteLine(value, opt?.entry.key)} is not a setting; expected 'key = value' or 'key: value', a [section] header, ` +
            `a line indented under a setting to continue its value, or a comment line starting with # or ;.`,
        )
      }
      const dupKey = `${cursect.name}\u0000${key}`
      const first = keyLines.get(dupKey)
      if (first !== undefined) {
        throw iniError(
          file,
          lineno,
          key,
          `set a second time in [${cursect.name}] (first at line ${first}); a key may appear only once per section.`,
        )
      }
      keyLines.set(dupKey, lineno)
      const valueColumn = curIndent + value.length - m[3].length
      const entry: IniEntry = {section: cursect.name, key, value: '', line: lineno, endLine: lineno, valueColumn}
      cursect.entries.push(entry)
      opt = {entry, parts: [m[3]]}
      open.push(opt)
    }
    for (const o of open) o.entry.value = o.parts.join('\n').trimEnd()
  }
}

export function parseIni(text: string, options: IniParseOptions = {}): IniDocument {
  return new IniDocument(text, options)
}

/** Decodes file bytes as UTF-8 text (what Python's open() does on our platforms); rejects other bytes. */
export function decodeIniBytes(bytes: Uint8Array, file?: string): string {
  try {
    return new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(bytes)
  } catch {
    throw iniError(file, undefined, undefined, 'the file is not UTF-8 text; save it as UTF-8.')
  }
}

/**
 * The error for an ini file that is not there, with the command that creates one. A database URL
 * given as the ini (`--ini postgresql://user:password@…`) is such a path: its password is masked.
 */
export function missingIniError(file: string): KintoError {
  const shown = maskUrl(file)
  return new KintoError(`Config file ${shown} does not exist.`, {
    code: 'KINTO_CONFIG_MISSING',
    hint: `Run \`kinto init --ini ${shellArg(shown)}\` to create one, or point --ini (or KINTO_INI) at an existing file.`,
  })
}

/** Reads and parses an ini file. Missing file: KINTO_CONFIG_MISSING; unreadable or invalid: KINTO_CONFIG_INVALID. */
export function readIniFile(file: string): IniDocument {
  const abs = path.resolve(file)
  let bytes: Buffer
  try {
    // A device never ends (/dev/zero, /dev/urandom) or waits for a terminal: refused, not read until memory runs out.
    const st = statSync(abs)
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      throw iniError(abs, undefined, undefined, 'this is a device, not a file; --ini takes the path of an ini file.')
    }
    bytes = readFileSync(abs)
  } catch (error) {
    if (error instanceof KintoError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missingIniError(abs)
    if (code === 'EISDIR') throw iniError(abs, undefined, undefined, 'this is a folder; --ini takes the path of an ini file.')
    if (code === 'EACCES' || code === 'EPERM') {
      throw iniError(abs, undefined, undefined, 'the file cannot be read (permission denied); run as its owner or fix its mode.')
    }
    throw iniError(abs, undefined, undefined, `the file cannot be read (${code ?? (error as Error).message}).`)
  }
  return parseIni(decodeIniBytes(bytes, abs), {path: abs})
}

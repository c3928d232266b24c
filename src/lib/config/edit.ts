/**
 * Lossless edits of a Kinto ini: set, change or remove keys and keep every other byte (comments,
 * order, blank lines, line endings, trailing-newline state, BOM, file mode). The file is written
 * atomically and only when something changed.
 */
import {statSync} from 'node:fs'
import path from 'node:path'

import {KintoError} from '../errors.js'
import {configWriteError, writeFileAtomic} from './atomic.js'
import {DEFAULT_SECTION, IniDocument, type IniEntry, type IniLine, iniError, readIniFile} from './ini.js'
import {settingKey} from './settings.js'

export interface IniChange {
  section: string
  key: string
  /** New value; null removes the key. Multi-line values are written as indented continuation lines. */
  value: string | null
}

export interface IniChangeResult {
  section: string
  /** The key as it is (or was) written in the file: `kinto.readonly` or `readonly`. */
  key: string
  /** Raw value before the change (null when the key was not set). */
  previous: string | null
  /** Raw value after the change (null when removed or absent). */
  value: string | null
  changed: boolean
  /** 1-based line of the key after the change (null when removed). */
  line: number | null
}

export interface EditOptions {
  /** File name for messages. */
  path?: string
}

/** Sections holding application settings, where `kinto.x` and `x` name the same setting. */
function isAppSection(name: string): boolean {
  return /^(app|application)\s*:/.test(name)
}

function sameKey(section: string, a: string, b: string): boolean {
  return isAppSection(section) ? settingKey(a) === settingKey(b) : a === b
}

/** What configparser will store for a value we write: each line stripped, trailing blank lines dropped. */
function normalizeValue(value: string): string {
  return value
    .split(/\r\n|\n|\r/)
    .map((l) => l.trim())
    .join('\n')
    .trimEnd()
}

function checkKey(file: string | undefined, key: string): void {
  const ok =
    key !== '' &&
    key === key.trim() &&
    !/[\r\n=:]/.test(key) &&
    !key.startsWith('[') &&
    !key.startsWith('#') &&
    !key.startsWith(';')
  if (!ok) {
    throw iniError(
      file,
      undefined,
      key,
      "cannot be written as an ini key; a key is one line without '=' or ':', and does not start with '[', '#' or ';'.",
    )
  }
}

function checkValue(file: string | undefined, key: string, value: string): void {
  const lines = normalizeValue(value).split('\n')
  for (const l of lines.slice(1)) {
    if (l.startsWith('#') || l.startsWith(';')) {
      throw iniError(file, undefined, key, `a continuation line cannot start with '#' or ';' (it would be read as a comment).`)
    }
  }
  // References are checked for syntax only: `%(http_port)s` may be given at run time.
  if (/%/.test(value.replace(/%%|%\([^)]+\)s/g, ''))) {
    throw iniError(file, undefined, key, "a '%' must be written %% (or be a %(name)s reference).")
  }
}

function dominantEol(lines: IniLine[]): string {
  return lines.find((l) => l.eol !== '')?.eol ?? '\n'
}

/** Renders `value` as the text lines of an entry whose first line starts with `prefix`. */
function renderEntry(prefix: string, value: string, contIndent: string): string[] {
  const [first, ...rest] = normalizeValue(value).split('\n')
  return [first === '' ? prefix.trimEnd() : prefix + first, ...rest.map((l) => (l === '' ? '' : contIndent + l))]
}

function leadingBlanks(text: string): string {
  return /^\s*/.exec(text)![0]
}

/** Applies one change to the lines of `doc`; returns the new lines and the result (line set later). */
function applyChange(doc: IniDocument, change: IniChange): {lines: IniLine[]; result: IniChangeResult} {
  const lines = doc.lines.map((l) => ({...l}))
  const eol = dominantEol(lines)
  const section = doc.section(change.section)
  const present = change.section === DEFAULT_SECTION && section && section.line === 0 && section.entries.length === 0 ? undefined : section
  const matches: IniEntry[] = present ? present.entries.filter((e) => sameKey(change.section, e.key, change.key)) : []
  const previous = matches[0]?.value ?? null
  const newValue = change.value === null ? null : normalizeValue(change.value)
  const keyAsWritten = matches[0]?.key ?? change.key
  const result: IniChangeResult = {
    section: change.section,
    key: keyAsWritten,
    previous,
    value: newValue,
    changed: false,
    line: null,
  }

  if (change.value === null) {
    if (matches.length === 0) return {lines, result}
    // Remove from the bottom up so earlier line numbers stay valid.
    for (const e of [...matches].sort((a, b) => b.line - a.line)) {
      const lastWasEof = e.endLine === lines.length && lines[e.endLine - 1].eol === ''
      lines.splice(e.line - 1, e.endLine - e.line + 1)
      if (lastWasEof && lines.length > 0) lines[lines.length - 1].eol = ''
    }
    result.changed = true
    return {lines, result}
  }

  if (matches.length > 0) {
    if (matches.every((e) => e.value === newValue)) return {lines, result}
    for (const e of [...matches].sort((a, b) => b.line - a.line)) {
      const first = lines[e.line - 1]
      let prefix = first.text.slice(0, e.valueColumn)
      // `key =` with an empty value: keep a blank between the delimiter and the new value.
      if (e.valueColumn >= first.text.trimEnd().length && !/\s$/.test(prefix)) prefix += ' '
      const keyIndent = leadingBlanks(first.text)
      let contIndent = ' '.repeat(Math.max(e.valueColumn, keyIndent.length + 4))
      for (let i = e.line; i < e.endLine; i++) {
        const t = lines[i].text
        if (t.trim() !== '' && !/^\s*[#;]/.test(t)) {
          contIndent = leadingBlanks(t)
          break
        }
      }
      const texts = renderEntry(prefix, change.value, contIndent)
      const lineEol = first.eol || eol
      const lastEol = lines[e.endLine - 1].eol
      const replacement = texts.map((text, i) => ({text, eol: i === texts.length - 1 ? lastEol : lineEol}))
      lines.splice(e.line - 1, e.endLine - e.line + 1, ...replacement)
    }
    result.changed = true
    return {lines, result}
  }

  if (present) {
    // A new key goes after the last entry of the section (or right after its header).
    const last = present.entries.at(-1)
    const afterIndex = last ? last.endLine - 1 : present.line - 1
    const keyIndent = last ? leadingBlanks(lines[last.line - 1].text) : ''
    const texts = renderEntry(`${keyIndent}${change.key} = `, change.value, keyIndent + ' '.repeat(change.key.length + 3))
    const atEof = lines[afterIndex].eol === ''
    if (atEof) lines[afterIndex].eol = eol
    const added = texts.map((text, i) => ({text, eol: atEof && i === texts.length - 1 ? '' : eol}))
    lines.splice(afterIndex + 1, 0, ...added)
    result.changed = true
    return {lines, result}
  }

  // A new section goes at the end of the file, after one blank line.
  const texts = [`[${change.section}]`, ...renderEntry(`${change.key} = `, change.value, ' '.repeat(change.key.length + 3))]
  const tail = lines.at(-1)
  const atEof = tail !== undefined && tail.eol === ''
  if (tail) {
    if (atEof) tail.eol = eol
    if (tail.text.trim() !== '') lines.push({text: '', eol})
  }
  lines.push(...texts.map((text, i) => ({text, eol: atEof && i === texts.length - 1 ? '' : eol})))
  result.changed = true
  return {lines, result}
}

/**
 * Applies changes to ini text. Throws KINTO_CONFIG_INVALID if the text does not parse, or if a key
 * or value cannot be written so that it reads back the same.
 */
export function editIniText(text: string, changes: IniChange[], options: EditOptions = {}): {text: string; results: IniChangeResult[]} {
  const file = options.path
  const here = file ? path.dirname(path.resolve(file)) : undefined
  let doc = new IniDocument(text, {path: file, here})
  const results: IniChangeResult[] = []
  for (const change of changes) {
    checkKey(file, change.key)
    if (/[\r\n\]]/.test(change.section) || change.section.trim() === '') {
      throw iniError(file, undefined, undefined, `[${change.section}] cannot be written as a section name.`)
    }
    if (change.value !== null) checkValue(file, change.key, change.value)
    const {lines, result} = applyChange(doc, change)
    if (result.changed) {
      const newText = (doc.bom ? '\uFEFF' : '') + lines.map((l) => l.text + l.eol).join('')
      doc = new IniDocument(newText, {path: file, here})
    }
    results.push(result)
  }
  // Read every changed key back: what we wrote must be what a reader gets.
  for (const r of results) {
    const entry = doc.ownEntry(r.section, r.key)
    if (r.value === null) {
      if (entry) throw new KintoError(`Internal error: ${r.key} is still set after removal.`, {code: 'KINTO_CONFIG_INVALID'})
      continue
    }
    if (!entry || entry.value !== r.value) {
      throw iniError(file, undefined, r.key, `the value ${JSON.stringify(r.value)} cannot be written so that it reads back the same.`)
    }
    r.line = entry.line
  }
  return {text: doc.toString(), results}
}

/**
 * Sets or removes several keys of an ini file in one atomic write (mode, owner and group kept).
 * `verify` reads the written file (e.g. loads it): when it throws, the file is put back as it was
 * and the error is rethrown, so a change that does not load never stays.
 */
export function setIniValues(file: string, changes: IniChange[], verify?: (file: string) => void): IniChangeResult[] {
  const doc = readIniFile(file)
  const abs = doc.path!
  const before = doc.toString()
  const {text, results} = editIniText(before, changes, {path: abs})
  if (text !== before) {
    const st = statSync(abs)
    const write = (content: string) => {
      try {
        writeFileAtomic(abs, content, {mode: st.mode & 0o7777, owner: {uid: st.uid, gid: st.gid}})
      } catch (error) {
        throw (
          configWriteError(abs, error, {
            existing: true,
            hint: 'Run as a user allowed to write the file and its folder (the new file is written beside it, then renamed).',
          }) ?? error
        )
      }
    }
    write(text)
    try {
      verify?.(abs)
    } catch (error) {
      write(before)
      throw error
    }
  }
  return results
}

/** Sets (or with null removes) one key of an ini file; every other byte is kept. */
export function setIniValue(file: string, section: string, key: string, value: string | null): IniChangeResult {
  return setIniValues(file, [{section, key, value}])[0]
}

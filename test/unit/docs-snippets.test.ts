/**
 * README.md and docs/*.md are what operators copy from: every setting an ini snippet sets must be
 * one the code reads, every `kinto <command> --flag` must exist, every link and repository path
 * must lead somewhere. Reads the files only (no CLI run): the commands and flags come from
 * test/fixtures/cli-surface.json, which test/unit/cli-surface.test.ts keeps equal to src/commands.
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import type {SurfaceCommand} from '../../scripts/cli-surface.mjs'
import {DEFAULT_SETTINGS, envNames, ruleFor, settingKey} from '../../src/lib/config/index.js'
import {repoRoot} from '../helpers/cli.js'

interface Doc {
  file: string
  text: string
}

/** A piece of a doc to check, with the line it starts on. */
interface Snippet {
  file: string
  line: number
  text: string
}

function readDocs(): Doc[] {
  const files = ['README.md', ...readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  return files.map((file) => ({file, text: readFileSync(path.join(repoRoot, file), 'utf8')}))
}

/**
 * A doc's code: fenced blocks (with their language), indented blocks, and the inline code spans of
 * the prose (a span may run over a line break). Each block is one snippet per line.
 */
function codeOf(doc: Doc): {blocks: Array<Snippet & {lang: string}>; spans: Snippet[]} {
  const lines = doc.text.split('\n')
  const blocks: Array<Snippet & {lang: string}> = []
  const prose: string[] = []
  let fence: string | null = null
  lines.forEach((line, i) => {
    const open = /^\s*```(\w*)/.exec(line)
    if (open) {
      fence = fence === null ? open[1] || 'text' : null
      prose.push('')
      return
    }
    const indented = fence === null && /^ {4}\S/.test(line) && (i === 0 || lines[i - 1].trim() === '' || /^ {4}/.test(lines[i - 1]))
    if (fence !== null || indented) {
      blocks.push({file: doc.file, line: i + 1, text: line, lang: fence ?? 'indented'})
      prose.push('')
    } else prose.push(line)
  })
  const spans: Snippet[] = []
  const text = prose.join('\n')
  for (const m of text.matchAll(/`([^`]+)`/g)) {
    spans.push({file: doc.file, line: text.slice(0, m.index).split('\n').length, text: m[1].replaceAll('\n', ' ')})
  }
  return {blocks, spans}
}

const where = (s: Snippet) => `${s.file}:${s.line}`

// ---- settings -------------------------------------------------------------------------------

/** The text of some files and of every source file below some folders of the repository, read once. */
function filesText(paths: string[]): () => string {
  let text: string | undefined
  return () => {
    text ??= paths
      .flatMap((p) =>
        statSync(path.join(repoRoot, p)).isFile()
          ? [readFileSync(path.join(repoRoot, p), 'utf8')]
          : readdirSync(path.join(repoRoot, p), {recursive: true, encoding: 'utf8'})
              .filter((f) => /\.(ts|mts|js|mjs|sh)$/.test(f))
              .map((f) => readFileSync(path.join(repoRoot, p, f), 'utf8')),
      )
      .join('\n')
    return text
  }
}

const sourceText = filesText(['src'])
const testsAndScriptsText = filesText(['test/helpers', 'test/integration', 'scripts', 'vitest.config.ts'])

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Whether the code reads a setting of [app:main]: the keys `kinto check` knows (upstream's defaults
 * and the validated keys, as its typo check uses them), else a key a plugin or backend reads by its
 * name (a string in src/), else an option of an authentication policy (`multiauth.policy.<name>.<option>`,
 * read by its last part).
 */
function settingIsRead(rawKey: string): boolean {
  const key = settingKey(rawKey)
  if (key in DEFAULT_SETTINGS || ruleFor(key)) return true
  if (['use', 'filter-with', 'require'].includes(key)) return true // PasteDeploy's
  const option = /^multiauth\.policy\.[^.]+\.(.+)$/.exec(key)?.[1]
  if (option) return new RegExp(`(['"\`}]|\\boptions\\.)${escape(option)}\\b`).test(sourceText())
  return new RegExp(`['"\`]${escape(key)}['"\`]`).test(sourceText())
}

/** The [app:main] keys a snippet sets: ```ini blocks and indented ini blocks, and `kinto.x = y` spans. */
function settingsNamed(docs: Doc[]): Array<Snippet & {key: string}> {
  const found: Array<Snippet & {key: string}> = []
  for (const doc of docs) {
    const {blocks, spans} = codeOf(doc)
    let section = 'app:main'
    let previous: Snippet | undefined
    for (const b of blocks) {
      const isIni = b.lang === 'ini' || (b.lang === 'indented' && /^\s*(\[[^\]]+\]|(kinto|multiauth)\.[\w.-]+\s*=)/.test(b.text))
      if (!isIni) continue
      if (!previous || previous.file !== b.file || previous.line !== b.line - 1) section = 'app:main' // a new block
      previous = b
      const header = /^\s*\[([^\]]+)\]/.exec(b.text)
      if (header) section = header[1].trim()
      const entry = /^\s*([^\s#;=:[][^=:]*?)\s*[=:]/.exec(b.text)
      // in an indented block the lines below a key are its continuation
      if (entry && section === 'app:main' && !(b.lang === 'indented' && /^ {5,}/.test(b.text))) found.push({...b, key: entry[1]})
    }
    for (const s of spans) {
      const m = /^((?:kinto|multiauth)\.[\w.-]+)\s*=/.exec(s.text)
      if (m) found.push({...s, key: m[1]})
    }
  }
  return found
}

// ---- commands ---------------------------------------------------------------------------------

const surface: SurfaceCommand[] = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/cli-surface.json'), 'utf8'))

/** Problems with one `kinto …` invocation: an unknown command, a flag the command does not take. */
function invocationProblems(text: string): string[] {
  const m = /(?:^|[\s(])kinto((?: +[a-z][a-z-]*)+)(.*)$/.exec(text)
  if (!m) return []
  const words = m[1].trim().split(/ +/)
  const topic = surface.filter((c) => c.id.startsWith(`${words[0]} `))
  const command = surface.find((c) => c.id === words.slice(0, 2).join(' ')) ?? surface.find((c) => c.id === words[0])
  if (!command && (topic.length === 0 || words.length > 1)) return [`no command 'kinto ${words.slice(0, topic.length > 0 ? 2 : 1).join(' ')}'`]
  const takers = command ? [command] : topic
  const id = command?.id ?? words[0]
  const problems: string[] = []
  const rest = `${m[1]}${m[2]}`
  for (const [, name] of rest.matchAll(/(?:^|[\s[])--([a-z][a-z0-9-]*)/g)) {
    if (name === 'help' || name === 'version') continue
    const plain = name.startsWith('no-') ? name.slice(3) : undefined
    const takes = takers.some((c) => name in c.flags || (plain !== undefined && c.flags[plain]?.type === 'boolean'))
    if (!takes) problems.push(`'kinto ${id}' has no flag --${name}`)
  }
  for (const [, char] of rest.matchAll(/(?:^|[\s[])-([a-zA-Z])(?=[\s\]]|$)/g)) {
    if (char === 'h') continue
    if (!takers.some((c) => Object.values(c.flags).some((f) => f.char === char))) problems.push(`'kinto ${id}' has no flag -${char}`)
  }
  return problems
}

/** The `kinto …` invocations of a doc: in shell blocks and code spans, one per pipeline stage. */
function invocations(docs: Doc[]): Snippet[] {
  const found: Snippet[] = []
  for (const doc of docs) {
    const {blocks, spans} = codeOf(doc)
    const shell = blocks.filter((b) => ['sh', 'bash', 'console', 'shell', 'text', 'indented'].includes(b.lang))
    for (const s of [...shell, ...spans]) {
      // a comment ends the command; `;`, `&&`, `||`, a spaced `|` and `$(` start another
      const code = s.text.replace(/(^|\s)#.*$/, '')
      for (const part of code.split(/;|&&|\|\||\s\|\s|\$\(/)) if (/(?:^|[\s(])kinto +[a-z]/.test(part)) found.push({...s, text: part})
    }
  }
  return found
}

/**
 * Whether a `KINTO_*` variable a doc names is one something reads: a flag's environment twin, a
 * setting's override (`KINTO_<KEY>`), an error code, or a variable of the tests or scripts.
 */
function environmentIsRead(name: string): boolean {
  if (surface.some((c) => Object.values(c.flags).some((f) => f.env === name))) return true
  const lower = name.slice('KINTO_'.length).toLowerCase()
  if (ruleFor(lower) || Object.keys(DEFAULT_SETTINGS).some((k) => envNames(k)[1] === name)) return true
  if (new RegExp(`['"\`]${name}['"\`]`).test(sourceText())) return true // an error code
  return testsAndScriptsText().includes(name)
}

// ---- links and paths --------------------------------------------------------------------------

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^\s*```[\s\S]*?^\s*```/gm, '')
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1].replaceAll('`', ''))))
}

/** Whether a path of the repository exists; `*` in its last part matches any text. */
function repoPathExists(relative: string): boolean {
  if (!relative.includes('*')) return existsSync(path.join(repoRoot, relative))
  const dir = path.join(repoRoot, path.dirname(relative))
  const pattern = new RegExp(`^${path.basename(relative).split('*').map(escape).join('.*')}$`)
  return existsSync(dir) && readdirSync(dir).some((f) => pattern.test(f))
}

function linkProblems(doc: Doc): string[] {
  const problems: string[] = []
  const lines = doc.text.split('\n')
  lines.forEach((line, i) => {
    const at = `${doc.file}:${i + 1}`
    for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue
      const [file, anchor] = target.split('#')
      const resolved = file ? path.resolve(repoRoot, path.dirname(doc.file), file) : path.join(repoRoot, doc.file)
      if (!existsSync(resolved)) problems.push(`${at}: link to ${target}: no such file`)
      else if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) problems.push(`${at}: link to ${target}: no such heading`)
    }
    // paths of this repository named in the text (docs/upgrade.md, src/lib/…, test/…), from its root
    // (a file of ours by its extension, or a folder by its trailing /: upstream's docs/….rst are not ours)
    for (const [, p] of line.matchAll(/(?<![\w/.-])((?:docs|src|test|scripts|bench|sql|templates)\/(?:[\w.*-]+\/)*(?:[\w.*-]+\.(?:md|ts|mts|js|mjs|sh|sql|json|png|ini|conf|wsgi)\b|(?=[\s`),;]|$)))/g)) {
      if (!repoPathExists(p)) problems.push(`${at}: ${p}: no such file`)
    }
  })
  return problems
}

// ---- tests ------------------------------------------------------------------------------------

describe('README.md and docs/*.md', () => {
  const docs = readDocs()

  it('name only settings the code reads, in their ini snippets', () => {
    const named = settingsNamed(docs)
    expect(named.length).toBeGreaterThan(30) // the extraction finds the snippets
    const unknown = named.filter((s) => !settingIsRead(s.key)).map((s) => `${where(s)}: ${s.key}`)
    expect(unknown).toEqual([])
  })

  it('name only commands and flags that exist', () => {
    const found = invocations(docs)
    expect(found.length).toBeGreaterThan(50)
    const problems = found.flatMap((s) => invocationProblems(s.text).map((p) => `${where(s)}: ${p} (${s.text.trim()})`))
    expect(problems).toEqual([])
  })

  it('name only KINTO_* environment variables that something reads', () => {
    const named = docs.flatMap((d) => [...d.text.matchAll(/\bKINTO_[A-Z0-9_]+\b/g)].map((m) => `${d.file}: ${m[0]}`))
    expect(named.length).toBeGreaterThan(50)
    expect([...new Set(named)].filter((n) => !environmentIsRead(n.split(': ')[1]))).toEqual([])
  })

  it('link to files and headings that exist, and name repository paths that exist', () => {
    expect(docs.flatMap(linkProblems)).toEqual([])
  })

  it('are the ones that the hints of src/ send operators to', () => {
    const named = [...sourceText().matchAll(/docsFile\('([^']+)'\)|\bdocs\/([\w-]+\.md)/g)].map((m) => m[1] ?? m[2])
    expect(named.length).toBeGreaterThan(3)
    expect(named.filter((f) => !existsSync(path.join(repoRoot, 'docs', f)))).toEqual([])
  })
})

describe('the ini kinto init writes (templates/kinto.ini)', () => {
  const template = readFileSync(path.join(repoRoot, 'templates/kinto.ini'), 'utf8')

  it('offers as commented examples only settings kinto-ops reads', () => {
    // `# kinto.x = value` (or indented under a comment): what an operator uncomments
    const examples = [...template.matchAll(/^#\s*((?:kinto|multiauth)\.[\w.-]+)\s*=/gm)].map((m) => m[1])
    expect(examples.length).toBeGreaterThan(40)
    expect(examples.filter((key) => !settingIsRead(key))).toEqual([])
  })

  it('names docs and commands that exist', () => {
    expect(linkProblems({file: 'templates/kinto.ini', text: template})).toEqual([])
    const commands = [...template.matchAll(/`(kinto [^`]+)`/g)].flatMap((m) => invocationProblems(m[1]))
    expect(commands).toEqual([])
  })
})

describe('the docs checks themselves', () => {
  it('catch a setting nobody reads, a flag or command that does not exist, and a dead link', () => {
    expect(settingIsRead('kinto.attachment.base_path')).toBe(true)
    expect(settingIsRead('kinto.storage_pool_size')).toBe(true)
    expect(settingIsRead('multiauth.policy.google.state_length')).toBe(true)
    expect(settingIsRead('kinto.attachment.bas_path')).toBe(false)
    expect(settingIsRead('multiauth.policy.google.relm')).toBe(false)
    expect(settingIsRead('kinto.prometheus_prefx')).toBe(false)

    expect(environmentIsRead('KINTO_START_SERVE_UNREACHABLE')).toBe(true)
    expect(environmentIsRead('KINTO_BUCKET_WRITE_PRINCIPALS')).toBe(true)
    expect(environmentIsRead('KINTO_TEST_DATABASE_URL')).toBe(true)
    expect(environmentIsRead('KINTO_START_SERVE_UNREACHABLE_AT_ONCE')).toBe(false)

    expect(invocationProblems('kinto backup --ini a.ini -o - --force')).toEqual([])
    expect(invocationProblems('kinto backoff off --no-reload')).toEqual([])
    expect(invocationProblems('kinto deploy … --check')).toEqual([])
    expect(invocationProblems('kinto backup --out x -x')).toEqual(["'kinto backup' has no flag --out", "'kinto backup' has no flag -x"])
    expect(invocationProblems('kinto db drop --ini x')).toEqual(["no command 'kinto db drop'"])
    expect(invocationProblems('kinto frobnicate')).toEqual(["no command 'kinto frobnicate'"])

    const doc = {file: 'docs/x.md', text: '[a](upgrade.md#the-script) [b](upgrade.md#no-such) [c](nowhere.md) see src/lib/nowhere.ts, `src/lib/ops/`, `src/lib/opz/`\n'}
    expect(linkProblems(doc)).toEqual([
      'docs/x.md:1: link to upgrade.md#no-such: no such heading',
      'docs/x.md:1: link to nowhere.md: no such file',
      'docs/x.md:1: src/lib/nowhere.ts: no such file',
      'docs/x.md:1: src/lib/opz/: no such file',
    ])
  })
})

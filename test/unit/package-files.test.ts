/**
 * What `npm pack` puts in the package (package.json "files"), read from its file list without
 * building or installing (test/integration/package-install.integration.test.ts installs the packed
 * package and runs it): the docs/ pages that messages, help and the README send operators to are
 * in it, and the files only the repository uses are not.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {docsFile} from '../../src/lib/version.js'
import {repoRoot} from '../helpers/cli.js'

function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  return (JSON.parse(out) as {files: {path: string}[]}[])[0]!.files.map((f) => f.path)
}

/** The docs/ pages named in src/ (`docs/NAME.md` in text, docsFile('NAME.md') in hints) and in README.md. */
function referencedDocs(): string[] {
  const texts = readdirSync(path.join(repoRoot, 'src'), {recursive: true, encoding: 'utf8'})
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(repoRoot, 'src', f), 'utf8'))
  texts.push(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'))
  const names = new Set<string>()
  for (const text of texts) {
    for (const m of text.matchAll(/docs\/([\w-]+\.(?:md|png))/g)) names.add(m[1]!)
    for (const m of text.matchAll(/docsFile\('([\w-]+\.md)'\)/g)) names.add(m[1]!)
  }
  return [...names].sort()
}

describe('the packed package', () => {
  const files = packedFiles()

  it('ships every docs/ page that messages, help and the README name, where docsFile() finds it', () => {
    const docs = referencedDocs()
    expect(docs).toContain('backup.md')
    for (const name of docs) {
      expect(existsSync(path.join(repoRoot, 'docs', name)), `docs/${name} exists`).toBe(true)
      expect(files, `docs/${name} is packed`).toContain(`docs/${name}`)
    }
    expect(docsFile('backup.md')).toBe(path.join(repoRoot, 'docs', 'backup.md'))
  })

  it('ships what the runtime reads beside dist/ (sql/, templates/)', () => {
    for (const f of ['sql/storage/schema.sql', 'sql/permission/schema.sql', 'sql/cache/schema.sql', 'templates/kinto.ini', 'templates/nginx.conf', 'package.json']) {
      expect(files).toContain(f)
    }
  })

  it('ships nothing only the repository uses: sources, tests, scripts, source maps, build stamps, bin/dev.js', () => {
    const unwanted = files.filter(
      (f) => /^(src|test|scripts|bench|config|\.ci)\//.test(f) || f.endsWith('.map') || f.endsWith('.build-stamp') || f === 'bin/dev.js' || /(^|\/)\.env/.test(f),
    )
    expect(unwanted).toEqual([])
  })
})

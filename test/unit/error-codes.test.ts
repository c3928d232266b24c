/** docs/errors.md is the one list of CLI error codes: it must name every code the source raises, and no other. */
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name)
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

function codesInSource(): Set<string> {
  const codes = new Set<string>()
  for (const file of sourceFiles(path.join(repoRoot, 'src'))) {
    const text = readFileSync(file, 'utf8')
    // `code: 'KINTO_X'`, `code ?? 'KINTO_X'`, `code === 'KINTO_X'`: error codes (env twins are `env: 'KINTO_X'`).
    for (const m of text.matchAll(/\bcode\s*(?::|\?\?|===)\s*'(KINTO_[A-Z0-9_]+)'/g)) codes.add(m[1])
  }
  return codes
}

function codesInDocs(): Set<string> {
  const text = readFileSync(path.join(repoRoot, 'docs', 'errors.md'), 'utf8')
  return new Set([...text.matchAll(/^\| `(KINTO_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]))
}

describe('CLI error codes', () => {
  it('every code raised in src/ is documented in docs/errors.md', () => {
    const missing = [...codesInSource()].filter((c) => !codesInDocs().has(c)).sort()
    expect(missing).toEqual([])
  })

  it('docs/errors.md lists no code that src/ no longer raises', () => {
    const stale = [...codesInDocs()].filter((c) => !codesInSource().has(c)).sort()
    expect(stale).toEqual([])
  })
})

#!/usr/bin/env node
/**
 * The shape of src/: which folder imports which, import cycles between folders, and files over
 * the size limit. `node scripts/layers.mjs` prints the problems and exits 1 when there are any;
 * test/unit/layers.test.ts runs the same checks in the fast lane.
 *
 * A folder is an area of the code: src/lib/<area> (server, ops, db…), a file directly in
 * src/lib is its own area (`lib/errors`), and the CLI (src/commands, src/hooks, src/*.ts) is `cli`.
 * Cycles are those of the imports that load code; `import type` (erased when compiled) does not
 * make one, and `--types` lists the cycles that type imports would add.
 */
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, relative, resolve, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const MAX_LINES = 600

function sourceFiles(dir) {
  const files = []
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts')) files.push(path)
  }
  return files
}

/** The area a file of src/ belongs to (see above). */
export function areaOf(file) {
  const parts = relative(join(ROOT, 'src'), file).split(sep)
  if (parts[0] !== 'lib') return 'cli'
  if (parts.length === 2) return `lib/${parts[1].replace(/\.ts$/, '')}`
  return parts[1]
}

const IMPORT = /(?:^|[\s;])(import|export)\s+(type\s+)?([^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

/**
 * Every relative import of the files of src/: [{from, to, typeOnly}] with absolute .ts paths.
 * typeOnly: `import type {…}` or an import whose every name is `type X`.
 */
export function importEdges() {
  const edges = []
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[4] ?? m[5]
      if (!spec.startsWith('.')) continue
      const names = /\{([^}]*)\}/.exec(m[3] ?? '')?.[1]
      const allTypes = names !== undefined && !/^\s*\w+\s*,/.test(m[3]) && names.split(',').every((n) => n.trim() === '' || /^type\s/.test(n.trim()))
      const typeOnly = Boolean(m[2]) || allTypes
      edges.push({from: file, to: resolve(dirname(file), spec).replace(/\.js$/, '.ts'), typeOnly})
    }
  }
  return edges
}

/** area -> Map(area it imports -> files making that import, as `from -> to`). */
export function areaGraph(edges = importEdges().filter((e) => !e.typeOnly)) {
  const graph = new Map()
  for (const {from, to} of edges) {
    const a = areaOf(from)
    const b = areaOf(to)
    if (!graph.has(a)) graph.set(a, new Map())
    if (a === b) continue
    const targets = graph.get(a)
    if (!targets.has(b)) targets.set(b, [])
    targets.get(b).push(`${relative(ROOT, from)} -> ${relative(ROOT, to)}`)
  }
  return graph
}

/** Strongly connected components of more than one area (Tarjan). */
export function areaCycles(graph = areaGraph()) {
  let index = 0
  const stack = []
  const info = new Map()
  const cycles = []
  const visit = (v) => {
    info.set(v, {index, low: index, onStack: true})
    index++
    stack.push(v)
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!info.has(w)) {
        visit(w)
        info.get(v).low = Math.min(info.get(v).low, info.get(w).low)
      } else if (info.get(w).onStack) info.get(v).low = Math.min(info.get(v).low, info.get(w).index)
    }
    if (info.get(v).low === info.get(v).index) {
      const component = []
      let w
      do {
        w = stack.pop()
        info.get(w).onStack = false
        component.push(w)
      } while (w !== v)
      if (component.length > 1) cycles.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!info.has(v)) visit(v)
  return cycles
}

/** The imports that close a cycle, for a message: each edge between two areas of the component. */
export function describeCycle(component, graph = areaGraph()) {
  const lines = []
  for (const a of component) {
    for (const [b, via] of graph.get(a) ?? []) {
      if (component.includes(b)) lines.push(`  ${a} -> ${b}: ${via[0]}${via.length > 1 ? ` (+${via.length - 1})` : ''}`)
    }
  }
  return lines.join('\n')
}

/** Files of src/ longer than MAX_LINES: [{file, lines}]. */
export function longFiles() {
  const long = []
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const lines = readFileSync(file, 'utf8').split('\n').length
    if (lines > MAX_LINES) long.push({file: relative(ROOT, file), lines})
  }
  return long
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const graph = areaGraph()
  const problems = []
  for (const cycle of areaCycles(graph)) problems.push(`import cycle between ${cycle.join(', ')}:\n${describeCycle(cycle, graph)}`)
  for (const {file, lines} of longFiles()) problems.push(`${file} has ${lines} lines (at most ${MAX_LINES})`)
  if (process.argv.includes('--types')) {
    const withTypes = areaGraph(importEdges())
    for (const cycle of areaCycles(withTypes)) console.log(`with type imports, a cycle between ${cycle.join(', ')}:\n${describeCycle(cycle, withTypes)}`)
  }
  if (process.argv.includes('--graph')) {
    for (const [a, targets] of [...graph].sort()) console.log(`${a} -> ${[...targets.keys()].sort().join(', ')}`)
  }
  for (const p of problems) console.error(p)
  process.exit(problems.length > 0 ? 1 : 0)
}

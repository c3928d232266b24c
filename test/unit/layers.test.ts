/**
 * The shape of src/ (scripts/layers.mjs): no import cycle between folders, no file over the
 * size limit, and the dependency rules of docs/architecture.md.
 */
import {describe, expect, test} from 'vitest'

// @ts-expect-error: a plain ES module script, without type declarations
import {MAX_LINES, areaCycles, areaGraph, describeCycle, longFiles} from '../../scripts/layers.mjs'

type Graph = Map<string, Map<string, string[]>>
const graph = areaGraph() as Graph
const imports = (area: string) => [...(graph.get(area)?.keys() ?? [])]

describe('src/ layers', () => {
  test('the graph is read (a check that sees no imports would pass anything)', () => {
    expect(imports('server')).toContain('storage')
    expect(imports('cli')).toContain('ops')
  })

  test('no import cycle between folders', () => {
    const cycles = areaCycles(graph) as string[][]
    expect(cycles.map((c) => `${c.join(' <-> ')}\n${describeCycle(c, graph)}`)).toEqual([])
  })

  test(`no file of src/ over ${MAX_LINES} lines`, () => {
    expect(longFiles()).toEqual([])
  })

  test('ops, monitoring and check keep to their side', () => {
    // The CLI's operations start the server through serve/, never reach into it.
    expect(imports('ops')).not.toContain('server')
    expect(imports('ops')).not.toContain('check')
    expect(imports('monitoring')).not.toContain('check')
    // serve/ only starts it (server/start.ts).
    const serveToServer = graph.get('serve')?.get('server') ?? []
    expect(serveToServer.every((edge) => edge.endsWith('src/lib/server/start.ts'))).toBe(true)
    // The domain model and the low layers import nothing above them.
    for (const low of ['state', 'db', 'storage', 'config']) {
      expect(imports(low), low).not.toContain('server')
      expect(imports(low), low).not.toContain('ops')
    }
  })
})

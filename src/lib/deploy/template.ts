/**
 * A very small logic-less template renderer for the files in templates/ (a subset of mustache):
 *
 *   {{name}}                 the value (string or number); a missing name is a bug and throws
 *   {{#name}} … {{/name}}    rendered when truthy; once per item for an array (item as `{{.}}`,
 *                            or its fields when the item is an object)
 *   {{^name}} … {{/name}}    rendered when falsy or an empty array
 *   {{! comment }}           dropped
 *
 * A line holding nothing but one section or comment tag disappears entirely, so templates can
 * be laid out readably. Nothing is escaped: every value is checked by values.ts before it gets
 * here, which is what keeps a generated file well-formed.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {packageRoot} from '../version.js'

export type ViewValue = string | number | boolean | null | undefined | View | ViewValue[]
export interface View {
  [key: string]: ViewValue
}

type Node =
  | {kind: 'text'; text: string}
  | {kind: 'var'; name: string}
  | {kind: 'section'; name: string; inverted: boolean; children: Node[]}

const TAG = /{{\s*([#^/!]?)\s*([^}]*?)\s*}}/g
const STANDALONE = /^[ \t]*{{\s*[#^/!][^}]*}}[ \t]*\r?\n/gm

/** Folder holding the shipped templates (works from src/ through tsx and from dist/). */
export const templatesDir = path.join(packageRoot, 'templates')

const cache = new Map<string, Node[]>()

/** Renders templates/<name> with the view. */
export function renderTemplateFile(name: string, view: View): string {
  let nodes = cache.get(name)
  if (!nodes) {
    nodes = parse(readFileSync(path.join(templatesDir, name), 'utf8'), name)
    cache.set(name, nodes)
  }
  return renderNodes(nodes, [view], name)
}

/** Renders a template given as text (used by tests and by renderTemplateFile). */
export function renderTemplate(source: string, view: View, name = 'template'): string {
  return renderNodes(parse(source, name), [view], name)
}

function parse(source: string, name: string): Node[] {
  const text = source.replace(STANDALONE, (line) => line.trim())
  const root: Node[] = []
  const stack: {name: string; children: Node[]}[] = [{name: '', children: root}]
  let last = 0
  for (const match of text.matchAll(TAG)) {
    const top = stack.at(-1)!
    if (match.index > last) top.children.push({kind: 'text', text: text.slice(last, match.index)})
    last = match.index + match[0].length
    const [, sigil, tagName] = match
    if (sigil === '!') continue
    if (!tagName) throw new Error(`${name}: empty tag at offset ${match.index}`)
    if (sigil === '#' || sigil === '^') {
      const section: Node = {kind: 'section', name: tagName, inverted: sigil === '^', children: []}
      top.children.push(section)
      stack.push({name: tagName, children: section.children})
    } else if (sigil === '/') {
      if (stack.length === 1 || top.name !== tagName) {
        throw new Error(`${name}: {{/${tagName}}} closes ${stack.length === 1 ? 'nothing' : `{{#${top.name}}}`}`)
      }
      stack.pop()
    } else {
      top.children.push({kind: 'var', name: tagName})
    }
  }
  if (stack.length > 1) throw new Error(`${name}: {{#${stack.at(-1)!.name}}} is never closed`)
  if (last < text.length) root.push({kind: 'text', text: text.slice(last)})
  return root
}

function lookup(stack: ViewValue[], key: string): {found: boolean; value: ViewValue} {
  if (key === '.') return {found: true, value: stack.at(-1)}
  for (let i = stack.length - 1; i >= 0; i--) {
    const frame = stack[i]
    if (frame !== null && typeof frame === 'object' && !Array.isArray(frame) && Object.hasOwn(frame, key)) {
      return {found: true, value: frame[key]}
    }
  }
  return {found: false, value: undefined}
}

function renderNodes(nodes: Node[], stack: ViewValue[], name: string): string {
  let out = ''
  for (const node of nodes) {
    if (node.kind === 'text') {
      out += node.text
    } else if (node.kind === 'var') {
      const {found, value} = lookup(stack, node.name)
      if (!found || value === undefined || value === null) throw new Error(`${name}: no value for {{${node.name}}}`)
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new Error(`${name}: {{${node.name}}} is not a string or a number`)
      }
      out += String(value)
    } else {
      const {value} = lookup(stack, node.name)
      const items = Array.isArray(value) ? value : value ? [value] : []
      if (node.inverted) {
        if (items.length === 0) out += renderNodes(node.children, stack, name)
      } else {
        for (const item of items) out += renderNodes(node.children, [...stack, item], name)
      }
    }
  }
  return out
}

/** Dotted field paths in objects: values for pagination cursors, subsets for `_fields`. */
import {MISSING} from '../../storage/types.js'
import {isPlainObject} from '../patch.js'

/** upstream's find_nested_value: dotted paths, preferring the longest existing key. */
export function findNestedValue(d: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(d, path)) return d[path]
  const parts = path.split('.')
  let root: string | undefined
  for (let i = parts.length; i > 0; i--) {
    const candidate = parts.slice(0, i).join('.')
    if (Object.hasOwn(d, candidate)) {
      root = candidate
      break
    }
  }
  if (root === undefined || !isPlainObject(d[root])) return MISSING
  return findNestedValue(d[root] as Record<string, unknown>, path.slice(root.length + 1))
}

/** upstream's dict_subset for `_fields`. */
export function dictSubset(d: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {}
  for (const key of keys) {
    const dot = key.indexOf('.')
    if (dot >= 0) {
      const field = key.slice(0, dot)
      const sub = key.slice(dot + 1)
      if (isPlainObject(d[field])) {
        const subvalue = dictSubset(d[field] as Record<string, unknown>, [sub])
        result[field] = dictMerge(subvalue, isPlainObject(result[field]) ? (result[field] as Record<string, unknown>) : {})
      } else if (Object.hasOwn(d, field)) result[field] = d[field]
    } else if (Object.hasOwn(d, key)) result[key] = d[key]
  }
  return result
}

function dictMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {...b}
  for (const [k, v] of Object.entries(a)) {
    result[k] = isPlainObject(v) ? dictMerge(v, isPlainObject(result[k]) ? (result[k] as Record<string, unknown>) : {}) : v
  }
  return result
}

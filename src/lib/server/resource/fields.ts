/** Dotted field paths in objects: subsets for `_fields`. */
import {isPlainObject, ownValue, setOwn} from '../patch.js'

/** upstream's dict_subset for `_fields`. */
export function dictSubset(d: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {}
  for (const key of keys) {
    const dot = key.indexOf('.')
    if (dot >= 0) {
      const field = key.slice(0, dot)
      const sub = key.slice(dot + 1)
      const value = ownValue(d, field)
      if (isPlainObject(value)) {
        const subvalue = dictSubset(value, [sub])
        const merged = ownValue(result, field)
        setOwn(result, field, dictMerge(subvalue, isPlainObject(merged) ? merged : {}))
      } else if (Object.hasOwn(d, field)) setOwn(result, field, d[field])
    } else if (Object.hasOwn(d, key)) setOwn(result, key, d[key])
  }
  return result
}

function dictMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {...b}
  for (const [k, v] of Object.entries(a)) {
    const merged = ownValue(result, k)
    setOwn(result, k, isPlainObject(v) ? dictMerge(v, isPlainObject(merged) ? merged : {}) : v)
  }
  return result
}

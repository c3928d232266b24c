/**
 * Values rendered as Python renders them, for error messages that match upstream's word for word
 * (colander's and jsonschema's messages show request values this way).
 */

/** Python's repr() of a JSON value: `None`, `True`, `'text'`, `[1, 'a']`, `{'k': 'v'}`. */
export function pythonRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'number') return String(v)
  if (typeof v === 'string') {
    if (v.includes("'") && !v.includes('"')) return `"${v}"`
    return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
  }
  if (Array.isArray(v)) return `[${v.map(pythonRepr).join(', ')}]`
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pythonRepr(k)}: ${pythonRepr(x)}`).join(', ')}}`
  return String(v)
}

/** Python's str() of a JSON value (colander's `%s`): a string as it is, anything else as repr(). */
export function pyRepr(v: unknown): string {
  return typeof v === 'string' ? v : pythonRepr(v)
}

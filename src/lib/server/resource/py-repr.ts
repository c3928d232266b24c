/** A Python-like rendering of a value for colander-style messages. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'string') return v
  if (typeof v === 'number') return String(v)
  const inner = (x: unknown): string => (typeof x === 'string' ? `'${x}'` : pyRepr(x))
  if (Array.isArray(v)) return `[${v.map(inner).join(', ')}]`
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `'${k}': ${inner(x)}`).join(', ')}}`
  return String(v)
}

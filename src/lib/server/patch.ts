/**
 * PATCH helpers: JSON merge-patch (RFC 7396) and JSON-Patch (RFC 6902), applied to copies.
 */
import {pyRepr, pythonRepr} from './py-repr.js'
import {exactIntegerText} from '../json.js'

export type Json = null | boolean | number | string | Json[] | {[key: string]: Json}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Deep equality of JSON values (Python's == on dicts and lists). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== typeof b || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    return a.every((v, i) => deepEqual(v, b[i]))
  }
  if (typeof a === 'object') {
    if (Array.isArray(b)) return false
    const ka = Object.keys(a as object)
    const kb = Object.keys(b as object)
    if (ka.length !== kb.length) return false
    return ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return false
}

export function deepClone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T)
}

/**
 * upstream's recursive_update_dict: nested objects are merged, a value in `ignores` (null)
 * removes the key, anything else replaces.
 */
export function recursiveUpdate(root: Record<string, unknown>, changes: unknown, removeNull = true): void {
  if (!isPlainObject(changes)) return
  for (const [k, v] of Object.entries(changes)) {
    if (isPlainObject(v)) {
      if (!isPlainObject(ownValue(root, k))) setOwn(root, k, {})
      recursiveUpdate(root[k] as Record<string, unknown>, v, removeNull)
    } else if (v === null && removeNull) {
      delete root[k]
    } else {
      setOwn(root, k, v)
    }
  }
}

/** `obj[key]` when it is the object's own member: never a prototype's (`__proto__`, `constructor`). */
export function ownValue(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

/**
 * `obj[key] = value` as a JSON member: a key `__proto__` (JSON.parse makes it an own member, and
 * upstream stores it as any other) is defined as one, where an assignment would replace the
 * object's prototype, and a merge into it would write into Object.prototype for the whole process.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, {value, writable: true, enumerable: true, configurable: true})
  else obj[key] = value
}

export class JsonPatchError extends Error {}

function unescapeToken(t: string): string {
  return t.replaceAll('~1', '/').replaceAll('~0', '~')
}

/** python-jsonpointer's rule (upstream's): `~` must be followed by 0 or 1, checked before anything else. */
export function checkPointerEscapes(pointer: string): void {
  const bad = /~[^01]|~$/.exec(pointer)
  if (bad) throw new JsonPatchError(`Found invalid escape ${bad[0]}`)
}

function parsePointer(pointer: string): string[] {
  checkPointerEscapes(pointer)
  if (pointer === '') return []
  if (!pointer.startsWith('/')) throw new JsonPatchError(`Location must start with /: ${pointer}`)
  return pointer.slice(1).split('/').map(unescapeToken)
}

function arrayIndex(container: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return container.length
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new JsonPatchError(`'${token}' is not a valid sequence index`)
  const i = Number(token)
  if (i > container.length || (!forAdd && i === container.length)) throw new JsonPatchError(`index '${i}' is out of bounds`)
  return i
}

function isText(v: unknown): v is string {
  return typeof v === 'string' && exactIntegerText(v) === undefined
}

/** python-jsonpointer's refusal to index a number, a boolean or null (its type, as Python names it). */
function notIndexable(v: unknown): JsonPatchError {
  return new JsonPatchError(`Document '${pyType(v)}' does not support indexing, must be mapping/sequence or support __getitem__`)
}

/** One step of a JSON pointer, with python-jsonpointer's messages (a missing member names the mapping). */
function walk(cur: unknown, token: string): unknown {
  if (Array.isArray(cur)) return cur[arrayIndex(cur, token, false)]
  if (isPlainObject(cur)) {
    if (Object.hasOwn(cur, token)) return cur[token]
    throw new JsonPatchError(`member '${token}' not found in ${pyRepr(cur)}`)
  }
  // A string is a sequence (of characters) to Python.
  if (isText(cur)) return Array.from(cur)[arrayIndex(Array.from(cur), token, false)]
  throw notIndexable(cur)
}

function resolveParent(doc: unknown, tokens: string[]): {parent: unknown; key: string} {
  let cur = doc
  for (const token of tokens.slice(0, -1)) cur = walk(cur, token)
  const parent = cur
  if (!Array.isArray(parent) && !isPlainObject(parent)) {
    if (!isText(parent)) throw notIndexable(parent)
    arrayIndex(Array.from(parent), tokens[tokens.length - 1], true)
  }
  return {parent, key: tokens[tokens.length - 1]}
}

function getAt(doc: unknown, pointer: string): unknown {
  let cur = doc
  for (const token of parsePointer(pointer)) cur = walk(cur, token)
  return cur
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer)
  if (tokens.length === 0) return value
  const {parent, key} = resolveParent(doc, tokens)
  if (Array.isArray(parent)) {
    if (key !== '-' && /^(0|[1-9][0-9]*)$/.test(key) && Number(key) > parent.length) throw new JsonPatchError("can't insert outside of list")
    parent.splice(arrayIndex(parent, key, true), 0, value)
  }
  else if (isPlainObject(parent)) setOwn(parent, key, value)
  else throw new JsonPatchError(`unable to fully resolve json pointer ${pointer}, part ${key}`)
  return doc
}

function remove(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer)
  if (tokens.length === 0) throw new JsonPatchError('cannot remove the whole document')
  const {parent, key} = resolveParent(doc, tokens)
  if (Array.isArray(parent)) {
    // `-` passes python-jsonpointer's index check and fails python-json-patch's remove.
    if (key === '-') throw new JsonPatchError("invalid array index '-'")
    if (!/^(0|[1-9][0-9]*)$/.test(key)) arrayIndex(parent, key, false)
    const i = Number(key)
    // python-json-patch's `del` of a missing index.
    if (i >= parent.length) throw new JsonPatchError(`can't remove a non-existent object '${key}'`)
    parent.splice(i, 1)
  } else if (isPlainObject(parent) && Object.hasOwn(parent, key)) delete parent[key]
  else throw new JsonPatchError(`can't remove a non-existent object '${key}'`)
  return doc
}

/** What python-json-patch's replace checks before replacing: the target exists (its messages). */
function replaceable(doc: unknown, pointer: string): void {
  const tokens = parsePointer(pointer)
  if (tokens.length === 0) return
  const {parent, key} = resolveParent(doc, tokens)
  if (Array.isArray(parent)) {
    if (key === '-') throw new JsonPatchError("'path' with '-' can't be applied to 'replace' operation")
    if (/^(0|[1-9][0-9]*)$/.test(key) && Number(key) >= parent.length) throw new JsonPatchError("can't replace outside of list")
  } else if (isPlainObject(parent) && !Object.hasOwn(parent, key)) {
    throw new JsonPatchError(`can't replace a non-existent object '${key}'`)
  }
  getAt(doc, pointer)
}

/** The value at a move's or copy's `from`; a missing last member fails as Python's KeyError / IndexError. */
function source(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer)
  if (tokens.length > 0) {
    const {parent, key} = resolveParent(doc, tokens)
    if (isPlainObject(parent) && !Object.hasOwn(parent, key)) throw new JsonPatchError(`'${key}'`)
    if (Array.isArray(parent) && /^(0|[1-9][0-9]*)$/.test(key) && Number(key) >= parent.length) throw new JsonPatchError('list index out of range')
  }
  return getAt(doc, pointer)
}

/** Python's type() of a JSON value, as python-json-patch's failed test shows it (with str()). */
function pyType(v: unknown): string {
  const name =
    v === null ? 'NoneType' : typeof v === 'boolean' ? 'bool' : typeof v === 'number' || exactIntegerText(v) !== undefined ? (typeof v !== 'number' || Number.isInteger(v) ? 'int' : 'float') : typeof v === 'string' ? 'str' : Array.isArray(v) ? 'list' : 'dict'
  return `<class '${name}'>`
}

export interface PatchOperation {
  op: string
  path: string
  from?: string
  value?: unknown
}

/**
 * The member an operation needs (RFC 6902 §4: `value` for add, replace and test, `from` for move
 * and copy). Missing, the operation fails; a `null` value is a value.
 */
function member(op: PatchOperation, name: 'value' | 'from'): unknown {
  if (op[name] === undefined) throw new JsonPatchError(`The operation does not contain a '${name}' member`)
  return op[name]
}

/** Applies operations to a deep copy of `doc`; throws JsonPatchError. */
export function applyJsonPatch(doc: unknown, ops: PatchOperation[]): unknown {
  let result = deepClone(doc)
  for (const op of ops) {
    switch (op.op) {
      case 'add':
        result = add(result, op.path, deepClone(member(op, 'value')))
        break
      case 'remove':
        result = remove(result, op.path)
        break
      case 'replace': {
        const value = member(op, 'value')
        replaceable(result, op.path)
        const tokens = parsePointer(op.path)
        if (tokens.length === 0) {
          result = deepClone(value)
          break
        }
        // In place, as python-json-patch assigns: a replaced member keeps its position.
        const {parent, key} = resolveParent(result, tokens)
        if (Array.isArray(parent)) parent[Number(key)] = deepClone(value)
        else if (isPlainObject(parent)) setOwn(parent, key, deepClone(value))
        else throw new JsonPatchError(`unable to fully resolve json pointer ${op.path}, part ${key}`)
        break
      }
      case 'move': {
        const from = member(op, 'from') as string
        const value = source(result, from)
        if (from === op.path) break
        if (op.path.startsWith(`${from}/`) && isPlainObject(resolveParent(result, parsePointer(from)).parent)) {
          throw new JsonPatchError('Cannot move values into their own children')
        }
        result = remove(result, from)
        result = add(result, op.path, value)
        break
      }
      case 'copy':
        result = add(result, op.path, deepClone(source(result, member(op, 'from') as string)))
        break
      case 'test': {
        const tokens = parsePointer(op.path)
        if (tokens[tokens.length - 1] === '-') {
          // python-jsonpointer resolves a list's `-` to its EndOfList marker, equal to no value.
          const {parent} = resolveParent(result, tokens)
          if (Array.isArray(parent)) {
            const value = member(op, 'value')
            throw new JsonPatchError(`EndOfList(${pythonRepr(parent)}) (<class 'jsonpointer.EndOfList'>) is not equal to tested value ${pyRepr(value)} (${pyType(value)})`)
          }
        }
        const found = getAt(result, op.path)
        const value = member(op, 'value')
        if (!deepEqual(found, value)) throw new JsonPatchError(`${pyRepr(found)} (${pyType(found)}) is not equal to tested value ${pyRepr(value)} (${pyType(value)})`)
        break
      }
      default:
        throw new JsonPatchError(`unknown operation '${op.op}'`)
    }
  }
  return result
}

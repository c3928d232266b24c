/**
 * JSON Patch (RFC 6902) bodies of PATCH: their validation (colander-style messages, as
 * upstream), and their application to an object's data and permissions.
 */
import {invalid, invalidParameters, type ValidationIssue} from '../errors.js'
import {applyJsonPatch, checkPointerEscapes, isPlainObject, JsonPatchError, setOwn, type PatchOperation} from '../patch.js'
import {PERMISSIONS_FIELD, type Annotated} from './definition.js'
import {colanderStringError, isPythonStr, pyRepr} from '../py-repr.js'

export function validateJsonPatch(body: unknown): PatchOperation[] {
  if (!Array.isArray(body)) throw invalid('body', '', `"${pyRepr(body)}" is not iterable`)
  const issues: ValidationIssue[] = []
  const ops: PatchOperation[] = []
  body.forEach((op, i) => {
    if (!isPlainObject(op)) {
      issues.push({location: 'body', name: String(i), description: `"${pyRepr(op)}" is not a mapping type: Does not implement dict-like functionality.`})
      return
    }
    const unknown = Object.keys(op).filter((k) => !['op', 'path', 'from', 'value'].includes(k))
    if (unknown.length > 0) issues.push({location: 'body', name: String(i), description: `Unrecognized keys in mapping: "${pyRepr(Object.fromEntries(unknown.map((k) => [k, op[k]])))}"`})
    // colander String nodes: a value Python reads as false is missing (`from` is optional: dropped).
    const opError = colanderStringError(op.op, 'op')
    if (opError) issues.push({location: 'body', name: `${i}.op`, description: opError})
    else if (!['test', 'add', 'remove', 'replace', 'move', 'copy'].includes(op.op as string)) {
      issues.push({location: 'body', name: `${i}.op`, description: `"${pyRepr(op.op)}" is not one of test, add, remove, replace, move, copy`})
    }
    let operation = op
    for (const key of ['path', 'from'] as const) {
      const error = colanderStringError(op[key], key)
      if (key === 'from' && error === 'Required') {
        if (op.from !== undefined) {
          operation = {...op}
          delete operation.from
        }
        continue
      }
      if (error || !/^(\/\w*)+/u.test(op[key] as string)) {
        issues.push({location: 'body', name: `${i}.${key}`, description: error ?? 'String does not match expected pattern'})
      }
    }
    ops.push(operation as unknown as PatchOperation)
  })
  if (issues.length > 0) throw invalidParameters(issues)
  return ops
}

/** The document JSON-Patch operations apply to: {data, permissions: {perm: {principal: principal}}}. */
function patchDocument(obj: Annotated): Record<string, unknown> {
  const {[PERMISSIONS_FIELD]: perms, ...data} = obj
  const permissions: Record<string, Record<string, string>> = {read: {}, write: {}}
  for (const [perm, principals] of Object.entries(perms ?? {})) {
    permissions[perm] = Object.fromEntries(principals.map((p) => [p, p]))
  }
  return {data, permissions}
}

const PRINCIPAL_OP = /^\/permissions\/([^/]+)\/(.+)$/

/**
 * `add`/`remove` of `/permissions/<perm>/<principal>`: the principal is the value, and it is
 * everything after the permission name. Upstream hands these to a JSON pointer, so principals
 * with slashes (group URIs such as `/buckets/b/groups/g`, which kinto-http's addPermissions
 * sends) fail there; we apply them to the permission sets directly.
 */
function isPrincipalOp(op: PatchOperation): boolean {
  return (op.op === 'add' || op.op === 'remove') && PRINCIPAL_OP.test(op.path)
}

/**
 * Upstream's rule for the other operations on a read or write principal (`replace`, `test`…):
 * the principal is the value (its key and its value are the same in the patched document), so
 * the operation needs none and any given is replaced.
 */
function principalValue(op: PatchOperation): PatchOperation {
  if (!/^\/permissions\/(read|write)\//.test(op.path)) return op
  return {...op, value: op.path.split('/').pop()}
}

/**
 * A principal `add`/`remove` applied to the patched document's permission sets, in its place in
 * the sequence (a later `test` or `replace` of the same principal sees it, as upstream's would).
 */
function applyPrincipalOp(doc: {permissions?: unknown}, op: PatchOperation): void {
  checkPointerEscapes(op.path)
  const [, perm, principal] = PRINCIPAL_OP.exec(op.path)!
  // Upstream gives the principal as value to read and write operations only: others need theirs.
  if (op.op === 'add' && op.value === undefined && perm !== 'read' && perm !== 'write') {
    throw new JsonPatchError("The operation does not contain a 'value' member")
  }
  if (!isPlainObject(doc.permissions)) throw new JsonPatchError("member 'permissions' not found")
  const current = Object.hasOwn(doc.permissions, perm) ? doc.permissions[perm] : undefined
  // A JSON pointer reaches the permission first: removing from one the object lacks names it.
  if (op.op === 'remove' && current === undefined) throw new JsonPatchError(`member '${perm}' not found in ${pyRepr(doc.permissions)}`)
  // Its members stay as they are in the document (a later test or message shows them).
  const set: Record<string, unknown> = {}
  if (isPlainObject(current)) for (const [p, v] of Object.entries(current)) setOwn(set, p, v)
  else if (Array.isArray(current)) for (const p of current.filter(isPythonStr)) set[p] = p
  if (op.op === 'add') setOwn(set, principal, principal)
  // As a JSON pointer would (upstream): removing what is not there fails the whole patch.
  else if (Object.hasOwn(set, principal)) delete set[principal]
  else throw new JsonPatchError(`can't remove a non-existent object '${principal}'`)
  setOwn(doc.permissions, perm, set)
}

/** Applies a JSON-Patch to {data, permissions}, operation by operation; returns both (permissions as principal lists). */
export function applyPatchDocument(obj: Annotated | null, ops: PatchOperation[]): {data: unknown; permissions: Record<string, string[]>} {
  let doc = patchDocument(obj ?? ({} as Annotated)) as {data?: unknown; permissions?: unknown}
  try {
    // The other operations between two principal ones go to applyJsonPatch together: it copies
    // the document once per call, not once per operation.
    let run: PatchOperation[] = []
    const applyRun = () => {
      if (run.length > 0) doc = applyJsonPatch(doc, run) as typeof doc
      run = []
    }
    for (const op of ops) {
      if (!isPrincipalOp(op)) {
        run.push(principalValue(op))
        continue
      }
      applyRun()
      applyPrincipalOp(doc, op)
    }
    applyRun()
  } catch (err) {
    if (err instanceof JsonPatchError) throw invalid('body', null, `JSON Patch operation failed: ${err.message}`)
    throw err
  }
  const permissions: Record<string, string[]> = {}
  if (isPlainObject(doc.permissions)) {
    for (const [perm, principals] of Object.entries(doc.permissions)) {
      if (isPlainObject(principals)) setOwn(permissions, perm, Object.keys(principals))
      else if (Array.isArray(principals)) setOwn(permissions, perm, principals.filter(isPythonStr))
    }
  }
  return {data: doc.data, permissions}
}

export function jsonPatchPermissions(old: Annotated | null, ops: PatchOperation[]): Record<string, string[]> {
  return applyPatchDocument(old, ops).permissions
}

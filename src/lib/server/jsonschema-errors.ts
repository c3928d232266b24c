/**
 * The errors of JSON schema validation as upstream's validator (Python jsonschema) reports them:
 * which error of ajv's it raises, its message and the field it names (jsonschema.ts validates).
 */
import type {ErrorObject} from 'ajv'

import type {IssueName} from './errors.js'
import {isPlainObject} from './patch.js'
import {isPythonStr, pythonRepr} from './py-repr.js'

/** Stands for an empty `enum` (no value passes), which ajv refuses to compile. */
export const EMPTY_ENUM = 'x-kinto-empty-enum'

/** ajv's errors with an EMPTY_ENUM failure told as the `enum` failure it stands for. */
export function withEnums(errors: ErrorObject[]): ErrorObject[] {
  return errors.map((e) =>
    e.keyword === EMPTY_ENUM ? {...e, keyword: 'enum', schemaPath: e.schemaPath.slice(0, -EMPTY_ENUM.length) + 'enum', schema: [], params: {allowedValues: []}} : e,
  )
}

/** The value a JSON pointer (`#/definitions/a`) names in `root`, or undefined. */
export function pointerTarget(root: unknown, ref: string): unknown {
  if (ref === '#') return root
  if (!ref.startsWith('#/')) return undefined
  let cur: unknown = root
  for (const raw of ref.slice(2).split('/')) {
    const part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

/**
 * The error upstream's jsonschema would report (its best_match, roughly). ajv stops at the first
 * failing keyword and lists the errors of anyOf/oneOf branches before the combinator's own: the
 * last one is the outermost failure (but `if` reports its branch's error).
 */
export function bestError(errors: ErrorObject[]): ErrorObject {
  const last = errors[errors.length - 1]
  return last.keyword === 'if' && errors.length > 1 ? errors[errors.length - 2] : last
}

/** jsonschema's (Python) message for an error, from ajv's (verbose) error object. */
export function pythonMessage(error: ErrorObject): string {
  const value = pythonRepr(error.data)
  const params = error.params as Record<string, unknown>
  const schema = error.schema as unknown
  switch (error.keyword) {
    case 'type': {
      const types = Array.isArray(schema) ? schema : [schema]
      return `${value} is not of type ${types.map(pythonRepr).join(', ')}`
    }
    case 'required':
      return `${pythonRepr(params.missingProperty)} is a required property`
    case 'unevaluatedProperties':
      // Properties failing the keyword's subschema, once per failure (withUnevaluated).
      if (Array.isArray(params.members)) {
        const names = params.members as string[]
        return `Unevaluated properties are not valid under the given schema (${names.map(pythonRepr).join(', ')} ${names.length === 1 ? 'was' : 'were'} unevaluated and invalid)`
      }
    // falls through
    case 'additionalProperties': {
      // Every unexpected property, sorted, as upstream lists them (see withAllExtras).
      const extra = params[EXTRA_PARAM[error.keyword]]
      const extras = Array.isArray(extra) ? extra : [extra]
      const patterns = (error.parentSchema as Record<string, unknown> | undefined)?.patternProperties
      if (error.keyword === 'additionalProperties' && isPlainObject(patterns)) {
        // Beside patternProperties, upstream names the patterns none of them matches.
        const names = extras.map(pythonRepr).join(', ')
        return `${names} ${extras.length === 1 ? 'does' : 'do'} not match any of the regexes: ${Object.keys(patterns).sort().map(pythonRepr).join(', ')}`
      }
      const what = error.keyword === 'additionalProperties' ? 'Additional' : 'Unevaluated'
      return `${what} properties are not allowed (${extras.map(pythonRepr).join(', ')} ${extras.length === 1 ? 'was' : 'were'} unexpected)`
    }
    case 'unevaluatedItems':
      // Items failing the keyword's subschema, each once (withUnevaluated).
      if (Array.isArray(params.members)) {
        const items = params.members.map((i) => (Array.isArray(error.data) ? error.data[Number(i)] : undefined))
        return `Unevaluated items are not allowed (${items.map(pythonRepr).join(', ')} ${items.length === 1 ? 'was' : 'were'} unexpected)`
      }
    // falls through
    case 'additionalItems':
    case 'items': {
      // The items beyond the `limit` first ones (ajv: additionalItems or items false after
      // prefixItems, unevaluatedItems after them).
      if (typeof params.limit !== 'number') return `${value} ${error.message ?? 'is invalid'}`
      const limit = params.limit
      const extras = Array.isArray(error.data) ? error.data.slice(limit) : []
      if (error.keyword === 'items') {
        return `Expected at most ${limit} ${limit === 1 ? 'item' : 'items'} but found ${extras.length} extra: ${pythonRepr(extras.length === 1 ? extras[0] : extras)}`
      }
      const what = error.keyword === 'additionalItems' ? 'Additional' : 'Unevaluated'
      return `${what} items are not allowed (${extras.map(pythonRepr).join(', ')} ${extras.length === 1 ? 'was' : 'were'} unexpected)`
    }
    case 'enum':
      return `${value} is not one of ${pythonRepr(schema)}`
    case 'const':
      return `${pythonRepr(schema)} was expected`
    case 'minimum':
      return `${value} is less than the minimum of ${pythonRepr(schema)}`
    case 'maximum':
      return `${value} is greater than the maximum of ${pythonRepr(schema)}`
    case 'exclusiveMinimum':
      return `${value} is less than or equal to the minimum of ${pythonRepr(schema)}`
    case 'exclusiveMaximum':
      return `${value} is greater than or equal to the maximum of ${pythonRepr(schema)}`
    case 'multipleOf':
      return `${value} is not a multiple of ${pythonRepr(schema)}`
    // jsonschema 4.x words the bounds of 1 (a minimum) and 0 (a maximum) apart.
    case 'minLength':
    case 'minItems':
      return Number(schema) === 1 ? `${value} should be non-empty` : `${value} is too short`
    case 'maxLength':
    case 'maxItems':
      return Number(schema) === 0 ? `${value} is expected to be empty` : `${value} is too long`
    case 'minProperties':
      return Number(schema) === 1 ? `${value} should be non-empty` : `${value} does not have enough properties`
    case 'maxProperties':
      return Number(schema) === 0 ? `${value} is expected to be empty` : `${value} has too many properties`
    case 'pattern':
      return `${value} does not match ${pythonRepr(schema)}`
    case 'uniqueItems':
      return `${value} has non-unique elements`
    case 'anyOf':
    case 'oneOf':
      if (params.passingSchemas) {
        // The valid subschemas after the first, then the first (ajv names two of them).
        const [first, other] = params.passingSchemas as [number, number]
        const branches = error.schema as unknown[]
        return `${value} is valid under each of ${[branches[other], branches[first]].map(pythonRepr).join(', ')}`
      }
      return `${value} is not valid under any of the given schemas`
    case 'not':
      return `${value} should not be valid under ${pythonRepr(schema)}`
    case 'dependencies':
    case 'dependentRequired':
      return `${pythonRepr(params.missingProperty)} is a dependency of ${pythonRepr(params.property)}`
    case 'contains':
      return `${value} does not contain items matching the given schema`
    case 'maxContains':
      return `Too many items match the given schema (expected at most ${pythonRepr(schema)})`
    case 'minContains':
      return `Too few items match the given schema (expected at least ${pythonRepr(schema)} but only ${String(params.matches)} matched)`
    case 'false schema':
      return `False schema does not allow ${value}`
    default:
      return `${value} ${error.message ?? 'is invalid'}`
  }
}

/** ajv's parameter naming the unexpected property of each error of these keywords. */
const EXTRA_PARAM: Record<string, string> = {additionalProperties: 'additionalProperty', unevaluatedProperties: 'unevaluatedProperty'}

/** Keywords whose failure upstream reports as one error of their own, not their branches'. */
const WHOLE = /\/(anyOf|oneOf|not|contains|if)\//

/**
 * The error upstream raises: its validator walks the schema's keywords in their written order
 * (the entries of `properties` in theirs, array items by index) and raises the first failure,
 * where ajv checks `required` before `properties`, for one. `errors` come from the all-errors
 * validator; the keyword positions along each error's schema path order them.
 */
export function firstInSchemaOrder(errors: ErrorObject[], schema: Record<string, unknown>): ErrorObject {
  // A property name failing `propertyNames` is the error of its subschema's keyword (ajv adds a
  // propertyNames error after them).
  const candidates = errors.filter((e) => e.keyword !== 'if' && !WHOLE.test(e.schemaPath) && !(e.keyword === 'propertyNames' && errors.some((x) => x.propertyName !== undefined)))
  if (candidates.length === 0) return bestError(errors)
  const rank = (e: ErrorObject): number[] => {
    const key: number[] = []
    const items = e.instancePath.split('/').slice(1)
    let item = 0
    let node: unknown = schema
    let previous = ''
    for (const raw of e.schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
      const seg = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
      if (Array.isArray(node)) {
        key.push(Number(seg))
        node = node[Number(seg)]
        previous = ''
        continue
      } else if (node !== null && typeof node === 'object') {
        const at = Object.keys(node).indexOf(seg)
        key.push(at < 0 ? Number.MAX_SAFE_INTEGER : at)
        node = (node as Record<string, unknown>)[seg]
        const keyword = !NAMED.has(previous)
        // A keyword applying one subschema to each item checks item after item, every keyword of
        // the subschema on one item before the next item (the item's index ranks before them).
        if (keyword && ITEM_KEYWORDS.has(seg) && !Array.isArray(node)) {
          const index = Number(items[item++])
          key.push(Number.isInteger(index) ? index : 0)
        } else if (keyword && seg === 'propertyNames' && e.propertyName !== undefined) {
          // Property after property, in the object's order.
          const owner = errors.find((x) => x.keyword === 'propertyNames' && x.instancePath === e.instancePath)
          key.push(isPlainObject(owner?.data) ? Object.keys(owner.data).indexOf(e.propertyName) : 0)
        } else if (keyword && ['properties', 'patternProperties', 'additionalProperties', 'prefixItems'].includes(seg)) item++
        else if (keyword && seg === 'items') item++
      } else {
        key.push(Number.MAX_SAFE_INTEGER)
      }
      previous = seg
    }
    return key
  }
  const compare = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
    return a.length - b.length
  }
  let best = candidates[0]
  let bestRank = rank(best)
  for (const e of candidates.slice(1)) {
    const r = rank(e)
    if (compare(r, bestRank) < 0) {
      best = e
      bestRank = r
    }
  }
  return best
}

/** Keywords whose one subschema applies to a member or an item of the value. */
const MEMBER_KEYWORDS = new Set(['additionalProperties', 'unevaluatedProperties', 'additionalItems', 'unevaluatedItems', 'contains', 'items'])

/** A schema path's step (`properties`, `~1a`, `%25`) as the key it names. */
const decodeStep = (raw: string): string => decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')

/**
 * How many steps into the value the schema path `segments` (below the schema `node`) takes: one
 * per property name of `properties`, item index of a list of subschemas, or member keyword gone
 * into. Undefined when the path leaves the schema (a `$ref` restarts ajv's path elsewhere).
 */
function valueSteps(node: unknown, segments: string[]): number | undefined {
  let steps = 0
  for (let i = 0; i < segments.length; ) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return i === segments.length - 1 ? steps : undefined
    const keyword = segments[i]
    const value = (node as Record<string, unknown>)[keyword]
    const last = i === segments.length - 1
    if (NAMED.has(keyword) && !last) {
      if (keyword === 'properties' || keyword === 'patternProperties') steps++
      node = isPlainObject(value) ? value[segments[i + 1]] : undefined
      i += 2
    } else if (Array.isArray(value) && !last) {
      if (keyword === 'prefixItems' || keyword === 'items') steps++
      node = value[Number(segments[i + 1])]
      i += 2
    } else {
      if (MEMBER_KEYWORDS.has(keyword) && !last) steps++
      node = value
      i += 1
    }
  }
  return steps
}

const UNEVALUATED_STEP = /\/(unevaluatedProperties|unevaluatedItems)\//

/**
 * The errors with those of a non-boolean `unevaluatedProperties` / `unevaluatedItems` subschema
 * folded into one error of the keyword on the object or list, as upstream's validator reports
 * them: `members` lists the failing properties (once per failure) or item indexes (once each).
 */
export function withUnevaluated(errors: ErrorObject[], schema: Record<string, unknown>): ErrorObject[] {
  const out: ErrorObject[] = []
  const summaries = new Map<string, ErrorObject>()
  for (const e of errors) {
    const found = UNEVALUATED_STEP.exec(e.schemaPath)
    if (!found) {
      out.push(e)
      continue
    }
    const keyword = found[1]
    const at = e.schemaPath.slice(0, found.index + keyword.length + 1)
    const subschema = pointerTarget(schema, at)
    const below = valueSteps(subschema, e.schemaPath.slice(at.length + 1).split('/').map(decodeStep))
    const path = e.instancePath.split('/')
    if (below === undefined || path.length < below + 2) {
      out.push(e)
      continue
    }
    const member = decodeStep(path[path.length - below - 1])
    const owner = path.slice(0, path.length - below - 1).join('/')
    let summary = summaries.get(`${at} ${owner}`)
    if (!summary) {
      summary = {...e, keyword, instancePath: owner, schemaPath: at, schema: subschema, params: {members: []}}
      summaries.set(`${at} ${owner}`, summary)
      out.push(summary)
    }
    const members = summary.params.members as string[]
    if (keyword === 'unevaluatedProperties' || !members.includes(member)) members.push(member)
  }
  for (const summary of summaries.values()) if (summary.keyword === 'unevaluatedItems') (summary.params.members as string[]).sort((a, b) => Number(a) - Number(b))
  return out
}

/**
 * A `contains` error as upstream's validator words it from the number of matching items: too
 * many (`maxContains`), too few of at least one (`minContains`), or none. ajv's errors of the
 * items that do not match (every item is tried unless there are too many) give that number.
 */
export function withContainsCount(error: ErrorObject, errors: ErrorObject[]): ErrorObject {
  if (error.keyword !== 'contains' || !Array.isArray(error.data)) return error
  const failing = new Set<string>()
  for (const e of errors) {
    if (e.schemaPath.startsWith(`${error.schemaPath}/`) && e.instancePath.startsWith(`${error.instancePath}/`)) {
      failing.add(e.instancePath.slice(error.instancePath.length + 1).split('/')[0])
    }
  }
  const matches = error.data.length - failing.size
  const parent = error.schemaPath.slice(0, -'contains'.length)
  const {maxContains} = error.params as {maxContains?: number}
  if (maxContains !== undefined && matches > maxContains) return {...error, keyword: 'maxContains', schemaPath: `${parent}maxContains`, params: {}}
  if (matches === 0) return error
  return {...error, keyword: 'minContains', schemaPath: `${parent}minContains`, params: {matches}}
}

/** An additionalProperties error naming every unexpected property of its object (ajv: one each). */
export function withAllExtras(error: ErrorObject, errors: ErrorObject[]): ErrorObject {
  const param = EXTRA_PARAM[error.keyword]
  if (!param || 'members' in error.params) return error
  const extras = errors
    .filter((e) => e.keyword === error.keyword && e.instancePath === error.instancePath && e.schemaPath === error.schemaPath)
    .map((e) => String((e.params as Record<string, unknown>)[param]))
    .sort()
  return {...error, params: {...error.params, [param]: extras}}
}

/** Keywords applying one subschema to every item of a list (in index order). */
const ITEM_KEYWORDS = new Set(['items', 'additionalItems', 'unevaluatedItems'])

/** Keywords whose value maps names to subschemas: the next step of a schema path is a name. */
const NAMED = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependencies', 'dependentSchemas'])

/** Keywords whose subschemas apply to a member or item of the value, not the value. */
const STEPPING_KEYWORDS = new Set(['properties', 'patternProperties', 'additionalProperties', 'items', 'prefixItems', 'additionalItems', 'contains', 'unevaluatedItems', 'unevaluatedProperties'])

/** Keywords whose value is one subschema (not a map or list of them). */
const SINGLE_SCHEMA_KEYWORDS = new Set(['items', 'additionalItems', 'additionalProperties', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'unevaluatedItems', 'unevaluatedProperties'])

/**
 * The field upstream names (its validate_schema): the last step of the value's path (an index of
 * a list is a number there); at the root, the last item of the keyword's value when it is a
 * non-empty list or string (`required` gives the last required field, `oneOf` its last
 * subschema), else the keyword itself (`additionalProperties`).
 */
export function describe(error: ErrorObject, data: unknown): {field: IssueName; message: string} {
  const path = error.instancePath.split('/').filter(Boolean).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  const schemaPath = error.schemaPath.split('/')
  if (error.keyword === 'false schema') {
    // Upstream's error for a `false` subschema leaves out the step its keyword takes into the
    // value (`properties`: the member), and of the schema's path the subschema's name or index.
    schemaPath.pop()
    if (!SINGLE_SCHEMA_KEYWORDS.has(schemaPath[schemaPath.length - 1])) schemaPath.pop()
    if (STEPPING_KEYWORDS.has(schemaPath[schemaPath.length - 1])) path.pop()
  }
  const last = path.pop()
  let field: IssueName
  if (last !== undefined) {
    const parent = instanceTarget(data, path.map((p) => '/' + p.replaceAll('~', '~0').replaceAll('/', '~1')).join(''))
    field = Array.isArray(parent) ? Number(last) : last
  } else {
    const value = error.schema as unknown
    if (Array.isArray(value) && value.length > 0) field = value[value.length - 1] as IssueName
    else if (isPythonStr(value) && value.length > 0) field = value[value.length - 1]
    else field = schemaPath.pop() ?? ''
  }
  return {field, message: pythonMessage(error)}
}

/** The value a JSON pointer (`/a/0`, from ajv's instancePath) names in `root`, or undefined. */
function instanceTarget(root: unknown, pointer: string): unknown {
  let cur: unknown = root
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

/**
 * The error with the failing value and keyword value taken from the data and schema as sent
 * (validation saw integers beyond 2^53 as doubles): messages show every digit, as upstream's.
 */
export function withOriginalValues(error: ErrorObject, data: unknown, schema: Record<string, unknown>): ErrorObject {
  // A property name's error is about the name, not the object ajv's path names.
  const value = error.propertyName !== undefined ? error.propertyName : instanceTarget(data, error.instancePath)
  const keyword = pointerTarget(schema, error.schemaPath)
  return {...error, data: value === undefined ? error.data : value, schema: keyword === undefined ? error.schema : keyword}
}

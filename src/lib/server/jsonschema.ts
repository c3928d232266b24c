/**
 * JSON schemas stored in buckets and collections: meta-validation
 * against Draft 7 (always), and record/collection/group validation when
 * `experimental_collection_schema_validation` is on, with the draft the schema's `$schema` names
 * (Draft 2020-12 without one), as upstream's validator picks it.
 */
import type AjvModule from 'ajv'
import type {ValidateFunction} from 'ajv'

import {withDoubles} from '../json.js'
import {lazy, lazyRequire} from '../lazy.js'
import type {IssueName} from './errors.js'
import {
  EMPTY_ENUM,
  bestError,
  describe,
  firstInSchemaOrder,
  pointerTarget,
  pythonMessage,
  withAllExtras,
  withContainsCount,
  withEnums,
  withOriginalValues,
  withUnevaluated,
} from './jsonschema-errors.js'
import {pythonRepr} from './py-repr.js'
import {PatternSyntaxError, PatternTimeoutError, schemaRegExp, withMatchBudget} from './schema-regex.js'

type AjvClass = typeof AjvModule.default
type AjvModuleShape = {default?: AjvClass} & AjvClass
const AJV_MODULES = {
  7: lazyRequire<AjvModuleShape>('ajv'),
  2019: lazyRequire<AjvModuleShape>('ajv/dist/2019'),
  2020: lazyRequire<AjvModuleShape>('ajv/dist/2020'),
}
type Draft = keyof typeof AJV_MODULES

/**
 * The draft upstream's validator (jsonschema's validator_for) takes for a schema: the one its
 * `$schema` names, Draft 2020-12 when it names none or one it does not know. Drafts 3 to 6 are
 * read as Draft 7 (their schemas passed the Draft 7 check when stored).
 */
function draftOf(schema: Record<string, unknown>): Draft {
  if (typeof schema.$schema !== 'string') return 2020
  const uri = schema.$schema.replace(/^[a-z]+:/i, (scheme) => scheme.toLowerCase()).replace(/#$/, '')
  if (/^http:\/\/json-schema\.org\/draft-0[3467]\/schema$/.test(uri)) return 7
  if (uri === 'https://json-schema.org/draft/2019-09/schema') return 2019
  return 2020
}

function makeAjv(allErrors: boolean, draft: Draft = 7) {
  const module = AJV_MODULES[draft]()
  const Ajv = module.default ?? module
  // verbose: errors carry the failing value and the keyword's value, for Python-style messages.
  // Patterns are read as Python's and matched with a time limit (schema-regex.ts).
  const ajv = new Ajv({strict: false, validateFormats: false, allErrors, verbose: true, code: {regExp: schemaRegExp}})
  // Stands for a `$ref` that resolves nowhere: fails only when validation reaches it.
  ajv.addKeyword({keyword: UNRESOLVABLE, schemaType: 'string', validate: () => false, errors: false})
  ajv.addKeyword({keyword: EMPTY_ENUM, schemaType: 'boolean', validate: () => false, errors: false})
  // Python jsonschema's multipleOf: ajv's compares the quotient with its parseInt, which reads
  // `3.3e+299` as 3 (1e300 is a multiple of 3).
  ajv.removeKeyword('multipleOf')
  ajv.addKeyword({keyword: 'multipleOf', type: 'number', schemaType: 'number', validate: isMultipleOf})
  // `dependencies` became dependentRequired/dependentSchemas in 2019-09: upstream ignores it there.
  if (draft !== 7) ajv.removeKeyword('dependencies')
  return ajv
}

/**
 * Whether `value` is a multiple of `divisor` as upstream's validator decides: the remainder for an
 * integer divisor, an integral quotient for a float one (0.7 is no multiple of 0.1).
 */
function isMultipleOf(divisor: number, value: number): boolean {
  return Number.isInteger(divisor) ? value % divisor === 0 : Number.isInteger(value / divisor)
}

/** The validator and the Draft 7 meta-schema check, made when a schema is first seen. */
const validator = lazy(() => {
  const ajv = makeAjv(false)
  // Python jsonschema's copy of the Draft 7 meta-schema lets an enum repeat a value or be empty;
  // ajv's copy does not (an empty one is validated through EMPTY_ENUM: ajv cannot compile it).
  const meta = structuredClone(ajv.getSchema('http://json-schema.org/draft-07/schema')!.schema) as Record<string, Record<string, unknown>>
  meta.$id = 'urn:kinto-ops:draft-07-meta' as never
  meta.properties.enum = {type: 'array', items: true}
  return {ajv, draft7: ajv.compile(meta)}
})

/**
 * The ajvs compiling stored schemas, by draft and error mode. An ajv keeps every schema it
 * compiles (also when the compilation fails) and the nested `$id`s for its life: compile()
 * replaces these instances, with its compiled functions, every MAX_COMPILATIONS compilations.
 */
const validators = new Map<string, ReturnType<typeof makeAjv>>()

/** The ajv of a draft (the first or every error); made when first needed. */
function ajvFor(draft: Draft, allErrors: boolean): ReturnType<typeof makeAjv> {
  const key = `${draft}/${allErrors}`
  let ajv = validators.get(key)
  if (!ajv) {
    ajv = makeAjv(allErrors, draft)
    validators.set(key, ajv)
  }
  return ajv
}

const UNRESOLVABLE = 'x-kinto-unresolvable-ref'

/**
 * Whether a `$ref` of `root` names something in it: a JSON pointer to a value, an anchor (`#a`:
 * `$anchor: a`, or `$id: '#a'` up to Draft 7), or a schema's `$id` (as written, or resolved
 * against the root's). Nothing is fetched: any other reference resolves nowhere, as upstream's.
 */
function resolvableRefs(root: Record<string, unknown>): (ref: string) => boolean {
  const anchors = new Set<string>()
  const ids = new Set<string>()
  const rootId = typeof root.$id === 'string' ? root.$id : undefined
  const absolute = (uri: string): string | undefined => {
    try {
      return new URL(uri, rootId).href.replace(/#$/, '')
    } catch {
      return undefined
    }
  }
  const collect = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return
    if (Array.isArray(node)) return node.forEach(collect)
    const obj = node as Record<string, unknown>
    if (typeof obj.$anchor === 'string') anchors.add(obj.$anchor)
    if (typeof obj.$id === 'string') {
      if (obj.$id.startsWith('#')) anchors.add(obj.$id.slice(1))
      else {
        ids.add(obj.$id.replace(/#$/, ''))
        const full = absolute(obj.$id)
        if (full) ids.add(full)
      }
    }
    for (const [k, v] of Object.entries(obj)) if (!DATA_KEYWORDS.has(k)) collect(v)
  }
  collect(root)
  return (ref) => {
    if (ref === '#' || ref.startsWith('#/')) return pointerTarget(root, ref) !== undefined
    if (ref.startsWith('#')) return anchors.has(ref.slice(1))
    const base = ref.replace(/#.*$/, '')
    const full = absolute(base)
    return ids.has(base) || (full !== undefined && ids.has(full))
  }
}

/**
 * The schema with each `$ref` that resolves nowhere replaced by a keyword that fails when reached.
 * Upstream's validator resolves references lazily: data that never reaches a bad reference is
 * valid, data that does fails on it (ajv would refuse the whole schema up front).
 */
function withLazyRefs(root: Record<string, unknown>, draft: Draft): Record<string, unknown> {
  const resolves = resolvableRefs(root)
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk)
    if (node === null || typeof node !== 'object') return node
    let obj = node as Record<string, unknown>
    if (typeof obj.$ref === 'string' && !resolves(obj.$ref)) return {[UNRESOLVABLE]: obj.$ref}
    // Up to Draft 7, a $ref is the whole schema: the keywords beside it are not applied (the
    // definitions there stay, for the references to them).
    if (typeof obj.$ref === 'string' && draft === 7) obj = Object.fromEntries(Object.entries(obj).filter(([k]) => ['$ref', 'definitions', '$defs'].includes(k)))
    return Object.fromEntries(
      Object.entries(obj).map(([k, v]) => {
        if (k === 'enum' && Array.isArray(v) && v.length === 0) return [EMPTY_ENUM, true]
        return [k, k === 'enum' || k === 'const' ? v : walk(v)]
      }),
    )
  }
  return walk(root) as Record<string, unknown>
}

/** Why a valid Draft 7 schema cannot be used for validation at all (an invalid regex…), or null. */
export function unusableSchema(schema: Record<string, unknown>): string | null {
  const pattern = unreadablePattern(schema)
  if (pattern) return pattern
  try {
    compile(schema)
    return null
  } catch (err) {
    return (err as Error).message
  }
}

/** Keywords whose values are data, not schemas. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'default', 'examples'])

/**
 * A `pattern` or `patternProperties` key that is no regular expression, worded as upstream's
 * meta-schema check (the keyword, then the pattern), or null. Every one is read, also those ajv
 * would never compile (the key of an always-valid patternProperties).
 */
function unreadablePattern(node: unknown): string | null {
  if (node === null || typeof node !== 'object') return null
  if (Array.isArray(node)) return node.reduce<string | null>((found, v) => found ?? unreadablePattern(v), null)
  const obj = node as Record<string, unknown>
  const candidates: [string, string][] = []
  if (typeof obj.pattern === 'string') candidates.push(['pattern', obj.pattern])
  if (obj.patternProperties !== null && typeof obj.patternProperties === 'object') for (const key of Object.keys(obj.patternProperties)) candidates.push(['patternProperties', key])
  for (const [keyword, pattern] of candidates) {
    try {
      schemaRegExp(pattern, 'u')
    } catch (err) {
      if (err instanceof PatternSyntaxError) return `${keyword}${pythonRepr(pattern)} is not a 'regex'`
      throw err
    }
  }
  for (const [key, v] of Object.entries(obj)) {
    if (DATA_KEYWORDS.has(key)) continue
    const found = unreadablePattern(v)
    if (found) return found
  }
  return null
}

/** Why `schema` is not a valid Draft 7 JSON schema (upstream: `<field><message>`), or null. */
export function checkSchema(schema: unknown): string | null {
  const {draft7} = validator()
  // An integer beyond 2^53 (`"maximum": 12345678901234567890`) is a number for the meta-schema.
  if (draft7(withDoubles(schema))) return null
  if (!draft7.errors?.length) return 'Invalid JSON schema'
  const error = bestError(draft7.errors)
  const where = error.instancePath ? (error.instancePath.split('/').pop() ?? '') : ''
  return `${where}${pythonMessage(error)}`
}

const compiled = new Map<string, ValidateFunction>()
/** Compilations (both error modes) between two renewals of the ajvs and of the compiled functions. */
const MAX_COMPILATIONS = 512
let compilations = 0

export class SchemaValidationError extends Error {
  constructor(
    readonly field: IssueName,
    message: string,
  ) {
    super(message)
  }
}

function compile(schema: Record<string, unknown>, allErrors = false): ValidateFunction {
  const cache = allErrors ? compiledAll : compiled
  const key = JSON.stringify(schema)
  let fn = cache.get(key)
  if (!fn) {
    // The draft comes from `$schema`, which ajv is not given (it would look the URI up).
    const {$schema: _ignored, ...rest} = schema
    // Integers beyond 2^53 as the nearest doubles, as the data is validated (ajv knows numbers only).
    const doubles = withDoubles(rest) as Record<string, unknown>
    let draft = draftOf(schema)
    // A Draft 7 schema that is no schema of its draft (a list as `items` in 2020-12), which
    // upstream answers with a 500 for every object, is read as the Draft 7 schema it was stored as.
    if (draft !== 7 && !ajvFor(draft, false).validateSchema(doubles)) draft = 7
    // Each compilation, failed or not, leaves its schema in the ajv that made it.
    if (++compilations > MAX_COMPILATIONS) {
      compiled.clear()
      compiledAll.clear()
      validators.clear()
      compilations = 1
    }
    const ajv = ajvFor(draft, allErrors)
    releaseId(ajv, doubles)
    try {
      fn = ajv.compile(withLazyRefs(doubles, draft))
    } catch (err) {
      throw new SchemaValidationError('schema', (err as Error).message)
    }
    cache.set(key, fn)
  }
  return fn
}

const compiledAll = new Map<string, ValidateFunction>()

/**
 * Frees the schema's `$id` in `ajv`, which refuses an `$id` it holds: the collection's previous
 * schema (or another collection's with that `$id`) keeps its compiled function. A meta-schema's
 * stays (the schema is then refused, as it was).
 */
function releaseId(ajv: ReturnType<typeof makeAjv>, schema: Record<string, unknown>): void {
  if (typeof schema.$id !== 'string') return
  // As ajv's normalizeId.
  const key = schema.$id.replace(/#\/?$/, '')
  const held = ajv.schemas[key] ?? ajv.refs[key]
  if (held !== undefined && !(typeof held === 'object' && held.meta)) ajv.removeSchema(key)
}

/**
 * How many schemas this module's ajv instances hold, the meta-schemas left out: a bound that
 * tests check (ajv keeps them in a private map, read here and nowhere else).
 */
export function heldSchemaCount(): number {
  let held = 0
  for (const ajv of [validator().ajv, ...validators.values()]) {
    for (const env of (ajv as unknown as {_cache: Map<unknown, {meta?: boolean}>})._cache.values()) if (!env.meta) held++
  }
  return held
}

/**
 * `fn(data)`, where a pattern that runs out of time, or a `$ref` that leads back to itself (`#` at
 * the root) without end, is the schema's fault.
 */
function matchesInTime(fn: ValidateFunction, data: unknown): boolean {
  try {
    return fn(data) as boolean
  } catch (err) {
    if (err instanceof PatternTimeoutError) throw new SchemaValidationError('schema', `${pythonRepr(err.pattern)} took too long to match`)
    if (err instanceof RangeError) throw new SchemaValidationError('schema', 'Maximum recursion depth exceeded while validating')
    throw err
  }
}

/**
 * upstream's validate_schema: ignores `ignoreFields` (and `id` unless the schema declares it) in
 * the data and in `required`; throws SchemaValidationError naming the field.
 */
export function validateAgainstSchema(
  data: Record<string, unknown>,
  schema: Record<string, unknown>,
  ignoreFields: string[],
): void {
  // Both validations (the first error, then every error) share the patterns' time.
  withMatchBudget(() => validateWithin(data, schema, ignoreFields))
}

function validateWithin(data: Record<string, unknown>, schema: Record<string, unknown>, ignoreFields: string[]): void {
  const ignore = [...ignoreFields]
  const properties = (schema.properties ?? {}) as Record<string, unknown>
  if (!(typeof properties === 'object' && properties !== null && 'id' in properties)) ignore.push('id')
  let effective = schema
  if (Array.isArray(schema.required)) {
    const required = schema.required.filter((f) => !ignore.includes(f as string))
    effective = {...schema}
    if (required.length > 0) effective.required = required
    else delete effective.required
  }
  // Integers beyond 2^53 are validated as the numbers they are (lib/json.ts keeps their digits).
  const filtered = withDoubles(Object.fromEntries(Object.entries(data).filter(([k]) => !ignore.includes(k))))
  const fn = compile(effective)
  if (!matchesInTime(fn, filtered)) {
    const unresolved = fn.errors!.find((e) => e.keyword === UNRESOLVABLE)
    if (unresolved) {
      // jsonschema wraps the referencing library's error: its class, then its words.
      const ref = String(unresolved.schema)
      const within = `${pythonRepr(ref.slice(1))} does not exist within ${pythonRepr(effective)}`
      const message = ref === '#' || ref.startsWith('#/') ? `PointerToNowhere: ${within}` : ref.startsWith('#') ? `NoSuchAnchor: ${within}` : `Unresolvable: ${ref}`
      throw new SchemaValidationError('schema', message)
    }
    const all = compile(effective, true)
    matchesInTime(all, filtered)
    const {$schema: _ignored, ...rest} = effective
    const allErrors = withUnevaluated(withEnums(all.errors ?? []), rest)
    const error = allErrors.length ? withContainsCount(withAllExtras(firstInSchemaOrder(allErrors, rest), allErrors), allErrors) : bestError(withEnums(fn.errors!))
    const sent = Object.fromEntries(Object.entries(data).filter(([k]) => !ignore.includes(k)))
    const original = withOriginalValues(error, sent, rest)
    const {field, message} = describe(original, sent)
    // Drafts 6 and 7 word a failed `contains` their own way (jsonschema's legacy keyword).
    if (original.keyword === 'contains' && draftOf(effective) === 7) throw new SchemaValidationError(field, `None of ${pythonRepr(original.data)} are valid under the given schema`)
    throw new SchemaValidationError(field, message)
  }
}

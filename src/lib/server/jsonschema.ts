/**
 * JSON schemas stored in buckets and collections (kinto-reference §4.3, §4.13): meta-validation
 * against Draft 7 (always), and record/collection/group validation when
 * `experimental_collection_schema_validation` is on.
 */
import AjvModule, {type ErrorObject, type ValidateFunction} from 'ajv'

type AjvClass = typeof AjvModule.default
const Ajv = ((AjvModule as unknown as {default?: AjvClass}).default ?? AjvModule) as AjvClass

const ajv = new Ajv({strict: false, validateFormats: false, allErrors: false})
const draft7 = ajv.getSchema('http://json-schema.org/draft-07/schema')!

/** Why `schema` is not a valid Draft 7 JSON schema, or null. */
export function checkSchema(schema: unknown): string | null {
  if (draft7(schema)) return null
  const error = draft7.errors?.[0]
  if (!error) return 'Invalid JSON schema'
  const where = error.instancePath ? error.instancePath.split('/').pop() : ''
  return `${where ?? ''}${error.message ?? 'is invalid'}`
}

const compiled = new Map<string, ValidateFunction>()
const MAX_CACHED = 256

export class SchemaValidationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message)
  }
}

function compile(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema)
  let fn = compiled.get(key)
  if (!fn) {
    // Schemas are checked as Draft 7 whatever their `$schema` says, as upstream's checks do.
    const {$schema: _ignored, ...rest} = schema
    try {
      fn = ajv.compile(rest)
    } catch (err) {
      throw new SchemaValidationError('schema', (err as Error).message)
    }
    if (compiled.size >= MAX_CACHED) compiled.clear()
    compiled.set(key, fn)
  }
  return fn
}

function describe(error: ErrorObject): {field: string; message: string} {
  const path = error.instancePath.split('/').filter(Boolean)
  if (error.keyword === 'required') {
    const missing = (error.params as {missingProperty: string}).missingProperty
    return {field: missing, message: `'${missing}' is a required property`}
  }
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as {additionalProperty: string}).additionalProperty
    return {field: path.pop() ?? extra, message: `Additional properties are not allowed ('${extra}' was unexpected)`}
  }
  const field = path.pop() ?? error.schemaPath.split('/').pop() ?? ''
  return {field, message: `${field} ${error.message ?? 'is invalid'}`.trim()}
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
  const filtered = Object.fromEntries(Object.entries(data).filter(([k]) => !ignore.includes(k)))
  const fn = compile(effective)
  if (!fn(filtered)) {
    const {field, message} = describe(fn.errors![0])
    throw new SchemaValidationError(field, message)
  }
}

/**
 * Collection schemas change for the life of a server: what jsonschema.ts compiles stays bounded,
 * and a schema's `$id` does not stop it from being compiled again with other content.
 */
import {expect, test} from 'vitest'

import {heldSchemaCount, SchemaValidationError, unusableSchema, validateAgainstSchema} from '../../src/lib/server/jsonschema.js'

// MAX_COMPILATIONS (512), and the meta-schema check.
const BOUND = 512 + 1

test('600 schemas that fail to compile: the schemas held stay bounded', () => {
  // A reference to a value that is no schema: ajv refuses it when it compiles it.
  for (let i = 0; i < 600; i++) expect(unusableSchema({properties: {a: {$ref: '#/default'}}, default: {minLength: `${i}`}})).toMatch(/minLength/)
  expect(heldSchemaCount()).toBeLessThanOrEqual(BOUND)
})

test('600 distinct schemas, each failing once (both error modes): the schemas held stay bounded', () => {
  for (let i = 0; i < 600; i++) {
    const schema = {type: 'object', properties: {title: {type: 'string', maxLength: i + 1}, [`f${i}`]: {type: 'integer'}}}
    validateAgainstSchema({title: 'x'.repeat(i + 1)}, schema, [])
    expect(() => validateAgainstSchema({title: 'x'.repeat(i + 2)}, schema, [])).toThrow(SchemaValidationError)
  }
  expect(heldSchemaCount()).toBeLessThanOrEqual(BOUND)
})

test('a schema with an $id compiles again with other content (a collection whose schema changes)', () => {
  const schema = (max: number) => ({$id: 'https://example.com/schemas/held', type: 'object', properties: {title: {type: 'string', maxLength: max}}})
  expect(unusableSchema(schema(3))).toBeNull()
  expect(() => validateAgainstSchema({title: 'abcd'}, schema(3), [])).toThrow(/is too long/)
  expect(unusableSchema(schema(5))).toBeNull()
  validateAgainstSchema({title: 'abcd'}, schema(5), [])
  // The same schema again (its compiled function is kept); a reference to itself by its $id.
  validateAgainstSchema({title: 'abcd'}, schema(5), [])
  const byId = (max: number) => ({...schema(max), properties: {title: {$ref: 'https://example.com/schemas/held#/$defs/t'}}, $defs: {t: {type: 'string', maxLength: max}}})
  expect(() => validateAgainstSchema({title: 'abcd'}, byId(3), [])).toThrow(/is too long/)
  validateAgainstSchema({title: 'abcd'}, byId(5), [])
  // Two schemas with one $id, in turn (two collections).
  for (const max of [3, 5, 3, 5]) {
    if (max === 3) expect(() => validateAgainstSchema({title: 'abcd'}, schema(max), [])).toThrow(/is too long/)
    else validateAgainstSchema({title: 'abcd'}, schema(max), [])
  }
  // One with a nested $id, twice.
  const nested = (max: number) => ({type: 'object', properties: {title: {$id: 'https://example.com/schemas/held-title', type: 'string', maxLength: max}}})
  expect(() => validateAgainstSchema({title: 'abcd'}, nested(3), [])).toThrow(/is too long/)
  validateAgainstSchema({title: 'abcd'}, nested(5), [])
})

test('a schema naming itself as the meta-schema leaves the meta-schema in place', () => {
  const draft7 = 'http://json-schema.org/draft-07/schema#'
  const claims = {$schema: draft7, $id: 'http://json-schema.org/draft-07/schema', type: 'object', properties: {n: {type: 'integer'}}}
  try {
    validateAgainstSchema({n: 1}, claims, [])
  } catch (err) {
    expect(err).toBeInstanceOf(SchemaValidationError)
  }
  expect(() => validateAgainstSchema({n: 'x'}, {$schema: draft7, type: 'object', properties: {n: {type: 'integer'}}}, [])).toThrow(/is not of type/)
  expect(unusableSchema({$schema: draft7, type: 'object', properties: {m: {type: 'integer'}}})).toBeNull()
})

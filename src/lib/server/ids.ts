/**
 * Object id generators, named as upstream's settings name them (`kinto.views.NameGenerator`, …).
 * A generator makes new ids and tells which ids a client may choose (PUT, POST with `data.id`).
 */
import {randomInt, randomUUID} from 'node:crypto'

import {KintoError} from '../errors.js'
import type {Settings} from '../config/settings.js'
import {invalid} from './errors.js'
import {isPlainObject} from './patch.js'

/**
 * Longest id accepted. Upstream has no limit of its own; PostgreSQL's btree index on
 * (id, parent_id, resource_name) does (about 2.7 kB per row), so longer ids would fail in the
 * database instead of as a clear 400.
 */
export const MAX_ID_LENGTH = 512

export interface IdGenerator {
  /** Name as written in settings. */
  readonly name: string
  generate(): string
  match(id: string): boolean
}

const DEFAULT_ID = /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const NAME_ALPHABET = ALNUM + '-_'

function regexGenerator(name: string, pattern: RegExp, generate: () => string): IdGenerator {
  return {
    name,
    generate,
    match: (id) => typeof id === 'string' && id.length <= MAX_ID_LENGTH && pattern.test(id),
  }
}

/** Generator factories by dotted name. Plugins may add theirs with registerIdGenerator. */
const FACTORIES = new Map<string, () => IdGenerator>([
  ['kinto.core.storage.generators.UUID4', () => regexGenerator('UUID4', UUID4, () => randomUUID())],
  ['kinto.views.RelaxedUUID', () => regexGenerator('RelaxedUUID', DEFAULT_ID, () => randomUUID())],
  [
    'kinto.views.NameGenerator',
    () =>
      regexGenerator('NameGenerator', DEFAULT_ID, () => {
        let id = ALNUM[randomInt(ALNUM.length)]
        for (let i = 0; i < 7; i++) id += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)]
        return id
      }),
  ],
])

export function registerIdGenerator(dottedName: string, factory: () => IdGenerator): void {
  FACTORIES.set(dottedName, factory)
}

export function idGeneratorByName(dottedName: string, settingKey: string): IdGenerator {
  const factory = FACTORIES.get(dottedName)
  if (!factory) {
    throw new KintoError(`Unknown id generator '${dottedName}' in setting '${settingKey}'.`, {
      code: 'KINTO_CONFIG_INVALID',
      hint: `Use one of: ${[...FACTORIES.keys()].join(', ')}.`,
    })
  }
  return factory()
}

/**
 * Id generators by resource name from settings, as upstream reads every `<resource>_id_generator`
 * key (`""` is the default from `id_generator`).
 */
export function idGeneratorsFromSettings(settings: Settings): Map<string, IdGenerator> {
  const generators = new Map<string, IdGenerator>()
  for (const [key, value] of Object.entries(settings)) {
    const m = /^([^_]*)_?id_generator$/.exec(key)
    if (!m || typeof value !== 'string') continue
    generators.set(m[1], idGeneratorByName(value, key))
  }
  if (!generators.has('')) generators.set('', idGeneratorByName('kinto.core.storage.generators.UUID4', 'id_generator'))
  return generators
}

/**
 * The id a POST body chooses (`data.id`), or null when it chooses none; an id the generator does
 * not accept is a 400 "Invalid object id", as upstream's RouteFactory reads it.
 */
export function postedObjectId(body: unknown, generator: IdGenerator): string | null {
  if (!isPlainObject(body) || !isPlainObject(body.data) || !Object.hasOwn(body.data, 'id')) return null
  const id = body.data.id
  checkObjectId(id, generator)
  return id
}

/** An object id a client chose (URL or body): a 400 "Invalid object id" unless the generator accepts it. */
export function checkObjectId(id: unknown, generator: IdGenerator): asserts id is string {
  if (typeof id !== 'string' || !generator.match(id)) throw invalid('path', null, 'Invalid object id')
}

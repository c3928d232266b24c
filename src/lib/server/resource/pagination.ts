/**
 * Keyset pagination: `_token` cursors (base64 JSON of the last object's sort keys, an offset and
 * a single-use nonce for DELETE), the Next-Page URL, and the filters a cursor turns into.
 */
import {randomUUID} from 'node:crypto'

import {asInt} from '../../config/settings.js'
import {parseJson, stringifyJson, withDoubles} from '../../json.js'
import {MAX_JSON_DEPTH, maxNesting, unsafeValue} from '../json.js'
import {fieldValue} from '../../storage/evaluate.js'
import {MISSING, type Filter, type JsonValue, type KintoObject, type Sort} from '../../storage/types.js'
import type {RequestContext} from '../context.js'
import {invalidParameters} from '../errors.js'
import {urlOrigin} from '../headers.js'
import {isPlainObject} from '../patch.js'
import {encodeQuery, extractToken, type RawQuery} from '../querystring.js'
import type {ResourceRequest} from './request.js'

export async function paginationRules(r: ResourceRequest, sorting: Sort[]): Promise<{rules?: Filter[][]; offset: number}> {
  const token = extractToken(r.ctx.req.query)
  if (!token) return {offset: 0}
  const fail = (description: string) => invalidParameters({location: 'querystring', name: null, description})
  const info = decodeToken(token)
  if (!info) throw fail('_token has invalid content')
  // The cursor's timestamp meets a bigint column: only an integer we could have written.
  const lastObject = info.last_object as Record<string, unknown>
  if (Object.hasOwn(lastObject, 'last_modified') && !Number.isSafeInteger(lastObject.last_modified)) {
    throw fail('_token has invalid content')
  }
  if (r.ctx.method === 'DELETE') {
    // The nonce was taken from the cache before the transaction (consumeTokenNonce); single use.
    const nonce = info.nonce
    const valid = typeof nonce === 'string' && r.ctx.bound.nonces.get(nonce) === true
    if (typeof nonce === 'string') r.ctx.bound.nonces.set(nonce, false)
    if (!valid) throw fail('_token was already used or has expired.')
  }
  const offset = typeof info.offset === 'number' ? info.offset : 0
  return {rules: buildPaginationRules(sorting, info.last_object as Record<string, unknown>), offset}
}

export async function nextPageUrl(r: ResourceRequest, sorting: Sort[], limit: number, lastObject: Record<string, unknown>, offset: number): Promise<string> {
  const nonce = `pagination-token-${randomUUID()}`
  if (r.ctx.method === 'DELETE') {
    // Stored before the client gets the token: now, so that a cache that is down fails the request
    // (503, the deletion rolled back), or after the commit when the cache must wait for it.
    const validity = asInt(r.ctx.settings, 'pagination_token_validity_seconds', 600) ?? 600
    const cache = r.ctx.runtime.backends.cache
    if (cache.waitsForTransaction) r.ctx.bound.afterTransaction.push(() => cache.set(nonce, '', validity))
    else await cache.set(nonce, '', validity)
  }
  // Each sort field's value as the storage sorted on it (`a.b` is b inside a, never a key "a.b":
  // upstream's find_nested_value prefers such a key, and its next page then starts elsewhere than
  // where this one stopped, looping or skipping records).
  const last: Record<string, unknown> = {}
  for (const {field} of sorting) {
    const v = fieldValue(lastObject as unknown as KintoObject, field)
    if (v !== MISSING) last[field] = v
  }
  const token = Buffer.from(stringifyJson({last_object: last, offset, nonce}), 'utf8').toString('base64')
  const params = new Map<string, string>()
  for (const [k, v] of r.ctx.req.query) params.set(k, Array.isArray(v) ? v[v.length - 1] : v)
  params.set('_limit', String(limit))
  params.set('_token', token)
  return `${urlOrigin(r.ctx.req)}${r.ctx.req.rawPath}?${encodeQuery(params)}`
}

/** upstream's _build_pagination_rules: OR of (equal on earlier sort keys, beyond on the last). */
export function buildPaginationRules(sorting: Sort[], lastObject: Record<string, unknown>): Filter[][] {
  const rules: Filter[][] = []
  for (let n = sorting.length; n > 0; n--) {
    const rule: Filter[] = []
    for (const {field} of sorting.slice(0, n - 1)) {
      rule.push({field, value: valueOrMissing(lastObject, field), operator: 'eq'})
    }
    const {field, direction} = sorting[n - 1]
    rule.push({field, value: valueOrMissing(lastObject, field), operator: direction === -1 ? 'lt' : 'gt'})
    rules.push(rule)
  }
  return rules
}

function valueOrMissing(obj: Record<string, unknown>, field: string): JsonValue | typeof MISSING {
  return Object.hasOwn(obj, field) ? (obj[field] as JsonValue) : MISSING
}

/** A pagination token's content, or null when it is not a valid token. */
function decodeToken(token: string): Record<string, unknown> | null {
  let info: unknown
  try {
    const text = decodeBase64Strict(token)
    // A value of the last object nests at most as deep as a stored one (two levels above it).
    if (maxNesting(text) > MAX_JSON_DEPTH + 2) return null
    info = parseJson(text)
  } catch {
    return null
  }
  if (!isPlainObject(info) || !isPlainObject(info.last_object) || !('offset' in info) || !('nonce' in info)) return null
  // Values the storage cannot compare (a NUL, a lone surrogate: PostgreSQL refuses them) are not
  // from a token of ours. Integers beyond 2^53 are written as numbers and read back exact.
  if (unsafeValue(withDoubles(info.last_object)) !== null) return null
  return info
}

/**
 * Takes the nonce of a DELETE's `_token` out of the cache, before the transaction (the cache
 * cannot be reached inside one on PGlite). The result is read by the endpoint.
 */
export async function consumeTokenNonce(ctx: RequestContext, query: RawQuery): Promise<void> {
  let token: string | undefined
  try {
    token = extractToken(query)
  } catch {
    return
  }
  if (!token) return
  const info = decodeToken(token)
  if (!info || typeof info.nonce !== 'string' || ctx.bound.nonces.has(info.nonce)) return
  const previous = await ctx.runtime.backends.cache.delete(info.nonce)
  ctx.bound.nonces.set(info.nonce, previous !== undefined && previous !== null)
}

function decodeBase64Strict(token: string): string {
  const cleaned = token.trim()
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(cleaned) || cleaned.length % 4 !== 0) throw new Error('invalid base64')
  return new TextDecoder('utf-8', {fatal: true}).decode(Buffer.from(cleaned, 'base64'))
}

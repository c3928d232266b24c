/** Content negotiation of a view: the Accept header (406) and the request Content-Type (415). */
import type {RequestContext} from './context.js'
import {invalidParameters} from './errors.js'
import {pythonRepr} from './py-repr.js'
import type {ViewDef} from './router.js'

/** 406 when the Accept header allows none of the view's types, 415 when its Content-Type is not one it reads. */
export function checkNegotiation(view: ViewDef, ctx: RequestContext): void {
  if (view.accept && !acceptable(ctx.req.headers.accept, view.accept)) {
    throw invalidParameters(
      {location: 'header', name: 'Accept', description: `Accept header should be one of ${pythonRepr(view.accept)}`},
      406,
    )
  }
  // No Content-Type at all is accepted and the body read as JSON, as upstream (cornice registers
  // every view for the empty content type too): `PUT /buckets/b` with no body creates the bucket.
  if (view.contentTypes && ctx.contentType !== '' && !view.contentTypes.includes(ctx.contentType)) {
    throw invalidParameters(
      {location: 'header', name: 'Content-Type', description: `Content-Type header should be one of ${pythonRepr(view.contentTypes)}`},
      415,
    )
  }
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}$`)
const PARAM = new RegExp(`^\\s*(${TOKEN})\\s*=\\s*(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")\\s*$`)
const QVALUE = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/

/**
 * The media ranges of an Accept header, or null when it does not parse as one (RFC 7231 §5.3.2:
 * `type/subtype` and parameters, a q from 0 to 1); empty elements are allowed.
 */
function mediaRanges(header: string): Array<{type: string; q: number}> | null {
  const ranges: Array<{type: string; q: number}> = []
  for (const part of header.split(',')) {
    if (part.trim() === '') continue
    const [type, ...params] = part.split(';')
    if (!MEDIA_TYPE.test(type.trim())) return null
    let q = 1
    for (const p of params) {
      const m = PARAM.exec(p)
      if (!m) return null
      if (m[1].toLowerCase() === 'q') {
        if (!QVALUE.test(m[2])) return null
        q = Number(m[2])
      }
    }
    ranges.push({type: type.trim().toLowerCase(), q})
  }
  return ranges
}

/**
 * True when the Accept header allows one of the offered types. A missing or malformed header
 * allows all (upstream: WebOb reads a header it cannot parse as no header); an empty one (`Accept:`,
 * `Accept: ,`) is a valid empty list that allows none, a 406 as upstream answers.
 */
function acceptable(header: string | undefined, offers: string[]): boolean {
  const ranges = header === undefined ? null : mediaRanges(header)
  if (ranges === null) return true
  if (ranges.length === 0) return false
  return offers.some((offer) => {
    const [otype, osub] = offer.toLowerCase().split('/')
    let best: {specificity: number; q: number} | null = null
    for (const r of ranges) {
      const [rtype, rsub] = r.type.split('/')
      let specificity = -1
      if (r.type === '*/*') specificity = 0
      else if (rtype === otype && rsub === '*') specificity = 1
      else if (rtype === otype && rsub === osub) specificity = 2
      if (specificity >= 0 && (!best || specificity > best.specificity)) best = {specificity, q: r.q}
    }
    return best !== null && best.q > 0
  })
}

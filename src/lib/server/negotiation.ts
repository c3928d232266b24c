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

/** True when the Accept header allows one of the offered types (a missing header allows all). */
function acceptable(header: string | undefined, offers: string[]): boolean {
  if (header === undefined || header.trim() === '') return true
  const ranges = header.split(',').map((part) => {
    const [type, ...params] = part.trim().split(';')
    let q = 1
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)
      if (m) q = Number(m[1])
    }
    return {type: type.trim().toLowerCase(), q}
  })
  if (ranges.every((r) => r.type === '')) return true
  return offers.some((offer) => {
    const [otype, osub] = offer.toLowerCase().split('/')
    let best: {specificity: number; q: number} | null = null
    for (const r of ranges) {
      const [rtype, rsub] = r.type.split('/')
      let specificity = -1
      if (r.type === '*/*' || r.type === '*') specificity = 0
      else if (rtype === otype && rsub === '*') specificity = 1
      else if (rtype === otype && rsub === osub) specificity = 2
      if (specificity >= 0 && (!best || specificity > best.specificity)) best = {specificity, q: r.q}
    }
    return best !== null && best.q > 0
  })
}

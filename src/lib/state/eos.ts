/**
 * End of service (`eos`, `eos_message`, `eos_url`): before the date responses carry a soft-eol
 * Alert header, after it every request is a 410 with a hard-eol Alert.
 */
import {parseDateSetting} from '../config/dates.js'
import {asString, type Settings} from '../config/settings.js'

/** The last `eos` text read and its time (NaN: no date): asked on every request, parsed once per text. */
let parsed = {text: '', time: Number.NaN}

/** Whether the service has reached its end: 'soft' before the `eos` date, 'hard' after, null without one. */
export function endOfService(settings: Settings, now: number = Date.now()): 'soft' | 'hard' | null {
  const eos = asString(settings, 'eos')
  if (!eos) return null
  if (parsed.text !== eos) parsed = {text: eos, time: parseDateSetting(eos)?.getTime() ?? Number.NaN}
  if (Number.isNaN(parsed.time)) return null
  return parsed.time > now ? 'soft' : 'hard'
}

/**
 * An `Alert` header value as upstream writes it (its rapidjson `dumps` of {code, message, url}):
 * compact, every non-ASCII character escaped as \uXXXX (upper-case hex). The escaping is also what
 * makes any message servable: an HTTP header value cannot carry characters beyond Latin-1 (Node
 * refuses the whole response).
 */
export function alertHeader(code: 'soft-eol' | 'hard-eol', message: string | null, url: string | null): string {
  return JSON.stringify({code, message, url}).replace(/[^ -~]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)
}

/** The Alert header of an end-of-service response. */
export function eosAlertHeader(settings: Settings, code: 'soft-eol' | 'hard-eol'): string {
  return alertHeader(code, asString(settings, 'eos_message') ?? null, asString(settings, 'eos_url') ?? asString(settings, 'project_docs') ?? null)
}

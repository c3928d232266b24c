/**
 * Checks for every value that goes into a generated nginx / Apache / uwsgi / Python file.
 * A value that could end a directive, open or close a block, start a comment, expand a
 * variable or split a line is refused here with a clear error, because the templates insert
 * values verbatim.
 */
import {isIP} from 'node:net'
import path from 'node:path'

import {ExitCode, KintoError} from '../errors.js'
import {bracketHost} from '../net.js'

/** Where each option came from (`--server-name`, `kinto.http_host in config/kinto.ini`), for messages. */
export type Origins = Record<string, string | undefined>

/** A value that would break (or silently change) the generated file. Exit 2 from a flag, 1 from the ini. */
export class DeployValueError extends KintoError {
  constructor(what: string, value: unknown, problem: string, origin: string | undefined, hint: string) {
    const shown = JSON.stringify(String(value))
    super(`Invalid ${what} ${shown}${origin ? ` (from ${origin})` : ''}: ${problem}.`, {
      code: 'KINTO_DEPLOY_INVALID_VALUE',
      exit: origin?.startsWith('--') ? ExitCode.USAGE : ExitCode.FAILED,
      hint,
    })
    this.name = 'DeployValueError'
  }
}

/** The first character that has a meaning in one of the target syntaxes, described for humans. */
function dangerousChar(value: string, allowed = ''): string | undefined {
  for (const ch of value) {
    if (allowed.includes(ch)) continue
    if (ch === '\n' || ch === '\r') return 'a line break'
    // eslint-disable-next-line no-control-regex -- control characters are what this looks for
    if (/[\u0000-\u001f\u007f]/.test(ch)) return 'a control character'
    if (/\s/.test(ch)) return 'white space'
    if (ch === ';') return "';'"
    if ('{}'.includes(ch)) return 'a brace'
    if ('"\'`'.includes(ch)) return 'a quote'
    if (ch === '\\') return 'a backslash'
    if (ch === '#') return "'#'"
    if (ch === '$') return "'$'"
    if (ch === '%') return "'%'"
    if ('<>'.includes(ch)) return 'an angle bracket'
    if ('|&!*?[]()^~,=+'.includes(ch)) return `'${ch}'`
  }
  return undefined
}

function breaks(found: string): string {
  return `it contains ${found}, which would break the generated file`
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const HOSTNAME = new RegExp(`^(?:\\*\\.|\\.)?${LABEL}(?:\\.${LABEL})*\\.?$`)

/** A DNS host name (optionally `*.` / `.` prefixed, as nginx accepts), an IPv4 address, or `_`. */
export function checkServerName(value: string, origin?: string): string {
  const hint = 'Use a host name such as kinto.example.com (several names: repeat --server-name).'
  if (typeof value !== 'string' || value === '') throw new DeployValueError('server name', value, 'it is empty', origin, hint)
  const bad = dangerousChar(value, '*')
  if (bad) throw new DeployValueError('server name', value, breaks(bad), origin, hint)
  if (value === '_') return value
  if (value.length > 253 || !HOSTNAME.test(value)) {
    throw new DeployValueError('server name', value, 'it is not a host name', origin, hint)
  }
  return value
}

/** Splits `host[:port]` (as in `kinto.http_host`) and checks the host part. */
export function serverNameFromHttpHost(value: string, origin?: string): string {
  const match = /^(.*?)(?::\d{1,5})?$/.exec(String(value))!
  return checkServerName(match[1], origin)
}

/** An address or network for an allow list: IPv4/IPv6, optionally with a /prefix. */
export function checkAllowAddress(value: string, origin?: string): string {
  const hint = 'Use an IP address or a network such as 127.0.0.1, ::1 or 10.0.0.0/8.'
  const bad = dangerousChar(value, ':./')
  if (bad) throw new DeployValueError('allowed address', value, breaks(bad), origin, hint)
  const [address, prefix, ...rest] = value.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) throw new DeployValueError('allowed address', value, 'it is not an IP address', origin, hint)
  if (prefix !== undefined) {
    const n = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN
    if (!(n >= 0 && n <= (family === 4 ? 32 : 128))) {
      throw new DeployValueError('allowed address', value, 'its network prefix is out of range', origin, hint)
    }
  }
  return value
}

/** An absolute file-system path made of safe characters. */
export function checkPath(what: string, value: string, origin?: string): string {
  const hint = `Use an absolute path without spaces or special characters, such as /srv/kinto/${what.includes('socket') ? 'kinto.sock' : 'app.wsgi'}.`
  if (typeof value !== 'string' || value === '') throw new DeployValueError(what, value, 'it is empty', origin, hint)
  const bad = dangerousChar(value, '@+,=')
  if (bad) throw new DeployValueError(what, value, breaks(bad), origin, hint)
  if (!path.isAbsolute(value)) throw new DeployValueError(what, value, 'it is not an absolute path', origin, hint)
  return path.normalize(value)
}

/** A URL path for a `location` (`/attachments/`): letters, digits, `._~-` and slashes, starting and ending with `/`. */
export function checkUrlPath(value: string, origin?: string): string {
  const hint = 'Use a plain path such as /attachments/ in kinto.attachment.base_url.'
  if (typeof value !== 'string' || !/^\/(?:[A-Za-z0-9._~-]+\/)+$/.test(value) || value.split('/').some((s) => s === '.' || s === '..')) {
    throw new DeployValueError('attachments URL path', value, 'it is not a plain URL path ending with /', origin, hint)
  }
  return value
}

/** A host name or IP address to connect to (not a pattern). IPv6 literals may be bracketed. */
export function checkHost(what: string, value: string, origin?: string): string {
  const hint = 'Use a host name or an IP address, such as 127.0.0.1.'
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  const bad = dangerousChar(bare, ':.')
  if (bad) throw new DeployValueError(what, value, breaks(bad), origin, hint)
  if (isIP(bare) === 6) return bare
  if (bare.includes(':') || (isIP(bare) === 0 && !HOSTNAME.test(bare))) {
    throw new DeployValueError(what, value, 'it is not a host name or an IP address', origin, hint)
  }
  return bare
}

export function checkPort(what: string, value: unknown, origin?: string): number {
  const n = typeof value === 'number' ? value : /^\d{1,5}$/.test(String(value)) ? Number(value) : Number.NaN
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new DeployValueError(what, value, 'it is not a port number between 1 and 65535', origin, 'Use a port such as 8888.')
  }
  return n
}

export function checkPositiveInt(what: string, value: unknown, origin?: string, max = 1_000_000): number {
  const n = typeof value === 'number' ? value : /^\d{1,9}$/.test(String(value)) ? Number(value) : Number.NaN
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new DeployValueError(what, value, `it is not a whole number between 1 and ${max}`, origin, `Use a number such as ${Math.min(3, max)}.`)
  }
  return n
}

/** A Unix user or group name. */
export function checkAccount(what: string, value: string, origin?: string): string {
  const hint = 'Use a system user or group name such as kinto.'
  const bad = dangerousChar(value)
  if (bad) throw new DeployValueError(what, value, breaks(bad), origin, hint)
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value)) throw new DeployValueError(what, value, 'it is not a user or group name', origin, hint)
  return value
}

/** An octal file mode such as 660 or 0660. */
export function checkSocketMode(value: string | number, origin?: string): string {
  const text = String(value)
  if (!/^0?[0-7]{3}$/.test(text)) {
    throw new DeployValueError('socket mode', value, 'it is not an octal mode such as 660', origin, 'Use three octal digits, such as 660.')
  }
  return text.length === 4 ? text.slice(1) : text
}

const SIZE_UNITS: Record<string, number> = {'': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3}

/** A body size as nginx writes it (`75m`, `512k`, `1048576`); returned normalised with its byte count. */
export function checkSize(value: string, origin?: string): {text: string; bytes: number} {
  const match = /^(\d{1,10})([kKmMgG]?)$/.exec(String(value))
  const hint = 'Use a size such as 75m, 512k or 1048576 (bytes).'
  if (!match) throw new DeployValueError('body size', value, 'it is not a size', origin, hint)
  const unit = match[2].toLowerCase()
  const bytes = Number(match[1]) * SIZE_UNITS[unit]
  // Apache's LimitRequestBody tops out at 2 GiB.
  if (bytes < 1 || bytes > 2 * 1024 ** 3) throw new DeployValueError('body size', value, 'it must be between 1 byte and 2g', origin, hint)
  return {text: `${match[1]}${unit}`, bytes}
}

/** What nginx `listen` / Apache `<VirtualHost>` accept from us: `PORT`, `ADDR:PORT`, `[v6]:PORT`, `*:PORT`. */
export function checkListen(value: string, origin?: string, allowBarePort = true): {host?: string; port: number; text: string} {
  const hint = 'Use a port (80) or an address and a port (127.0.0.1:8080, [::1]:8080, *:80).'
  const text = String(value)
  const bad = dangerousChar(text, ':.[]*')
  if (bad) throw new DeployValueError('listen address', value, breaks(bad), origin, hint)
  let match: RegExpExecArray | null
  if ((match = /^(\d{1,5})$/.exec(text)) && allowBarePort) {
    return {port: checkPort('listen port', match[1], origin), text}
  }
  if ((match = /^(\*|\[[0-9A-Fa-f:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text))) {
    const host = match[1] === '*' ? '*' : checkHost('listen address', match[1], origin)
    const port = checkPort('listen port', match[2], origin)
    return {host, port, text: `${bracketHost(host)}:${port}`}
  }
  throw new DeployValueError('listen address', value, 'it is not a port or an address:port', origin, hint)
}

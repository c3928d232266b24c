/** Host names in URLs and `host:port` strings. */
import {isIP} from 'node:net'

/** The host as a URL or `host:port` shows it: IPv6 literals in brackets (`[::1]`), others as they are. */
export function bracketHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host
}

/**
 * The addresses of the shared caches, read once for everyone: `kinto.cache_url` of the Redis cache
 * (`redis://[[user]:password@]host:port/db`, `rediss://`, `unix:///path?db=N`) and the `host:port`
 * entries of `kinto.cache_hosts` (memcached). The settings check, `kinto init` and the cache
 * clients use these parsers, so a value the settings accept is one the client can open (a port
 * above 65535 or a database that is not a number is refused when the ini is read, not reported as
 * an unexpected failure when the cache is first used).
 *
 * A problem is returned as words that follow the value (the caller names the setting or flag and
 * shows the value with its password masked).
 */

export interface RedisAddress {
  /** `unix`: a socket path; otherwise host and port (rediss: TLS). */
  protocol: 'redis' | 'rediss' | 'unix'
  host: string
  port: number
  path?: string
  db: number
  username?: string
  password?: string
}

export type Parsed<T> = {ok: true; value: T} | {ok: false; problem: string}

/** How a Redis cache URL is written, for the messages of those who call parseRedisUrl. */
export const REDIS_URL_FORM = 'redis://host:port/db (or rediss://, unix://)'

/**
 * Reads a Redis cache URL. A problem reads after the value: `"…" is not a Redis URL`, `"…" has
 * no valid port` (the caller adds the expected form, REDIS_URL_FORM).
 */
export function parseRedisUrl(url: string): Parsed<RedisAddress> {
  const text = url.trim()
  const fail = (problem: string): Parsed<RedisAddress> => ({ok: false, problem})
  if (!/^(redis|rediss|unix):\/\/\S+$/i.test(text)) return fail('is not a Redis URL')
  let u: URL
  try {
    u = new URL(text)
  } catch {
    // WHATWG's parser refuses e.g. a port above 65535 or a bad host; it says not which.
    return fail('is not a valid URL (a port from 1 to 65535, a host name or address, special characters of the password percent-encoded)')
  }
  const protocol = u.protocol.slice(0, -1).toLowerCase() as RedisAddress['protocol']
  let credentials: {username?: string; password?: string}
  try {
    // The query's `username`/`password` when the URL has none before its host, as redis-py's
    // from_url (upstream's client) reads them; URLSearchParams has decoded them already.
    const username = u.username ? decodeURIComponent(u.username) : u.searchParams.get('username') || undefined
    const password = u.password ? decodeURIComponent(u.password) : u.searchParams.get('password') || undefined
    credentials = {...(username ? {username} : {}), ...(password ? {password} : {})}
  } catch {
    return fail("has a '%' in its user or password that is not a percent-encoded character (write %25 for '%')")
  }
  if (protocol === 'unix') {
    if (!u.pathname || u.pathname === '/') return fail('names no socket path')
    const db = u.searchParams.get('db') ?? '0'
    if (!/^\d+$/.test(db)) return fail(`names the database ${JSON.stringify(db)}, and Redis databases are numbers`)
    return {ok: true, value: {protocol, host: '', port: 0, path: u.pathname, db: Number(db), ...credentials}}
  }
  const db = u.pathname.replace(/^\//, '') || u.searchParams.get('db') || '0'
  if (!/^\d+$/.test(db)) return fail(`names the database ${JSON.stringify(db)}, and Redis databases are numbers`)
  if (u.port === '0') return fail('has port 0')
  return {
    ok: true,
    value: {protocol, host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port || 6379), db: Number(db), ...credentials},
  }
}

/** How a memcached server is written, for the messages of those who call parseMemcachedHost. */
export const MEMCACHED_HOST_FORM = 'host:port such as 127.0.0.1:11211'

/** The default memcached port (python-memcached's, for an entry without one). */
export const MEMCACHED_DEFAULT_PORT = 11211

/**
 * Reads one entry of kinto.cache_hosts (memcached) as upstream's client (python-memcached) does:
 * `host[:port]`, `inet:host[:port]`, `inet6:[addr][:port]`, the port 11211 when none is given;
 * also `[addr]:port` for IPv6. `unix:/path` sockets are refused with a clear problem (the client
 * here reaches memcached over TCP only). With `requirePort`, an entry must name its port (what
 * `kinto init` writes).
 */
export function parseMemcachedHost(entry: string, options: {requirePort?: boolean} = {}): Parsed<{host: string; port: number}> {
  const text = entry.trim()
  if (text.startsWith('unix:')) return {ok: false, problem: 'is a Unix socket, and kinto-ops reaches memcached over TCP only (give host:port)'}
  const m =
    /^inet6:\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(text) ??
    /^inet:([^\s:/[\],]+)(?::(\d{1,5}))?$/.exec(text) ??
    /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(text) ??
    /^([^\s:/[\],]+)(?::(\d{1,5}))?$/.exec(text)
  if (!m) return {ok: false, problem: 'is not a memcached server'}
  if (m[2] === undefined && options.requirePort) return {ok: false, problem: 'names no port'}
  const port = m[2] === undefined ? MEMCACHED_DEFAULT_PORT : Number(m[2])
  if (port < 1 || port > 65535) return {ok: false, problem: `has port ${port}, and ports go from 1 to 65535`}
  return {ok: true, value: {host: m[1]!, port}}
}

/**
 * Redis cache (upstream: kinto.core.cache.redis) through ioredis. Settings as upstream:
 * `cache_url = redis://[[user]:password@]host:port/db` (also rediss:// and unix:///path?db=N),
 * `cache_pool_size` (the most connections, opened as calls overlap; ioredis pipelines, so the default
 * is one), `cache_pool_timeout`
 * (seconds a command may take, default 5), `cache_prefix`.
 *
 * Key layout as upstream: `<cache_prefix><key>`, the value JSON text, TTLs as Redis expirations
 * (PX, so fractions of a second are kept). Differences from upstream, on purpose: `flush` deletes
 * only the keys under the prefix (upstream runs FLUSHDB, emptying whatever else shares the
 * database); a set without a ttl never expires (upstream cannot express it); ttl() answers -1 for a
 * missing key (upstream: Redis's -2).
 *
 * A Redis that is down or silent fails the call within the command timeout as a BackendError
 * (HTTP 503 for a request that needed the cache), one that refuses connections at once; the client
 * reconnects on its own meanwhile (every 0.5 s at most).
 * Error messages name host:port/db, never the password.
 *
 * Credentials: upstream sends only the URL's password (AUTH <password>, the default user). A user
 * name is sent too (a Redis 6 ACL user); when Redis refuses that pair, the password alone is tried,
 * so an upstream URL with a user name Redis does not know (`redis://h:<password>@…`) still works.
 */
import type {Redis, RedisOptions} from 'ioredis'

import {parseRedisUrl, REDIS_URL_FORM} from '../config/cache-addresses.js'
import {lazyRequire} from '../lazy.js'
import {BackendError} from '../storage/types.js'
import {type CacheAddress, cacheFailure, checkValueSize, decodeJson, encodeJson} from './codec.js'
import {type Cache, writeReadHeartbeat} from './types.js'

const loadIoredis = lazyRequire<{Redis: new (options: RedisOptions) => Redis}>('ioredis')

/** Redis refuses bulk strings over proto-max-bulk-len, 512 MB by default. */
export const REDIS_MAX_VALUE_BYTES = 512 * 1024 * 1024

export interface RedisCacheOptions {
  url: string
  prefix?: string
  /** The most connections opened (one more only when every open one has a call under way); default 1. */
  poolSize?: number
  /** Bound on one command, connection included (default 5000 ms). */
  commandTimeoutMs?: number
}

/** Where a Redis URL points, without its credentials (for messages). */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.protocol === 'unix:') return `unix:${u.pathname}${u.searchParams.get('db') ? `?db=${u.searchParams.get('db')}` : ''}`
    return `${u.hostname || '127.0.0.1'}:${u.port || 6379}/${u.pathname.replace(/^\//, '') || '0'}`
  } catch {
    return 'the configured Redis'
  }
}

/** ioredis options for a cache_url (throws a one-line error for a URL it cannot use). */
export function redisOptions(url: string, commandTimeoutMs: number): RedisOptions {
  // The one reading of the URL the settings check also uses (config/cache-addresses.ts).
  const parsed = parseRedisUrl(url)
  if (!parsed.ok) throw new BackendError(`kinto.cache_url ${parsed.problem}; expected ${REDIS_URL_FORM}.`)
  const a = parsed.value
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: Math.min(commandTimeoutMs, 3000),
    commandTimeout: commandTimeoutMs,
    // A command issued while (re)connecting waits for that attempt, then fails; between attempts
    // (a refused connection) RedisCache.call fails at once. Attempts every 0.5 s at most, so the
    // cache is used again within half a second of Redis being back.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 500),
    enableAutoPipelining: false,
    username: a.username,
    password: a.password,
    db: a.db,
  }
  if (a.protocol === 'unix') return {...base, path: a.path}
  return {...base, host: a.host, port: a.port, ...(a.protocol === 'rediss' ? {tls: {}} : {})}
}

/** Escapes a literal for a Redis glob pattern (SCAN MATCH). */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/** A call not sent: ioredis is between two connection attempts after a refusal. */
class NotConnected extends Error {}

export class RedisCache implements Cache {
  readonly kind = 'redis' as const
  readonly address: CacheAddress
  private readonly prefix: string
  /** The connections opened so far (at most `size`), with the calls each has under way. */
  private clients: Redis[] = []
  private readonly inflight = new Map<Redis, number>()
  private closed = false
  /** The last connection error (the reason a command failed while reconnecting). */
  private connectionError: Error | undefined
  /** cache_pool_size: the most connections opened, as upstream's pool (max_connections). */
  private readonly size: number
  /** ioredis options; without the user name once the password alone proved to be what authenticates. */
  private redisOpts: RedisOptions

  constructor(options: RedisCacheOptions) {
    this.prefix = options.prefix ?? ''
    this.address = {backend: 'Redis', where: describeRedisUrl(options.url)}
    this.redisOpts = redisOptions(options.url, options.commandTimeoutMs ?? 5000)
    this.size = Math.max(1, options.poolSize ?? 1)
    loadIoredis()
  }

  private open(): Redis {
    const {Redis: RedisClient} = loadIoredis()
    const client = new RedisClient(this.redisOpts)
    // Connection errors surface in the calls that need Redis; without a listener ioredis would
    // print each one to stderr.
    client.on('error', (error: Error & {command?: {name?: string}}) => {
      this.connectionError = error
      // A database the server does not have (a db index past its `databases`): ioredis reports
      // the refused SELECT here only, then serves the connection on database 0, another
      // application's. Such a connection is closed before it sends anything; the calls fail.
      if (error.command?.name === 'select') {
        this.connectionError = new Error(`database ${this.redisOpts.db ?? 0} cannot be selected: ${error.message}`)
        client.disconnect()
      }
    })
    client.on('ready', () => (this.connectionError = undefined))
    this.clients.push(client)
    return client
  }

  /**
   * A connection for the next call: one with nothing under way, else a new one while fewer than
   * cache_pool_size are open, else the least busy (ioredis pipelines). As upstream's pool, a
   * connection is opened only when calls overlap: `cache_pool_size = 50` (upstream's example) is
   * at most 50 connections per process, not 50 from the first request on.
   */
  private acquire(): Redis {
    // Closed connections (a refused SELECT) are dropped: the next call opens a new one.
    for (let i = this.clients.length - 1; i >= 0; i--) {
      if (this.clients[i].status === 'end' && !this.inflight.has(this.clients[i])) this.clients.splice(i, 1)
    }
    let best: Redis | undefined
    for (const client of this.clients) {
      const busy = this.inflight.get(client) ?? 0
      if (busy === 0) return client
      if (!best || busy < (this.inflight.get(best) ?? 0)) best = client
    }
    return this.clients.length < this.size || !best ? this.open() : best
  }

  /**
   * Upstream reads only the password of cache_url (redis-py's AUTH <password>, as the default
   * user), so an upstream ini may carry any user name (`redis://h:<password>@…`, the old hosted
   * Redis form). When Redis refuses the user name with that password (or, before Redis 6, any
   * user name), the password alone is tried, as upstream sends it: true when the clients were
   * rebuilt so, and the call should be made again.
   */
  private authenticateAsUpstream(error: unknown): boolean {
    if (this.redisOpts.username === undefined || this.closed) return false
    const message = (error as Error)?.message ?? ''
    if (!/WRONGPASS|NOAUTH|wrong number of arguments for 'auth'/i.test(message)) return false
    const old = this.clients
    this.redisOpts = {...this.redisOpts, username: undefined}
    this.connectionError = undefined
    this.clients = []
    for (const client of old) client.disconnect()
    return true
  }

  private async call<T>(what: string, fn: (client: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new BackendError(`Cache backend (${this.address.backend} ${this.address.where}) is closed.`)
    const clients = this.clients
    try {
      return await this.attempt(fn)
    } catch (error) {
      // Rebuilt meanwhile by a concurrent call's refusal: this one goes again too.
      if (this.clients === clients && !this.authenticateAsUpstream(error)) return this.fail(what, error)
    }
    try {
      return await this.attempt(fn)
    } catch (error) {
      return this.fail(what, error)
    }
  }

  private async attempt<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    const client = this.acquire()
    // Redis refused the last attempt and ioredis waits to try again: fail now, as upstream's client
    // does, instead of holding the request until the next attempt.
    if (client.status === 'reconnecting' && this.connectionError) {
      throw new NotConnected(`cannot connect (${this.connectionError.message})`)
    }
    this.inflight.set(client, (this.inflight.get(client) ?? 0) + 1)
    try {
      return await fn(client)
    } finally {
      const left = (this.inflight.get(client) ?? 1) - 1
      if (left > 0) this.inflight.set(client, left)
      else this.inflight.delete(client)
    }
  }

  private fail(what: string, error: unknown): never {
    if (error instanceof BackendError || error instanceof TypeError) throw error
    let reason = (error as Error)?.message ?? String(error)
    // A command given up while reconnecting: say why the connection fails, not ioredis's retry count.
    if ((error as Error)?.name === 'MaxRetriesPerRequestError' || /max retries per request|^Connection is closed/i.test(reason)) {
      reason = `cannot connect (${this.connectionError?.message ?? 'no connection'})`
    }
    throw cacheFailure(this.address, what, reason, error)
  }

  heartbeat(): Promise<boolean> {
    return writeReadHeartbeat(this)
  }

  /** Deletes the keys under the prefix (every key of the database when the prefix is empty). */
  flush(): Promise<void> {
    return this.call('flush', async (client) => {
      const pattern = `${globLiteral(this.prefix)}*`
      let cursor = '0'
      do {
        const [nextCursor, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        if (keys.length > 0) await client.unlink(...keys)
        cursor = nextCursor
      } while (cursor !== '0')
    })
  }

  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.call('get', async (client) => {
      const text = await client.get(this.prefix + key)
      return text === null ? undefined : decodeJson<T>(text, this.address, key)
    })
  }

  set(key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    let json: string
    try {
      json = encodeJson(value)
      checkValueSize(Buffer.byteLength(json), REDIS_MAX_VALUE_BYTES, this.address, key, "Redis's proto-max-bulk-len")
    } catch (error) {
      return Promise.reject(error)
    }
    return this.call('set', async (client) => {
      const full = this.prefix + key
      if (ttlSeconds === undefined || ttlSeconds === null) await client.set(full, json)
      else if (ttlSeconds <= 0) await client.del(full)
      else await client.set(full, json, 'PX', Math.max(1, Math.round(ttlSeconds * 1000)))
    })
  }

  delete<T = unknown>(key: string): Promise<T | undefined> {
    return this.call('delete', async (client) => {
      // GET and DEL in one MULTI: atomic as GETDEL (a login state or a pagination token is taken
      // once), and understood by every Redis, where GETDEL needs 6.2 (Debian 11 ships 6.0, Ubuntu
      // 20.04 5.0: there every delete, the heartbeat's included, failed with "unknown command").
      const results = await client.multi().get(this.prefix + key).del(this.prefix + key).exec()
      const [getError, text] = results?.[0] ?? [new Error('the transaction was aborted'), null]
      if (getError) throw getError
      return text === null || text === undefined ? undefined : decodeJson<T>(text as string, this.address, key)
    })
  }

  expire(key: string, ttlSeconds: number): Promise<void> {
    return this.call('expire', async (client) => {
      if (ttlSeconds <= 0) await client.del(this.prefix + key)
      else await client.pexpire(this.prefix + key, Math.max(1, Math.round(ttlSeconds * 1000)))
    })
  }

  ttl(key: string): Promise<number> {
    return this.call('ttl', async (client) => {
      const ms = await client.pttl(this.prefix + key)
      return ms < 0 ? -1 : ms / 1000
    })
  }

  /** Connects (and authenticates) now: `kinto check` and the start-up ping. */
  ping(): Promise<void> {
    return this.call('ping', async (client) => {
      await client.ping()
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(
      this.clients.map(async (client) => {
        // Only a ready connection says goodbye; any other is dropped (QUIT would wait for a reconnection).
        if (client.status !== 'ready') return client.disconnect()
        try {
          await client.quit()
        } catch {
          client.disconnect()
        }
      }),
    )
  }
}

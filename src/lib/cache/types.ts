/**
 * The cache backend interface (upstream: kinto.core.cache.CacheBase). Values are JSON; keys carry
 * `cache_prefix`; TTLs in seconds (fractions kept). It holds what every process of a deployment
 * must share: verified logins, single-use pagination tokens, OpenID verifications and login states.
 */
import {randomUUID} from 'node:crypto'

export interface Cache {
  heartbeat(): Promise<boolean>
  flush(): Promise<void>
  get<T = unknown>(key: string): Promise<T | undefined>
  /** ttl in seconds; upstream requires one (a missing ttl logs a warning and never expires). */
  set(key: string, value: unknown, ttlSeconds?: number): Promise<void>
  /** Returns the previous value. */
  delete<T = unknown>(key: string): Promise<T | undefined>
  expire(key: string, ttlSeconds: number): Promise<void>
  /** Remaining seconds, -1 when the key has no ttl or is missing. */
  ttl(key: string): Promise<number>
  close(): Promise<void>
  /**
   * True when the cache shares the request transaction's only connection (a PostgreSQL cache on
   * the embedded engine): calls made during a request's transaction would wait for it forever, so
   * they go after it (RequestContext's afterTransaction). Every other cache may be used at any time.
   */
  readonly waitsForTransaction?: boolean
  /**
   * True when what the cache holds lives in this process only (the memory cache): a delete made by
   * another process (a worker, another host, a command) never reaches it.
   */
  readonly processLocal?: boolean
}

/**
 * Every backend's heartbeat, as upstream's: a key written, read back and removed. The key is this
 * ping's own: with one shared key (upstream's), two pings at once (two workers, two load
 * balancers) raced, one's delete falling between the other's write and read, and a healthy cache
 * answered false (503).
 */
export async function writeReadHeartbeat(cache: Pick<Cache, 'set' | 'get' | 'delete'>): Promise<boolean> {
  const key = `__heartbeat__${randomUUID()}`
  await cache.set(key, 'alive', 3600)
  const ok = (await cache.get(key)) === 'alive'
  await cache.delete(key)
  return ok
}

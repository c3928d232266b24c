/** The cache backend interface (upstream: kinto.core.cache.CacheBase). Values are JSON. */
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
}

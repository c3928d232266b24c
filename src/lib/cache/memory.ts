/**
 * In-process cache (upstream: kinto.core.cache.memory): keys prefixed by `cache_prefix`, values
 * stored as JSON (a get returns a fresh copy), per-key ttl, flush limited to the prefix, and
 * `cache_max_size_bytes`: when the estimated size reaches it, the oldest entries go until it is below 80%.
 */
import {encodeJson} from './codec.js'
import {type Cache, writeReadHeartbeat} from './types.js'

export interface MemoryCacheOptions {
  prefix?: string
  /** cache_max_size_bytes (upstream default 524288); null = unbounded. */
  maxSizeBytes?: number | null
  /** Clock in epoch milliseconds (tests). */
  now?: () => number
  /** Share the entries with another MemoryCache (e.g. one per prefix over one store). */
  state?: MemoryCacheState
}

/** The entries of a memory cache and their accounted size. */
export class MemoryCacheState {
  readonly store = new Map<string, Entry>()
  quota = 0
}

interface Entry {
  json: string
  /** Expiry in epoch ms; undefined = never. */
  expiresAt: number | undefined
  createdAt: number
  size: number
}

/** Upstream's size estimate: the key is held three times (value, ttl, creation), plus two ints. */
function sizeOf(key: string, json: string): number {
  return key.length * 3 + json.length + 24 * 2
}

export class MemoryCache implements Cache {
  readonly kind = 'memory' as const
  readonly processLocal = true
  readonly state: MemoryCacheState
  private readonly prefix: string
  private readonly maxSizeBytes: number | null
  private readonly now: () => number

  constructor(options: MemoryCacheOptions = {}) {
    this.prefix = options.prefix ?? ''
    this.maxSizeBytes = options.maxSizeBytes === undefined ? 524288 : options.maxSizeBytes
    this.now = options.now ?? Date.now
    this.state = options.state ?? new MemoryCacheState()
  }

  private get store(): Map<string, Entry> {
    return this.state.store
  }

  private get quota(): number {
    return this.state.quota
  }

  private set quota(value: number) {
    this.state.quota = value
  }

  /** Bytes currently accounted (tests, metrics). */
  get sizeBytes(): number {
    return this.quota
  }

  private live(fullKey: string): Entry | undefined {
    const entry = this.store.get(fullKey)
    if (!entry) return undefined
    if (entry.expiresAt !== undefined && this.now() >= entry.expiresAt) {
      this.drop(fullKey)
      return undefined
    }
    return entry
  }

  private drop(fullKey: string): Entry | undefined {
    const entry = this.store.get(fullKey)
    if (!entry) return undefined
    this.store.delete(fullKey)
    this.quota -= entry.size
    return entry
  }

  private cleanExpired(): void {
    const now = this.now()
    for (const [k, e] of this.store) if (e.expiresAt !== undefined && now >= e.expiresAt) this.drop(k)
  }

  private cleanOversized(): void {
    if (this.maxSizeBytes === null || this.quota < this.maxSizeBytes) return
    // Map iteration is insertion order; a set re-inserts, so this is oldest first.
    for (const k of [...this.store.keys()]) {
      if (this.quota < this.maxSizeBytes * 0.8) break
      this.drop(k)
    }
  }

  heartbeat(): Promise<boolean> {
    return writeReadHeartbeat(this)
  }

  /** Empties the keys under this cache's prefix (all of them when the prefix is empty). */
  async flush(): Promise<void> {
    if (this.prefix === '') {
      this.store.clear()
      this.quota = 0
      return
    }
    for (const k of [...this.store.keys()]) if (k.startsWith(this.prefix)) this.drop(k)
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    this.cleanExpired()
    const entry = this.live(this.prefix + key)
    return entry ? (JSON.parse(entry.json) as T) : undefined
  }

  async set(key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    const json = encodeJson(value)
    this.cleanExpired()
    this.cleanOversized()
    const fullKey = this.prefix + key
    this.drop(fullKey)
    const now = this.now()
    const entry: Entry = {
      json,
      expiresAt: ttlSeconds === undefined || ttlSeconds === null ? undefined : now + Math.trunc(ttlSeconds * 1000),
      createdAt: now,
      size: sizeOf(fullKey, json),
    }
    this.store.set(fullKey, entry)
    this.quota += entry.size
  }

  async delete<T = unknown>(key: string): Promise<T | undefined> {
    const entry = this.drop(this.prefix + key)
    if (!entry || (entry.expiresAt !== undefined && this.now() >= entry.expiresAt)) return undefined
    return JSON.parse(entry.json) as T
  }

  async expire(key: string, ttlSeconds: number): Promise<void> {
    const entry = this.live(this.prefix + key)
    if (entry) entry.expiresAt = this.now() + Math.trunc(ttlSeconds * 1000)
  }

  async ttl(key: string): Promise<number> {
    const entry = this.live(this.prefix + key)
    if (!entry || entry.expiresAt === undefined) return -1
    return (entry.expiresAt - this.now()) / 1000
  }

  async close(): Promise<void> {}
}

/**
 * PostgreSQL cache (upstream: kinto.core.cache.postgresql) over upstream's `cache(key, value, ttl)`
 * table and `sec2ttl()` function. Values are JSON text; keys carry `cache_prefix`. Never part of a
 * request transaction: each call is one statement, committed on its own.
 *
 * Differences from upstream, on purpose: flush deletes only the keys under the prefix (upstream
 * empties the table, whichever deployment the rows belong to); a key set without a ttl never expires (upstream stores NULL
 * and then never returns it); ttl() gives the whole remaining seconds (upstream: only the seconds
 * field of the interval, so 3600 s read as 0); the expiry purge skips rows another session is
 * purging instead of waiting for it.
 */
import type {SqlClient} from '../db/index.js'
import {PostgresBackend} from '../db/backend.js'
import {encodeJson} from './codec.js'
import {type Cache, writeReadHeartbeat} from './types.js'

export interface PostgresCacheOptions {
  prefix?: string
  /** The client is the request transaction's one connection (PGlite): see Cache.waitsForTransaction. */
  waitsForTransaction?: boolean
}

export class PostgresCache extends PostgresBackend implements Cache {
  readonly kind = 'postgresql' as const
  readonly waitsForTransaction: boolean
  private readonly prefix: string

  constructor(client: SqlClient, options: PostgresCacheOptions = {}) {
    // Never part of a request transaction: every statement goes to the client.
    super(client, undefined, 'Cache')
    this.prefix = options.prefix ?? ''
    this.waitsForTransaction = options.waitsForTransaction ?? false
  }

  heartbeat(): Promise<boolean> {
    return writeReadHeartbeat(this)
  }

  flush(): Promise<void> {
    return this.guard(async () => {
      if (this.prefix === '') await this.q.query('DELETE FROM cache')
      else await this.q.query("DELETE FROM cache WHERE left(key, length($1)) = $1", [this.prefix])
    })
  }

  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.guard(async () => {
      // As upstream, each read first purges the expired rows (one statement here).
      const res = await this.q.query<{value: string}>(
        `WITH purged AS (
           DELETE FROM cache WHERE key IN (
             SELECT key FROM cache WHERE ttl IS NOT NULL AND now() > ttl ORDER BY key FOR UPDATE SKIP LOCKED
           )
         )
         SELECT value FROM cache WHERE key = $1 AND (ttl IS NULL OR now() < ttl)`,
        [this.prefix + key],
      )
      return res.rows[0] ? (JSON.parse(res.rows[0].value) as T) : undefined
    })
  }

  set(key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    let json: string
    try {
      json = encodeJson(value)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.guard(async () => {
      await this.q.query(
        `INSERT INTO cache (key, value, ttl) VALUES ($1, $2, sec2ttl($3::float8))
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, ttl = EXCLUDED.ttl`,
        [this.prefix + key, json, ttlSeconds ?? null],
      )
    })
  }

  delete<T = unknown>(key: string): Promise<T | undefined> {
    return this.guard(async () => {
      const res = await this.q.query<{value: string; live: boolean}>(
        'DELETE FROM cache WHERE key = $1 RETURNING value, (ttl IS NULL OR now() < ttl) AS live',
        [this.prefix + key],
      )
      const row = res.rows[0]
      return row && row.live ? (JSON.parse(row.value) as T) : undefined
    })
  }

  expire(key: string, ttlSeconds: number): Promise<void> {
    return this.guard(async () => {
      await this.q.query('UPDATE cache SET ttl = sec2ttl($2::float8) WHERE key = $1', [this.prefix + key, ttlSeconds])
    })
  }

  ttl(key: string): Promise<number> {
    return this.guard(async () => {
      const res = await this.q.query<{ttl: number}>(
        'SELECT EXTRACT(EPOCH FROM (ttl - now()))::float8 AS ttl FROM cache WHERE key = $1 AND ttl IS NOT NULL AND now() < ttl',
        [this.prefix + key],
      )
      return res.rows[0] ? Number(res.rows[0].ttl) : -1
    })
  }

  async close(): Promise<void> {}
}

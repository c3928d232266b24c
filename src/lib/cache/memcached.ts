/**
 * memcached cache (upstream: kinto.core.cache.memcached) through memjs (binary protocol).
 * Settings as upstream: `cache_hosts` (host:port entries, keys spread over them by hash),
 * `cache_prefix`; `cache_pool_timeout` bounds one call (seconds, default 5). A key goes to the
 * server upstream's client (python-memcached) picks for it, so upstream and this backend find each
 * other's keys on a cache of several servers (a fleet switched over host by host shares logins,
 * OpenID states and verifications); as upstream, a server that fails is left aside for 30 s and
 * its keys go to the others meanwhile.
 *
 * Layout as upstream: key `<cache_prefix><key>`, value the JSON of `{"value": …, "ttl": <expiry,
 * epoch seconds>}` and the same expiry given to memcached, so values written by upstream are read
 * here and the other way round. memcached counts expiries in whole seconds (and a number over 30
 * days as a date): the envelope keeps the exact expiry, and a get past it answers nothing even
 * while memcached still holds the item. Keys memcached refuses (over 250 bytes, spaces, control
 * characters) are stored under `<cache_prefix>sha256-<hex of the key>`.
 *
 * `flush` deletes the keys under the prefix only, listing them with `lru_crawler metadump` (upstream
 * runs flush_all, emptying every application on those servers); with an empty prefix it is
 * flush_all. Values over memcached's item size (1 MB unless `memcached -I` says otherwise) are
 * refused with CacheValueTooLarge. A server down or silent fails the call within the timeout as a
 * BackendError (HTTP 503 for a request that needed the cache).
 */
import {createHash} from 'node:crypto'
import {connect} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {crc32} from 'node:zlib'

import type * as Memjs from 'memjs'

import {MEMCACHED_HOST_FORM, parseMemcachedHost} from '../config/cache-addresses.js'
import {displayValue} from '../config/validate.js'
import {lazyRequire} from '../lazy.js'
import {BackendError} from '../storage/types.js'
import {type CacheAddress, cacheFailure, CacheValueTooLarge, decodeJson, encodeJson, tooLargeMessage} from './codec.js'
import {type Cache, writeReadHeartbeat} from './types.js'

const loadMemjs = lazyRequire<typeof Memjs>('memjs')

/** memcached reads an expiry over 30 days as a Unix time. */
const RELATIVE_EXPIRY_MAX = 60 * 60 * 24 * 30
const MAX_KEY_BYTES = 250

export interface MemcachedCacheOptions {
  /** host:port entries (IPv6 as [addr]:port). */
  hosts: string[]
  prefix?: string
  /** Bound on one call (default 5000 ms). */
  timeoutMs?: number
}

interface Envelope {
  value: unknown
  /** Expiry in epoch seconds; absent (or null) = never. */
  ttl?: number | null
}

function serverOf(entry: string): {host: string; port: number} {
  const parsed = parseMemcachedHost(entry)
  if (!parsed.ok) throw new BackendError(`${displayValue('cache_hosts', entry)} ${parsed.problem}; expected ${MEMCACHED_HOST_FORM}.`)
  return parsed.value
}

/** python-memcached's cmemcache_hash: bits 16 to 30 of the CRC-32, 0 counted as 1. */
function cmemcacheHash(bytes: Buffer): number {
  return ((crc32(bytes) >>> 16) & 0x7fff) || 1
}

/** How long a server that failed is left aside (python-memcached's dead_retry). */
const DEAD_RETRY_SECONDS = 30

/**
 * The server for `key`, as python-memcached finds it: the hash of the key's UTF-8 bytes modulo the
 * number of servers (memjs's own Java-style string hash would put keys elsewhere), or while that
 * server is left aside after a failure, the first of up to ten rehashes (`<hash><attempt>`) that
 * lands on a live one.
 */
function upstreamServer<S extends {wakeupAt?: number}>(key: string, servers: readonly S[], now: number): S | undefined {
  let hash = cmemcacheHash(Buffer.from(key, 'utf8'))
  for (let attempt = 0; attempt < 10; attempt++) {
    const server = servers[hash % servers.length]!
    if (!server.wakeupAt || server.wakeupAt <= now) return server
    hash = cmemcacheHash(Buffer.from(`${hash}${attempt}`, 'ascii'))
  }
  return undefined
}

export class MemcachedCache implements Cache {
  readonly kind = 'memcached' as const
  readonly address: CacheAddress
  private readonly prefix: string
  private readonly client: Memjs.Client
  /** memjs's servers; `wakeupAt` marks one left aside after a failure (memjs's failover). */
  private readonly pool: ReadonlyArray<{wakeupAt?: number}>
  private readonly servers: Array<{host: string; port: number}>
  /** The servers as `host:port` (`[v6]:port`), in kinto.cache_hosts' order. */
  readonly hosts: readonly string[]
  private readonly timeoutMs: number

  constructor(options: MemcachedCacheOptions) {
    if (options.hosts.length === 0) throw new BackendError('The memcached cache needs at least one server in kinto.cache_hosts.')
    this.prefix = options.prefix ?? ''
    this.timeoutMs = options.timeoutMs ?? 5000
    this.servers = options.hosts.map(serverOf)
    this.hosts = this.servers.map(formatHost)
    this.address = {backend: 'memcached', where: options.hosts.join(' ')}
    const memjs = loadMemjs()
    const seconds = this.timeoutMs / 1000
    const servers = this.servers.map(
      ({host, port}) => new memjs.Server(host, port, undefined, undefined, {timeout: seconds, conntimeout: Math.min(seconds, 3), keepAlive: true}),
    )
    // One attempt per server: a server that fails is left aside for 30 s (memjs marks it), and
    // the call goes on to the server upstream would use instead (a key of its own on one server
    // down is not an outage); when none is left the call fails at once.
    this.client = new memjs.Client(servers, {retries: 1, failover: true, failoverTime: DEAD_RETRY_SECONDS, logger: {log() {}}})
    const client = this.client as unknown as {servers: ReadonlyArray<{wakeupAt?: number}>; server(key: string): unknown}
    this.pool = client.servers
    client.server = (key: string) => upstreamServer(key, this.pool, Date.now())
  }

  /** The memcached key of a cache key: upstream's when memcached accepts it, else a digest. */
  private keyOf(key: string): string {
    const full = this.prefix + key
    // eslint-disable-next-line no-control-regex
    if (Buffer.byteLength(full) <= MAX_KEY_BYTES && !/[\s\x00-\x1f\x7f]/.test(full)) return full
    return `${this.prefix}sha256-${createHash('sha256').update(key).digest('hex')}`
  }

  private async call<T>(what: string, fn: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    // Every server left aside: try them again now (a refused connection fails at once), so a cache
    // that is back is used by the next call, not 30 s later.
    const now = Date.now()
    if (this.pool.every((server) => (server.wakeupAt ?? 0) > now)) for (const server of this.pool) server.wakeupAt = 0
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs)
    })
    try {
      return await Promise.race([fn(), timeout])
    } catch (error) {
      if (error instanceof BackendError || error instanceof TypeError) throw error
      const reason = (error as Error)?.message ?? String(error)
      throw cacheFailure(this.address, what, reason, error)
    } finally {
      clearTimeout(timer)
    }
  }

  private async read(key: string): Promise<Envelope | undefined> {
    const {value} = await this.client.get(this.keyOf(key))
    if (!value || value.length === 0) return undefined
    const envelope = decodeJson<Envelope>(value.toString('utf8'), this.address, key)
    if (envelope === null || typeof envelope !== 'object' || !('value' in envelope)) return undefined
    if (typeof envelope.ttl === 'number' && Date.now() >= envelope.ttl * 1000) return undefined
    return envelope
  }

  private async write(key: string, value: unknown, ttlSeconds: number | undefined): Promise<void> {
    const memKey = this.keyOf(key)
    if (ttlSeconds !== undefined && ttlSeconds !== null && ttlSeconds <= 0) {
      await this.client.delete(memKey)
      return
    }
    const hasTtl = ttlSeconds !== undefined && ttlSeconds !== null
    const expiry = hasTtl ? Date.now() / 1000 + ttlSeconds : undefined
    const text = encodeJson(hasTtl ? {value, ttl: Math.round(expiry! * 1000) / 1000} : {value})
    let expires = 0
    if (hasTtl) expires = ttlSeconds > RELATIVE_EXPIRY_MAX ? Math.ceil(expiry!) : Math.max(1, Math.ceil(ttlSeconds))
    try {
      await this.client.set(memKey, text, {expires})
    } catch (error) {
      if (/too large/i.test((error as Error)?.message ?? '')) {
        const bytes = Buffer.byteLength(text)
        throw new CacheValueTooLarge(tooLargeMessage(bytes, this.address, key, 'its item size limit, 1 MB unless memcached -I says otherwise'))
      }
      throw error
    }
  }

  heartbeat(): Promise<boolean> {
    return writeReadHeartbeat(this)
  }

  flush(): Promise<void> {
    if (this.prefix === '') {
      return this.call('flush', async () => {
        await this.client.flush()
      })
    }
    // Listing keys can take longer than one call on a big server: bounded by 6 call timeouts. A
    // server that is down or hung is found first, within one call timeout, before any key goes.
    return this.call('flush', async () => {
      await this.everyServerAnswers()
      for (const server of this.servers) {
        const keys = (await metadumpKeys(server, this.timeoutMs * 6)).filter((k) => k.startsWith(this.prefix))
        for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => this.client.delete(k)))
      }
    }, this.timeoutMs * 6)
  }

  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.call('get', async () => (await this.read(key))?.value as T | undefined)
  }

  set(key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    try {
      encodeJson(value)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.call('set', () => this.write(key, value, ttlSeconds))
  }

  delete<T = unknown>(key: string): Promise<T | undefined> {
    return this.call('delete', async () => {
      const envelope = await this.read(key)
      // memcached has no GETDEL: the caller whose DELETE removes the item is the one that takes its
      // value; another caller that read it meanwhile gets nothing (a login state, a DELETE page
      // token are used once; upstream hands the value to every concurrent reader).
      const deleted = await this.client.delete(this.keyOf(key))
      return deleted ? (envelope?.value as T | undefined) : undefined
    })
  }

  /** As upstream: memcached cannot change the expiry inside the value, so the value is written again. */
  expire(key: string, ttlSeconds: number): Promise<void> {
    return this.call('expire', async () => {
      const envelope = await this.read(key)
      if (envelope) await this.write(key, envelope.value, ttlSeconds)
    })
  }

  ttl(key: string): Promise<number> {
    return this.call('ttl', async () => {
      const envelope = await this.read(key)
      if (!envelope || typeof envelope.ttl !== 'number') return -1
      return Math.max(0, envelope.ttl - Date.now() / 1000)
    })
  }

  /** Reaches every server now, each within the call timeout: fails naming those that do not answer. */
  ping(): Promise<void> {
    return this.call('ping', () => this.everyServerAnswers())
  }

  private async everyServerAnswers(): Promise<void> {
    const down = await this.unreachable()
    if (down.length > 0) throw new Error(down.map((d) => d.reason).join('; '))
  }

  /**
   * Asks every server at once, each within the call timeout: the ones that do not answer, with
   * why (`kinto check` tells one server down among several, whose keys go to the others, from all
   * of them down).
   */
  async unreachable(): Promise<Array<{where: string; reason: string}>> {
    const outcomes = await Promise.allSettled(this.servers.map((server) => versionOf(server, this.timeoutMs)))
    return outcomes.flatMap((outcome, i) =>
      outcome.status === 'rejected' ? [{where: this.hosts[i]!, reason: (outcome.reason as Error).message}] : [],
    )
  }

  async close(): Promise<void> {
    this.client.close()
  }
}

type LineVerdict = 'more' | 'done' | {error: string}

function formatHost(server: {host: string; port: number}): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`
}

/** One server's `version`, within timeoutMs: a server that is down or hung fails here. */
function versionOf(server: {host: string; port: number}, timeoutMs: number): Promise<void> {
  return textCommand(server, 'version', timeoutMs, (line) => (line.startsWith('VERSION ') ? 'done' : {error: `${formatHost(server)} answered ${JSON.stringify(line)} to version`}))
}

/** Sends one text-protocol command to one server and reads lines until `onLine` says done. */
function textCommand(server: {host: string; port: number}, command: string, timeoutMs: number, onLine: (line: string) => LineVerdict): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: server.host, port: server.port})
    let buffer = ''
    let settled = false
    const fail = (message: string) => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(new Error(message))
    }
    socket.setTimeout(timeoutMs, () => fail(`${formatHost(server)} did not answer within ${timeoutMs / 1000} s`))
    socket.on('error', (e) => fail(`${formatHost(server)}: ${e.message}`))
    socket.on('close', () => fail(`${formatHost(server)} closed the connection`))
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1')
      let nl: number
      while (!settled && (nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '')
        buffer = buffer.slice(nl + 1)
        const verdict = onLine(line)
        if (verdict === 'done') {
          settled = true
          socket.end()
          resolve()
        } else if (verdict !== 'more') fail(verdict.error)
      }
    })
  })
}

/** Every key one memcached server holds (`lru_crawler metadump all`). */
async function metadumpKeys(server: {host: string; port: number}, timeoutMs: number): Promise<string[]> {
  // BUSY: another crawl (another flush) is running on that server; it ends soon, so wait a little.
  for (let attempt = 1; ; attempt++) {
    const keys: string[] = []
    let busy = false
    await textCommand(server, 'lru_crawler metadump all', timeoutMs, (line) => {
      if (line === 'END') return 'done'
      const m = /^key=(\S+)/.exec(line)
      if (m) keys.push(decodeURIComponent(m[1]!))
      else if (line.startsWith('BUSY') && attempt < 10) {
        busy = true
        return 'done'
      } else if (/^(ERROR|CLIENT_ERROR|SERVER_ERROR|BUSY)/.test(line)) {
        return {error: `${formatHost(server)} cannot list its keys (lru_crawler metadump: ${line}), so the keys under a prefix cannot be flushed alone`}
      }
      return 'more'
    })
    if (!busy) return keys
    await sleep(100 * attempt)
  }
}

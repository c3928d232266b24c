/**
 * Real cache servers for the tests. memcached: a private `memcached` on a free loopback port,
 * stopped by `stopAll()`. Redis: the machine's server on 127.0.0.1:6379 (CI starts it), else a
 * private `redis-server` on a free port; tests keep to a prefix of their own and never FLUSHDB.
 */
import {randomBytes} from 'node:crypto'
import {connect} from 'node:net'
import os from 'node:os'

import {findBinary, freePort, startProcess, waitForPort} from './deploy-servers.js'

export {stopAll} from './deploy-servers.js'

export const memcachedBinary = findBinary('memcached')
export const redisBinary = findBinary('redis-server')

/** A prefix no other test run uses: keys of concurrent runs never meet. */
export function uniquePrefix(name: string): string {
  return `kinto-test-${name}-${process.pid}-${randomBytes(4).toString('hex')}:`
}

export interface CacheServer {
  port: number
  /** SIGKILL, resolved once the process is gone. */
  stop(): Promise<void>
}

function stopper(child: import('node:child_process').ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await gone
  }
}

/** Starts a private memcached (on `port`, else a free one); `args` adds options (e.g. `-I 2m`). */
export async function startMemcached(args: string[] = [], port?: number): Promise<CacheServer & {hosts: string}> {
  if (!memcachedBinary) throw new Error('memcached is not installed')
  port ??= await freePort()
  // memcached refuses to run as root without a user to switch to.
  const user = os.userInfo().uid === 0 ? ['-u', 'nobody'] : []
  const started = startProcess(memcachedBinary, ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', ...user, ...args])
  await waitForPort(port, 10_000, () => `memcached on port ${port}: ${started.output()}`)
  return {hosts: `127.0.0.1:${port}`, port, stop: stopper(started.child)}
}

/** Starts a private redis-server (on `port`, else a free one), no persistence. */
export async function startRedis(args: string[] = [], port?: number): Promise<CacheServer & {url: string}> {
  if (!redisBinary) throw new Error('redis-server is not installed')
  port ??= await freePort()
  const started = startProcess(redisBinary, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', ...args])
  await waitForPort(port, 10_000, () => `redis-server on port ${port}: ${started.output()}`)
  return {url: `redis://127.0.0.1:${port}/0`, port, stop: stopper(started.child)}
}

function answersPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host, port})
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')))
  })
}

let redisUrl: Promise<string | null> | undefined

/**
 * A Redis URL for the tests: the machine's Redis (db 0 unless KINTO_TEST_REDIS_URL names another),
 * else a private redis-server; null when neither exists.
 */
export function testRedisUrl(): Promise<string | null> {
  redisUrl ??= (async () => {
    if (process.env.KINTO_TEST_REDIS_URL) return process.env.KINTO_TEST_REDIS_URL
    if (await answersPing('127.0.0.1', 6379)) return 'redis://127.0.0.1:6379/0'
    if (!redisBinary) return null
    return (await startRedis()).url
  })()
  return redisUrl
}

/** Why Redis tests skip, or ''. */
export async function redisMissing(): Promise<string> {
  return (await testRedisUrl()) ? '' : 'SKIPPED: no Redis on 127.0.0.1:6379 and redis-server is not installed (CI installs redis-server)'
}

export const memcachedMissing = memcachedBinary ? '' : 'SKIPPED: memcached is not installed (CI installs memcached)'

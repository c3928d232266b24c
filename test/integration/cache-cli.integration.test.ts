/**
 * The commands around the shared caches, as subprocesses against real servers: `kinto flush-cache`
 * empties Redis / memcached under cache_prefix only (another deployment's keys stay), `kinto check`
 * pings the cache; a cache that is down is one clear line (exit 1), JSON under --json, and the
 * password of cache_url never shows.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {type AddressInfo, createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {MemcachedCache} from '../../src/lib/cache/memcached.js'
import {RedisCache} from '../../src/lib/cache/redis.js'
import {memcachedMissing, redisMissing, startMemcached, stopAll, testRedisUrl, uniquePrefix} from '../helpers/cache-servers.js'
import {runCli} from '../helpers/cli.js'
import {freePort} from '../helpers/deploy-servers.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-cache-cli-'))
afterAll(async () => {
  await stopAll()
  rmSync(dir, {recursive: true, force: true})
})

let n = 0
function writeIni(settings: Record<string, string>): string {
  const file = path.join(dir, `kinto-${++n}.ini`)
  const lines = Object.entries({
    'kinto.storage_backend': 'kinto.core.storage.memory',
    'kinto.permission_backend': 'kinto.core.permission.memory',
    'kinto.userid_hmac_secret': 'a'.repeat(64),
    ...settings,
  }).map(([k, v]) => `${k} = ${v}`)
  writeFileSync(file, ['[app:main]', 'use = egg:kinto', ...lines, ''].join('\n'), {mode: 0o600})
  return file
}

const cli = (args: string[]) => runCli(args, {env: {KINTO_TEST_DATABASE_URL: undefined}, timeoutMs: 60_000})

const redisSkip = await redisMissing()
const redisUrl = (await testRedisUrl()) ?? ''

describe.skipIf(redisSkip !== '')(`Redis ${redisSkip}`, () => {
  it('flush-cache deletes the keys under cache_prefix and nothing else', async () => {
    const prefix = uniquePrefix('flush')
    const mine = new RedisCache({url: redisUrl, prefix})
    const theirs = new RedisCache({url: redisUrl, prefix: uniquePrefix('other')})
    try {
      await mine.set('a', 1, 600)
      await mine.set('b', {x: 2}, 600)
      await theirs.set('a', 'kept', 600)
      const ini = writeIni({'kinto.cache_backend': 'kinto.core.cache.redis', 'kinto.cache_url': redisUrl, 'kinto.cache_prefix': prefix})
      const r = await cli(['flush-cache', '--ini', ini, '--json'])
      expect(r.code, r.stderr).toBe(0)
      const where = redisUrl.replace(/^redis:\/\//, '')
      expect(JSON.parse(r.stdout)).toEqual({backend: 'kinto.core.cache.redis', flushed: true, database: where, prefix})
      expect(await mine.get('a')).toBeUndefined()
      expect(await mine.get('b')).toBeUndefined()
      expect(await theirs.get('a')).toBe('kept')

      const check = await cli(['check', '--ini', ini, '--json'])
      const report = JSON.parse(check.stdout) as {findings: Array<{id: string; level: string; message: string}>}
      expect(report.findings.find((f) => f.id === 'cache-reachable')).toEqual(expect.objectContaining({level: 'ok', message: `The Redis cache at ${where} answers.`}))
    } finally {
      await theirs.flush()
      await Promise.all([mine.close(), theirs.close()])
    }
  }, 120_000)

  it('a Redis that is down: flush-cache exits 1 with one line, check reports an error; no password anywhere', async () => {
    const port = await freePort()
    const ini = writeIni({'kinto.cache_backend': 'kinto.core.cache.redis', 'kinto.cache_url': `redis://:Sup3rSecret@127.0.0.1:${port}/1`, 'kinto.cache_pool_timeout': '1'})
    const [flush, flushJson, check] = await Promise.all([
      cli(['flush-cache', '--ini', ini]),
      cli(['flush-cache', '--ini', ini, '--json']),
      cli(['check', '--ini', ini, '--json']),
    ])
    expect(flush.code).toBe(1)
    expect(flush.stderr).toMatch(new RegExp(`Could not flush the cache: Cache backend failure \\(Redis 127\\.0\\.0\\.1:${port}/1, flush\\): .*ECONNREFUSED`))
    expect(flush.stderr).not.toMatch(/\n\s+at /)
    expect(flushJson.code).toBe(1)
    expect(JSON.parse(flushJson.stdout)).toMatchObject({error: {code: 'KINTO_CACHE_UNREACHABLE'}})
    expect(check.code).toBe(1)
    const finding = (JSON.parse(check.stdout) as {findings: Array<{id: string; level: string; message: string}>}).findings.find((f) => f.id === 'cache-reachable')
    expect(finding?.level).toBe('error')
    expect(finding?.message).toContain(`Redis 127.0.0.1:${port}/1`)
    for (const r of [flush, flushJson, check]) expect(r.stdout + r.stderr).not.toContain('Sup3rSecret')
  }, 120_000)
})

describe.skipIf(memcachedMissing !== '')(`memcached ${memcachedMissing}`, () => {
  it('flush-cache deletes the keys under cache_prefix on every server; check pings them', async () => {
    const [one, two] = [await startMemcached(), await startMemcached()]
    const hosts = `${one.hosts} ${two.hosts}`
    const prefix = 'deploy-a:'
    const mine = new MemcachedCache({hosts: hosts.split(' '), prefix})
    const theirs = new MemcachedCache({hosts: hosts.split(' '), prefix: 'deploy-b:'})
    try {
      for (let i = 0; i < 10; i++) await mine.set(`k${i}`, i, 600)
      await theirs.set('k0', 'kept', 600)
      const ini = writeIni({'kinto.cache_backend': 'kinto.core.cache.memcached', 'kinto.cache_hosts': hosts, 'kinto.cache_prefix': prefix})
      const r = await cli(['flush-cache', '--ini', ini])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim()).toBe(`Cache has been cleared (${hosts}, keys under "${prefix}").`)
      for (let i = 0; i < 10; i++) expect(await mine.get(`k${i}`)).toBeUndefined()
      expect(await theirs.get('k0')).toBe('kept')

      const check = await cli(['check', '--ini', ini, '--json'])
      const finding = (JSON.parse(check.stdout) as {findings: Array<{id: string; level: string; message: string}>}).findings.find((f) => f.id === 'cache-reachable')
      expect(finding).toEqual(expect.objectContaining({level: 'ok', message: `The memcached cache at ${hosts} answers.`}))

      // One of two down: its keys go to the other (upstream's failover), so no request gets a 503:
      // a warning that names it, not an error.
      await two.stop()
      const half = await cli(['check', '--ini', ini, '--json'])
      const warning = (JSON.parse(half.stdout) as {findings: Array<{id: string; level: string; message: string; fix: string}>}).findings.find((f) => f.id === 'cache-reachable')
      expect(warning?.level, half.stdout).toBe('warning')
      expect(warning?.message).toContain(`One memcached server does not answer: ${two.hosts}`)
      expect(warning?.message).toContain(`its keys go to ${one.hosts};`)
      expect(warning?.fix).toBe(`Start memcached on ${two.hosts}, or remove it from kinto.cache_hosts.`)

      await one.stop()
      const down = await cli(['check', '--ini', ini, '--json'])
      const error = (JSON.parse(down.stdout) as {findings: Array<{id: string; level: string; message: string}>}).findings.find((f) => f.id === 'cache-reachable')
      expect(error?.level).toBe('error')
      expect(error?.message).toContain(one.hosts)
      expect(error?.message).toContain(two.hosts)
      expect(error?.message).toContain('would get 503')
    } finally {
      await Promise.all([mine.close(), theirs.close()])
    }
  }, 120_000)

  it('flush-cache against a server that accepts and never answers fails after one call timeout, not six', async () => {
    const one = await startMemcached()
    const hung = createServer(() => {}) // accepts, reads nothing, answers nothing: a hung memcached
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
    const hungHost = `127.0.0.1:${(hung.address() as AddressInfo).port}`
    try {
      const ini = writeIni({'kinto.cache_backend': 'kinto.core.cache.memcached', 'kinto.cache_hosts': `${one.hosts} ${hungHost}`, 'kinto.cache_prefix': 'deploy-c:', 'kinto.cache_pool_timeout': '2'})
      // Six call timeouts would be 12 s: the CLI is given 9.
      const r = await runCli(['flush-cache', '--ini', ini], {env: {KINTO_TEST_DATABASE_URL: undefined}, timeoutMs: 9_000})
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toContain(`${hungHost} did not answer within 2 s`)
    } finally {
      hung.close()
      await one.stop()
    }
  }, 60_000)
})

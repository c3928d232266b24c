/**
 * kinto.plugins.prometheus with `kinto start --workers 2` on PostgreSQL (KINTO_TEST_DATABASE_URL):
 * while SIGUSR2 replaces the workers one at a time, every scrape of /v1/__metrics__ is answered
 * 200 with the serving workers' metrics. A new worker still loading answers nothing: asking it
 * made scrapes wait 5 s and fail (503, the target down on every deployment).
 */
import {request as httpRequest} from 'node:http'

import {afterAll, describe, expect, test} from 'vitest'

import {realServerUrl, serverSkip} from '../helpers/db.js'
import {opsIni, sleep, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

let ini: OpsIni | undefined
let server: Started | undefined
afterAll(async () => {
  await server?.stop()
  await ini?.cleanup()
})

/** One GET on a fresh connection (cluster hands each connection to a worker). */
function freshGet(url: string): Promise<{status: number; ms: number}> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {agent: false, headers: {connection: 'close'}, timeout: 15_000}, (res) => {
      res.resume()
      res.on('end', () => resolve({status: res.statusCode!, ms: Date.now() - started}))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

describe.skipIf(!realServerUrl)(`Prometheus with --workers 2${serverSkip}`, () => {
  test('scrapes during a rolling restart (SIGUSR2) are all answered', async () => {
    ini = await opsIni('postgresql', {'kinto.includes': 'kinto.plugins.prometheus'})
    server = await spawnStart(['--ini', ini.ini, '--host', '127.0.0.1', '--port', '0', '--workers', '2'])
    const base = server.url.replace(/\/$/, '')
    // Both workers listen once both have answered a request.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      if ((await freshGet(`${base}/__metrics__`)).status === 200) break
      await sleep(200)
    }

    const scrapes: Array<{status: number; ms: number}> = []
    let scraping = true
    const loop = (async () => {
      while (scraping) {
        scrapes.push(await freshGet(`${base}/__metrics__`))
        await sleep(100)
      }
    })()
    await sleep(300)
    process.kill(server.pid, 'SIGUSR2')
    for (const deadline = Date.now() + 60_000; !/every worker was restarted/.test(server.output()) && Date.now() < deadline; ) await sleep(100)
    expect(server.output()).toMatch(/SIGUSR2: every worker was restarted/)
    await sleep(1000)
    scraping = false
    await loop

    const failed = scrapes.filter((s) => s.status !== 200)
    expect(failed, JSON.stringify(scrapes)).toEqual([])
    expect(scrapes.length).toBeGreaterThan(5)
    // None waited for a worker that was still starting.
    expect(Math.max(...scrapes.map((s) => s.ms)), JSON.stringify(scrapes)).toBeLessThan(3000)
  }, 120_000)
})

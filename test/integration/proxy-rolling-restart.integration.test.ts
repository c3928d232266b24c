/**
 * A rolling restart and a reload behind the real nginx, as production runs them: `kinto start
 * --workers 2` on PostgreSQL, nginx configured by `kinto deploy nginx` (its upstream keeps
 * connections alive), clients on kept-alive and fresh connections sending list GETs, POSTs (not
 * idempotent: nginx never retries one it has sent), PUTs with If-Match and batches. During the
 * load: SIGUSR2 (`kinto reload --restart`: every worker replaced one at a time), then SIGHUP
 * (`kinto reload`). What an operator expects of "rolling restart, no downtime": no 5xx (nginx's
 * 502 would reach clients as the snippet's 503), no connection error, and every acknowledged write
 * readable afterwards.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, describe, expect, test} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {realServerUrl, serverSkip} from '../helpers/db.js'
import {freePort, missing, readLog, startNginx, stopAll} from '../helpers/deploy-servers.js'
import {opsIni, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'
import {startProxyLoad, unavailability} from '../helpers/proxy-load.js'

const nginxSkip = missing('nginx')
const skip = nginxSkip ? ` (${nginxSkip})` : serverSkip

const LOAD_MS = 10_000

let ini: OpsIni | undefined
let server: Started | undefined
afterAll(async () => {
  await server?.stop()
  await stopAll()
  await ini?.cleanup()
})

describe.skipIf(nginxSkip !== '' || !realServerUrl)(`kinto start --workers 2 behind nginx${skip}`, () => {
  test('a rolling restart and a reload under load: no 5xx, no connection error, every acknowledged write readable', async () => {
    ini = await opsIni('postgresql')
    const port = await freePort()
    server = await spawnStart(['--ini', ini.ini, '--port', String(port), '--workers', '2'])
    const kinto = server
    // The proxy points at the running runtime (its port from the run registry), as an operator gets it.
    const proxyPort = await freePort()
    const conf = await runCli(['deploy', 'nginx', '--ini', ini.ini, '--listen', `127.0.0.1:${proxyPort}`, '--server-name', 'localhost'])
    expect(conf.code, conf.stderr).toBe(0)
    expect(conf.stdout).toContain(`server 127.0.0.1:${port};`)
    expect(conf.stdout).toMatch(/keepalive \d+;/)
    const nginx = await startNginx(conf.stdout, proxyPort)

    const load = await startProxyLoad({base: `http://127.0.0.1:${proxyPort}`, bucket: 'proxy', collection: 'load', keptAlive: 3, fresh: 3})
    const restarted = () => (kinto.output().match(/SIGUSR2: every worker was restarted/g) ?? []).length
    await sleep(1500)
    kinto.child.kill('SIGUSR2')
    const deadline = Date.now() + 30_000
    while (restarted() === 0 && Date.now() < deadline) await sleep(50)
    expect(restarted(), kinto.output()).toBe(1)
    await sleep(1000)
    kinto.child.kill('SIGHUP')
    while (load.now() < LOAD_MS) await sleep(100)
    await load.stop()

    const context = () => `${JSON.stringify(load.tally)}\n${JSON.stringify(load.failures.slice(0, 10))}\n${readLog(nginx.setup.errorLog)}`
    expect(kinto.output()).toMatch(/SIGHUP: reloading 2 workers/)
    expect(unavailability(load.tally), context()).toEqual({})
    expect(load.failures, context()).toEqual([])
    // Every answer a success (a batch's sub-responses included): no 409 or 412 from a write replayed.
    for (const op of ['get', 'post', 'put-if-match', 'batch'] as const) expect(Object.keys(load.tally[op]), context()).toEqual([op === 'post' ? '201' : '200'])
    expect(load.acknowledged()).toBeGreaterThan(100)
    const {checked, wrong} = await load.verify()
    expect(wrong).toEqual([])
    expect(checked).toBeGreaterThan(50)
  }, 90_000)
})

/**
 * kinto.plugins.prometheus against the real Prometheus (Debian's package): `kinto start` serves
 * /v1/__metrics__ (with 2 workers on PostgreSQL when KINTO_TEST_DATABASE_URL is set: one scrape
 * must show both workers' requests; one process on memory otherwise), `promtool check metrics`
 * finds no error in it (lint warnings about upstream's names are printed, not failed), and a
 * prometheus started here with a scrape config for it records the target as up and answers a
 * query for the request counter with the number of requests made.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, test} from 'vitest'

import {realServerUrl} from '../helpers/db.js'
import {findBinary, freePort} from '../helpers/deploy-servers.js'
import {opsIni, sleep, spawnStart, type OpsIni, type Started} from '../helpers/ops-servers.js'

const prometheusBin = findBinary('prometheus')
const promtoolBin = findBinary('promtool')
const skipReason = prometheusBin && promtoolBin ? '' : 'SKIPPED: prometheus/promtool not installed (CI installs the Debian prometheus package)'

const workers = realServerUrl ? 2 : 1
const HELLO_REQUESTS = 12

let ini: OpsIni | undefined
let server: Started | undefined
let prometheus: ChildProcess | undefined
let promDir: string | undefined
afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r))
    prometheus.kill('SIGTERM')
    const kill = setTimeout(() => prometheus!.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(kill)
  }
  await server?.stop()
  await ini?.cleanup()
  if (promDir) rmSync(promDir, {recursive: true, force: true})
})

/** One GET on a fresh connection (with workers, cluster hands each connection to one of them). */
function freshGet(url: string): Promise<{status: number; body: string; type?: string}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {agent: false, headers: {connection: 'close'}, timeout: 10_000}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({status: res.statusCode!, body, type: res.headers['content-type']}))
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** The value of one sample line of the text format (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    if (wanted) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

describe.skipIf(Boolean(skipReason))(`Prometheus scrapes /__metrics__ (${workers} worker${workers > 1 ? 's' : ''}) ${skipReason}`, () => {
  test('promtool finds no error; prometheus sees the target up and counts the requests made', async () => {
    ini = await opsIni(realServerUrl ? 'postgresql' : 'memory', {
      'kinto.includes': 'kinto.plugins.prometheus',
      'kinto.project_name': 'kintoprod',
    })
    server = await spawnStart(['--ini', ini.ini, '--host', '127.0.0.1', '--port', '0', ...(workers > 1 ? ['--workers', String(workers)] : [])])
    const base = server.url.replace(/\/$/, '')
    const {hostname: host, port} = new URL(base)

    const hello = await freshGet(`${base}/`)
    expect(hello.status).toBe(200)
    expect(JSON.parse(hello.body).capabilities.prometheus).toMatchObject({prefix: 'kintoprod_', disabled_metrics: []})
    for (let i = 1; i < HELLO_REQUESTS; i++) expect((await freshGet(`${base}/`)).status).toBe(200)
    expect((await freshGet(`${base}/buckets/nope`)).status).toBe(401)

    // A scrape is 503 until every worker answers the primary's collection (a worker still
    // connecting to PostgreSQL on a loaded machine): wait for the whole server, bounded.
    let scraped = await freshGet(`${base}/__metrics__`)
    for (const deadline = Date.now() + 30_000; scraped.status === 503 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      scraped = await freshGet(`${base}/__metrics__`)
    }
    expect(scraped.status).toBe(200)
    expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = scraped.body
    // Upstream's names, prefix and labels; the counts of every worker summed.
    const helloLabels = {method: 'get', endpoint: 'hello', status: '200'}
    expect(sample(text, 'kintoprod_request_summary_total', helloLabels)).toBe(HELLO_REQUESTS)
    expect(sample(text, 'kintoprod_request_summary_total', {endpoint: 'bucket-object', status: '401'})).toBe(1)
    expect(sample(text, 'kintoprod_request_duration_seconds_count', {method: 'get', endpoint: 'hello'})).toBe(HELLO_REQUESTS)
    expect(text).toMatch(/^# TYPE kintoprod_request_duration_seconds histogram$/m)
    expect(text).toMatch(/^kintoprod_request_duration_seconds_bucket\{le="0\.01",method="get",endpoint="hello"[^}]*\} \d+$/m)
    expect(text).toMatch(/^# TYPE kintoprod_request_size summary$/m)
    expect(text).toMatch(/^# TYPE kintoprod_request_summary_created gauge$/m)
    expect(text).toMatch(/^kintoprod_view_hello_GET_count \d+$/m)
    if (workers > 1) expect(server.output()).toMatch(new RegExp(`with ${workers} workers`))

    // promtool: errors fail; lint warnings (upstream's own names) are listed.
    const lint = spawnSync(promtoolBin!, ['check', 'metrics'], {input: text, encoding: 'utf8', timeout: 30_000})
    const report = `${lint.stdout}${lint.stderr}`
    console.log(`promtool check metrics (exit ${lint.status}):\n${report || '(nothing)'}`)
    expect(report).not.toMatch(/error while linting|parse error|invalid/i)
    for (const line of report.split('\n').filter(Boolean)) expect(line).toMatch(/^kintoprod_\w+ /)

    // The real Prometheus scrapes it.
    promDir = mkdtempSync(path.join(os.tmpdir(), 'kinto-prometheus-'))
    const webPort = await freePort()
    const config = path.join(promDir, 'prometheus.yml')
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 2s',
        '  scrape_timeout: 2s',
        'scrape_configs:',
        '  - job_name: kinto',
        '    metrics_path: /v1/__metrics__',
        '    static_configs:',
        `      - targets: ['${host}:${port}']`,
        '',
      ].join('\n'),
    )
    let promOutput = ''
    prometheus = spawn(
      prometheusBin!,
      [`--config.file=${config}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`],
      {stdio: ['ignore', 'pipe', 'pipe']},
    )
    prometheus.stdout!.on('data', (d) => (promOutput += d))
    prometheus.stderr!.on('data', (d) => (promOutput += d))
    const api = `http://127.0.0.1:${webPort}/api/v1`
    const query = `sum(kintoprod_request_summary_total{endpoint="hello",method="get",status="200"})`
    const deadline = Date.now() + 60_000
    let health = ''
    let lastError = ''
    let value: number | undefined
    while (Date.now() < deadline) {
      try {
        const targets = (await (await fetch(`${api}/targets`)).json()) as {data: {activeTargets: {health: string; lastError: string}[]}}
        health = targets.data.activeTargets[0]?.health ?? ''
        lastError = targets.data.activeTargets[0]?.lastError ?? ''
        if (health === 'up') {
          const answer = (await (await fetch(`${api}/query?query=${encodeURIComponent(query)}`)).json()) as {
            status: string
            data: {result: {value: [number, string]}[]}
          }
          expect(answer.status).toBe('success')
          if (answer.data.result.length > 0) {
            value = Number(answer.data.result[0].value[1])
            break
          }
        }
      } catch {
        // not listening yet
      }
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${promOutput}`)
      await sleep(250)
    }
    expect(health, `${lastError}\n${promOutput}`).toBe('up')
    // Scrapes do not count as hello requests: the counter is exactly what the test did.
    expect(value).toBe(HELLO_REQUESTS)
    // Bucket bounds as upstream writes them, which Prometheus 2 stores as scraped: a query
    // written for upstream (`le="1.0"`) finds the series.
    const bucketQuery = `sum(kintoprod_request_duration_seconds_bucket{endpoint="hello",method="get",le="1.0"})`
    const bucket = (await (await fetch(`${api}/query?query=${encodeURIComponent(bucketQuery)}`)).json()) as {data: {result: {value: [number, string]}[]}}
    expect(bucket.data.result.map((r) => Number(r.value[1]))).toEqual([HELLO_REQUESTS])
  }, 240_000)
})

#!/usr/bin/env node
// `npm run bench`: the runtime and the CLI measured against their floors, in one run on one
// machine. Writes bench/RESULTS.md (full run: the figures, and the table of issue 20's targets,
// each met or missed with its figure) and prints the same tables. The hand-written analysis is
// bench/ANALYSIS.md, which no run touches.
//
//   npm run bench                         full run (~15 min on 2 cores): PostgreSQL and PGlite,
//                                         10k + 1M records, 10 s per scenario, CLI figures, 60 s mixed load test
//   BENCH_QUICK=1 npm run bench           smoke run (~4 min): 2 s per scenario, one round, 12k-record big collection
//   npm run bench -- --scenarios get-record,page-1000 --engines postgresql
//   npm run bench -- --duration 20 --big 200000 --no-build --out /tmp/results.md
//
// Options: --quick, --scenarios ids (hello get-record workers-2 list-10 list-100 list-sort
// list-filter page-1 page-1000 since-100 clients-16 post post-spread put-if-match batch-25, `cli`
// and `loadtest`; a scenario's floors run with it, and the runtime variants it is compared with
// — workers-2 with get-record, post-spread and batch-25 with post — run in its rounds when
// selected too), --loadtest-duration s (60; quick 8),
// --engines postgresql,pglite, --duration s, --warmup s, --connections n, --main n, --big n,
// --runs n (CLI repetitions), --rounds n (alternations of a scenario and its twins), --no-build,
// --head (measure the committed HEAD, built apart), --out file.
// PostgreSQL: KINTO_BENCH_DATABASE_URL, else KINTO_TEST_DATABASE_URL, else
// postgresql://postgres@127.0.0.1:5432/postgres when it answers (an admin URL: the bench creates
// and drops its own databases). Only loopback traffic; every load is bounded in time.
// A run with a filter (--quick, --scenarios, --engines, sizes) writes bench/RESULTS.partial.md
// unless --out says otherwise, so bench/RESULTS.md always holds a full run.
import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {cliFigures, noManifestCopy} from './lib/cli-figures.js'
import {createBenchDatabase, loadDataset, migrate, writeBenchIni} from './lib/dataset.js'
import {runLoads} from './lib/load.js'
import {barePglite} from './lib/pglite-bare.js'
import {renderResults} from './lib/report.js'
import {AUTH, floorScenarios, scenarios} from './lib/scenarios.js'
import {startFloor, startKinto, waitReady} from './lib/servers.js'
import {cpuMeter, kintoBin, machine, median, newestMtime, note, randomSecret, root, rssMb, rssSampler, run, sleep, targetDist, targetRoot} from './lib/util.js'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const quick = flag('--quick') || /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '')
const HTTP_IDS = ['hello', 'get-record', 'workers-2', 'list-10', 'list-100', 'list-sort', 'list-filter', 'page-1', 'page-1000', 'since-100', 'clients-16', 'post', 'post-spread', 'put-if-match', 'batch-25']
const ALL_IDS = [...HTTP_IDS, 'cli', 'loadtest']
const selected = opt('--scenarios', ALL_IDS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)
for (const id of selected) {
  if (!ALL_IDS.includes(id)) {
    console.error(`Unknown scenario '${id}'. Known: ${ALL_IDS.join(', ')}.`)
    process.exit(2)
  }
}
const engines = opt('--engines', 'postgresql,pglite').split(',').map((s) => s.trim())
for (const e of engines) {
  if (!['postgresql', 'pglite'].includes(e)) {
    console.error(`Unknown engine '${e}'. Known: postgresql, pglite.`)
    process.exit(2)
  }
}
const cfg = {
  quick,
  durationS: Number(opt('--duration', quick ? '2' : '10')),
  warmupS: Number(opt('--warmup', quick ? '0.5' : '2')),
  connections: Number(opt('--connections', '10')),
  mainRecords: Number(opt('--main', '10000')),
  bigRecords: Number(opt('--big', quick ? '12000' : '1000000')),
  cliRuns: Number(opt('--runs', quick ? '3' : '5')),
  rounds: Number(opt('--rounds', quick ? '1' : '3')),
}
if (cfg.bigRecords < 10_010 && selected.includes('page-1000')) {
  console.error('--big must be at least 10010 for page 1000 of `_limit=10`.')
  process.exit(2)
}
const filtered = quick || argv.some((a) => ['--scenarios', '--engines', '--main', '--big', '--duration'].includes(a))
const out = path.resolve(opt('--out', path.join(root, 'bench', filtered ? 'RESULTS.partial.md' : 'RESULTS.md')))

// ---------------------------------------------------------------------------------------------
// Build: the bench measures the built CLI (bin/run.js), as operators run it.

/**
 * `npm run build`'s steps after tsc: the empty PGlite cluster new embedded databases are unpacked
 * from, and the oclif manifest bin/run.js starts from.
 */
async function pgliteTemplate(dir) {
  const template = path.join(dir, 'scripts', 'pglite-template.mjs')
  if (existsSync(template)) {
    const r = await run(process.execPath, [template], {cwd: dir, timeoutMs: 300_000})
    if (r.code !== 0) note(`no PGlite template, new embedded databases run initdb: ${r.stderr.trim().split('\n').pop()}`)
  }
  const manifest = path.join(dir, 'scripts', 'manifest.mjs')
  if (existsSync(manifest)) {
    const r = await run(process.execPath, [manifest], {cwd: dir, timeoutMs: 120_000})
    if (r.code !== 0) note(`no oclif manifest, the CLI imports every command at start: ${r.stderr.trim().split('\n').pop()}`)
  }
}

async function ensureBuild() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (flag('--head')) {
    // The committed HEAD, exported and built apart from the work tree (whose uncommitted work in
    // progress may not even build).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-head-'))
    execFileSync('sh', ['-c', `git archive HEAD bin scripts src sql templates package.json tsconfig.json | tar -x -C "${dir}"`], {cwd: root})
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'))
    note('building the committed HEAD apart (tsc)…')
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], {cwd: dir, timeoutMs: 600_000})
    if (!existsSync(path.join(dir, 'dist', 'commands', 'start.js'))) throw new Error(`the build of HEAD produced no dist/: ${r.stdout}${r.stderr}`)
    await pgliteTemplate(dir)
    process.env.KINTO_BENCH_TARGET = dir
    process.on('exit', () => rmSync(dir, {recursive: true, force: true}))
    return {built: true, head: true, note: `committed HEAD exported and built apart from the work tree${r.code === 0 ? '' : ` (tsc exit ${r.code})`}`}
  }
  if (flag('--no-build')) return {built: false, note: 'not rebuilt (--no-build)'}
  const distStart = path.join(root, 'dist', 'commands', 'start.js')
  const fresh = existsSync(distStart) && newestMtime(path.join(root, 'src')) <= newestMtime(path.join(root, 'dist'), '.js')
  if (fresh) {
    await pgliteTemplate(root)
    return {built: false, note: 'dist/ up to date'}
  }
  note('building dist/ (tsc -p tsconfig.json)…')
  const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], {timeoutMs: 600_000})
  if (!existsSync(distStart)) throw new Error(`the build produced no dist/: ${r.stdout}${r.stderr}`)
  await pgliteTemplate(root)
  return {built: true, note: r.code === 0 ? 'rebuilt' : `rebuilt with type errors (tsc exit ${r.code}; others may be mid-work)`}
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

async function adminUrl() {
  const explicit = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL
  const url = explicit || 'postgresql://postgres@127.0.0.1:5432/postgres'
  const pg = (await import('pg')).default
  const c = new pg.Client({connectionString: url, connectionTimeoutMillis: 3000})
  try {
    await c.connect()
    const v = await c.query('SHOW server_version')
    const settings = await c.query(`SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'max_connections', 'synchronous_commit', 'fsync')`)
    return {url, version: v.rows[0].server_version, settings: Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]))}
  } catch (err) {
    if (explicit) throw new Error(`Cannot reach PostgreSQL at the bench URL: ${err.message}`, {cause: err})
    return null
  } finally {
    await c.end().catch(() => {})
  }
}

function pgliteVersion() {
  try {
    return JSON.parse(readFileSync(path.join(root, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}

// ---------------------------------------------------------------------------------------------
// One scenario against one server

async function measure(server, scenario, {durationS = cfg.durationS, warmup = true, requests} = {}) {
  requests ??= await scenario.prepare(server.origin)
  const loads = Array.isArray(requests) ? [{connections: scenario.connections, requests}] : requests.loads
  if (warmup && cfg.warmupS > 0) await runLoads({origin: server.origin, durationS: cfg.warmupS, loads})
  const sampler = rssSampler(server.pids)
  const meter = cpuMeter(server.pids())
  const result = await runLoads({origin: server.origin, durationS, loads})
  const cores = meter.stop()
  const rssPeak = sampler.stop()
  const line =
    `${scenario.id.padEnd(17)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${String(result.p50).padStart(4)} ms  p99 ${String(result.p99).padStart(4)} ms  RSS ${rssPeak.toFixed(0)} MB` +
    `  cores ${cores.server.toFixed(2)} server / ${cores.bench.toFixed(2)} bench / ${cores.machine.toFixed(2)} all` +
    (result.non2xx || result.errors ? `  non-2xx ${result.non2xx} errors ${result.errors} ${JSON.stringify(result.codes)}` : '')
  note(`  ${line}`)
  return {id: scenario.id, title: scenario.title, server: scenario.server ?? 'kinto', connections: scenario.connections, ...result, rssPeak, cores}
}

/** Sums rounds of one scenario into one row: mean rates, median latencies, every round's 2xx rate kept. */
function mergeRounds(rounds) {
  const sum = (k) => rounds.reduce((a, r) => a + r[k], 0)
  const mean = (f) => rounds.reduce((a, r) => a + f(r), 0) / rounds.length
  const codes = {}
  for (const r of rounds) for (const [c, n] of Object.entries(r.codes)) codes[c] = (codes[c] ?? 0) + n
  return {
    ...rounds[0],
    rps: mean((r) => r.rps),
    okRps: mean((r) => r.okRps),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    total: sum('total'),
    errors: sum('errors'),
    timeouts: sum('timeouts'),
    non2xx: sum('non2xx'),
    codes,
    rssPeak: Math.max(...rounds.map((r) => r.rssPeak)),
    cores: {server: mean((r) => r.cores.server), bench: mean((r) => r.cores.bench), machine: mean((r) => r.cores.machine)},
    rounds: rounds.map((r) => r.rps),
    okRounds: rounds.map((r) => r.okRps),
  }
}

/**
 * A scenario and its twins (floors, runtime variants), alternated in `rounds` rounds of half the
 * duration, so that noise from other processes hits all alike; each merged row keeps the 2xx rate
 * of every round and the group it was measured in, and the report takes each ratio as the median
 * of the per-round ratios (a floor's POST counts only its successes).
 */
async function measureGroup(servers, lead, twins, rounds) {
  const all = [lead, ...twins]
  const durationS = Math.max(1, rounds > 1 ? cfg.durationS / 2 : cfg.durationS)
  const serverOf = (s) => servers[s.server ?? 'kinto']
  const requests = []
  for (const s of all) requests.push(await s.prepare(serverOf(s).origin))
  const per = all.map(() => [])
  for (let i = 0; i < rounds; i++) {
    for (const [k, s] of all.entries()) {
      per[k].push(await measure(serverOf(s), s, {durationS, warmup: i === 0, requests: requests[k]}))
      // The load generator stops at the deadline, not the server: writes still running (a batch
      // takes up to a second on a busy machine) would take CPU and list locks from the next load.
      if (s.write) await sleep(SETTLE_MS)
    }
  }
  return per.map((r) => ({...mergeRounds(r), group: lead.id}))
}

const SETTLE_MS = 1000

/** The shared_buffers a pglite: URL gives its engine (the runtime's default when it gives none). */
async function pgliteSharedBuffers(url) {
  const given = /[?&]shared_buffers=([^&]+)/.exec(url)
  if (given) return decodeURIComponent(given[1])
  try {
    return (await import(path.join(targetDist(), 'lib', 'db', 'pglite-driver.js'))).DEFAULT_SHARED_BUFFERS ?? '16MB'
  } catch {
    return '16MB'
  }
}

const runsOn = (s, engine) => !s.engines || s.engines.includes(engine)

async function benchEngine(engine, pg) {
  const result = {engine, scenarios: [], floor: []}
  const secret = randomSecret()
  const db = await createBenchDatabase(engine, pg?.url)
  const httpIds = selected.filter((id) => HTTP_IDS.includes(id))
  try {
    const ini = writeBenchIni(db, secret)
    result.migrateMs = await migrate(ini)
    const needBig = httpIds.some((id) => id === 'page-1' || id === 'page-1000')
    result.dataset = await loadDataset(db, {secret, mainRecords: cfg.mainRecords, bigRecords: needBig ? cfg.bigRecords : 0})

    const list = scenarios({mainRecords: cfg.mainRecords, connections: cfg.connections}).filter((s) => httpIds.includes(s.id) && runsOn(s, engine))
    const floors = floorScenarios({mainRecords: cfg.mainRecords, connections: cfg.connections})
    // A scenario's twins on this engine: its floors always, its runtime variants when selected.
    const twinsOf = (s) =>
      (s.twins ?? []).map((id) => floors.find((f) => f.id === id) ?? list.find((x) => x.id === id)).filter((x) => x && runsOn(x, engine))
    const asTwin = new Set(list.flatMap((s) => twinsOf(s).map((x) => x.id)))
    const leads = list.filter((s) => !asTwin.has(s.id))
    const measured = leads.flatMap((s) => [s, ...twinsOf(s)])
    const needs = (server) => measured.some((s) => s.server === server)

    const folder = engine === 'pglite' ? db.url.slice('pglite:'.length).replace(/\?.*$/, '') : null
    let floorUrl = db.url
    if (engine === 'pglite') {
      // Bare PGlite on the same folder and shared_buffers, before any server opens it: the median
      // of 3 processes (one process's idle RSS varies by ~20 MB with when its collector ran).
      const sharedBuffers = await pgliteSharedBuffers(db.url)
      const bare = []
      for (let i = 0; i < 3; i++) bare.push(await barePglite('idle', folder, sharedBuffers))
      result.bare = {...bare[0], openMs: median(bare.map((b) => b.openMs)), rssIdle: median(bare.map((b) => b.rssIdle)), rssIdles: bare.map((b) => b.rssIdle)}
      note(`pglite: bare PGlite (shared_buffers ${result.bare.shown}) idles at ${result.bare.rssIdles.map((x) => x.toFixed(0)).join(', ')} MB`)
      if (needs('floor')) {
        // PGlite allows one process per folder: the floor serves a copy, beside the runtime.
        const started = Date.now()
        cpSync(folder, `${folder}-floor`, {recursive: true})
        floorUrl = `pglite:${folder}-floor`
        note(`pglite: the floor's copy of the folder made in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      }
    }

    const servers = {kinto: await startKinto(ini)}
    try {
      const server = servers.kinto
      result.startMs = server.startMs
      await waitReady(server.origin + '/v1/')
      for (let i = 0; i < 20; i++) await fetch(server.origin + '/v1/buckets/bench/collections/c000/records?_limit=1', {headers: {authorization: AUTH}}).then((r) => r.arrayBuffer())
      await sleep(1000)
      result.idleRss = rssMb(server.pid)
      note(`${engine}: kinto start served in ${server.startMs} ms; idle RSS ${result.idleRss.toFixed(0)} MB`)
      // The floor and the 2-worker server run beside the runtime; each twin is measured right
      // after its lead, round after round (less drift between the two figures of a ratio).
      if (needs('floor')) {
        servers.floor = await startFloor(floorUrl, secret, db.dir)
        await waitReady(servers.floor.origin + '/v1/buckets/bench/collections/c000/records?_limit=1', {authorization: AUTH})
      }
      if (needs('workers2')) {
        servers.workers2 = await startKinto(ini, {workers: 2})
        await waitReady(servers.workers2.origin + '/v1/')
        await sleep(1000)
        result.workers2 = {startMs: servers.workers2.startMs, processes: servers.workers2.pids().length}
      }
      for (const s of leads) {
        const twins = twinsOf(s)
        const rows = twins.length ? await measureGroup(servers, s, twins, cfg.rounds) : [await measure(servers[s.server ?? 'kinto'], s)]
        for (const row of rows) (row.server === 'floor' ? result.floor : result.scenarios).push(row)
      }
      result.rssAfter = rssMb(server.pid)
    } finally {
      for (const s of Object.values(servers)) await s.stop()
    }
  } finally {
    await db.drop()
  }
  return result
}

// ---------------------------------------------------------------------------------------------

const started = Date.now()
const build = await ensureBuild()
const pg = await adminUrl()
if (!pg && engines.includes('postgresql')) note('PostgreSQL not reachable: its scenarios are skipped (set KINTO_BENCH_DATABASE_URL).')
const report = {
  date: new Date().toISOString(),
  machine: machine(),
  loadavg: os.loadavg(),
  cfg,
  selected,
  build,
  commit: (() => {
    try {
      const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {cwd: root, encoding: 'utf8'}).trim()
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {cwd: root, encoding: 'utf8'}).trim() !== ''
      // A runtime taken from elsewhere (KINTO_BENCH_TARGET set by hand) is not this checkout's code.
      if (!build.head && targetRoot() !== root) return `the build in KINTO_BENCH_TARGET (floors and harness: ${head})`
      return dirty && !build.head ? `${head} (+ uncommitted changes in src/)` : head
    } catch {
      return '?'
    }
  })(),
  postgres: pg ? {version: pg.version, settings: pg.settings} : null,
  pglite: pgliteVersion(),
  engines: [],
}

// The CLI figures first: start times measure the code, not what the load scenarios leave behind
// (PostgreSQL's checkpoint and autovacuum after a million-record load, a database being dropped).
if (selected.includes('cli')) {
  note(`CLI figures (median of ${cfg.cliRuns} runs)…`)
  const copy = await noManifestCopy()
  try {
    const bins = {built: kintoBin(), ...(copy ? {noManifest: copy.bin} : {})}
    const fig = await cliFigures({bins, runs: cfg.cliRuns, adminUrl: pg?.url, full: !quick})
    report.cli = fig.built
    report.cliNoManifest = fig.noManifest
  } finally {
    copy?.cleanup()
  }
}

if (selected.some((id) => HTTP_IDS.includes(id))) {
  for (const engine of engines) {
    if (engine === 'postgresql' && !pg) continue
    note(`${engine}: database, schema (kinto migrate) and dataset…`)
    report.engines.push(await benchEngine(engine, pg))
  }
}

if (selected.includes('loadtest')) {
  // The mixed load test (bench/loadtest.js) as its own process, on the engines of this run.
  const durationS = Number(opt('--loadtest-duration', quick ? '8' : '60'))
  const list = engines.filter((e) => e !== 'postgresql' || pg)
  note(`mixed load test, ${durationS} s per engine (${list.join(', ')})…`)
  const r = await run(process.execPath, [path.join(root, 'bench', 'loadtest.js'), '--json', '--duration', String(durationS), '--engines', list.join(',')], {
    timeoutMs: (durationS + 240) * 1000 * list.length,
    env: pg ? {KINTO_BENCH_DATABASE_URL: pg.url} : {},
  })
  try {
    report.loadtest = {...JSON.parse(r.stdout), exitCode: r.code}
  } catch {
    report.loadtest = {ok: false, exitCode: r.code, error: r.stderr.trim().split('\n').slice(-5).join(' ')}
  }
}
report.elapsedS = (Date.now() - started) / 1000

const markdown = renderResults(report)
writeFileSync(out, markdown)
console.log(markdown)
note(`done in ${report.elapsedS.toFixed(0)} s; wrote ${path.relative(process.cwd(), out)}`)
if (report.loadtest && !report.loadtest.ok) {
  note('the mixed load test found violations (see the report)')
  process.exitCode = 1
}

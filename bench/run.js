#!/usr/bin/env node
// `npm run bench`: the runtime and the CLI measured against their floors, in one run on one
// machine. Writes bench/RESULTS.md (full run) and prints the same tables.
//
//   npm run bench                         full run (~10-12 min on 2 cores): PostgreSQL and PGlite,
//                                         10k + 1M records, 10 s per scenario, CLI figures
//   BENCH_QUICK=1 npm run bench           smoke run (~2 min): 3 s per scenario, 12k-record big collection
//   npm run bench -- --scenarios get-record,page-1000 --engines postgresql
//   npm run bench -- --duration 20 --big 200000 --no-build --out /tmp/results.md
//
// Options: --quick, --scenarios ids (hello get-record list-10 page-1 page-1000 since-100
// clients-16 post put-if-match batch-25, `cli` and `loadtest`; the floors run with get-record,
// list-10 and post), --loadtest-duration s (60; quick 8),
// --engines postgresql,pglite, --duration s, --warmup s, --connections n, --main n, --big n,
// --runs n (CLI repetitions), --rounds n (runtime/floor alternations on PostgreSQL), --no-build,
// --out file.
// PostgreSQL: KINTO_BENCH_DATABASE_URL, else KINTO_TEST_DATABASE_URL, else
// postgresql://postgres@127.0.0.1:5432/postgres when it answers (an admin URL: the bench creates
// and drops its own databases). Only loopback traffic; every load is bounded in time.
// A run with a filter (--quick, --scenarios, --engines, sizes) writes bench/RESULTS.partial.md
// unless --out says otherwise, so bench/RESULTS.md always holds a full run.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {cliFigures, noManifestCopy} from './lib/cli-figures.js'
import {createBenchDatabase, loadDataset, migrate, writeBenchIni} from './lib/dataset.js'
import {runLoad} from './lib/load.js'
import {renderResults} from './lib/report.js'
import {AUTH, floorScenarios, scenarios} from './lib/scenarios.js'
import {startFloor, startKinto, waitReady} from './lib/servers.js'
import {kintoBin, machine, median, newestMtime, note, randomSecret, root, rssMb, rssSampler, run, sleep, targetRoot} from './lib/util.js'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const quick = flag('--quick') || /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '')
const HTTP_IDS = ['hello', 'get-record', 'list-10', 'page-1', 'page-1000', 'since-100', 'clients-16', 'post', 'put-if-match', 'batch-25']
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
  if (warmup && cfg.warmupS > 0) await runLoad({origin: server.origin, connections: scenario.connections, durationS: cfg.warmupS, requests})
  const sampler = rssSampler(server.pid)
  const result = await runLoad({origin: server.origin, connections: scenario.connections, durationS, requests})
  const rssPeak = sampler.stop()
  const line = `${scenario.id.padEnd(17)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${String(result.p50).padStart(4)} ms  p99 ${String(result.p99).padStart(4)} ms  RSS ${rssPeak.toFixed(0)} MB` +
    (result.non2xx || result.errors ? `  non-2xx ${result.non2xx} errors ${result.errors} ${JSON.stringify(result.codes)}` : '')
  note(`  ${line}`)
  return {id: scenario.id, title: scenario.title, connections: scenario.connections, ...result, rssPeak}
}

/** Sums rounds of one scenario into one row: total requests over total time, median latencies. */
function mergeRounds(rounds) {
  const sum = (k) => rounds.reduce((a, r) => a + r[k], 0)
  const codes = {}
  for (const r of rounds) for (const [c, n] of Object.entries(r.codes)) codes[c] = (codes[c] ?? 0) + n
  return {
    ...rounds[0],
    rps: rounds.reduce((a, r) => a + r.rps, 0) / rounds.length,
    okRps: rounds.reduce((a, r) => a + r.okRps, 0) / rounds.length,
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    total: sum('total'),
    errors: sum('errors'),
    timeouts: sum('timeouts'),
    non2xx: sum('non2xx'),
    codes,
    rssPeak: Math.max(...rounds.map((r) => r.rssPeak)),
    rounds: rounds.map((r) => r.rps),
  }
}

/**
 * A runtime scenario and its floor twins, alternated in `rounds` rounds of half the duration, so
 * that noise from other processes hits all alike; each ratio is the median of the per-round
 * ratios, of 2xx answers per second (a floor's POST counts only its successes).
 */
async function measurePair(server, floor, scenario, floorScenarios, rounds) {
  const durationS = Math.max(1, cfg.rounds > 1 ? cfg.durationS / 2 : cfg.durationS)
  const a = []
  const b = floorScenarios.map(() => [])
  const runtimeRequests = await scenario.prepare(server.origin)
  const floorRequests = []
  for (const f of floorScenarios) floorRequests.push(await f.prepare(floor.origin))
  for (let i = 0; i < rounds; i++) {
    a.push(await measure(server, scenario, {durationS, warmup: i === 0, requests: runtimeRequests}))
    for (const [k, f] of floorScenarios.entries()) b[k].push(await measure(floor, f, {durationS, warmup: i === 0, requests: floorRequests[k]}))
  }
  const ratiosTo = Object.fromEntries(
    floorScenarios.map((f, k) => {
      const ratios = a.map((r, i) => r.okRps / b[k][i].okRps)
      return [f.id, {ratios, ratio: median(ratios)}]
    }),
  )
  const first = ratiosTo[floorScenarios[0].id]
  return {runtime: {...mergeRounds(a), floorRatios: first.ratios, floorRatio: first.ratio, ratiosTo}, floors: b.map(mergeRounds)}
}

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

    const list = scenarios({mainRecords: cfg.mainRecords, connections: cfg.connections}).filter((s) => httpIds.includes(s.id))
    const floors = floorScenarios({mainRecords: cfg.mainRecords, connections: cfg.connections})
    const floorsOf = (s) => [s.floor ?? []].flat().map((id) => floors.find((f) => f.id === id))

    const server = await startKinto(ini)
    let floor
    try {
      result.startMs = server.startMs
      await waitReady(server.origin + '/v1/')
      for (let i = 0; i < 20; i++) await fetch(server.origin + '/v1/buckets/bench/collections/c000/records?_limit=1', {headers: {authorization: AUTH}}).then((r) => r.arrayBuffer())
      await sleep(1000)
      result.idleRss = rssMb(server.pid)
      note(`${engine}: kinto start served in ${server.startMs} ms; idle RSS ${result.idleRss.toFixed(0)} MB`)
      // On PostgreSQL the floor runs beside the runtime and each floor scenario right after its
      // runtime twin (less drift between the two figures of a ratio). PGlite is one process per
      // folder: there the floor runs once the runtime has stopped.
      if (engine === 'postgresql' && list.some((s) => s.floor)) floor = await startFloor(db.url, secret, db.dir)
      for (const s of list) {
        if (floor && s.floor) {
          const pair = await measurePair(server, floor, s, floorsOf(s), cfg.rounds)
          result.scenarios.push(pair.runtime)
          result.floor.push(...pair.floors)
        } else result.scenarios.push(await measure(server, s))
      }
      result.rssAfter = rssMb(server.pid)
    } finally {
      await server.stop()
      await floor?.stop()
    }
    if (engine === 'pglite' && list.some((s) => s.floor)) {
      floor = await startFloor(db.url, secret, db.dir)
      try {
        await waitReady(floor.origin + '/v1/buckets/bench/collections/c000/records?_limit=1', {authorization: AUTH})
        for (const s of list) for (const f of floorsOf(s)) result.floor.push(await measure(floor, f))
      } finally {
        await floor.stop()
      }
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

if (selected.some((id) => HTTP_IDS.includes(id))) {
  for (const engine of engines) {
    if (engine === 'postgresql' && !pg) continue
    note(`${engine}: database, schema (kinto migrate) and dataset…`)
    report.engines.push(await benchEngine(engine, pg))
  }
}

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

// bench/RESULTS.md from one run's figures: the machine, the table of issue 20's targets (each
// met or missed, with its figure), every scenario with its floors, the CLI and the mixed load test.

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–')
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–')
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–')
const sec = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(3)} s` : '–')
const verdict = (ok) => (ok === undefined ? '–' : ok ? 'met' : '**MISSED**')

function engineName(e) {
  return e === 'postgresql' ? 'PostgreSQL' : 'PGlite (embedded)'
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const cores = (s) => (s?.cores ? `${f1(s.cores.server)} server, ${f1(s.cores.bench)} load generator, ${f1(s.cores.machine)} whole machine` : '–')

/**
 * `scale` × x / y in 2xx answers per second: the median of the per-round ratios when x and y
 * were measured in the same alternated rounds, else the ratio of their figures (said so).
 */
function ratioOf(x, y, scale = 1) {
  if (!x || !y) return undefined
  if (x.group && x.group === y.group && x.okRounds?.length === y.okRounds?.length && x.okRounds.length > 1) {
    const rs = x.okRounds.map((v, i) => (scale * v) / y.okRounds[i])
    const value = median(rs)
    return {value, shown: `${f2(value)} (rounds: ${rs.map(f2).join(', ')})`}
  }
  const value = (scale * x.okRps) / y.okRps
  return {value, shown: `${f2(value)}${x.group && x.group === y.group ? ' (one round)' : ' (not alternated)'}`}
}

const errorsOf = (s) => s.non2xx + s.errors + s.timeouts

/**
 * Server CPU per request in µs (its cores ÷ its req/s): what a request costs the server process.
 * A throughput ratio hides it when one side is bound by its core and the other is not.
 */
const cpuUs = (s) => (s?.cores && s.rps > 0 ? (s.cores.server / s.rps) * 1e6 : NaN)

/**
 * Every target of issue 20 (#1-6) with its figure from this run and its verdict. `on` lists the
 * engines the issue sets a target on; elsewhere the same figure is shown as reported.
 */
export function targetRows(r) {
  const rows = []
  const add = (n, what, engine, q, target, ok) => rows.push({n, what, engine, shown: q?.shown ?? '–', target, ok: q === undefined ? undefined : ok})
  const check = (q, pass) => (q && Number.isFinite(q.value) ? pass(q.value) : undefined)
  const atLeast = (min) => (v) => v >= min
  for (const e of r.engines) {
    const by = (id) => e.scenarios.find((s) => s.id === id)
    const floor = (id) => e.floor.find((s) => s.id === id)
    const pgOnly = e.engine === 'postgresql'
    const targetOn = (on, target) => (on ? target : '(reported)')
    const vs = (n, what, runtimeId, floorId, min, on) => {
      const ratio = ratioOf(by(runtimeId), floor(floorId))
      if (!ratio) return
      const q = {...ratio, shown: `${ratio.shown}; server CPU per request ${f0(cpuUs(by(runtimeId)))} vs ${f0(cpuUs(floor(floorId)))} µs`}
      add(n, what, e.engine, q, targetOn(on, `≥ ${f2(min)}`), on ? check(q, atLeast(min)) : undefined)
    }
    vs(1, 'GET one record / its floor (the same request, one statement, the runtime\'s own)', 'get-record', 'floor-get-record', 0.8, true)
    vs(2, 'list `_limit=10` / one `SELECT … LIMIT 11`', 'list-10', 'floor-list-bare', 0.7, pgOnly)
    vs(2, 'list `_limit=100` / one `SELECT … LIMIT 101`', 'list-100', 'floor-list-100', 0.7, pgOnly)
    vs(2, 'list `_sort=n` (data field) / one `SELECT` with the same `ORDER BY`', 'list-sort', 'floor-list-sort', 0.7, pgOnly)
    vs(2, 'list filtered `done=true` / one `SELECT` with the same `WHERE`', 'list-filter', 'floor-list-filter', 0.7, pgOnly)
    vs(2, '`_since` (last 100 changes) / one `SELECT` with the same `WHERE`', 'since-100', 'floor-since', 0.7, pgOnly)
    const listOwn = ratioOf(by('list-10'), floor('floor-list-10'))
    if (listOwn) add(2, 'list `_limit=10` / the runtime\'s own list statement (floor)', e.engine, listOwn, '(reported)', undefined)

    const post = by('post')
    const postFloor = ratioOf(post, floor('floor-post'))
    if (postFloor) {
      const bad = errorsOf(post)
      const q = {value: postFloor.value, shown: `${postFloor.shown}; runtime ${f0(post.okRps)} 201/s, ${bad ? `**${post.non2xx} non-2xx / ${post.errors} errors** ${JSON.stringify(post.codes)}` : '0 non-2xx / 0 errors'}`}
      add(3, 'POST to one collection (8 clients) / one `INSERT`\'s successes, with zero errors', e.engine, q, targetOn(pgOnly, '≥ 0.90, 0 errors'), pgOnly ? check(q, (v) => v >= 0.9 && bad === 0) : undefined)
    }
    const spread = by('post-spread')
    const scaling = ratioOf(spread, post, 1 / 8)
    if (scaling) {
      add(3, 'POSTs over 8 collections (8 clients, one each) / (8 × one collection\'s, 8 clients)', e.engine, {...scaling, shown: `${scaling.shown}; ${f0(spread.okRps)} vs ${f0(post.okRps)} 201/s; ${errorsOf(spread)} errors`}, '(reported: 1.00 = scales with the clients)', undefined)
    }
    const batch = by('batch-25')
    const batchCost = ratioOf(batch, post, 5)
    if (batchCost) {
      const bad = errorsOf(batch)
      const q = {...batchCost, shown: `${batchCost.shown}; ${f1(batch.okRps)} batches/s vs ${f0(post.okRps)} POST/s${bad ? `; **${bad} errors**` : ''}`}
      add(3, 'a batch of 25 creates: batches/s / (POSTs/s ÷ 5) — above 1: a batch costs less than 5 POSTs', e.engine, q, targetOn(pgOnly, '> 1.00'), pgOnly ? check(q, (v) => v > 1 && bad === 0) : undefined)
    }
    const w2 = by('workers-2')
    const workers = ratioOf(w2, by('get-record'))
    if (workers) {
      const q = {...workers, shown: `${workers.shown}; cores busy — 1 worker: ${cores(by('get-record'))}; 2 workers: ${cores(w2)} (of ${r.machine.cores})`}
      add(4, '`--workers 2`: GET one record, 2 workers / 1 worker', e.engine, q, '≥ 1.50', check(q, atLeast(1.5)))
    }
    if (e.engine === 'pglite' && e.bare && Number.isFinite(e.idleRss)) {
      const over = e.idleRss - e.bare.rssIdle
      add(5, `idle RSS of \`kinto start\` − bare PGlite (same folder, shared_buffers ${e.bare.shown})`, e.engine,
        {value: over, shown: `${f0(e.idleRss)} − ${f0(e.bare.rssIdle)} = ${f0(over)} MB`}, '≤ 50 MB', over <= 50)
    } else if (e.engine === 'postgresql' && Number.isFinite(e.idleRss)) {
      add(5, 'idle RSS of `kinto start`', e.engine, {value: e.idleRss, shown: `${f0(e.idleRss)} MB`}, '< 100 MB', e.idleRss < 100)
    }
    const lt = r.loadtest?.results?.[e.engine]
    if (e.engine === 'postgresql' && lt?.rssEndMb != null) {
      add(5, `RSS of \`kinto start\` at the end of the ${f0(lt.durationS)} s mixed load test`, e.engine, {value: lt.rssEndMb, shown: `${lt.rssEndMb} MB (peak ${lt.rssPeakMb} MB)`}, '< 150 MB', lt.rssEndMb < 150)
    }
  }
  for (const [engine, x] of Object.entries(r.loadtest?.results ?? {})) {
    const ordering = x.violations.filter((v) => /timestamp/.test(v.kind)).length
    add(3, 'mixed load test: zero errors, timestamps strictly increasing, every write readable', engine,
      {shown: `${x.ok ? 'PASS' : `**FAIL**: ${x.violations.length} violations (${ordering} of timestamps)`}; ${x.writesPerS} writes/s, statuses ${JSON.stringify(x.byStatus)}`}, 'PASS', x.ok)
  }
  add(6, 'statements per request (GET one record, list, POST, PUT, batch…): asserted exactly, not timed, by test/integration/bench-sql-per-request.integration.test.ts', '–', {shown: 'the test'}, 'asserted', undefined)
  for (const e of r.engines) {
    const p1 = e.scenarios.find((s) => s.id === 'page-1')
    const p1000 = e.scenarios.find((s) => s.id === 'page-1000')
    if (p1 && p1000) {
      const cost = p1.rps / p1000.rps
      add(6, 'page 1000 cost / page 1 cost (req/s ratio)', e.engine, {value: cost, shown: `${f2(cost)} (p50 ${p1.p50} → ${p1000.p50} ms)`}, '≤ 1.50', cost <= 1.5)
    }
  }
  if (r.cli) {
    const node = r.cli.node == null ? '' : `; \`node -e 0\` alone: ${sec(r.cli.node)}`
    add(6, '`kinto --version` (cold start)', '–', {shown: `${sec(r.cli.version)}${node}`}, '< 0.300 s', r.cli.version < 300)
    if (r.cli.pg) add(6, '`kinto migrate`, no-op', 'postgresql', {shown: sec(r.cli.pg.noop)}, '< 0.500 s', r.cli.pg.noop < 500)
    if (r.cli.pglite) {
      // What opening the embedded engine alone costs (bare PGlite, same shared_buffers, median of 3
      // processes): a no-op migrate cannot take less.
      const bareOpen = r.engines.find((e) => e.engine === 'pglite')?.bare?.openMs
      const open = bareOpen == null ? '' : `; opening bare PGlite alone (the bench folder, no CLI): ${sec(bareOpen)}`
      add(6, '`kinto migrate`, no-op', 'pglite', {shown: `${sec(r.cli.pglite.noop)}${open}`}, '< 0.500 s', r.cli.pglite.noop < 500)
    }
  }
  return rows.sort((a, b) => a.n - b.n)
}

export function renderResults(r) {
  const L = []
  const m = r.machine
  L.push('# Benchmark results')
  L.push('')
  L.push(
    `Written by \`npm run bench\` (bench/run.js) on ${r.date.slice(0, 16).replace('T', ' ')} UTC, ` +
      `${r.cfg.quick ? 'quick smoke run (BENCH_QUICK=1)' : 'full run'}; rewritten by each run. Every figure below comes from this one run on this one machine: compare ratios, not absolute numbers, across runs. ` +
      'The hand-written analysis (profiles, statements per request, the by-hand benches) is in [ANALYSIS.md](ANALYSIS.md), which no run rewrites.',
  )
  L.push('')
  L.push('## Machine and run')
  L.push('')
  L.push(`- ${m.cores} cores (${m.cpu}), ${m.memGb} GB RAM, ${m.kernel}`)
  L.push(`- Node.js ${m.node}; PostgreSQL ${r.postgres ? `${r.postgres.version} on loopback (shared_buffers ${r.postgres.settings.shared_buffers} × 8 kB, synchronous_commit ${r.postgres.settings.synchronous_commit}, fsync ${r.postgres.settings.fsync})` : 'not reachable: skipped'}; PGlite ${r.pglite}`)
  L.push(`- load average when the run started: ${r.loadavg.map((x) => x.toFixed(2)).join(' / ')} (other processes on the machine add noise)`)
  L.push(`- code: commit ${r.commit}; dist/: ${r.build.note}; the runtime is \`node bin/run.js start\` (the built CLI); its log (with no logging sections in the ini: a readable line per request on stderr) goes to a file`)
  L.push(
    `- load: autocannon in the bench process, loopback, ${r.cfg.connections} connections unless stated, ${r.cfg.warmupS} s warm-up then ${r.cfg.durationS} s per scenario; ` +
      `dataset: bucket \`bench\` with 100 collections — \`c000\` ${r.cfg.mainRecords.toLocaleString('en')} records, \`c001\` ${r.cfg.bigRecords.toLocaleString('en')} records, \`c002\` the write target, 97 × 100 records — one write ACE per record, loaded with bulk SQL`,
  )
  const half = Math.max(1, r.cfg.rounds > 1 ? r.cfg.durationS / 2 : r.cfg.durationS)
  L.push(
    `- the floor (bench/lib/floor.js): bare \`node:http\`, our SqlClient with the runtime's pool settings; the runtime's own statement for GET one record and the list, and issue 20's independent floors: ` +
      'a list page as ONE `SELECT … LIMIT page+1` with the clause the runtime writes for the querystring (`ORDER BY data->\'n\'`, `data @> …`, `last_modified > …`), a POST as one `INSERT` whose trigger assigns the timestamp (only its 201s counted). ' +
      'It runs beside the runtime (on PGlite, which allows one process per folder, on a copy of the folder made before the runtime starts)',
  )
  L.push(
    `- pairs: each ratio's two figures come from alternated rounds — a scenario, then its twins (its floors; \`kinto start --workers 2\` for GET one record; POSTs spread over 8 collections and the batch for the POST), ${r.cfg.rounds} round(s) of ${half} s each (the first after ${r.cfg.warmupS} s of warm-up) — and the ratio is the median of the per-round ratios of 2xx answers per second`,
  )
  L.push('- cores: CPU used during each load, in cores (1.0 = one core busy throughout): by the server process(es), by the load generator (this bench process), and by the whole machine (PostgreSQL and other users included)')
  L.push('- server CPU per request (µs): the server\'s cores ÷ its req/s, what one request costs the server process; shown beside the GET and list ratios, because a throughput ratio falls when the floor (not bound by its core) gets more of the machine while the runtime (bound by its core) cannot')
  L.push(`- total time of the run: ${f0(r.elapsedS)} s`)
  L.push('')

  const targets = targetRows(r)
  if (targets.length) {
    L.push('## Targets of issue 20')
    L.push('')
    L.push('Each target of issue 20 with its figure from this run (ratios: median of the alternated rounds; the rounds in brackets). `(reported)`: a figure the issue sets no target for on that engine, or no threshold at all.')
    L.push('')
    L.push('| # | what | engine | value | target | verdict |')
    L.push('|---:|---|---|---|---|---|')
    for (const x of targets) L.push(`| ${x.n} | ${x.what} | ${x.engine === '–' ? '–' : engineName(x.engine)} | ${x.shown} | ${x.target} | ${verdict(x.ok)} |`)
    L.push('')
  }

  for (const e of r.engines) {
    L.push(`## ${engineName(e.engine)}`)
    L.push('')
    const d = e.dataset
    L.push(
      `Dataset: ${d.rows.toLocaleString('en')} objects loaded in ${f1(d.timings.total)} s (the ${d.bigRecords.toLocaleString('en')}-record collection: ${f1(d.timings.big)} s; ANALYZE ${f1(d.timings.analyze)} s). ` +
        `\`kinto migrate\` (schema install, CLI start included) ${sec(e.migrateMs)}; \`kinto start\` serving after ${f0(e.startMs)} ms; idle RSS ${f0(e.idleRss)} MB, after the load ${f0(e.rssAfter)} MB.` +
        (e.bare
          ? ` Bare PGlite on the same folder (bench/lib/pglite-bare.js: our SqlClient alone, shared_buffers ${e.bare.shown}, the same 20 reads then 1 s of rest): ${f0(e.bare.rssIdle)} MB idle (median of ${(e.bare.rssIdles ?? [e.bare.rssIdle]).map(f0).join(', ')}).`
          : '') +
        (e.workers2 ? ` \`kinto start --workers 2\` served after ${f0(e.workers2.startMs)} ms (${e.workers2.processes} processes; its RSS is their sum).` : ''),
    )
    L.push('')
    L.push('| scenario | clients | req/s | p50 ms | p99 ms | peak RSS MB | cores: server / load gen. / machine | server CPU µs/request | non-2xx / errors |')
    L.push('|---|---:|---:|---:|---:|---:|---|---:|---|')
    const rows = [...e.scenarios]
    for (const fl of e.floor) rows.push(fl)
    for (const s of rows) {
      const bad = s.non2xx || s.errors || s.timeouts ? `**${s.non2xx} / ${s.errors}** ${JSON.stringify(s.codes)}` : '0 / 0'
      const c = s.cores ? `${f2(s.cores.server)} / ${f2(s.cores.bench)} / ${f2(s.cores.machine)}` : '–'
      L.push(`| ${s.title} | ${s.connections} | ${f0(s.rps)} | ${s.p50} | ${s.p99} | ${f0(s.rssPeak)} | ${c} | ${f0(cpuUs(s))} | ${bad} |`)
    }
    L.push('')
    const batch = e.scenarios.find((s) => s.id === 'batch-25')
    if (batch) L.push(`The batch row counts batches: ${f0(batch.rps * 25)} record writes/s.`)
    L.push('')
  }

  if (r.cli) {
    const c = r.cli
    const k = r.cliNoManifest ?? {}
    L.push('## CLI')
    L.push('')
    L.push(
      `Wall time as a script sees it (process start included), median of ${r.cfg.cliRuns} runs, \`node bin/run.js\`, measured first in the run (before the load scenarios). ` +
        'As built = `npm run build`, whose last step writes `oclif.manifest.json` (packed releases ship it too). The second column is the same build without it: oclif then imports every command module, and so all their dependencies, at each start.',
    )
    L.push('')
    L.push('| command | as built | without oclif manifest | target | verdict (as built) |')
    L.push('|---|---:|---:|---|---|')
    if (c.node != null) L.push(`| \`node -e 0\` (Node.js alone, for scale) | ${sec(c.node)} | ${sec(k.node)} | | |`)
    L.push(`| \`kinto --version\` (cold start) | ${sec(c.version)} | ${sec(k.version)} | < 0.300 s | ${verdict(c.version < 300)} |`)
    L.push(`| \`kinto init --yes\` | ${sec(c.init)} | ${sec(k.init)} | | |`)
    L.push(`| \`kinto deploy nginx\` | ${sec(c.deployNginx)} | ${sec(k.deployNginx)} | | |`)
    if (c.pg) {
      L.push(`| \`kinto migrate\`, full install, PostgreSQL | ${sec(c.pg.install)} | ${sec(k.pg?.install)} | < 2 s | ${verdict(c.pg.install < 2000)} |`)
      L.push(`| \`kinto migrate\`, no-op, PostgreSQL | ${sec(c.pg.noop)} | ${sec(k.pg?.noop)} | < 0.500 s | ${verdict(c.pg.noop < 500)} |`)
    }
    if (c.pglite) {
      L.push(`| \`kinto migrate\`, full install, PGlite (new cluster included: the build's template, else initdb; median of ${c.pglite.runs}) | ${sec(c.pglite.install)} | | < 2 s | ${verdict(c.pglite.install < 2000)} |`)
      L.push(`| \`kinto migrate\`, no-op, PGlite | ${sec(c.pglite.noop)} | | < 0.500 s | ${verdict(c.pglite.noop < 500)} |`)
    }
    L.push('')
  }

  if (r.loadtest) {
    const t = r.loadtest
    L.push('## Mixed load test (bench/loadtest.js)')
    L.push('')
    L.push(
      'Many clients at once, each looping over a mix of 50 % writes (POST, PUT If-Match, PATCH, DELETE of its own records; PUT If-Match of shared hot records, where 412 is expected; batches of 5 creations) ' +
        'and 50 % reads (`_since` sync, list, GET), spread over a few collections of one bucket. Then: no 5xx / network error / timeout; every acknowledged write readable (final state = the acknowledged write with the highest timestamp, deletes as tombstones); ' +
        'timestamps strictly increasing per collection (no two acknowledged writes share one; a write acknowledged before another was sent has the smaller; no read shows a collection timestamp older than a write acknowledged before it was sent; ETag = newest object).',
    )
    L.push('')
    if (t.error) L.push(`**The load test did not run:** ${t.error}`)
    else {
      L.push('| engine | verdict | clients | seconds | requests/s | p50 ms | p99 ms | acknowledged writes/s | records checked | statuses (incl. checks) | server RSS MB: peak / end of the load |')
      L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|')
      for (const [engine, x] of Object.entries(t.results ?? {})) {
        L.push(
          `| ${engineName(engine)} | ${x.ok ? 'PASS' : '**FAIL**'} | ${x.clients} | ${x.durationS} | ${x.rps} | ${x.p50} | ${x.p99} | ${x.writesPerS} | ${x.recordsChecked} | ${JSON.stringify(x.byStatus)} | ${x.rssPeakMb ?? '–'} / ${x.rssEndMb ?? '–'} |`,
        )
      }
      L.push('')
      for (const [engine, x] of Object.entries(t.results ?? {})) {
        for (const v of x.violations.slice(0, 10)) L.push(`- ${engineName(engine)} violation (${v.kind}): ${v.detail}`)
      }
      L.push('')
    }
  }

  L.push('## Not timed here')
  L.push('')
  L.push('- N+1 queries: counted, not timed, by test/integration/bench-sql-per-request.integration.test.ts (exact statements per request; a list costs the same at any page size).')
  L.push('')
  return L.join('\n')
}

// bench/RESULTS.md from one run's figures: the machine, every scenario, the ratios to the floor
// and the verdict on each of its targets.

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–')
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–')
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–')
const sec = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(3)} s` : '–')
const verdict = (ok) => (ok === undefined ? '–' : ok ? 'met' : '**MISSED**')

function engineName(e) {
  return e === 'postgresql' ? 'PostgreSQL' : 'PGlite (embedded)'
}

export function targetsOf(engine) {
  const by = (list, id) => list.find((s) => s.id === id)
  const get = by(engine.scenarios, 'get-record')
  const list = by(engine.scenarios, 'list-10')
  const floorGet = by(engine.floor, 'floor-get-record')
  const floorList = by(engine.floor, 'floor-list-10')
  const p1 = by(engine.scenarios, 'page-1')
  const p1000 = by(engine.scenarios, 'page-1000')
  const rows = []
  // Alternated rounds (PostgreSQL): the median of the per-round ratios; else one ratio.
  const ratio = (a, b) => (a.floorRatios ? {value: a.floorRatio, shown: `${f2(a.floorRatio)} (rounds: ${a.floorRatios.map(f2).join(', ')})`} : {value: a.rps / b.rps, shown: f2(a.rps / b.rps)})
  if (get && floorGet) {
    const q = ratio(get, floorGet)
    rows.push({what: 'GET one record, runtime / floor (req/s)', ...q, target: '≥ 0.60', ok: q.value >= 0.6})
  }
  if (list && floorList) rows.push({what: 'list `_limit=10`, runtime / floor (req/s)', ...ratio(list, floorList), target: '(reported)', ok: undefined})
  // Issue 20's independent floors: alternated rounds on PostgreSQL, one figure each on PGlite.
  const against = (a, floorId, what, target, min) => {
    const f = by(engine.floor, floorId)
    if (!a || !f) return
    const r = a.ratiosTo?.[floorId]
    const q = r ? {value: r.ratio, shown: `${f2(r.ratio)} (rounds: ${r.ratios.map(f2).join(', ')})`} : {value: a.okRps / f.okRps, shown: f2(a.okRps / f.okRps)}
    rows.push({what, ...q, target, ok: Number.isFinite(q.value) ? q.value >= min : undefined})
  }
  against(list, 'floor-list-bare', 'list `_limit=10`, runtime / one `SELECT … LIMIT 11` (req/s)', '≥ 0.70', 0.7)
  against(by(engine.scenarios, 'post'), 'floor-post', 'POST, runtime 201/s / one `INSERT`\'s 201/s', '≥ 0.90', 0.9)
  if (p1 && p1000) {
    const cost = p1.rps / p1000.rps
    rows.push({what: 'page 1000 cost / page 1 cost (req/s ratio)', value: cost, shown: `${f2(cost)} (p50 ${p1.p50} → ${p1000.p50} ms)`, target: '≤ 1.50', ok: cost <= 1.5})
  }
  if (Number.isFinite(engine.idleRss)) rows.push({what: 'idle RSS of `kinto start`', value: engine.idleRss, shown: `${f0(engine.idleRss)} MB`, target: '< 100 MB', ok: engine.idleRss < 100})
  return rows
}

export function renderResults(r) {
  const L = []
  const m = r.machine
  L.push('# Benchmark results')
  L.push('')
  L.push(
    `Written by \`npm run bench\` (bench/run.js) on ${r.date.slice(0, 16).replace('T', ' ')} UTC, ` +
      `${r.cfg.quick ? 'quick smoke run (BENCH_QUICK=1)' : 'full run'}; rewritten by each run. Every figure below comes from this one run on this one machine: compare ratios, not absolute numbers, across runs.`,
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
  L.push(
    `- the floor (bench/lib/floor.js): bare \`node:http\`, our SqlClient with the runtime's pool settings, the runtime's own statements for those two requests, and issue 20's independent floors (a list page as one \`SELECT … ORDER BY last_modified DESC LIMIT 11\`, a POST as one \`INSERT\` whose trigger assigns the timestamp, only its 201s counted); on PostgreSQL it runs beside the runtime and each runtime/floor pair is alternated in ${r.cfg.rounds} rounds of ${Math.max(1, r.cfg.rounds > 1 ? r.cfg.durationS / 2 : r.cfg.durationS)} s (ratio = median of the rounds); PGlite allows one process per folder, so there the floor runs after the runtime has stopped`,
  )
  L.push(`- total time of the run: ${f0(r.elapsedS)} s`)
  L.push('')

  for (const e of r.engines) {
    L.push(`## ${engineName(e.engine)}`)
    L.push('')
    const d = e.dataset
    L.push(
      `Dataset: ${d.rows.toLocaleString('en')} objects loaded in ${f1(d.timings.total)} s (the ${d.bigRecords.toLocaleString('en')}-record collection: ${f1(d.timings.big)} s; ANALYZE ${f1(d.timings.analyze)} s). ` +
        `\`kinto migrate\` (schema install, CLI start included) ${sec(e.migrateMs)}; \`kinto start\` serving after ${f0(e.startMs)} ms; idle RSS ${f0(e.idleRss)} MB, after the load ${f0(e.rssAfter)} MB.`,
    )
    L.push('')
    L.push('| scenario | clients | req/s | p50 ms | p99 ms | peak RSS MB | non-2xx / errors |')
    L.push('|---|---:|---:|---:|---:|---:|---|')
    const rows = [...e.scenarios]
    for (const fl of e.floor) rows.push(fl)
    for (const s of rows) {
      const bad = s.non2xx || s.errors || s.timeouts ? `**${s.non2xx} / ${s.errors}** ${JSON.stringify(s.codes)}` : '0 / 0'
      L.push(`| ${s.title} | ${s.connections} | ${f0(s.rps)} | ${s.p50} | ${s.p99} | ${f0(s.rssPeak)} | ${bad} |`)
    }
    L.push('')
    const batch = e.scenarios.find((s) => s.id === 'batch-25')
    if (batch) L.push(`The batch row counts batches: ${f0(batch.rps * 25)} record writes/s.`)
    L.push('')
    const targets = targetsOf(e)
    if (targets.length) {
      L.push('| ratio / target | value | target | verdict |')
      L.push('|---|---:|---|---|')
      for (const t of targets) L.push(`| ${t.what} | ${t.shown} | ${t.target} | ${verdict(t.ok)} |`)
      L.push('')
    }
  }

  if (r.cli) {
    const c = r.cli
    const k = r.cliNoManifest ?? {}
    L.push('## CLI')
    L.push('')
    L.push(
      `Wall time as a script sees it (process start included), median of ${r.cfg.cliRuns} runs, \`node bin/run.js\`. ` +
        'As built = `npm run build`, whose last step writes `oclif.manifest.json` (packed releases ship it too). The second column is the same build without it: oclif then imports every command module, and so all their dependencies, at each start.',
    )
    L.push('')
    L.push('| command | as built | without oclif manifest | target | verdict (as built) |')
    L.push('|---|---:|---:|---|---|')
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
      L.push('| engine | verdict | clients | seconds | requests/s | p50 ms | p99 ms | acknowledged writes/s | records checked | statuses (incl. checks) | server peak RSS MB |')
      L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|')
      for (const [engine, x] of Object.entries(t.results ?? {})) {
        L.push(`| ${engineName(engine)} | ${x.ok ? 'PASS' : '**FAIL**'} | ${x.clients} | ${x.durationS} | ${x.rps} | ${x.p50} | ${x.p99} | ${x.writesPerS} | ${x.recordsChecked} | ${JSON.stringify(x.byStatus)} | ${x.rssPeakMb ?? '–'} |`)
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

#!/usr/bin/env node
// Mixed load test: many clients read and write at once for a bounded time,
// then the run is checked:
//   1. no response was a 5xx (nor a network error or a timeout);
//   2. every acknowledged write is readable: each record ends in the state of its acknowledged
//      write with the highest timestamp (a deleted record is a 404 and a tombstone in `_since`);
//   3. timestamps strictly increase per collection: acknowledged writes of one collection never
//      share a timestamp; a write acknowledged before another was sent has the smaller one; a read
//      never shows a collection timestamp older than a write acknowledged before it was sent; the
//      collection's ETag is the newest of its records and tombstones.
// Exit 0 when all hold, 1 on any violation (each listed), 2 on bad usage.
//
//   node bench/loadtest.js                       starts `kinto start` on PostgreSQL and on PGlite
//   node bench/loadtest.js --url http://127.0.0.1:8888/v1/   against a running runtime (loopback only)
//   options: --duration s (60; BENCH_QUICK=1: 15), --clients n (32), --collections n (4),
//            --engines postgresql,pglite, --json
// Traffic stays on the loopback interface; every loop stops at the deadline and every request
// times out after 30 s.
import {randomBytes} from 'node:crypto'
import path from 'node:path'

import {createBenchDatabase, migrate, writeBenchIni} from './lib/dataset.js'
import {startKinto, waitReady} from './lib/servers.js'
import {basic, note, randomSecret, root, rssMb, rssSampler} from './lib/util.js'

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const quick = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '')
const cfg = {
  durationS: Number(opt('--duration', quick ? '15' : '60')),
  clients: Number(opt('--clients', '32')),
  collections: Number(opt('--collections', '4')),
  users: 8,
  json: argv.includes('--json'),
}
const usage = (msg) => {
  console.error(`${msg}\nUsage: node bench/loadtest.js [--url http://127.0.0.1:PORT/v1/] [--duration s] [--clients n] [--collections n] [--engines postgresql,pglite] [--json]`)
  process.exit(2)
}
if (!(cfg.durationS > 0 && cfg.durationS <= 3600)) usage('--duration must be between 1 and 3600 seconds.')
if (!(cfg.clients >= 1 && cfg.clients <= 512)) usage('--clients must be between 1 and 512.')
if (!(cfg.collections >= 1 && cfg.collections <= 100)) usage('--collections must be between 1 and 100.')

const REQUEST_TIMEOUT_MS = 30_000

// ---------------------------------------------------------------------------------------------
// The run's state

export class Run {
  constructor(base, origin) {
    this.base = base // http://127.0.0.1:port/v1
    this.origin = origin
    this.bucket = `loadtest-${randomBytes(4).toString('hex')}`
    this.collections = Array.from({length: cfg.collections}, (_, i) => `col${i}`)
    this.users = Array.from({length: cfg.users}, (_, i) => basic(`loadtest-user-${i}`, `pw-${i}`))
    this.violations = []
    this.counts = {requests: 0, byStatus: {}, byOp: {}}
    this.latencies = []
    /** Acknowledged writes: {collection, id, ts, sent, acked, deleted, data} */
    this.writes = []
    /** Reads of a collection timestamp: {collection, sent, ts} */
    this.reads = []
    /** Clients write their own records only (so the final state of each is certain), and these: */
    this.hot = [] // shared records every client updates with If-Match (412 expected, never 5xx)
  }

  violation(kind, detail) {
    if (this.violations.length < 200) this.violations.push({kind, detail})
    else this.violations.truncated = true
  }

  /** One HTTP request; records status and latency; a 5xx or a network failure is a violation. */
  async request(op, method, path, {body, auth, headers = {}} = {}) {
    const sent = performance.now()
    let res
    let text
    try {
      res = await fetch(this.origin + path, {
        method,
        headers: {...(body === undefined ? {} : {'content-type': 'application/json'}), authorization: auth ?? this.users[0], ...headers},
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      text = await res.text()
    } catch (err) {
      this.violation('network', `${op}: ${method} ${path}: ${err.name === 'TimeoutError' ? 'no answer within 30 s' : err.message}`)
      this.counts.requests++
      this.counts.byStatus.error = (this.counts.byStatus.error ?? 0) + 1
      return {status: 0, body: null, headers: new Headers(), sent, acked: performance.now()}
    }
    const acked = performance.now()
    this.counts.requests++
    this.counts.byStatus[res.status] = (this.counts.byStatus[res.status] ?? 0) + 1
    this.counts.byOp[op] = (this.counts.byOp[op] ?? 0) + 1
    if (this.latencies.length < 500_000) this.latencies.push(acked - sent)
    let parsed = null
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      parsed = text
    }
    if (res.status >= 500) this.violation('5xx', `${op}: ${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`)
    return {status: res.status, body: parsed, headers: res.headers, sent, acked}
  }

  recordsPath(collection) {
    return `/v1/buckets/${this.bucket}/collections/${collection}/records`
  }

  ack(collection, obj, sent, acked, deleted = false) {
    this.writes.push({collection, id: obj.id, ts: obj.last_modified, sent, acked, deleted, data: deleted ? null : obj})
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

const pick = (xs) => xs[Math.floor(Math.random() * xs.length)]
const payload = (client, seq) => ({client, seq, text: randomBytes(24).toString('hex'), nested: {n: seq, tags: ['a', 'b']}})

async function client(run, index, deadline) {
  const auth = run.users[index % run.users.length]
  const own = new Map() // id -> {collection, etag}
  let seq = 0
  const lastSeen = new Map() // collection -> newest timestamp this client saw
  while (performance.now() < deadline) {
    const collection = pick(run.collections)
    const path = run.recordsPath(collection)
    const mine = [...own.entries()].filter(([, v]) => v.collection === collection)
    const roll = Math.random()
    seq++
    if (roll < 0.2 || mine.length === 0) {
      const r = await run.request('create', 'POST', path, {auth, body: {data: payload(index, seq)}})
      if (r.status === 201) {
        run.ack(collection, r.body.data, r.sent, r.acked)
        own.set(r.body.data.id, {collection, etag: r.headers.get('etag')})
      } else if (r.status) run.violation('unexpected', `create answered ${r.status}`)
    } else if (roll < 0.3) {
      const [id, v] = pick(mine)
      const r = await run.request('put', 'PUT', `${path}/${id}`, {auth, headers: {'if-match': v.etag}, body: {data: payload(index, seq)}})
      if (r.status === 200) {
        run.ack(collection, r.body.data, r.sent, r.acked)
        v.etag = r.headers.get('etag')
      } else if (r.status) run.violation('unexpected', `PUT If-Match on an own record answered ${r.status}`)
    } else if (roll < 0.38) {
      const [id, v] = pick(mine)
      const r = await run.request('patch', 'PATCH', `${path}/${id}`, {auth, body: {data: {seq, patched: true}}})
      if (r.status === 200) {
        run.ack(collection, r.body.data, r.sent, r.acked)
        v.etag = r.headers.get('etag')
      } else if (r.status) run.violation('unexpected', `PATCH of an own record answered ${r.status}`)
    } else if (roll < 0.42) {
      const [id] = pick(mine)
      const r = await run.request('delete', 'DELETE', `${path}/${id}`, {auth})
      if (r.status === 200) {
        run.ack(collection, r.body.data, r.sent, r.acked, true)
        own.delete(id)
      } else if (r.status) run.violation('unexpected', `DELETE of an own record answered ${r.status}`)
    } else if (roll < 0.47) {
      // A hot record shared by every client: If-Match with what this client last saw; 412 is fine.
      const hc = pick(run.hot.filter((h) => h.collection === collection))
      const hot = hc.id
      const hp = path
      const seen = await run.request('hot-read', 'GET', `${hp}/${hot}`, {auth})
      if (seen.status !== 200) {
        if (seen.status) run.violation('unexpected', `GET of a hot record answered ${seen.status}`)
        continue
      }
      const r = await run.request('hot-put', 'PUT', `${hp}/${hot}`, {auth, headers: {'if-match': seen.headers.get('etag')}, body: {data: payload(index, seq)}})
      if (r.status === 200) run.ack(hc.collection, r.body.data, r.sent, r.acked)
      else if (r.status && r.status !== 412) run.violation('unexpected', `PUT If-Match of a hot record answered ${r.status}`)
    } else if (roll < 0.5) {
      const r = await run.request('batch', 'POST', '/v1/batch', {
        auth,
        body: {defaults: {method: 'POST', path: path.replace(/^\/v1/, '')}, requests: Array.from({length: 5}, (_, k) => ({body: {data: payload(index, seq * 10 + k)}}))},
      })
      if (r.status === 200) {
        for (const sub of r.body.responses) {
          if (sub.status === 201) {
            run.ack(collection, sub.body.data, r.sent, r.acked)
            own.set(sub.body.data.id, {collection, etag: `"${sub.body.data.last_modified}"`})
          } else {
            if (sub.status >= 500) run.violation('5xx', `batch sub-request answered ${sub.status}`)
            else run.violation('unexpected', `batch sub-request answered ${sub.status}`)
          }
        }
      } else if (r.status) run.violation('unexpected', `batch answered ${r.status}`)
    } else if (roll < 0.7) {
      const since = lastSeen.get(collection)
      const r = await run.request('sync', 'GET', `${path}?_limit=50${since ? `&_since=${since}` : ''}`, {auth})
      if (r.status === 200) {
        const ts = Number(String(r.headers.get('etag')).replaceAll('"', ''))
        run.reads.push({collection, sent: r.sent, ts})
        lastSeen.set(collection, ts)
      } else if (r.status) run.violation('unexpected', `sync answered ${r.status}`)
    } else if (roll < 0.85 && mine.length > 0) {
      const [id, v] = pick(mine)
      const r = await run.request('get', 'GET', `${path}/${id}`, {auth})
      if (r.status === 200) {
        // Read-your-writes: never older than this client's own last acknowledged write.
        if (`"${r.body.data.last_modified}"` !== v.etag) run.violation('stale read', `${collection}/${id}: read ${r.body.data.last_modified}, own last write ${v.etag}`)
      } else if (r.status) run.violation('unexpected', `GET of an own record answered ${r.status}`)
    } else {
      const r = await run.request('list', 'GET', `${path}?_limit=20`, {auth})
      if (r.status === 200) run.reads.push({collection, sent: r.sent, ts: Number(String(r.headers.get('etag')).replaceAll('"', ''))})
      else if (r.status) run.violation('unexpected', `list answered ${r.status}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

async function allObjects(run, collection) {
  const out = []
  let next = `${run.recordsPath(collection)}?_since=0&_sort=last_modified&_limit=1000`
  for (let page = 0; next && page < 10_000; page++) {
    const r = await run.request('verify-list', 'GET', next)
    if (r.status !== 200) {
      run.violation('verify', `listing ${collection} answered ${r.status}`)
      return {objects: out, etag: NaN}
    }
    out.push(...r.body.data)
    const link = r.headers.get('next-page')
    next = link ? new URL(link).pathname + new URL(link).search : null
    if (!next) return {objects: out, etag: Number(String(r.headers.get('etag')).replaceAll('"', ''))}
  }
  return {objects: out, etag: NaN}
}

export function checkOrdering(run) {
  const by = new Map()
  for (const w of run.writes) {
    if (!by.has(w.collection)) by.set(w.collection, [])
    by.get(w.collection).push(w)
  }
  for (const [collection, writes] of by) {
    const seen = new Map()
    for (const w of writes) {
      const other = seen.get(w.ts)
      // One batch acknowledges its writes at once; they must still differ in timestamp.
      if (other) run.violation('duplicate timestamp', `${collection}: ${other.id} and ${w.id} both at ${w.ts}`)
      else seen.set(w.ts, w)
    }
    // A write acknowledged before another was sent must have the smaller timestamp.
    const byAck = [...writes].sort((a, b) => a.acked - b.acked)
    const bySent = [...writes].sort((a, b) => a.sent - b.sent)
    let i = 0
    let maxTs = -Infinity
    let maxW
    for (const w of bySent) {
      while (i < byAck.length && byAck[i].acked < w.sent) {
        if (byAck[i].ts > maxTs) {
          maxTs = byAck[i].ts
          maxW = byAck[i]
        }
        i++
      }
      if (w.ts <= maxTs) run.violation('timestamp order', `${collection}: ${w.id} got ${w.ts}, sent after ${maxW.id} was acknowledged at ${maxTs}`)
    }
    // A read never shows a collection timestamp older than a write acknowledged before it was sent.
    const reads = run.reads.filter((r) => r.collection === collection).sort((a, b) => a.sent - b.sent)
    i = 0
    maxTs = -Infinity
    for (const r of reads) {
      while (i < byAck.length && byAck[i].acked < r.sent) maxTs = Math.max(maxTs, byAck[i++].ts)
      if (r.ts < maxTs) run.violation('stale collection timestamp', `${collection}: a read sent after a write at ${maxTs} showed ${r.ts}`)
    }
  }
}

export async function checkFinalState(run) {
  // The acknowledged write with the highest timestamp of each record is its final state.
  const last = new Map()
  for (const w of run.writes) {
    const key = `${w.collection}/${w.id}`
    const cur = last.get(key)
    if (!cur || w.ts > cur.ts) last.set(key, w)
  }
  let checked = 0
  for (const collection of run.collections) {
    const {objects, etag} = await allObjects(run, collection)
    const stored = new Map(objects.map((o) => [o.id, o]))
    const stamps = new Set()
    let newest = 0
    for (const o of objects) {
      if (stamps.has(o.last_modified)) run.violation('duplicate timestamp', `${collection}: two stored objects at ${o.last_modified}`)
      stamps.add(o.last_modified)
      newest = Math.max(newest, o.last_modified)
    }
    if (objects.length > 0 && etag !== newest) run.violation('collection timestamp', `${collection}: ETag ${etag}, newest object ${newest}`)
    for (const [key, w] of last) {
      if (!key.startsWith(`${collection}/`)) continue
      checked++
      const o = stored.get(w.id)
      if (!o) {
        run.violation('lost write', `${collection}/${w.id}: acknowledged at ${w.ts}, not in the collection`)
        continue
      }
      if (w.deleted) {
        if (!o.deleted || o.last_modified !== w.ts) run.violation('lost delete', `${collection}/${w.id}: deleted at ${w.ts}, stored ${JSON.stringify(o).slice(0, 200)}`)
        continue
      }
      if (o.deleted || o.last_modified !== w.ts || JSON.stringify(sorted(o)) !== JSON.stringify(sorted(w.data))) {
        run.violation('lost write', `${collection}/${w.id}: acknowledged ${JSON.stringify(w.data).slice(0, 200)}, stored ${JSON.stringify(o).slice(0, 200)}`)
      }
    }
  }
  // And one by one through the record endpoint, for a sample (the list above saw them all).
  const sample = [...last.values()].sort(() => Math.random() - 0.5).slice(0, 300)
  for (const w of sample) {
    const r = await run.request('verify-get', 'GET', `${run.recordsPath(w.collection)}/${w.id}`)
    if (w.deleted ? r.status !== 404 : r.status !== 200 || r.body.data.last_modified !== w.ts) {
      run.violation('unreadable write', `${w.collection}/${w.id}: expected ${w.deleted ? '404' : `200 at ${w.ts}`}, got ${r.status}`)
    }
  }
  return checked
}

const sorted = (o) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k] && typeof o[k] === 'object' && !Array.isArray(o[k]) ? sorted(o[k]) : o[k]]))

// ---------------------------------------------------------------------------------------------

export async function setup(run) {
  const owner = run.users[0]
  const put = async (path, body) => {
    const r = await run.request('setup', 'PUT', path, {auth: owner, body})
    if (r.status !== 201 && r.status !== 200) throw new Error(`setup: PUT ${path} answered ${r.status}: ${JSON.stringify(r.body)}`)
    return r
  }
  await put(`/v1/buckets/${run.bucket}`, {permissions: {write: ['system.Authenticated']}})
  for (const c of run.collections) {
    await put(`/v1/buckets/${run.bucket}/collections/${c}`, {})
    for (let h = 0; h < 2; h++) {
      const id = `hot-${c}-${h}`
      const r = await put(`${run.recordsPath(c)}/${id}`, {data: {hot: true}})
      run.ack(c, r.body.data, r.sent, r.acked)
      run.hot.push({collection: c, id})
    }
  }
}

export async function loadtest(base, {pid} = {}) {
  const u = new URL(base)
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(u.hostname) && !u.hostname.startsWith('127.')) {
    usage(`Refusing ${u.hostname}: the load test only targets loopback addresses.`)
  }
  const run = new Run(base, u.origin)
  await setup(run)
  const sampler = pid ? rssSampler(pid) : null
  const started = performance.now()
  const deadline = started + cfg.durationS * 1000
  await Promise.all(Array.from({length: cfg.clients}, (_, i) => client(run, i, deadline)))
  const elapsed = (performance.now() - started) / 1000
  const rssPeak = sampler?.stop()
  // The server's RSS when the load ends (issue 20: < 150 MB on PostgreSQL after the 60 s), before the checks' reads.
  const rssEnd = pid ? rssMb(pid) : undefined
  const loadRequests = run.counts.requests
  checkOrdering(run)
  const checked = await checkFinalState(run)
  const lat = [...run.latencies].sort((a, b) => a - b)
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN)
  return {
    durationS: Number(elapsed.toFixed(1)),
    clients: cfg.clients,
    collections: cfg.collections,
    requests: loadRequests,
    rps: Math.round(loadRequests / elapsed),
    p50: Number(q(0.5).toFixed(1)),
    p99: Number(q(0.99).toFixed(1)),
    acknowledgedWrites: run.writes.length,
    writesPerS: Math.round(run.writes.length / elapsed),
    recordsChecked: checked,
    byStatus: run.counts.byStatus,
    byOp: run.counts.byOp,
    rssPeakMb: rssPeak === undefined ? null : Math.round(rssPeak),
    rssEndMb: rssEnd === undefined ? null : Math.round(rssEnd),
    violations: run.violations,
    ok: run.violations.length === 0,
  }
}

async function ownServer(engine) {
  const pg = process.env.KINTO_BENCH_DATABASE_URL || process.env.KINTO_TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres'
  const db = await createBenchDatabase(engine, pg)
  try {
    const ini = writeBenchIni(db, randomSecret())
    await migrate(ini)
    const server = await startKinto(ini)
    await waitReady(server.origin + '/v1/')
    return {server, db}
  } catch (err) {
    await db.drop()
    throw err
  }
}

export function render(engine, r) {
  const lines = [
    `${engine}: ${r.ok ? 'PASS' : 'FAIL'} — ${r.clients} clients, ${r.durationS} s: ${r.requests} requests (${r.rps}/s, p50 ${r.p50} ms, p99 ${r.p99} ms), ` +
      `${r.acknowledgedWrites} acknowledged writes (${r.writesPerS}/s), ${r.recordsChecked} records checked; statuses ${JSON.stringify(r.byStatus)}` +
      (r.rssPeakMb ? `; server RSS peak ${r.rssPeakMb} MB, ${r.rssEndMb} MB at the end of the load` : ''),
  ]
  for (const v of r.violations.slice(0, 20)) lines.push(`  VIOLATION ${v.kind}: ${v.detail}`)
  if (r.violations.length > 20) lines.push(`  … ${r.violations.length - 20} more`)
  return lines.join('\n')
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.join(root, 'bench', 'loadtest.js')
if (isMain) {
  const results = {}
  const url = opt('--url', undefined)
  try {
    if (url) {
      results.url = await loadtest(url.replace(/\/$/, ''))
    } else {
      for (const engine of opt('--engines', 'postgresql,pglite').split(',')) {
        if (!['postgresql', 'pglite'].includes(engine)) usage(`Unknown engine '${engine}'.`)
        note(`loadtest: ${engine}: starting kinto start…`)
        const {server, db} = await ownServer(engine)
        try {
          results[engine] = await loadtest(server.url, {pid: server.pid})
        } finally {
          await server.stop()
          await db.drop()
        }
        note(render(engine, results[engine]))
      }
    }
  } catch (err) {
    console.error(`loadtest failed to run: ${err.message}`)
    process.exit(1)
  }
  const ok = Object.values(results).every((r) => r.ok)
  if (cfg.json) console.log(JSON.stringify({ok, config: cfg, results}, null, 2))
  else for (const [engine, r] of Object.entries(results)) console.log(render(engine, r))
  process.exitCode = ok ? 0 : 1
}

#!/usr/bin/env node
// Soak: a long, varied load against a running `kinto start`, sampling the server's resources
// every 10 s, to see whether anything grows without bound. Standalone: not part of bench/run.js
// nor of any npm script. Start the server yourself (any engine, any --workers), then:
//
//   node bench/soak.js --url http://127.0.0.1:PORT/v1 --pid PID [--admin user:password]
//        [--duration 300] [--clients 6] [--database NAME] [--inspect 127.0.0.1:PORT]
//
// --pid          the `kinto start` process: it and its workers (from /proc) are sampled.
// --admin        an account allowed to create buckets (e.g. made with `kinto create-user`);
//                default: Basic credentials of a made-up user (the basicauth policy).
// --database     a PostgreSQL database (PG* environment for the connection): its backend count.
// --inspect      the server's --inspect address (single process): post-GC heap via the inspector.
//
// The server needs kinto.plugins.accounts (account_create_principals = system.Everyone), and
// kinto.experimental_collection_schema_validation = true for the schema changes to be checked.
//
// The traffic: reads and 304s, lists with many distinct filters and sorts, writes to many
// collections and ids, batches, plural deletes, collection schema changes (with and without `$id`),
// permission changes, account creations and logins (some with wrong passwords), random Origins,
// bogus Bearer and Basic tokens, and requests whose client disconnects mid-request. Every sample
// prints a line; at the end the first and last thirds of the samples are compared. A 5xx or a
// network error is counted and printed, never retried.
import http from 'node:http'
import {randomBytes, randomInt} from 'node:crypto'
import {readdirSync} from 'node:fs'

import {basic, processTree, rssMb, sleep} from './lib/util.js'

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const base = opt('--url', '').replace(/\/+$/, '')
const pid = Number(opt('--pid', '0'))
const durationS = Number(opt('--duration', '300'))
const clients = Number(opt('--clients', '6'))
const database = opt('--database', '')
const inspect = opt('--inspect', '')
const [adminUser, adminPassword] = opt('--admin', `soak-${randomBytes(3).toString('hex')}:pw`).split(':')
if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/v1$/.test(base) || !(pid > 0) || !(durationS > 0)) {
  console.error('Usage: node bench/soak.js --url http://127.0.0.1:PORT/v1 --pid PID [--admin user:password] [--duration s] [--clients n] [--database NAME] [--inspect host:port]')
  process.exit(2)
}

const admin = basic(adminUser, adminPassword)
const bucket = `soak-${randomBytes(3).toString('hex')}`
const counts = {requests: 0, aborted: 0, errors: 0, byStatus: {}}
const failures = []
/** A few 400 answers, to tell the load's own mistakes from the server's. */
const badRequests = []
const pick = (xs) => xs[randomInt(xs.length)]
const word = () => randomBytes(4).toString('hex')

async function call(method, path, {body, headers = {}, auth = admin} = {}) {
  counts.requests++
  const h = {...headers}
  if (auth) h.Authorization = auth
  if (body !== undefined) h['Content-Type'] = 'application/json'
  try {
    const res = await fetch(base + path, {method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000)})
    const text = await res.text()
    counts.byStatus[res.status] = (counts.byStatus[res.status] ?? 0) + 1
    if (res.status === 400 && badRequests.length < 5) badRequests.push(`${method} ${path} → ${text.slice(0, 300)}`)
    if (res.status >= 500 && failures.length < 20) failures.push(`${method} ${path} → ${res.status} ${text.slice(0, 200)}`)
    return {status: res.status, etag: res.headers.get('etag'), text}
  } catch (err) {
    counts.errors++
    if (failures.length < 20) failures.push(`${method} ${path} → ${err.message}`)
    return {status: 0, etag: null, text: ''}
  }
}

/** A request whose client goes away: after the headers, mid-body, or while the answer is read. */
function abortedRequest() {
  counts.aborted++
  const url = new URL(base)
  return new Promise((resolve) => {
    const how = randomInt(3)
    const req = http.request({host: url.hostname, port: url.port, method: how === 2 ? 'GET' : 'POST', path: `${url.pathname}/buckets/${bucket}/collections/c${randomInt(40)}/records${how === 2 ? '?_limit=500' : ''}`, headers: {Authorization: admin, 'Content-Type': 'application/json', ...(how === 1 ? {'Content-Length': '1000'} : {})}})
    req.on('error', () => resolve())
    req.on('close', () => resolve())
    if (how === 0) req.flushHeaders()
    else if (how === 1) req.write('{"data": {"title": "half')
    else req.on('response', (res) => res.once('data', () => req.destroy()))
    if (how !== 2) setTimeout(() => req.destroy(), randomInt(5, 50))
    else req.end()
    setTimeout(() => {
      req.destroy()
      resolve()
    }, 2000)
  })
}

const etags = new Map()
const collection = () => `c${randomInt(40)}`
const record = () => `r${randomInt(400)}`
const filters = () => {
  const out = [`_limit=${randomInt(1, 30)}`]
  const sorts = ['n', '-n', 'title', '-last_modified', `f${randomInt(200)}`, 'nested.a']
  if (randomInt(2)) out.push(`_sort=${pick(sorts)}${randomInt(2) ? `,${pick(sorts)}` : ''}`)
  const kinds = [() => `min_n=${randomInt(100)}`, () => `lt_n=${randomInt(100)}`, () => `title=${word()}`, () => `like_title=*${word().slice(0, 2)}*`, () => `in_n=${randomInt(9)},${randomInt(9)}`, () => `has_f${randomInt(50)}=true`, () => `_since=${Date.now() - randomInt(100000)}`, () => `_fields=title,n`, () => `contains_tags=${word()}`]
  for (let i = randomInt(3); i > 0; i--) out.push(pick(kinds)())
  // One value per parameter (a repeated one is a 400, not what is measured).
  return [...new Map(out.map((p) => [p.split('=')[0], p])).values()].join('&')
}

const OPERATIONS = [
  [20, async () => {
    const path = `/buckets/${bucket}/collections/${collection()}/records/${record()}`
    const known = etags.get(path)
    const res = await call('GET', path, {headers: known ? {'If-None-Match': known} : {}})
    if (res.etag) etags.set(path, res.etag)
    if (etags.size > 5000) etags.clear()
  }],
  [20, () => call('GET', `/buckets/${bucket}/collections/${collection()}/records?${filters()}`)],
  [15, () => call('PUT', `/buckets/${bucket}/collections/${collection()}/records/${record()}`, {body: {data: {title: word(), n: randomInt(100), tags: [word()], nested: {a: randomInt(5)}, [`f${randomInt(200)}`]: 1}}})],
  [5, () => call('POST', '/batch', {body: {defaults: {method: 'PUT'}, requests: Array.from({length: randomInt(1, 10)}, () => ({path: `/buckets/${bucket}/collections/${collection()}/records/${record()}`, body: {data: {title: word(), n: randomInt(100)}}}))}})],
  [2, () => call('DELETE', `/buckets/${bucket}/collections/${collection()}/records?lt_n=${randomInt(5)}&_limit=${randomInt(1, 20)}`)],
  [3, () => {
    // A schema that changes at each write; one collection in three gives it an `$id`.
    const c = `s${randomInt(6)}`
    const schema = {type: 'object', properties: {title: {type: 'string', maxLength: randomInt(10, 10000)}, n: {type: 'integer'}}}
    if (randomInt(3) === 0) schema.$id = `https://example.com/schemas/${c}`
    return call('PUT', `/buckets/${bucket}/collections/${c}`, {body: {data: {schema}}}).then(() =>
      call('PUT', `/buckets/${bucket}/collections/${c}/records/${record()}`, {body: {data: {title: word(), n: randomInt(100)}}}),
    )
  }],
  [3, () => call('PATCH', `/buckets/${bucket}/collections/${collection()}`, {body: {permissions: {read: [`account:u${randomInt(100000)}`, 'system.Authenticated']}}})],
  [5, () => {
    const user = `u${randomInt(100000)}`
    return call('PUT', `/accounts/${user}`, {auth: null, body: {data: {password: 'secret'}}}).then(() => call('GET', '/', {auth: basic(user, randomInt(4) ? 'secret' : word())}))
  }],
  [4, () => call('GET', `/buckets/${bucket}/collections/${collection()}/records?_limit=5`, {auth: randomInt(2) ? `Bearer ${word()}${word()}` : basic(word(), word()), headers: {Origin: `https://${word()}.example.com`}})],
  [3, () => call('OPTIONS', `/buckets/${bucket}/collections/${word()}/records`, {auth: null, headers: {Origin: `https://${word()}.example.org`, 'Access-Control-Request-Method': 'GET'}})],
  [2, () => call('GET', `/buckets/${bucket}/history?_limit=10&resource_name=record&${randomInt(2) ? `gt_target.data.n=${randomInt(100)}` : `_since=${Date.now() - 60000}`}`)],
  [2, () => call('GET', `/buckets/${bucket}/collections/${word()}/records/${word()}`)],
  [1, () => call('GET', '/permissions?_limit=20')],
  [1, () => call('GET', '/__heartbeat__', {auth: null})],
  [3, abortedRequest],
]
const TOTAL = OPERATIONS.reduce((s, [w]) => s + w, 0)
function operation() {
  let r = randomInt(TOTAL)
  for (const [w, op] of OPERATIONS) if ((r -= w) < 0) return op
  return OPERATIONS[0][1]
}

// ---------------------------------------------------------------------------------------------
// Sampling

const fdCount = (p) => {
  try {
    return readdirSync(`/proc/${p}/fd`).length
  } catch {
    return NaN
  }
}

let pgClient
async function pgBackends() {
  if (!database) return NaN
  if (!pgClient) {
    const {default: pg} = await import('pg')
    pgClient = new pg.Client({database})
    await pgClient.connect()
  }
  const res = await pgClient.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])
  return res.rows[0].n
}

/** The server's heap after a full GC, in MB, through the inspector (NaN without --inspect). */
async function heapAfterGc() {
  if (!inspect) return NaN
  const {WebSocket} = await import('undici')
  const [target] = await (await fetch(`http://${inspect}/json/list`)).json()
  const ws = new WebSocket(target.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)))
  let id = 0
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const mine = ++id
      ws.addEventListener('message', function onMessage(event) {
        const msg = JSON.parse(event.data)
        if (msg.id !== mine) return
        ws.removeEventListener('message', onMessage)
        resolve(msg.result)
      })
      ws.send(JSON.stringify({id: mine, method, params}))
    })
  await send('HeapProfiler.collectGarbage')
  const res = await send('Runtime.evaluate', {expression: 'process.memoryUsage().heapUsed', returnByValue: true})
  ws.close()
  return res?.result?.value / 1e6
}

const samples = []
async function sample(startedAt) {
  const pids = processTree(pid)
  const s = {
    t: Math.round((Date.now() - startedAt) / 1000),
    rssMb: Math.round(pids.reduce((sum, p) => sum + rssMb(p), 0)),
    fds: pids.reduce((sum, p) => sum + fdCount(p), 0),
    pgBackends: await pgBackends().catch(() => NaN),
    heapMb: Math.round((await heapAfterGc().catch(() => NaN)) * 10) / 10,
    requests: counts.requests,
  }
  samples.push(s)
  console.log(JSON.stringify(s))
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
function summary() {
  const third = Math.max(1, Math.floor(samples.length / 3))
  const first = samples.slice(0, third)
  const last = samples.slice(-third)
  const out = {}
  for (const key of ['rssMb', 'fds', 'pgBackends', 'heapMb']) {
    const a = mean(first.map((s) => s[key]))
    const b = mean(last.map((s) => s[key]))
    if (Number.isFinite(a)) out[key] = {firstThird: Math.round(a * 10) / 10, lastThird: Math.round(b * 10) / 10, max: Math.max(...samples.map((s) => s[key]))}
  }
  return out
}

// ---------------------------------------------------------------------------------------------

await call('PUT', `/accounts/${adminUser}`, {auth: null, body: {data: {password: adminPassword}}})
const made = await call('PUT', `/buckets/${bucket}`, {body: {permissions: {read: ['system.Authenticated']}}})
if (made.status >= 300) {
  console.error(`Cannot create the bucket ${bucket}: ${made.status} ${made.text}`)
  process.exit(1)
}
for (let i = 0; i < 40; i++) await call('PUT', `/buckets/${bucket}/collections/c${i}`)
const startedAt = Date.now()
const deadline = startedAt + durationS * 1000
await sample(startedAt)
const sampler = setInterval(() => void sample(startedAt), 10_000)
await Promise.all(
  Array.from({length: clients}, async () => {
    while (Date.now() < deadline) await operation()()
  }),
)
clearInterval(sampler)
await sleep(1000)
await sample(startedAt)
await pgClient?.end()
console.log(JSON.stringify({bucket, durationS, clients, counts, summary: summary(), failures, badRequests}, null, 1))

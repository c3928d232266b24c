#!/usr/bin/env node
// The floor: the least a server can do to answer the two read scenarios with the runtime's own
// SQL. A bare node:http server, our SqlClient (dist/lib/db: the same pg pool, same size, or the
// same PGlite engine on a copy of the folder), and for each request exactly the statements the
// runtime sends (see test/integration/bench-sql-per-request.integration.test.ts), built by the
// runtime's own code from dist/ (no SQL copied here), in the same order, awaited one after the other:
//   GET one record: the prefetch (dist/lib/prefetch.js postgresPrefetch: caller's groups,
//     permission decision, parent collection, record, record ACEs), ONE named prepared statement;
//   list _limit=10: the same prefetch (groups, permission, parent collection, list timestamp)
//     carrying the page (dist/lib/storage/postgresql.js PostgresStorage.listSql, default sort) as
//     a column, ONE statement; the storage's timestamp statement and its own page statement only
//     when the list has no stored timestamp yet, or when the prefetch of the build under test
//     reads no page (as the runtime).
// The bound permissions come from the runtime's inheritedPermissions() and the sort from its
// extractSorting(), so a change of the runtime's read path moves the floor with it.
// No routing framework, no validation, no logging, no pagination token: the runtime/floor ratio
// is what everything else costs.
//
// Under /bare, the independent floors of issue 20 (what the database alone makes the request
// cost, not the runtime's statements; the same HMAC on the Basic credentials, JSON out):
//   GET /bare/v1/…/records?_limit=N[&_sort=f][&f=v][&_since=t]: ONE `SELECT … LIMIT N+1`, its
//     clauses written here as PostgresStorage.listSql (src/lib/storage/sql.ts) writes them for
//     the same querystring: `ORDER BY data->'f' ASC|DESC, objects.last_modified DESC` for a data
//     field, `data->'f' IS NOT NULL AND data @> '{"f": v}'` for an equality filter,
//     `last_modified > from_epoch(t)` with the tombstones for `_since`; any other parameter is a
//     400 (the floor never measures a query it does not run);
//   POST /bare/v1/…/records: ONE `INSERT INTO objects` whose bump_timestamp trigger assigns the
//     timestamp, without the runtime's list lock: concurrent inserts may take the same timestamp
//     and hit the unique index (answered 409 here); the bench counts only the 201s.
//
//   node bench/lib/floor.js --url <database url> --port <port>   (BENCH_FLOOR_SECRET in env)
import {createHmac, randomUUID} from 'node:crypto'
import {createServer} from 'node:http'
import path from 'node:path'

import {targetDist} from './util.js'

const args = process.argv.slice(2)
const opt = (name) => args[args.indexOf(name) + 1]
const dist = (...parts) => import(path.join(targetDist(), 'lib', ...parts))
const {openDatabase} = await dist('db', 'index.js')
const {postgresPrefetch} = await dist('prefetch.js')
const {PostgresStorage} = await dist('storage', 'postgresql.js')
const {inheritedPermissions} = await dist('server', 'authorization.js')
const {extractSorting, parseQuery} = await dist('server', 'querystring.js')
const db = openDatabase(opt('--url'), {})
// As the runtime builds it (src/lib/backends.ts, storage_max_fetch_size defaulting to 10000).
const storage = new PostgresStorage(db, {readonly: false, maxFetchSize: 10000})
const secret = process.env.BENCH_FLOOR_SECRET ?? ''

function userId(header) {
  const m = /^Basic (\S+)$/i.exec(header ?? '')
  if (!m) return null
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  return 'basicauth:' + createHmac('sha256', secret).update(decoded).digest('hex')
}

/** The runtime's prefetch for a user: principals known without groups, groups looked up in it. */
function prefetch(user, query) {
  return postgresPrefetch(db, {userId: user, principals: [user, 'system.Everyone', 'system.Authenticated'], ...query}, storage)
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers})
  res.end(text)
}

async function getRecord(req, res, bid, cid, id, user) {
  const bucket = `/buckets/${bid}`
  const collection = `${bucket}/collections/${cid}`
  const uri = `${collection}/records/${id}`
  const facts = await prefetch(user, {
    bound: inheritedPermissions(uri, 'read'),
    objects: [
      {resourceName: 'collection', parentId: bucket, id: cid},
      {resourceName: 'record', parentId: collection, id},
    ],
    acls: [uri],
  })
  if (!facts.allowed) return send(res, 403, {code: 403})
  if (!facts.objects[0]) return send(res, 404, {code: 404})
  const obj = facts.objects[1]
  if (!obj) return send(res, 404, {code: 404})
  const principals = [user, 'system.Everyone', 'system.Authenticated', ...(facts.groups ?? [])]
  const acl = facts.acls[0]
  const permissions = {}
  if ([...(acl.write ?? [])].some((w) => principals.includes(w))) for (const [perm, set] of Object.entries(acl)) permissions[perm] = [...set].sort()
  send(res, 200, {data: obj, permissions}, {ETag: `"${obj.last_modified}"`})
}

async function listRecords(req, res, bid, cid, query, user) {
  const bucket = `/buckets/${bid}`
  const collection = `${bucket}/collections/${cid}`
  const limit = Number(query.get('_limit') ?? 10000)
  const options = {filters: [], sorting: extractSorting(parseQuery(query.toString())), limit: limit + 1, includeDeleted: false}
  const facts = await prefetch(user, {
    bound: inheritedPermissions(`${collection}/records`, 'read'),
    objects: [{resourceName: 'collection', parentId: bucket, id: cid}],
    acls: [],
    timestamp: {resourceName: 'record', parentId: collection},
    page: {resourceName: 'record', parentId: collection, options},
  })
  if (!facts.allowed) return send(res, 403, {code: 403})
  if (!facts.objects[0]) return send(res, 404, {code: 404})
  const ts = facts.timestamp ?? (await storage.resourceTimestamp('record', collection, {readonly: false}))
  // The runtime answers from the prefetched page only when the list timestamp came with it.
  const page = facts.timestamp !== null && Array.isArray(facts.page) ? facts.page : await storage.list('record', collection, options)
  send(res, 200, {data: page.slice(0, limit)}, {ETag: `"${ts}"`})
}

/** A querystring value as the runtime reads it (a JSON scalar when it parses as one, else text). */
function nativeValue(text) {
  try {
    const v = JSON.parse(text)
    return v === null || typeof v !== 'object' ? v : text
  } catch {
    return text
  }
}

class BadQuery extends Error {}
/** Kinto's filter operators (`gt_n=…`): clauses the bare floor does not write. */
const OPERATOR = /^(min|max|not|lt|gt|in|exclude|like|has|eq|contains|contains_any)_/

/**
 * The bare list floor: one statement, the page and one more row (as a keyset page would), with the
 * clauses the runtime's listSql writes for the querystring. Statements are named per shape.
 */
// (objects.last_modified: a bare `last_modified` in ORDER BY would name the as_epoch() output
// column, whose index the generic plan of the named statement then scans through every list.)
async function bareList(res, bid, cid, query) {
  const limit = Number(query.get('_limit') ?? 10000)
  const params = [`/buckets/${bid}/collections/${cid}`, limit + 1]
  const add = (v) => `$${params.push(v)}`
  let where = ''
  let deleted = ' AND NOT deleted'
  const order = []
  for (const [key, value] of query) {
    if (key === '_limit' || key === '_fields') continue
    if (key === '_since') {
      // As the runtime: a timestamp filter lists tombstones too.
      deleted = ''
      where += ` AND last_modified > from_epoch(${add(String(Number(value)))}::bigint)`
    } else if (key === '_sort') {
      const m = /^(-?)([A-Za-z]\w*)$/.exec(value)
      if (!m || ['id', 'last_modified'].includes(m[2])) throw new BadQuery(`_sort=${value}: one data field only`)
      order.push(`data->${add(m[2])}::text ${m[1] ? 'DESC' : 'ASC'}`)
    } else if (/^[A-Za-z]\w*$/.test(key) && !OPERATOR.test(key) && !['id', 'last_modified'].includes(key)) {
      const v = nativeValue(value)
      where += ` AND (data->${add(key)}::text IS NOT NULL AND data @> ${add(JSON.stringify({[key]: v}))}::jsonb)`
    } else throw new BadQuery(`${key}: no such clause in the bare floor`)
  }
  order.push('objects.last_modified DESC')
  const sql = `SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects
      WHERE parent_id = $1 AND resource_name = 'record'${deleted}${where}
      ORDER BY ${order.join(', ')} LIMIT $2`
  let name = shapes.get(sql)
  if (!name) shapes.set(sql, (name = `floor_bare_list_${shapes.size}`))
  const {rows} = await db.query(sql, params, {name})
  const data = rows.slice(0, limit).map((r) => ({...r.data, id: r.id, last_modified: Number(r.last_modified)}))
  send(res, 200, {data}, {ETag: `"${data[0]?.last_modified ?? 0}"`})
}
const shapes = new Map()

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** The bare POST floor: one INSERT, the trigger assigns the timestamp; a collision is a 409. */
async function barePost(req, res, bid, cid) {
  const body = JSON.parse(await readBody(req))
  const id = randomUUID()
  try {
    const {rows} = await db.query(
      `INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
       VALUES ($1, $2, 'record', $3::jsonb, NULL, FALSE)
       RETURNING as_epoch(last_modified) AS last_modified`,
      [id, `/buckets/${bid}/collections/${cid}`, JSON.stringify(body.data ?? {})],
      {name: 'floor_bare_post'},
    )
    send(res, 201, {data: {...body.data, id, last_modified: Number(rows[0].last_modified)}})
  } catch (err) {
    if (err?.code === '23505' || err?.cause?.code === '23505') return send(res, 409, {code: 409})
    throw err
  }
}

const RECORD = /^\/v1\/buckets\/([^/]+)\/collections\/([^/]+)\/records\/([^/]+)$/
const RECORDS = /^\/v1\/buckets\/([^/]+)\/collections\/([^/]+)\/records$/

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://floor')
    const user = userId(req.headers.authorization)
    if (!user) return send(res, 401, {code: 401})
    let m
    if (url.pathname.startsWith('/bare/')) {
      const bare = url.pathname.slice('/bare'.length)
      if (req.method === 'GET' && (m = RECORDS.exec(bare))) return await bareList(res, m[1], m[2], url.searchParams)
      if (req.method === 'POST' && (m = RECORDS.exec(bare))) return await barePost(req, res, m[1], m[2])
      return send(res, 404, {code: 404})
    }
    if (req.method === 'GET' && (m = RECORD.exec(url.pathname))) return await getRecord(req, res, m[1], m[2], m[3], user)
    if (req.method === 'GET' && (m = RECORDS.exec(url.pathname))) return await listRecords(req, res, m[1], m[2], url.searchParams, user)
    send(res, 404, {code: 404})
  } catch (err) {
    if (err instanceof BadQuery) return send(res, 400, {code: 400, message: err.message})
    send(res, 500, {code: 500, message: String(err?.message ?? err)})
  }
})
server.keepAliveTimeout = 5000
server.listen(Number(opt('--port')), '127.0.0.1', () => process.stderr.write(`Floor serving http://127.0.0.1:${server.address().port}/v1/\n`))
const stop = () => server.close(() => db.close().then(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

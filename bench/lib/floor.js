#!/usr/bin/env node
// The floor: the least a server can do to answer the two read scenarios with the runtime's own
// SQL. A bare node:http server, our SqlClient (dist/lib/db: the same pg pool, same size, or the
// same PGlite instance), and for each request exactly the statements the runtime sends (see
// test/integration/bench-sql-per-request.integration.test.ts), in the same order, awaited one
// after the other as the runtime does:
//   GET one record: group principals, permission check, parent collection, record, record ACEs;
//   list _limit=10: group principals, permission check, parent collection, list timestamp, page.
// No routing framework, no validation, no logging, no pagination token: the runtime/floor ratio
// is what everything else costs.
//
//   node bench/lib/floor.js --url <database url> --port <port>   (BENCH_FLOOR_SECRET in env)
import {createHmac} from 'node:crypto'
import {createServer} from 'node:http'
import path from 'node:path'

import {targetDist} from './util.js'

const args = process.argv.slice(2)
const opt = (name) => args[args.indexOf(name) + 1]
const {openDatabase} = await import(path.join(targetDist(), 'lib', 'db', 'index.js'))
const db = openDatabase(opt('--url'), {})
const secret = process.env.BENCH_FLOOR_SECRET ?? ''

const SQL = {
  principals: `SELECT principal FROM user_principals WHERE user_id = $1 OR user_id = 'system.Authenticated'`,
  allowed: `SELECT EXISTS ( SELECT 1 FROM access_control_entries a JOIN unnest($1::text[], $2::text[]) AS r(object_id, permission) ON a.object_id = r.object_id AND a.permission = r.permission WHERE a.principal = ANY($3::text[]) ) AS allowed`,
  object: `SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects WHERE id = $1 AND parent_id = $2 AND resource_name = $3 AND NOT deleted`,
  acl: `SELECT object_id, permission, principal FROM access_control_entries WHERE object_id = ANY($1::text[])`,
  timestamp: `WITH existing AS ( SELECT MAX(last_modified) AS last_modified FROM ( (SELECT last_modified FROM objects WHERE parent_id = $1 AND resource_name = $2 ORDER BY last_modified DESC LIMIT 1) UNION ALL (SELECT last_modified FROM timestamps WHERE parent_id = $1 AND resource_name = $2) ) AS t), created AS ( INSERT INTO timestamps (parent_id, resource_name, last_modified) SELECT $1, $2, COALESCE(existing.last_modified, clock_timestamp()::timestamp) FROM existing ON CONFLICT (parent_id, resource_name) DO NOTHING RETURNING last_modified ) SELECT as_epoch(COALESCE((SELECT last_modified FROM created), (SELECT last_modified FROM existing))) AS ts`,
  list: `SELECT id, as_epoch(last_modified) AS last_modified, data FROM objects WHERE parent_id = $1 AND resource_name = $2 AND NOT deleted ORDER BY objects.last_modified DESC LIMIT $3`,
}

function userId(header) {
  const m = /^Basic (\S+)$/i.exec(header ?? '')
  if (!m) return null
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  return 'basicauth:' + createHmac('sha256', secret).update(decoded).digest('hex')
}

async function principalsOf(user) {
  const groups = await db.query(SQL.principals, [user])
  return [user, 'system.Everyone', 'system.Authenticated', ...groups.rows.map((r) => r.principal)]
}

async function allowed(bound, principals) {
  const res = await db.query(SQL.allowed, [bound.map((b) => b[0]), bound.map((b) => b[1]), principals])
  return res.rows[0].allowed === true
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers})
  res.end(text)
}

const toObject = (row) => ({...row.data, id: row.id, last_modified: Number(row.last_modified)})

async function getRecord(req, res, bid, cid, id, principals) {
  const bucket = `/buckets/${bid}`
  const collection = `${bucket}/collections/${cid}`
  const uri = `${collection}/records/${id}`
  const bound = [[uri, 'write'], [uri, 'read'], [collection, 'write'], [collection, 'read'], [bucket, 'write'], [bucket, 'read']]
  if (!(await allowed(bound, principals))) return send(res, 403, {code: 403})
  const parent = await db.query(SQL.object, [cid, bucket, 'collection'])
  if (parent.rows.length === 0) return send(res, 404, {code: 404})
  const found = await db.query(SQL.object, [id, collection, 'record'])
  if (found.rows.length === 0) return send(res, 404, {code: 404})
  const acl = await db.query(SQL.acl, [[uri]])
  const permissions = {}
  const writers = acl.rows.filter((r) => r.permission === 'write').map((r) => r.principal)
  if (writers.some((w) => principals.includes(w))) for (const r of acl.rows) (permissions[r.permission] ??= []).push(r.principal)
  const obj = toObject(found.rows[0])
  send(res, 200, {data: obj, permissions}, {ETag: `"${obj.last_modified}"`})
}

async function listRecords(req, res, bid, cid, query, principals) {
  const bucket = `/buckets/${bid}`
  const collection = `${bucket}/collections/${cid}`
  const bound = [[collection, 'write'], [collection, 'read'], [bucket, 'write'], [bucket, 'read']]
  if (!(await allowed(bound, principals))) return send(res, 403, {code: 403})
  const parent = await db.query(SQL.object, [cid, bucket, 'collection'])
  if (parent.rows.length === 0) return send(res, 404, {code: 404})
  const ts = await db.query(SQL.timestamp, [collection, 'record'])
  const limit = Number(query.get('_limit') ?? 10000)
  const page = await db.query(SQL.list, [collection, 'record', limit + 1])
  send(res, 200, {data: page.rows.slice(0, limit).map(toObject)}, {ETag: `"${ts.rows[0].ts}"`})
}

const RECORD = /^\/v1\/buckets\/([^/]+)\/collections\/([^/]+)\/records\/([^/]+)$/
const RECORDS = /^\/v1\/buckets\/([^/]+)\/collections\/([^/]+)\/records$/

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://floor')
    const user = userId(req.headers.authorization)
    if (!user) return send(res, 401, {code: 401})
    const principals = await principalsOf(user)
    let m
    if (req.method === 'GET' && (m = RECORD.exec(url.pathname))) return await getRecord(req, res, m[1], m[2], m[3], principals)
    if (req.method === 'GET' && (m = RECORDS.exec(url.pathname))) return await listRecords(req, res, m[1], m[2], url.searchParams, principals)
    send(res, 404, {code: 404})
  } catch (err) {
    send(res, 500, {code: 500, message: String(err?.message ?? err)})
  }
})
server.keepAliveTimeout = 5000
server.listen(Number(opt('--port')), '127.0.0.1', () => process.stderr.write(`Floor serving http://127.0.0.1:${server.address().port}/v1/\n`))
const stop = () => server.close(() => db.close().then(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

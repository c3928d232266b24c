// The HTTP scenarios of the bench. Each gives autocannon its requests; some need a preparation
// against the running server first (page 1000's URL, the _since timestamp, the PUT ETags).
//
// A scenario may name `twins`: scenarios measured in the same rounds, alternating with it, so
// that the ratio of the two comes from one stretch of time (bench/run.js measurePair): its floors
// (served by bench/lib/floor.js) and runtime variants (another load on the same server, or the
// same load on `kinto start --workers 2`). `server` says which process a scenario loads (`kinto`
// unless stated), `engines` where it runs (both unless stated).
import {BIG, BUCKET, MAIN, PUT_POOL, USER, WRITES, collectionId, putId, recordId} from './dataset.js'
import {basic} from './util.js'

export const AUTH = basic(...USER)
const JSON_HEADERS = {'content-type': 'application/json', authorization: AUTH}
/** The collections of the spread POST scenario, one per client (100-record collections of the dataset). */
const SPREAD = Array.from({length: 8}, (_, i) => collectionId(3 + i))
/**
 * The batch's collection: not the POST's, whose list lock the last batches of a round (still
 * running on the server when the load generator stops) would otherwise hold into the next one.
 */
const BATCHES = collectionId(11)

const postBody = () => JSON.stringify({data: {title: 'Posted by the bench', n: Math.floor(Math.random() * 1e6), done: false, tags: ['bench'], note: 'lorem ipsum '.repeat(6)}})

async function getJson(origin, path, headers = {authorization: AUTH}) {
  const res = await fetch(origin + path, {headers})
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return {body: await res.json(), headers: res.headers}
}

/** Follows Next-Page from page 1 to page `n`; returns page n's path and query. */
export async function pageUrl(origin, firstPath, n) {
  let path = firstPath
  for (let page = 1; page < n; page++) {
    const {headers} = await getJson(origin, path)
    const next = headers.get('next-page')
    if (!next) throw new Error(`no Next-Page after page ${page} of ${firstPath}`)
    const u = new URL(next)
    path = u.pathname + u.search
  }
  return path
}

/**
 * Scenario list. `connections` is the number of concurrent clients. `prepare(origin)` runs
 * against the server once before the load and returns the autocannon requests, or `{loads}`:
 * several autocannon loads run at once (one per client that must keep to its own collection).
 * `prefix` goes before every path (the floor serves issue 20's independent floors under /bare).
 */
export function scenarios({mainRecords, clients = 16, connections = 10, prefix = ''}) {
  const records = (cid) => `${prefix}/v1/buckets/${BUCKET}/collections/${cid}/records`
  const randomRecord = (count) => `${records(MAIN)}/${recordId(1 + Math.floor(Math.random() * count))}`
  const list = (query) => async () => [{method: 'GET', path: `${records(MAIN)}?${query}`, headers: {authorization: AUTH}}]
  return [
    {
      id: 'hello',
      title: 'GET /v1/ (anonymous)',
      connections,
      prepare: async () => [{method: 'GET', path: '/v1/'}],
    },
    {
      id: 'get-record',
      title: 'GET one record (random of the 10k collection)',
      connections,
      twins: ['floor-get-record', 'workers-2'],
      prepare: async () => [{method: 'GET', headers: {authorization: AUTH}, setupRequest: (req) => ({...req, path: randomRecord(mainRecords)})}],
    },
    {
      id: 'workers-2',
      title: 'GET one record, `kinto start --workers 2`',
      connections,
      server: 'workers2',
      // `--workers` serves PostgreSQL backends only (one process holds an embedded folder).
      engines: ['postgresql'],
      prepare: async () => [{method: 'GET', headers: {authorization: AUTH}, setupRequest: (req) => ({...req, path: randomRecord(mainRecords)})}],
    },
    {
      id: 'list-10',
      title: 'list `_limit=10` (10k collection)',
      connections,
      twins: ['floor-list-10', 'floor-list-bare'],
      prepare: list('_limit=10'),
    },
    {
      id: 'list-100',
      title: 'list `_limit=100` (10k collection)',
      connections,
      twins: ['floor-list-100'],
      engines: ['postgresql'],
      prepare: list('_limit=100'),
    },
    {
      id: 'list-sort',
      title: 'list `_sort=n` (a data field), `_limit=10` (10k collection)',
      connections,
      twins: ['floor-list-sort'],
      engines: ['postgresql'],
      prepare: list('_sort=n&_limit=10'),
    },
    {
      id: 'list-filter',
      title: 'list filtered `done=true` (half the records), `_limit=10` (10k collection)',
      connections,
      twins: ['floor-list-filter'],
      engines: ['postgresql'],
      prepare: list('done=true&_limit=10'),
    },
    {
      id: 'page-1',
      title: 'page 1 of the big collection (`_limit=10`)',
      connections,
      big: true,
      prepare: async () => [{method: 'GET', path: `${records(BIG)}?_limit=10`, headers: {authorization: AUTH}}],
    },
    {
      id: 'page-1000',
      title: 'page 1000 of the big collection (followed Next-Page)',
      connections,
      big: true,
      prepare: async (origin) => [{method: 'GET', path: await pageUrl(origin, `${records(BIG)}?_limit=10`, 1000), headers: {authorization: AUTH}}],
    },
    {
      id: 'since-100',
      title: '`_since` sync of the last 100 changes (10k collection)',
      connections,
      twins: ['floor-since'],
      prepare: async (origin) => {
        const {body} = await getJson(origin, `${records(MAIN)}?_limit=101&_fields=id`)
        const since = body.data[100].last_modified
        const check = await getJson(origin, `${records(MAIN)}?_since=${since}`)
        if (check.body.data.length !== 100) throw new Error(`_since=${since} gave ${check.body.data.length} records, not 100`)
        return [{method: 'GET', path: `${records(MAIN)}?_since=${since}`, headers: {authorization: AUTH}}]
      },
    },
    {
      id: 'clients-16',
      title: `${clients} concurrent authenticated clients (distinct users, GET one record)`,
      connections: clients,
      prepare: async () => {
        const users = Array.from({length: clients}, (_, i) => basic(`client-${i}`, `password-${i}`))
        let next = 0
        return [{method: 'GET', setupRequest: (req) => ({...req, path: randomRecord(mainRecords), headers: {...req.headers, authorization: users[next++ % clients]}})}]
      },
    },
    {
      id: 'post',
      title: 'POST a record (8 clients, as issue 20 measures writes)',
      connections: 8,
      write: true,
      twins: ['floor-post', 'post-spread', 'batch-25'],
      prepare: async () => [{method: 'POST', path: records(WRITES), headers: JSON_HEADERS, setupRequest: (req) => ({...req, body: postBody()})}],
    },
    {
      id: 'post-spread',
      title: `POST a record, 8 clients each to its own collection (${SPREAD[0]}–${SPREAD.at(-1)})`,
      connections: 8,
      write: true,
      // One process serves an embedded folder, all its writes on one connection: nothing to spread.
      engines: ['postgresql'],
      prepare: async () => ({
        loads: SPREAD.map((cid) => ({connections: 1, requests: [{method: 'POST', path: records(cid), headers: JSON_HEADERS, setupRequest: (req) => ({...req, body: postBody()})}]})),
      }),
    },
    {
      id: 'put-if-match',
      title: 'PUT with If-Match (current ETag)',
      connections,
      write: true,
      prepare: async (origin) => {
        // A pool of records larger than the number of clients: a client takes a free record and
        // its ETag, and gives both back with the new ETag, so no If-Match is ever stale (a 412
        // would show up as non-2xx).
        const ids = Array.from({length: PUT_POOL}, (_, i) => putId(i))
        const {body} = await getJson(origin, `${records(WRITES)}?in_id=${ids.join(',')}&_limit=${PUT_POOL}`)
        const free = body.data.map((r) => ({id: r.id, etag: `"${r.last_modified}"`}))
        if (free.length !== PUT_POOL) throw new Error(`expected ${PUT_POOL} PUT records, found ${free.length}`)
        let n = 0
        return [
          {
            method: 'PUT',
            setupRequest(req, context) {
              const rec = free.shift()
              context.rec = rec
              const body = JSON.stringify({data: {title: 'Updated by the bench', n: n++, note: 'lorem ipsum '.repeat(6)}})
              return {...req, path: `${records(WRITES)}/${rec.id}`, headers: {...JSON_HEADERS, 'if-match': rec.etag}, body}
            },
            onResponse(status, _body, context, headers) {
              const rec = context.rec
              if (!rec) return
              if (status === 200 && headers.etag) rec.etag = headers.etag
              free.push(rec)
            },
          },
        ]
      },
    },
    {
      id: 'batch-25',
      title: `a batch of 25 creates (POST /v1/batch to ${BATCHES}, 8 clients as the POST)`,
      connections: 8,
      write: true,
      prepare: async (origin) => {
        const batchBody = () =>
          JSON.stringify({
            defaults: {method: 'POST', path: `/buckets/${BUCKET}/collections/${BATCHES}/records`},
            requests: Array.from({length: 25}, () => ({body: JSON.parse(postBody())})),
          })
        // One probe first: a batch answers 200 even when sub-requests fail; all 25 must be 201.
        const probe = await fetch(origin + '/v1/batch', {method: 'POST', headers: JSON_HEADERS, body: batchBody()})
        const statuses = (await probe.json()).responses?.map((r) => r.status) ?? []
        if (probe.status !== 200 || statuses.length !== 25 || statuses.some((s) => s !== 201)) {
          throw new Error(`batch probe: ${probe.status}, sub-requests ${JSON.stringify(statuses)}`)
        }
        return [{method: 'POST', path: '/v1/batch', headers: JSON_HEADERS, setupRequest: (req) => ({...req, body: batchBody()})}]
      },
    },
  ]
}

/**
 * The floor's scenarios (bench/lib/floor.js). Twins of get-record and list-10 served with the
 * runtime's own statements; and, under /bare, issue 20's independent floors, each the same
 * requests answered by ONE statement: a list page as one `SELECT … LIMIT page+1` with the SQL
 * clause the runtime generates for the querystring (`_sort` on a data field, an equality filter,
 * `_since`), a POST as one `INSERT` (only its 201s count: `okRps`).
 */
export function floorScenarios({mainRecords, connections = 10}) {
  const all = scenarios({mainRecords, connections})
  const bare = scenarios({mainRecords, connections, prefix: '/bare'})
  const twin = (id, list, fields) => ({...list.find((s) => s.id === id), twins: undefined, server: 'floor', ...fields})
  // The independent floors of the list scenarios that issue 20 sets on PostgreSQL only.
  const pgOnly = {engines: ['postgresql']}
  return [
    twin('get-record', all, {id: 'floor-get-record', title: 'floor: GET one record'}),
    twin('list-10', all, {id: 'floor-list-10', title: 'floor: list `_limit=10`'}),
    twin('list-10', bare, {id: 'floor-list-bare', title: 'floor: list `_limit=10` as one SELECT … LIMIT 11'}),
    twin('list-100', bare, {id: 'floor-list-100', title: 'floor: list `_limit=100` as one SELECT … LIMIT 101', ...pgOnly}),
    twin('list-sort', bare, {id: 'floor-list-sort', title: 'floor: `_sort=n` as one SELECT … ORDER BY data->\'n\', last_modified DESC LIMIT 11', ...pgOnly}),
    twin('list-filter', bare, {id: 'floor-list-filter', title: 'floor: `done=true` as one SELECT … AND data @> \'{"done":true}\' … LIMIT 11', ...pgOnly}),
    twin('since-100', bare, {id: 'floor-since', title: 'floor: `_since` as one SELECT … AND last_modified > … LIMIT 10001', ...pgOnly}),
    twin('post', bare, {id: 'floor-post', title: 'floor: POST as one INSERT (trigger timestamp, no lock; 201s counted)'}),
  ]
}

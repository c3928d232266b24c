/**
 * The load of the proxy tests: clients of a Kinto behind a proxy, some reusing one kept-alive
 * connection, some opening a new one per request, each sending in turn a list GET, a POST (not
 * idempotent: a proxy does not retry it), a PUT with If-Match and a batch. Every answer is counted
 * by operation and status (or the client's network error), and every write the server acknowledged
 * is remembered, so that `verify()` can check afterwards that each one is readable.
 */
import {Agent, request} from 'node:http'
import {setTimeout as sleep} from 'node:timers/promises'

export const PROXY_LOAD_AUTH = 'Basic ' + Buffer.from('proxy:load').toString('base64')

export type Operation = 'get' | 'post' | 'put-if-match' | 'batch'

export interface ProxyLoadOptions {
  /** http://HOST:PORT of the proxy (no /v1). */
  base: string
  bucket: string
  collection: string
  /** Clients that keep one connection alive. */
  keptAlive?: number
  /** Clients that open a connection per request. */
  fresh?: number
  /** Pause between two requests of one client (ms). */
  pauseMs?: number
  /** A request unanswered after this long counts as 'timeout' (ms). */
  timeoutMs?: number
}

/** One answer that was neither 2xx nor an expected 4xx, or a network error. */
export interface Failure {
  /** ms since the load started */
  at: number
  op: Operation
  keptAlive: boolean
  status: number
  error?: string
  body?: string
}

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  error?: string
}

/** What the record should hold: the value of the last acknowledged write, or any of the writes since whose outcome is unknown. */
interface Expected {
  acked?: number
  unknown: number[]
}

export interface ProxyLoad {
  /** op -> status (or error code) -> count */
  tally: Record<Operation, Record<string, number>>
  failures: Failure[]
  now(): number
  stop(): Promise<void>
  /** Acknowledged writes (each POST, PUT and batch sub-request answered 2xx). */
  acknowledged(): number
  /** Reads the collection back: the acknowledged writes missing or holding another value. */
  verify(): Promise<{checked: number; wrong: string[]}>
}

const ok = (status: number) => status >= 200 && status < 300

/** Counts of statuses that a client should never get from a server that restarts "with no downtime". */
export function unavailability(tally: ProxyLoad['tally']): Record<string, number> {
  const out: Record<string, number> = {}
  for (const byStatus of Object.values(tally)) {
    for (const [status, n] of Object.entries(byStatus)) {
      if (/^\d+$/.test(status) && Number(status) < 500) continue
      out[status] = (out[status] ?? 0) + n
    }
  }
  return out
}

export function startProxyLoad(options: ProxyLoadOptions): Promise<ProxyLoad> {
  const {base, bucket, collection} = options
  const timeoutMs = options.timeoutMs ?? 20_000
  const pause = options.pauseMs ?? 10
  const records = `/v1/buckets/${bucket}/collections/${collection}/records`
  const headers = {Authorization: PROXY_LOAD_AUTH, 'Content-Type': 'application/json'}
  const agents: Agent[] = []

  const send = (agent: Agent | false, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply> =>
    new Promise((resolve) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = request(`${base}${path}`, {method, agent, headers: {...headers, ...extra}}, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: text}))
        res.on('error', (e: NodeJS.ErrnoException) => resolve({status: 0, headers: {}, body: text, error: e.code ?? e.message}))
      })
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), {code: 'timeout'})))
      req.on('error', (e: NodeJS.ErrnoException) => resolve({status: 0, headers: {}, body: '', error: e.code ?? e.message}))
      req.end(payload)
    })

  return (async () => {
    const setup = await send(false, 'PUT', `/v1/buckets/${bucket}`, {})
    if (!ok(setup.status)) throw new Error(`setting up the bucket: ${setup.status} ${setup.error ?? setup.body}`)
    const coll = await send(false, 'PUT', `/v1/buckets/${bucket}/collections/${collection}`, {})
    if (!ok(coll.status)) throw new Error(`setting up the collection: ${coll.status} ${coll.error ?? coll.body}`)

    const t0 = Date.now()
    const now = () => Date.now() - t0
    const tally: ProxyLoad['tally'] = {get: {}, post: {}, 'put-if-match': {}, batch: {}}
    const failures: Failure[] = []
    const expected = new Map<string, Expected>()
    let acknowledged = 0
    let stopped = false
    let seq = 0

    const count = (op: Operation, keptAlive: boolean, r: Reply, expectedStatuses: number[]) => {
      const key = r.error ?? String(r.status)
      tally[op][key] = (tally[op][key] ?? 0) + 1
      if (!expectedStatuses.includes(r.status)) failures.push({at: now(), op, keptAlive, status: r.status, error: r.error, body: r.body.slice(0, 300)})
    }
    const wrote = (id: string, value: number, acked: boolean) => {
      const e = expected.get(id) ?? {unknown: []}
      if (acked) {
        e.acked = value
        e.unknown = []
        acknowledged++
      } else e.unknown.push(value)
      expected.set(id, e)
    }

    const client = async (c: number, keptAlive: boolean) => {
      const agent = keptAlive ? new Agent({keepAlive: true, maxSockets: 1}) : false
      if (agent) agents.push(agent)
      /** The client's own record for the If-Match updates, and its ETag as last seen. */
      let mine: {id: string; etag: string} | undefined
      const ops: Operation[] = ['get', 'post', 'put-if-match', 'batch']
      for (let turn = c; !stopped; turn++) {
        const op = ops[turn % ops.length]
        const value = Math.floor(Math.random() * 1e9)
        if (op === 'get') {
          const r = await send(agent, 'GET', `${records}?_limit=10&_sort=-last_modified`)
          count(op, keptAlive, r, [200])
        } else if (op === 'post') {
          const r = await send(agent, 'POST', records, {data: {value, client: c}})
          count(op, keptAlive, r, [201])
          if (r.status === 201) {
            const {data} = JSON.parse(r.body) as {data: {id: string; last_modified: number}}
            wrote(data.id, value, true)
            mine ??= {id: data.id, etag: `"${data.last_modified}"`}
          }
        } else if (op === 'put-if-match') {
          if (!mine) continue
          const r = await send(agent, 'PUT', `${records}/${mine.id}`, {data: {value, client: c}}, {'If-Match': mine.etag})
          count(op, keptAlive, r, [200])
          if (r.status === 200) {
            mine.etag = `"${(JSON.parse(r.body) as {data: {last_modified: number}}).data.last_modified}"`
            wrote(mine.id, value, true)
          } else {
            if (r.status === 0 || r.status >= 500) wrote(mine.id, value, false)
            // Its ETag may have changed (a write whose answer was lost): read it again.
            const g = await send(agent, 'GET', `${records}/${mine.id}`)
            if (g.status === 200) mine.etag = String(g.headers.etag)
          }
        } else {
          const id = `b${c}-${seq++}`
          const requests = [
            {method: 'POST', path: records, body: {data: {value: value + 1, client: c}}},
            {method: 'PUT', path: `${records}/${id}`, body: {data: {value, client: c}}},
          ]
          const r = await send(agent, 'POST', '/v1/batch', {requests})
          count(op, keptAlive, r, [200])
          if (r.status === 200) {
            const {responses} = JSON.parse(r.body) as {responses: Array<{status: number; body: {data?: {id: string}}}>}
            responses.forEach((sub, i) => {
              const subValue = i === 0 ? value + 1 : value
              if (ok(sub.status)) wrote(sub.body.data!.id, subValue, true)
              else {
                count(op, keptAlive, {status: sub.status, headers: {}, body: JSON.stringify(sub.body)}, [])
                if (i === 1) wrote(id, subValue, false)
              }
            })
          } else wrote(id, value, false)
        }
        await sleep(pause)
      }
    }

    const loops = [
      ...Array.from({length: options.keptAlive ?? 3}, (_, i) => client(i, true)),
      ...Array.from({length: options.fresh ?? 3}, (_, i) => client(100 + i, false)),
    ]

    return {
      tally,
      failures,
      now,
      acknowledged: () => acknowledged,
      async stop() {
        stopped = true
        await Promise.all(loops)
        for (const a of agents) a.destroy()
      },
      async verify() {
        const stored = new Map<string, number>()
        let next: string | undefined = `${records}?_limit=1000`
        while (next) {
          const r = await send(false, 'GET', next)
          if (r.status !== 200) throw new Error(`reading the records back: ${r.status} ${r.error ?? r.body}`)
          for (const rec of (JSON.parse(r.body) as {data: Array<{id: string; value: number}>}).data) stored.set(rec.id, rec.value)
          const page = r.headers['next-page'] as string | undefined
          next = page ? page.slice(page.indexOf('/v1/')) : undefined
        }
        const wrong: string[] = []
        let checked = 0
        for (const [id, e] of expected) {
          if (e.acked === undefined) continue
          checked++
          const value = stored.get(id)
          if (value !== e.acked && !e.unknown.includes(value as number)) wrong.push(`${id}: ${value ?? 'missing'} (acknowledged ${e.acked})`)
        }
        return {checked, wrong}
      },
    }
  })()
}

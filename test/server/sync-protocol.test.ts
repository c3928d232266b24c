/**
 * The sync protocol of Kinto's clients (kinto.js, kinto-http.js, remote-settings) while another
 * client writes, on the memory backends and on PostgreSQL (PGlite here, the real server when
 * KINTO_TEST_DATABASE_URL is set).
 *
 * Upstream's guarantee, from its code (kinto/core/resource/__init__.py): a `_token` holds the sort
 * values of the page's last object (and the offset and a nonce); the next page is the querystring
 * of the first (filters, `_sort`, `_since`) plus `_token`, read as "beyond the last object" in the
 * sort order (equal on the earlier sort keys, strictly beyond on the last one). `last_modified` is
 * always the last sort key and is unique in a list, so the order is total. Hence:
 * - an object whose sort values do not change during the listing is listed exactly once (whatever
 *   else is created, updated or deleted meanwhile); its last_modified is one of them (the last
 *   key), so a write to an object voids this for that object, even one that keeps its sort field;
 * - with `_sort=-last_modified` (the clients' default) a write moves its object before the cursor:
 *   an object written during the listing and not yet listed is not listed at all, and none is
 *   listed twice;
 * - with a sort on a data field an object whose value moves past the cursor is listed again;
 * - a list's ETag is read before its page: every write not in a page carries a timestamp beyond
 *   the ETag of that page, so the next sync from the FIRST page's ETag sees every change made
 *   during the first sync (deletions as tombstones).
 */
import type {FastifyInstance} from 'fastify'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {ALICE, BOB, client, memoryApp, postgresApp} from './helpers.js'

type Request = ReturnType<typeof client>

interface Page {
  etag: string
  ids: string[]
  objects: Array<Record<string, any>>
}

/** Follows Next-Page from `url`, calling `between(n)` after page n (the other client's turn). */
async function pageAll(req: Request, url: string, between: (n: number) => Promise<void> = async () => {}): Promise<Page[]> {
  const pages: Page[] = []
  let next: string | undefined = url
  while (next) {
    const res = await req('GET', next)
    expect(res.status, res.raw).toBe(200)
    pages.push({etag: String(res.headers.etag), ids: res.body.data.map((o: {id: string}) => o.id), objects: res.body.data})
    const header = res.headers['next-page'] as string | undefined
    next = header ? header.replace(/^https?:\/\/[^/]+/, '') : undefined
    if (next) await between(pages.length)
    expect(pages.length).toBeLessThan(200)
  }
  return pages
}

const unquote = (etag: string) => etag.replace(/"/g, '')

for (const backend of ['memory', 'postgresql'] as const) {
  describe(`sync protocol under concurrent writes (${backend})`, () => {
    let app: FastifyInstance
    let close: () => Promise<void>
    let alice: Request
    let bob: Request
    let seq = 0

    beforeAll(async () => {
      if (backend === 'memory') {
        app = memoryApp({'kinto.bucket_create_principals': 'system.Authenticated'})
        close = () => app.close()
      } else {
        const pg = await postgresApp({'kinto.bucket_create_principals': 'system.Authenticated'})
        app = pg.app
        close = pg.close
      }
      alice = client(app, ALICE)
      bob = client(app, BOB)
      expect((await alice('PUT', '/v1/buckets/b', {body: {permissions: {write: ['system.Authenticated']}}})).status).toBe(201)
    }, 60_000)
    afterAll(async () => close?.())

    /** A fresh collection holding `n` records r00…, each with a `title`. */
    async function collection(n: number): Promise<string> {
      const c = `/v1/buckets/b/collections/s${++seq}`
      expect((await alice('PUT', c)).status).toBe(201)
      for (let i = 0; i < n; i++) {
        const id = `r${String(i).padStart(2, '0')}`
        expect((await alice('PUT', `${c}/records/${id}`, {body: {data: {title: `t${String(i).padStart(2, '0')}`}}})).status).toBe(201)
      }
      return c
    }

    test('paging by -last_modified while another client writes: every untouched record once, none twice', async () => {
      const c = await collection(20)
      const touched = new Set<string>()
      let created = 0
      const pages = await pageAll(alice, `${c}/records?_limit=3`, async (n) => {
        // Bob: a creation, an update of a record not listed yet (r00, r01…: the oldest, so the
        // last pages), a deletion of one not listed yet and of one already listed (r19, r18…).
        const fresh = `new${created++}`
        expect((await bob('POST', `${c}/records`, {body: {data: {id: fresh, title: 'new'}}})).status).toBe(201)
        touched.add(fresh)
        const update = `r${String(n - 1).padStart(2, '0')}`
        expect((await bob('PATCH', `${c}/records/${update}`, {body: {data: {title: 'changed'}}})).status).toBe(200)
        touched.add(update)
        for (const gone of [`r${String(19 - n).padStart(2, '0')}`, `r${String(9 + n).padStart(2, '0')}`]) {
          if (touched.has(gone)) continue
          expect((await bob('DELETE', `${c}/records/${gone}`)).status).toBe(200)
          touched.add(gone)
        }
      })
      const ids = pages.flatMap((p) => p.ids)
      expect(pages.every((p) => p.ids.length <= 3)).toBe(true)
      expect(new Set(ids).size, ids.join(',')).toBe(ids.length)
      const untouched = Array.from({length: 20}, (_, i) => `r${String(i).padStart(2, '0')}`).filter((id) => !touched.has(id))
      expect(untouched.length).toBeGreaterThan(0)
      for (const id of untouched) expect(ids, id).toContain(id)
      // Created and updated meanwhile: before the cursor, so not in this listing.
      for (const id of ids) expect(id.startsWith('new')).toBe(false)
      // Deleted ones are not listed as tombstones (no filter on last_modified).
      expect(pages.flatMap((p) => p.objects).some((o) => o.deleted)).toBe(false)
    })

    test('paging by a data field: untouched records once; a record whose value moves past the cursor is listed again', async () => {
      const c = await collection(12)
      const pages = await pageAll(alice, `${c}/records?_sort=title&_limit=4&gt_title=t00`, async (n) => {
        if (n === 1) {
          // r01 (listed first) moves to the end of the order; r11 (not listed yet) to the start.
          expect((await bob('PATCH', `${c}/records/r01`, {body: {data: {title: 'z'}}})).status).toBe(200)
          expect((await bob('PATCH', `${c}/records/r11`, {body: {data: {title: 'a'}}})).status).toBe(200)
        }
      })
      const ids = pages.flatMap((p) => p.ids)
      // The filter is kept by every page (r00 is never listed, the moved r11 no longer matches).
      expect(ids).not.toContain('r00')
      expect(ids).not.toContain('r11')
      expect(ids.filter((id) => id === 'r01')).toHaveLength(2)
      for (let i = 2; i < 11; i++) expect(ids.filter((id) => id === `r${String(i).padStart(2, '0')}`)).toHaveLength(1)
      expect(pages.flatMap((p) => p.objects).map((o) => o.title)).toEqual([...Array.from({length: 10}, (_, i) => `t${String(i + 1).padStart(2, '0')}`), 'z'])
    })

    test("kinto.js's sync loop: the next sync from the first page's ETag sees every change made during the first", async () => {
      const c = await collection(10)
      const first = await pageAll(alice, `${c}/records?_sort=-last_modified`)
      const since = unquote(first[0].etag)
      // Changes to sync, then a first sync in pages while Bob keeps writing.
      for (let i = 0; i < 6; i++) {
        expect((await bob('PATCH', `${c}/records/r0${i}`, {body: {data: {title: `v1-${i}`}}})).status).toBe(200)
      }
      const expected = new Map<string, {title?: string; deleted?: true}>()
      const sync1 = await pageAll(alice, `${c}/records?_sort=-last_modified&_since=${encodeURIComponent(first[0].etag)}&_limit=2`, async (n) => {
        const i = n - 1
        expect((await bob('PUT', `${c}/records/c${i}`, {body: {data: {title: 'created'}}})).status).toBe(201)
        expected.set(`c${i}`, {title: 'created'})
        expect((await bob('PATCH', `${c}/records/r0${i}`, {body: {data: {title: `v2-${i}`}}})).status).toBe(200)
        expected.set(`r0${i}`, {title: `v2-${i}`})
        expect((await bob('DELETE', `${c}/records/r0${9 - i}`)).status).toBe(200)
        expected.set(`r0${9 - i}`, {deleted: true})
      })
      expect(sync1.length).toBeGreaterThan(1)
      // Every page keeps _since: nothing older than the first sync's start.
      for (const o of sync1.flatMap((p) => p.objects)) expect(o.last_modified).toBeGreaterThan(Number(since))
      const ids1 = sync1.flatMap((p) => p.ids)
      expect(new Set(ids1).size).toBe(ids1.length)
      // The second sync, from the first page's ETag of the first sync.
      const sync2 = await pageAll(alice, `${c}/records?_sort=-last_modified&_since=${encodeURIComponent(sync1[0].etag)}&_limit=3`)
      const seen = new Map(sync2.flatMap((p) => p.objects).map((o) => [o.id as string, o]))
      for (const [id, want] of expected) {
        const got = seen.get(id)
        expect(got, id).toBeDefined()
        if (want.deleted) expect(got).toEqual({id, last_modified: got!.last_modified, deleted: true})
        else expect(got!.title, id).toBe(want.title)
      }
      // Every page's ETag is the list's timestamp when that page was read. kinto-http.js keeps the
      // LAST page's (paginatedList): a change made during the sync before the cursor (c0, created
      // after the first page) is then in neither sync, on upstream's server as on ours.
      const lastEtag = sync1[sync1.length - 1].etag
      expect(Number(unquote(lastEtag))).toBeGreaterThan(Number(unquote(sync1[0].etag)))
      expect(ids1).not.toContain('c0')
      expect((await pageAll(alice, `${c}/records?_since=${encodeURIComponent(lastEtag)}`)).flatMap((p) => p.ids)).not.toContain('c0')
      // A client that applies the syncs in order (newest version of each id wins) has the server's state.
      const state = new Map<string, Record<string, any>>()
      for (const o of [...first, ...sync1, ...sync2].flatMap((p) => p.objects)) {
        const known = state.get(o.id)
        if (!known || o.last_modified > known.last_modified) state.set(o.id, o)
      }
      const live = (await pageAll(alice, `${c}/records`)).flatMap((p) => p.objects)
      const merged = [...state.values()].filter((o) => !o.deleted).sort((a, b) => b.last_modified - a.last_modified)
      expect(merged).toEqual(live)
    })

    test('paging _since by a data field through records and tombstones (no such field: sorted as missing) lists each once', async () => {
      const c = await collection(6)
      await alice('PUT', `${c}/records/untitled`, {body: {data: {}}})
      for (const id of ['r01', 'r04']) expect((await alice('DELETE', `${c}/records/${id}`)).status).toBe(200)
      for (const sort of ['title', '-title', 'deleted,title', '-deleted,-title']) {
        const all = (await pageAll(alice, `${c}/records?_since=0&_sort=${sort}`)).flatMap((p) => p.ids)
        const paged = (await pageAll(alice, `${c}/records?_since=0&_sort=${sort}&_limit=1`)).flatMap((p) => p.ids)
        expect(paged, sort).toEqual(all)
        expect([...paged].sort(), sort).toEqual(['r00', 'r01', 'r02', 'r03', 'r04', 'r05', 'untitled'])
      }
    })

    test('paging by a nested field (the token keeps it under its dotted name), equal values and missing ones: each record once, in order', async () => {
      const c = await collection(0)
      const ranks = [3, 1, 2, 1, null, 3, undefined, 2, {}, 'x']
      for (const [i, rank] of ranks.entries()) {
        const meta = rank === undefined ? {} : {rank}
        expect((await alice('PUT', `${c}/records/n${i}`, {body: {data: {meta}}})).status).toBe(201)
      }
      for (const sort of ['meta.rank', '-meta.rank', 'meta.rank,id', '-meta.rank,-id']) {
        const all = (await pageAll(alice, `${c}/records?_sort=${sort}`)).flatMap((p) => p.ids)
        for (const limit of [1, 2, 3]) {
          expect((await pageAll(alice, `${c}/records?_sort=${sort}&_limit=${limit}`)).flatMap((p) => p.ids), `${sort} ${limit}`).toEqual(all)
        }
        expect(all).toHaveLength(ranks.length)
      }
    })

    test('a write given the timestamp of another record of the list is refused: a page boundary never falls between equal timestamps', async () => {
      const c = await collection(0)
      const a = await alice('PUT', `${c}/records/a`, {body: {data: {}}})
      await alice('PUT', `${c}/records/z`, {body: {data: {}}})
      const clash = await bob('PUT', `${c}/records/y`, {body: {data: {last_modified: a.body.data.last_modified}}})
      expect(clash.status).toBe(409)
      const all = (await pageAll(alice, `${c}/records`)).flatMap((p) => p.ids)
      expect((await pageAll(alice, `${c}/records?_limit=1`)).flatMap((p) => p.ids)).toEqual(all)
      expect(all).toEqual(['z', 'a'])
    })

    test('paging while many writes run at the same time: untouched records once, the next sync sees every write', async () => {
      const c = await collection(30)
      const writes: Array<Promise<unknown>> = []
      const touched = new Set<string>()
      const listing = pageAll(alice, `${c}/records?_limit=4`, async (n) => {
        // Writes started without waiting: they run while the next pages are read.
        const id = `r${String(29 - n).padStart(2, '0')}`
        touched.add(id)
        touched.add(`w${n}`)
        writes.push(bob('PATCH', `${c}/records/${id}`, {body: {data: {title: `moved-${n}`}}}))
        writes.push(bob('PUT', `${c}/records/w${n}`, {body: {data: {title: 'w'}}}))
        if (n % 2 === 0) {
          const gone = `r${String(n).padStart(2, '0')}`
          touched.add(gone)
          writes.push(bob('DELETE', `${c}/records/${gone}`))
        }
      })
      const listed = await listing
      const statuses = (await Promise.all(writes)).map((r) => (r as {status: number}).status)
      expect(statuses.filter((s) => s >= 300)).toEqual([])
      const ids = listed.flatMap((p) => p.ids)
      expect(new Set(ids).size, ids.join(',')).toBe(ids.length)
      for (let i = 0; i < 30; i++) {
        const id = `r${String(i).padStart(2, '0')}`
        if (!touched.has(id)) expect(ids, id).toContain(id)
      }
      const sync = (await pageAll(alice, `${c}/records?_since=${encodeURIComponent(listed[0].etag)}&_limit=5`)).flatMap((p) => p.ids)
      for (const id of touched) expect(sync, id).toContain(id)
    })
  })
}

/**
 * `_limit` against `paginate_by` and `storage_max_fetch_size` (upstream's _extract_limit): the
 * smaller of `_limit` and paginate_by, or whichever is set, never above storage_max_fetch_size
 * (the size when neither); every page but the last has a Next-Page, whose `_limit` is that size.
 */
for (const backend of ['memory', 'postgresql'] as const) {
  describe(`page size from _limit, paginate_by and storage_max_fetch_size (${backend})`, () => {
    const setups = {
      'paginate_by=2, storage_max_fetch_size=3': {'kinto.paginate_by': '2', 'kinto.storage_max_fetch_size': '3'},
      'storage_max_fetch_size=3': {'kinto.storage_max_fetch_size': '3'},
      'paginate_by=5, storage_max_fetch_size=3': {'kinto.paginate_by': '5', 'kinto.storage_max_fetch_size': '3'},
    }
    // Page sizes of 7 records for each querystring. `_limit=0` is no `_limit` for the cap but skips
    // paginate_by (upstream: `if limit and paginate_by`), so its first page has storage_max_fetch_size
    // objects; its Next-Page carries that `_limit`, which paginate_by then cuts.
    const expected: Record<keyof typeof setups, Record<string, number[]>> = {
      'paginate_by=2, storage_max_fetch_size=3': {'': [2, 2, 2, 1], '_limit=1': [1, 1, 1, 1, 1, 1, 1], '_limit=10': [2, 2, 2, 1], '_limit=0': [3, 2, 2]},
      'storage_max_fetch_size=3': {'': [3, 3, 1], '_limit=1': [1, 1, 1, 1, 1, 1, 1], '_limit=10': [3, 3, 1], '_limit=0': [3, 3, 1]},
      'paginate_by=5, storage_max_fetch_size=3': {'': [3, 3, 1], '_limit=1': [1, 1, 1, 1, 1, 1, 1], '_limit=4': [3, 3, 1]},
    }
    for (const [name, settings] of Object.entries(setups) as Array<[keyof typeof setups, Record<string, string>]>) {
      test(name, async () => {
        let app: FastifyInstance
        let close: () => Promise<void>
        if (backend === 'memory') {
          app = memoryApp(settings)
          close = () => app.close()
        } else {
          const pg = await postgresApp(settings)
          app = pg.app
          close = pg.close
        }
        try {
          const req = client(app, ALICE)
          expect((await req('PUT', '/v1/buckets/b')).status).toBe(201)
          expect((await req('PUT', '/v1/buckets/b/collections/c')).status).toBe(201)
          for (let i = 0; i < 7; i++) expect((await req('PUT', `/v1/buckets/b/collections/c/records/r${i}`, {body: {data: {i}}})).status).toBe(201)
          for (const [qs, sizes] of Object.entries(expected[name])) {
            const pages = await pageAll(req, `/v1/buckets/b/collections/c/records?${qs}`)
            expect(pages.map((p) => p.ids.length), qs).toEqual(sizes)
            expect(pages.flatMap((p) => p.ids).sort(), qs).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6'])
            const first = await req('GET', `/v1/buckets/b/collections/c/records?${qs}`)
            expect(String(first.headers['next-page']), qs).toContain(`_limit=${sizes[0]}&`)
          }
        } finally {
          await close()
        }
      }, 60_000)
    }
  })
}

/**
 * A batch's consecutive record creates in one list, written together: each sub-request runs in
 * turn, as alone, up to its INSERT (`storage.create`), where it waits; once every sub-request of
 * the run waits there (or has ended), one statement inserts all their rows in their order
 * (`storage.createMany`: the trigger gives them increasing timestamps, as one after the other
 * would get), and each goes on, in order, up to its writer's ACE (`permission
 * addPrincipalToAceAndRead`), written for all in one statement too; then each ends, in order.
 *
 * One sub-request runs at a time; its events reach the batch's collector when it ends, and it
 * ends (answer and `subrequest` hook) only after those before it: both in the batch's order. A
 * sub-request ending early (a 4xx) waits for those before it to report. Hooks emitted while a
 * view runs (`view`, `permission`) come as each gets there. What changes is only when the INSERT and the ACE of the run's creates happen: a
 * sub-request of the run has read (its parent, its permission, its own id) before the creates
 * before it were written. The batch view makes a run only of sub-requests for which that reads
 * the same (batch.ts `createRun`).
 *
 * The run's ids (creates with an id read it first: a live object answers 200) are read in one
 * statement too (`storage.getMany`), at the first sub-request's read of its id, and each
 * sub-request's read is answered from it, once. That reads what one after the other would:
 * nothing writes the run's list before its creates (the run has no `last_modified`, no
 * conditional header, and only its creates write the list, all after every read), the ids differ
 * (no create of the run makes another's id live), and a tombstone reads as absent in both (its
 * create revives it). Once the creates are written, reads go to the storage again.
 */
import {ObjectNotFoundError, type KintoObject} from '../storage/types.js'
import type {EventCollector} from './events.js'
import {override} from './prefetch.js'
import type {TxBackends} from './types.js'

type Settled<T> = {value: T} | {error: unknown}
type Kind = 'create' | 'acl' | 'ready'

interface Waiting {
  kind: Kind
  args: unknown[]
  /** Once written: what the call answers (a function run in the sub-request's turn), or the failure. */
  outcome?: {value: () => unknown} | {error: unknown}
  resolve(value: unknown): void
  reject(error: unknown): void
}

export class Turns {
  /** The backends the run's sub-requests use. */
  readonly tx: TxBackends
  private running = -1
  private readonly waiting = new Map<number, Waiting>()
  private readonly ended = new Set<number>()
  /** The run's ids not yet asked for (before the creates are written); all of them. */
  private readonly unread: Set<string>
  private readonly ids: string[]
  /** The live objects among the run's ids, read at the first read of one. */
  private live: Promise<Map<string, KintoObject>> | null = null
  /** Called when the running sub-request waits or ends. */
  private paused: (() => void) | null = null

  /**
   * @param inner the batch's backends
   * @param list the run's list: its creates wait (the storage must offer createMany)
   * @param ids the ids given in the run's bodies (distinct), read together when getMany is offered
   */
  constructor(
    readonly inner: TxBackends,
    private readonly list: {resourceName: string; parentId: string},
    ids: readonly string[] = [],
  ) {
    this.unread = new Set(inner.storage.getMany ? ids : [])
    this.ids = [...this.unread]
    const {storage, permission} = inner
    const inList = (resourceName: string, parentId: string) => resourceName === list.resourceName && parentId === list.parentId
    const aclTogether = permission.addPrincipalsToAcesAndRead !== undefined
    this.tx = {
      ...inner,
      storage: override(storage, {
        create: (resourceName, parentId, obj, options) =>
          inList(resourceName, parentId) && obj.last_modified === undefined
            ? (this.wait('create', [obj, options?.idGenerator]) as Promise<KintoObject>)
            : storage.create(resourceName, parentId, obj, options),
        get: (resourceName, parentId, id) =>
          inList(resourceName, parentId) && this.unread.has(id) ? this.readId(id) : storage.get(resourceName, parentId, id),
      }),
      permission: aclTogether
        ? override(permission, {
            addPrincipalToAceAndRead: (objectId, perm, principal) => this.wait('acl', [objectId, perm, principal]) as Promise<Record<string, Set<string>>>,
          })
        : permission,
    }
  }

  /** True when these backends can write a run's creates together. */
  static offered(tx: TxBackends): boolean {
    return tx.storage.createMany !== undefined
  }

  /**
   * Runs `count` sub-requests (`start(i, ready)`, which awaits `ready()` before reporting) and
   * gives their outcomes in order.
   */
  async run<T>(events: EventCollector, count: number, start: (i: number, ready: () => Promise<void>) => Promise<T>): Promise<Array<Settled<T>>> {
    const settled: Array<Settled<T>> = []
    const ready = () => this.wait('ready', []) as Promise<void>
    // A sub-request's events reach the batch's collector when it ends, in the batch's order,
    // whatever the order in which their views got to them.
    const add = events.add
    const held = new Map<number, Array<Parameters<EventCollector['add']>[0]>>()
    events.add = (event) => void (held.get(this.running) ?? held.set(this.running, []).get(this.running)!).push(event)
    this.flushEvents = (i) => {
      for (const event of held.get(i) ?? []) add.call(events, event)
      held.delete(i)
    }
    try {
      await this.runAll(count, start, ready, settled)
    } finally {
      events.add = add
    }
    return settled
  }

  private flushEvents: (i: number) => void = () => {}

  /** storage.get of one of the run's ids, answered from one read of them all. */
  private async readId(id: string): Promise<KintoObject> {
    this.unread.delete(id)
    const {resourceName, parentId} = this.list
    this.live ??= this.inner.storage.getMany!(resourceName, parentId, this.ids).then((objs) => new Map(objs.map((o) => [o.id, o])))
    const found = (await this.live).get(id)
    if (!found) throw new ObjectNotFoundError(resourceName, id)
    return found
  }

  private async runAll<T>(
    count: number,
    start: (i: number, ready: () => Promise<void>) => Promise<T>,
    ready: () => Promise<void>,
    settled: Array<Settled<T>>,
  ): Promise<void> {
    for (let i = 0; i < count; i++) {
      await this.turn(i, () => {
        start(i, ready).then(
          (value) => this.end(i, () => (settled[i] = {value})),
          (error: unknown) => this.end(i, () => (settled[i] = {error})),
        )
      })
    }
    while (this.waiting.size > 0) {
      await this.write()
      // In order; a sub-request that ended waits until those before it have.
      for (const i of [...this.waiting.keys()].sort((a, b) => a - b)) {
        const w = this.waiting.get(i)!
        if (!w.outcome) continue
        if (w.kind === 'ready' && !this.endedBefore(i)) continue
        this.waiting.delete(i)
        const outcome = w.outcome
        await this.turn(i, () => {
          if ('error' in outcome) w.reject(outcome.error)
          else Promise.resolve().then(outcome.value).then(w.resolve, w.reject)
        })
        // Done with its writes: it reports now, before the next one goes on (as one after the other).
        const next = this.waiting.get(i)
        if (next?.kind === 'ready' && this.endedBefore(i)) {
          this.waiting.delete(i)
          await this.turn(i, () => next.resolve(undefined))
        }
      }
    }
  }

  private endedBefore(i: number): boolean {
    for (let j = 0; j < i; j++) if (!this.ended.has(j)) return false
    return true
  }

  /** Lets sub-request i run until it waits or ends. */
  private turn(i: number, go: () => void): Promise<void> {
    return new Promise((resolve) => {
      this.running = i
      this.paused = resolve
      go()
    })
  }

  private end(i: number, record: () => void): void {
    record()
    this.flushEvents(i)
    this.ended.add(i)
    this.paused?.()
  }

  private wait(kind: Kind, args: unknown[]): Promise<unknown> {
    const i = this.running
    return new Promise((resolve, reject) => {
      this.waiting.set(i, {kind, args, resolve, reject})
      this.paused?.()
    })
  }

  /** The waiting writes, each kind in one statement; `ready` needs none. */
  private async write(): Promise<void> {
    // What the run read of its ids is about to be written over.
    this.unread.clear()
    const pending = [...this.waiting.entries()].filter(([, w]) => !w.outcome).sort((a, b) => a[0] - b[0])
    const creates = pending.filter(([, w]) => w.kind === 'create').map(([, w]) => w)
    const acls = pending.filter(([, w]) => w.kind === 'acl').map(([, w]) => w)
    for (const [, w] of pending) if (w.kind === 'ready') w.outcome = {value: () => undefined}
    const {storage, permission} = this.inner
    const {resourceName, parentId} = this.list
    if (creates.length > 0) {
      await settle(creates, async () => {
        const items = creates.map((w) => ({obj: w.args[0] as Record<string, unknown>, idGenerator: w.args[1] as (() => string) | undefined}))
        const rows = await storage.createMany!(resourceName, parentId, items)
        // An id that was live: create() itself says so (UnicityError), as it would have.
        return rows.map((row, k) => (row ? () => row : () => storage.create(resourceName, parentId, items[k].obj, {idGenerator: items[k].idGenerator})))
      })
    }
    if (acls.length > 0) {
      await settle(acls, async () => {
        const acl = await permission.addPrincipalsToAcesAndRead!(acls.map((w) => w.args as [string, string, string]))
        return acl.map((a) => () => a)
      })
    }
  }
}

/**
 * Sets each waiting call's outcome: its answer, or the statement's failure for all. An answer is
 * a function run when that sub-request's turn comes (it may make a call of its own then).
 */
async function settle(waiting: Waiting[], write: () => Promise<Array<() => unknown>>): Promise<void> {
  try {
    const values = await write()
    waiting.forEach((w, k) => (w.outcome = {value: values[k]}))
  } catch (error) {
    for (const w of waiting) w.outcome = {error}
  }
}

/**
 * Resource events (upstream's kinto.core.events): views notify what they did; before the request's
 * transaction commits, listeners run in order (cascades such as "a bucket was deleted, delete its
 * collections" are listeners), and what they notify runs after them. After the commit, the
 * "after" listeners see the same events (plugins that talk to the outside world).
 *
 * Events of one request (a whole batch included) are grouped by (resource, parent, action) as
 * upstream does, so a batch of 25 record creations gives one event with 25 impacted objects.
 */

export type Action = 'create' | 'update' | 'delete' | 'read'

export interface ImpactedObject {
  new: Record<string, unknown>
  old?: Record<string, unknown>
}

export interface ResourceEvent {
  action: Action
  resourceName: string
  parentId: string
  /** Upstream's payload: timestamp, action, uri, user_id, resource_name and the matchdict ids. */
  payload: Record<string, unknown>
  /** For changes: {new, old?}; for reads: the objects read. */
  impacted: ImpactedObject[]
  readObjects: Record<string, unknown>[]
  /**
   * For changes: the payload each impacted object came with, in the same order. A grouped event
   * keeps its first one in `payload` (as upstream); a batch's sub-requests may differ in user
   * (their own Authorization) and, for buckets, in bucket.
   */
  payloads?: Record<string, unknown>[]
}

export interface EventFilter {
  resources?: string[]
  actions?: Action[]
}

export type EventListener<C> = (event: ResourceEvent, context: C) => Promise<void> | void

interface Registered<C> {
  filter: EventFilter
  listener: EventListener<C>
}

/** What a listener registered without `actions` takes (upstream: everything but reads). */
const DEFAULT_ACTIONS: readonly Action[] = ['create', 'update', 'delete']

/** Listeners registered at startup (core cascades, plugins). */
export class EventBus<C> {
  private readonly before: Registered<C>[] = []
  private readonly after: Registered<C>[] = []

  /** Runs inside the request transaction, before commit. */
  onChanged(filter: EventFilter, listener: EventListener<C>): void {
    this.before.push({filter, listener})
  }

  /** Runs after a successful commit; failures are logged, never sent to the client. */
  afterCommit(filter: EventFilter, listener: EventListener<C>): void {
    this.after.push({filter, listener})
  }

  /** Whether any listener (before or after commit) takes events of this action. */
  listensTo(action: Action): boolean {
    const takes = ({filter}: Registered<C>) => (filter.actions ?? DEFAULT_ACTIONS).includes(action)
    return this.before.some(takes) || this.after.some(takes)
  }

  get hasAfterListeners(): boolean {
    return this.after.length > 0
  }

  listenersFor(event: ResourceEvent, afterCommit: boolean): EventListener<C>[] {
    const list = afterCommit ? this.after : this.before
    return list.filter(({filter}) => matches(filter, event)).map(({listener}) => listener)
  }
}

function matches(filter: EventFilter, event: ResourceEvent): boolean {
  const actions = filter.actions ?? DEFAULT_ACTIONS
  if (!actions.includes(event.action)) return false
  if (filter.resources && filter.resources.length > 0 && !filter.resources.includes(event.resourceName)) return false
  return true
}

/** The events of one request, grouped; draining increments the cascade level. */
export class EventCollector {
  private cascadeLevel = 1
  private readonly events = new Map<string, ResourceEvent>()
  /** Everything emitted, for after-commit listeners. */
  readonly emitted: ResourceEvent[] = []

  add(event: Omit<ResourceEvent, 'readObjects' | 'impacted'> & {impacted?: ImpactedObject[]; readObjects?: Record<string, unknown>[]}): void {
    const key = `${this.cascadeLevel}\u0000${event.resourceName}\u0000${event.action}\u0000${event.parentId}`
    const existing = this.events.get(key)
    const impacted = event.impacted ?? []
    if (existing) {
      existing.impacted.push(...impacted)
      existing.readObjects.push(...(event.readObjects ?? []))
      existing.payloads?.push(...impacted.map(() => event.payload))
      return
    }
    const payloads = event.action === 'read' ? undefined : impacted.map(() => event.payload)
    this.events.set(key, {...event, impacted: [...impacted], readObjects: [...(event.readObjects ?? [])], payloads})
  }

  get size(): number {
    return this.events.size
  }

  /** The events not drained yet, in order. */
  pending(): IterableIterator<ResourceEvent> {
    return this.events.values()
  }

  /** Takes the next pending event (insertion order), or undefined. */
  next(): ResourceEvent | undefined {
    const first = this.events.keys().next()
    if (first.done) return undefined
    const event = this.events.get(first.value)!
    this.events.delete(first.value)
    this.emitted.push(event)
    return event
  }

  /** Starts a new cascade level: events added from now on are not merged with earlier ones. */
  bumpLevel(): void {
    this.cascadeLevel++
  }
}

/** Runs the before-commit listeners until no event is pending (cascades included). */
export async function drainEvents<C>(bus: EventBus<C>, collector: EventCollector, context: C): Promise<void> {
  collector.bumpLevel()
  let event = collector.next()
  while (event) {
    for (const listener of bus.listenersFor(event, false)) await listener(event, context)
    event = collector.next()
  }
}

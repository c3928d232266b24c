/**
 * What the PostgreSQL backends (storage, permission, cache) share: the errors a backend raises,
 * driver errors turned into them, BEGIN … COMMIT around a function, and a base class holding the
 * client, the bound transaction and the error translation.
 */
import {isKintoError} from '../errors.js'
import type {Queryable, SqlClient} from './types.js'

/** A failure a backend raises on purpose (not found, conflict, …): translateError() lets it through. */
export class TypedBackendError extends Error {}

/**
 * A write hit the unique index on (parent_id, resource_name, last_modified): a client-given
 * `last_modified` equal to another object's in the same list. Upstream: 409 errno 122 + Retry-After.
 * Our own concurrent writes never cause it (the backends serialise timestamp bumps per list), but
 * a writer that takes none of our locks does (upstream Kinto serving the same database): its
 * uncommitted row got the timestamp the trigger then gives ours too. `retryable`: the timestamp was
 * the trigger's, so the transaction run again (once that writer is done) gets the next one.
 */
export class IntegrityError extends TypedBackendError {
  readonly retryable: boolean

  constructor(message = 'Integrity constraint violated', options?: {cause?: unknown; retryable?: boolean}) {
    super(message, options)
    this.name = 'IntegrityError'
    this.retryable = options?.retryable ?? false
  }
}

/** The unique index of upstream's schema that keeps the timestamps of one list distinct. */
const LIST_TIMESTAMPS_INDEX = 'idx_objects_parent_id_resource_name_last_modified'

/** Any other failure of the backend (connection lost, …): becomes a 503. */
export class BackendError extends TypedBackendError {
  /** True for a deadlock or serialisation failure: running the whole transaction again may succeed. */
  readonly retryable: boolean
  /**
   * True when the backend could not be reached (refused, timed out, closed): the message then names
   * the server and the reason, all an operator needs, and it is logged without its stack.
   */
  readonly unreachable: boolean

  constructor(message: string, options?: {cause?: unknown; retryable?: boolean; unreachable?: boolean}) {
    super(message, options)
    this.name = 'BackendError'
    this.retryable = options?.retryable ?? false
    this.unreachable = options?.unreachable ?? false
  }
}

/** Driver errors → backend errors (the backends' own typed errors pass through). */
export function translateError(error: unknown, what = 'Storage'): Error {
  if (error instanceof TypedBackendError || isKintoError(error)) return error as Error
  const e = error as {code?: string; constraint?: string; message?: string}
  if (e?.code === '23505') return new IntegrityError('Integrity constraint violated', {cause: error, retryable: e.constraint === LIST_TIMESTAMPS_INDEX})
  if (e?.code === '40P01' || e?.code === '40001') {
    return new BackendError(`${what} backend: transaction aborted by a concurrent one (${e.code}); retry it.`, {cause: error, retryable: true})
  }
  if (e?.code === '42P01' || e?.code === '42883') {
    // undefined table / function: the schema was never installed (or is incomplete).
    return new BackendError(`${what} backend: the database has no Kinto schema (${e.message}); run 'kinto migrate'.`, {cause: error})
  }
  return new BackendError(`${what} backend failure: ${e?.message ?? String(error)}`, {cause: error})
}

/**
 * BEGIN … COMMIT around fn on one connection. Errors thrown by fn come out unchanged (whatever
 * their type); failures of the database itself (BEGIN, COMMIT, a lost connection) become
 * BackendError.
 */
export async function runTransaction<T>(client: SqlClient, fn: (q: Queryable) => Promise<T>, what = 'Storage'): Promise<T> {
  let fromFn = false
  try {
    return await client.transaction(async (q) => {
      try {
        return await fn(q)
      } catch (error) {
        fromFn = true
        throw error
      }
    })
  } catch (error) {
    throw fromFn ? error : translateError(error, what)
  }
}

/** A backend on a PostgreSQL database: statements go to the bound transaction, else the client. */
export abstract class PostgresBackend {
  constructor(
    readonly client: SqlClient,
    /** When set, every statement runs on this transaction (see the subclasses' bind()). */
    protected readonly tx: Queryable | undefined,
    /** Names the backend in errors (`Storage backend failure: …`). */
    private readonly what: string,
  ) {}

  protected get q(): Queryable {
    return this.tx ?? this.client
  }

  /** Runs fn, turning driver errors into backend errors. */
  protected async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw translateError(error, this.what)
    }
  }
}

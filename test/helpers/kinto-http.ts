/**
 * The kinto-http client for tests: the class, typed, whichever way the runtime hands it over, and
 * the few types its public index does not export. Tests import the class from here, not from
 * 'kinto-http'.
 *
 * kinto-http's `main` is CommonJS (`exports.default = KintoClient`, with `__esModule`) and its
 * package.json has no `"type": "module"`, so under NodeNext TypeScript types the default import
 * as `module.exports`, the class being its `.default`: what Node's own ESM loader gives. vitest
 * unwraps `__esModule` modules instead, and there the default import is the class itself (which
 * has no `default` of its own). TypeScript only knows the first shape, so the second branch below
 * types as `never` and the union is the class.
 */
import kintoHttp from 'kinto-http'
import type base from 'kinto-http/lib/base.js'

/** The class under Node's loader (`module.exports.default`) or vitest's (the default import). */
export const KintoClient: typeof kintoHttp.default = 'default' in kintoHttp ? kintoHttp.default : kintoHttp

/** A client instance (the class's instance type, under the class's name). */
export type KintoClient = InstanceType<typeof kintoHttp.default>

/** What `client.batch(fn)` hands `fn` when no bucket or collection option is given: a batching client of kinto-http's base class. */
export type KintoBatchClient = InstanceType<typeof base.default>

/** A request as `client.execute()` takes it. */
export type KintoRequest = Parameters<KintoClient['execute']>[0]

/**
 * The JSON body of a request made with `client.execute()` (without `raw`, which it resolves with).
 * kinto-http declares one return type for both modes, `T | HttpResponse<T>`, the second being what
 * `{raw: true}` resolves with; this helper never passes `raw`, hence the narrowing cast.
 */
export async function executeJson<T>(client: KintoClient, request: KintoRequest): Promise<T> {
  return (await client.execute<T>(request)) as T
}

/** Status, errno and message of a client call that must fail (the test fails when it succeeds). */
export async function failure(promise: Promise<unknown>): Promise<{status?: number; errno?: number; message?: string}> {
  try {
    await promise
  } catch (err) {
    const e = err as {response?: {status: number}; data?: {errno: number; code: number; message: string}}
    return {status: e.response?.status ?? e.data?.code, errno: e.data?.errno, message: e.data?.message}
  }
  throw new Error('expected the call to fail')
}

/**
 * Dependencies loaded when first used, not when a module is imported. Without an oclif manifest
 * (the work tree, `npm start`) oclif imports every command at each start, and the runtime imports
 * what all its features could need: loading undici, hot-shots, ajv and bcryptjs up front cost
 * `kinto start` tens of MB of resident memory it never used (bench/ measures the idle RSS).
 */
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)

/** `load()` run once, on the first call. */
export function lazy<T>(load: () => T): () => T {
  let loaded = false
  let value: T
  return () => {
    if (!loaded) {
      value = load()
      loaded = true
    }
    return value
  }
}

/** A CommonJS package, loaded on the first call (synchronously, so constructors can use it). */
export function lazyRequire<T>(id: string): () => T {
  return lazy(() => require(id) as T)
}

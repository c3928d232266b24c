import {readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** Root of the installed package (holds package.json, sql/, templates/). Works from src/ and dist/. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * Where one page of docs/ is in this installation (they ship with the package), for hints that send
 * an operator there: a path that opens wherever `kinto` was installed, not one relative to our repository.
 */
export function docsFile(name: string): string {
  return path.join(packageRoot, 'docs', name)
}

let cached: string | undefined
export function packageVersion(): string {
  cached ??= (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {version: string}).version
  return cached
}

/** The Kinto HTTP API version we implement. */
export const HTTP_API_VERSION = '1.23'

/**
 * Upstream's CLI takes its global options before the command (`kinto --ini config/kinto.ini
 * migrate`, `kinto -q purge-deleted …`); oclif reads them only after it. This moves the global
 * flags found before the command to its end, so both orders mean the same.
 */

/** Global flags that take a value, and those that do not (as every command defines them). */
const WITH_VALUE = new Set(['--ini'])
const SWITCHES = new Set(['--debug', '-v', '--verbose', '-q', '--quiet', '--json'])

export interface Hoisted {
  /** The command's words (`deploy`, `nginx`), then the rest of the line with the global flags last. */
  words: string[]
  rest: string[]
}

/**
 * Splits `argv` (which starts with a flag) into the command words and the rest, the leading global
 * flags moved after them. Null when a leading flag is not a global one or no command follows.
 */
export function hoistGlobalFlags(argv: string[]): Hoisted | null {
  const globals: string[] = []
  let i = 0
  while (i < argv.length && argv[i].startsWith('-')) {
    const token = argv[i]
    const [name] = token.split('=', 1)
    if (SWITCHES.has(token)) {
      globals.push(token)
      i += 1
    } else if (WITH_VALUE.has(name) && token.includes('=')) {
      globals.push(token)
      i += 1
    } else if (WITH_VALUE.has(token) && i + 1 < argv.length) {
      globals.push(token, argv[i + 1])
      i += 2
    } else {
      return null
    }
  }
  const words: string[] = []
  while (i < argv.length && !argv[i].startsWith('-')) words.push(argv[i++])
  if (words.length === 0) return null
  const tail = argv.slice(i)
  const dashdash = tail.indexOf('--')
  const rest = dashdash < 0 ? [...tail, ...globals] : [...tail.slice(0, dashdash), ...globals, ...tail.slice(dashdash)]
  return {words, rest}
}

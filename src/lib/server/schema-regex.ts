/**
 * The regular expressions of JSON schemas (`pattern`, `patternProperties`) for ajv, as upstream's
 * validator reads them (Python's `re`, searched) and with a time limit: a pattern that backtracks
 * for ever on some value would otherwise hold the whole server, as it holds upstream's process.
 */
import {Worker} from 'node:worker_threads'

/** How long the matches of one validation may take before the value is refused. */
const MATCH_TIMEOUT_MS = 500

/** A match that did not finish in time: the schema's pattern is at fault. */
export class PatternTimeoutError extends Error {
  constructor(readonly pattern: string) {
    super(`pattern ${pattern} took too long to match`)
  }
}

/** A pattern no regular expression engine reads (upstream: not a `regex` format). */
export class PatternSyntaxError extends Error {
  constructor(readonly pattern: string) {
    super(`${pattern} is not a regex`)
  }
}

/** Python's `\w` (Unicode letters and digits, `_`), as the members of a JS class. */
const WORD = '\\p{L}\\p{N}_'
const SYNTAX = new Set('^$\\.*+?()[]{}|/')
const ESCAPES: Record<string, string> = {a: '\\x07', A: '^', Z: '$'}

/**
 * A Python `re` pattern written for JavaScript (u flag) and the flags its inline `(?aimsx)`
 * prefix asks for. What differs: `\w`, `\d`, `\b` are Unicode-aware; `$` also matches before a
 * final newline and `.` takes `\r`; any escaped punctuation is that character; a leading `]` of a
 * set is a member, one outside a set is itself; a `{` that is no repetition is itself; `(?P<n>…)`,
 * `(?P=n)`, `\A`, `\Z`; `(?#…)` comments; `(?x)`: blanks and `#…` line comments outside sets.
 * JavaScript's own `(?<n>…)`, `\k<n>` and `\cX` throw PatternSyntaxError, as Python refuses them.
 */
export function pythonPattern(source: string): {source: string; flags: string} {
  let flags = ''
  let i = 0
  let ascii = false
  const inline = /^\(\?([aiLmsux]+)\)/.exec(source)
  if (inline) {
    flags = [...new Set(inline[1])].filter((f) => 'ims'.includes(f)).join('')
    ascii = inline[1].includes('a')
    i = inline[0].length
  }
  const verbose = inline?.[1].includes('x') ?? false
  const multiline = flags.includes('m')
  const dotAll = flags.includes('s')
  let out = ''
  let inClass = false
  while (i < source.length) {
    const c = source[i]
    if (c === '\\' && i + 1 < source.length) {
      const e = String.fromCodePoint(source.codePointAt(i + 1)!)
      i += 1 + e.length
      // Escapes only JavaScript reads (a named back-reference, a control character).
      if (e === 'k' || e === 'c') throw new PatternSyntaxError(source)
      // (?a): JavaScript's own \d, \w and \b are Python's ASCII ones.
      if (ascii && 'dDwWbB'.includes(e)) out += `\\${e}`
      else if (e === 'd') out += '\\p{Nd}'
      else if (e === 'D' && !inClass) out += '\\P{Nd}'
      else if (e === 'w') out += inClass ? WORD : `[${WORD}]`
      else if (e === 'W' && !inClass) out += `[^${WORD}]`
      else if (e === 'b' && !inClass) out += `(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`
      else if (e === 'B' && !inClass) out += `(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`
      else if (e === 'U' && /^[0-9a-fA-F]{8}$/.test(source.slice(i, i + 8))) {
        out += `\\u{${source.slice(i, i + 8)}}`
        i += 8
      } else if (!inClass && e in ESCAPES) out += ESCAPES[e]
      else if (e === 'a') out += ESCAPES.a
      else if (/[0-9A-Za-z]/.test(e) || SYNTAX.has(e) || (inClass && e === '-')) out += `\\${e}`
      else out += `\\u{${e.codePointAt(0)!.toString(16)}}`
      continue
    }
    if (inClass) {
      if (c === ']') inClass = false
      out += c === '[' ? '\\[' : c
      i++
      continue
    }
    if (verbose && /[ \t\n\r\v\f]/.test(c)) {
      i++
      continue
    }
    if (verbose && c === '#') {
      const end = source.indexOf('\n', i)
      i = end < 0 ? source.length : end + 1
      continue
    }
    // `(?<name>…)` is JavaScript's named group; Python reads only look-behinds there.
    if (source.startsWith('(?<', i) && !'=!'.includes(source[i + 3] ?? '')) throw new PatternSyntaxError(source)
    const comment = source.startsWith('(?#', i) ? source.indexOf(')', i) : -1
    if (comment >= 0) {
      i = comment + 1
      continue
    }
    if (c === ']') {
      out += '\\]'
      i++
      continue
    }
    if (c === '[') {
      inClass = true
      const negated = source[i + 1] === '^'
      out += negated ? '[^' : '['
      i += negated ? 2 : 1
      if (source[i] === ']') {
        out += '\\]'
        i++
      }
      continue
    }
    if (c === '{' || c === '}') {
      const repeat = c === '{' ? /^\{(\d*)(?:(,)(\d*))?\}/.exec(source.slice(i)) : null
      if (repeat && (repeat[1] !== '' || repeat[2] !== undefined)) {
        out += `{${repeat[1] || '0'}${repeat[2] ?? ''}${repeat[3] ?? ''}}`
        i += repeat[0].length
      } else {
        out += `\\${c}`
        i++
      }
      continue
    }
    const named = /^\(\?P(?:<([^>]*)>|=([^)]*)\))/.exec(source.slice(i))
    if (named) {
      out += named[1] === undefined ? `\\k<${named[2]}>` : `(?<${named[1]}>`
      i += named[0].length
      continue
    }
    if (c === '$' && !multiline) out += '(?=\\n?$)'
    else if (c === '.' && !dotAll) out += '[^\\n]'
    else out += c
    i++
  }
  return {source: out, flags}
}

/**
 * The matching thread: it tests what it is sent and answers through shared memory, so the server
 * waits for it synchronously, until the deadline, and stops it when a match runs longer.
 */
const WORKER = `
const {parentPort, workerData} = require('node:worker_threads')
const state = new Int32Array(workerData)
const compiled = new Map()
parentPort.on('message', ({source, flags, value}) => {
  const key = flags + '/' + source
  let re = compiled.get(key)
  if (!re) {
    if (compiled.size >= 256) compiled.clear()
    re = new RegExp(source, flags)
    compiled.set(key, re)
  }
  Atomics.store(state, 0, re.test(value) ? 2 : 1)
  Atomics.notify(state, 0)
})`

const state = new Int32Array(new SharedArrayBuffer(4))
let worker: Worker | undefined

/** When the matches of the validation under way must have ended (withMatchBudget). */
let deadline: number | undefined

/**
 * `run()`, whose pattern matches share MATCH_TIMEOUT_MS between them: a value whose match runs
 * past it (or one more match after it) throws PatternTimeoutError. Without it, each match has
 * that time of its own.
 */
export function withMatchBudget<T>(run: () => T): T {
  if (deadline !== undefined) return run()
  deadline = performance.now() + MATCH_TIMEOUT_MS
  try {
    return run()
  } finally {
    deadline = undefined
  }
}

function matchInThread(source: string, flags: string, value: string, pattern: string, until: number): boolean {
  if (!worker) {
    worker = new Worker(WORKER, {eval: true, workerData: state.buffer})
    worker.unref()
  }
  Atomics.store(state, 0, 0)
  worker.postMessage({source, flags, value})
  // The wait may end before the answer is written (V8 wakes it to run interrupts): only the
  // answer, or the deadline, ends it.
  while (Atomics.load(state, 0) === 0) {
    const left = until - performance.now()
    if (left <= 0) {
      void worker.terminate()
      worker = undefined
      throw new PatternTimeoutError(pattern)
    }
    Atomics.wait(state, 0, 0, left)
  }
  return Atomics.load(state, 0) === 2
}

/** The steps a match may take here, in the server's thread, rather than in the matching thread. */
const INLINE_STEPS = 1e6

/**
 * How many repetitions `source` (JavaScript) holds, when that bounds its backtracking: a match
 * of a value of length n then tries at most about (n + 1)^(count + 1) paths. Undefined when
 * nothing simple bounds it: a repeated group, an alternative, a back-reference.
 */
export function repetitions(source: string): number | undefined {
  let count = 0
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') {
      const e = source[i + 1]
      if (/[1-9k]/.test(e)) return undefined
      i = 'pPu'.includes(e) && source[i + 2] === '{' ? source.indexOf('}', i) : i + 1
    } else if (c === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) {
        if (source[i] === '\\') i = 'pPu'.includes(source[i + 1]) && source[i + 2] === '{' ? source.indexOf('}', i) : i + 1
      }
    } else if (c === '|') {
      return undefined
    } else if (c === '*' || c === '+' || c === '{' || (c === '?' && source[i - 1] !== '(')) {
      if (source[i - 1] === ')') return undefined
      // The `?` of a lazy repetition (`*?`) is no repetition of its own.
      if (c === '?' && '*+?}'.includes(source[i - 1])) continue
      count++
      if (c === '{') i = source.indexOf('}', i)
    }
    if (i < 0) return undefined
  }
  return count
}

/**
 * ajv's `code.regExp`: the pattern read as Python's, compiled here (a syntax error refuses the
 * schema). A match whose backtracking is bounded small runs here; any other in the matching
 * thread, within the time left.
 */
export function schemaRegExp(pattern: string, u: string): {test: (value: string) => boolean; toString: () => string} {
  const translated = pythonPattern(pattern)
  let re: RegExp
  try {
    re = new RegExp(translated.source, translated.flags + u)
  } catch {
    throw new PatternSyntaxError(pattern)
  }
  const count = repetitions(re.source)
  return {
    test: (value: string) => {
      const now = performance.now()
      if (deadline !== undefined && now >= deadline) throw new PatternTimeoutError(pattern)
      if (count !== undefined && (value.length + 1) ** (count + 1) <= INLINE_STEPS) return re.test(value)
      return matchInThread(re.source, re.flags, value, pattern, deadline ?? now + MATCH_TIMEOUT_MS)
    },
    toString: () => `${re}`,
  }
}
schemaRegExp.code = 'schemaRegExp'

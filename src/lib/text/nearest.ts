/** Typo suggestions: the known words nearest to what was typed (commands, ini keys). */

/** Levenshtein distance (insertions, deletions, substitutions; a swap of two neighbours counts 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({length: a.length + 1}, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * The known words nearest to `typed` (all those at the smallest distance), when that distance is
 * small enough to be a typo: at most a third of the typed length, and at least 1 edit allowed.
 */
export function nearest(typed: string, known: Iterable<string>, maxDistance = Math.max(2, Math.floor(typed.length / 3))): string[] {
  let best = Number.POSITIVE_INFINITY
  let found: string[] = []
  for (const word of known) {
    const dist = editDistance(typed.toLowerCase(), word.toLowerCase())
    if (dist > maxDistance || dist > best) continue
    if (dist < best) {
      best = dist
      found = []
    }
    found.push(word)
  }
  return found
}

/** The hint for an unknown command: the nearest commands (`deploy ngnix` -> `deploy nginx`), else the list. */
export function commandSuggestion(asked: string, known: string[]): string {
  let close = nearest(asked, known)
  // A word of a longer command typed alone, or a prefix (`db` -> `db status`, `db create`…).
  if (close.length === 0) close = known.filter((id) => id.startsWith(`${asked} `) || asked.startsWith(`${id} `))
  return close.length > 0 ? `Did you mean ${close.map((c) => `\`kinto ${c}\``).join(' or ')}? See \`kinto --help\`.` : 'See `kinto --help` for the list of commands.'
}

/**
 * Names for statements whose text varies with the request (a list page's clauses and size): a
 * name per distinct text, so PostgreSQL parses each once per connection and keeps, for each,
 * whichever costs less of its generic plan and a plan made for the values. Bounded: each named
 * text is a prepared statement on every pooled connection (~240 kB for a prefetch carrying a page,
 * bench/ANALYSIS.md round three), so past MAX_NAMED_TEXTS texts in a process new texts run
 * unnamed (the same answers, planned at each execution).
 */
const MAX_NAMED_TEXTS = 64

export class StatementNames {
  private readonly names = new Map<string, string>()

  constructor(private readonly max: number) {}

  /** The name of this text (key: the text, or what determines it), or undefined past the bound. */
  of(prefix: string, key: string): string | undefined {
    let name = this.names.get(key)
    if (name === undefined && this.names.size < this.max) this.names.set(key, (name = `${prefix}${this.names.size}`))
    return name
  }
}

const shared = new StatementNames(MAX_NAMED_TEXTS)

/** The process's name for this text (one bound for every caller), or undefined past the bound. */
export function statementName(prefix: string, key: string): string | undefined {
  return shared.of(prefix, key)
}

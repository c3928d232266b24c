/**
 * Names for statements whose text varies with the request (a list page's clauses): a name per
 * distinct text, so PostgreSQL parses each once per connection and picks, for each, between a
 * generic plan and one made for the values (it keeps whichever costs less). Bounded: past
 * MAX_NAMED_TEXTS texts in a process, new texts run unnamed, or every pooled connection would
 * keep an unbounded number of prepared statements.
 */
export const MAX_NAMED_TEXTS = 256

const names = new Map<string, string>()

/** The name of this text (key: the text, or what determines it), or undefined past the bound. */
export function statementName(prefix: string, key: string): string | undefined {
  let name = names.get(key)
  if (name === undefined && names.size < MAX_NAMED_TEXTS) names.set(key, (name = `${prefix}${names.size}`))
  return name
}

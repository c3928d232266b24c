/**
 * `*` wildcards in parent ids and permission object ids (`/buckets/b1/collections/*`).
 * Only `*` is special: upstream turns it into SQL `%` without escaping `_` and `%`, so that
 * `/buckets/a_b/*` also matched `/buckets/aXb/…` (a cascade could reach another bucket).
 * We escape them: same results for every real id, no cross-bucket matches.
 */

export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*')
}

/** The SQL LIKE pattern (default `\` escape) for a `*` wildcard pattern. */
export function wildcardToLike(pattern: string): string {
  return pattern.replace(/[\\%_]/g, (c) => '\\' + c).replaceAll('*', '%')
}

/** A predicate matching whole strings against a `*` wildcard pattern. */
export function wildcardMatcher(pattern: string): (value: string) => boolean {
  if (!hasWildcard(pattern)) return (value) => value === pattern
  const re = new RegExp('^' + pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('[\\s\\S]*') + '$', 'u')
  return (value) => re.test(value)
}

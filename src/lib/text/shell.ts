/**
 * A word as a POSIX shell reads it back: left as is when it holds only characters no shell treats
 * specially, else in single quotes. For the commands we print for the user to copy (hints, next
 * steps), so that a path with a space, a quote or `$` runs as printed.
 */
export function shellArg(word: string): string {
  return /^[\w./@:+,%=-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}

/**
 * The one non-interactive rule: we may prompt only when a person is there to answer.
 * inquirer must only ever be reached after this returns true (a test enforces it).
 */
export function canPrompt(
  env: NodeJS.ProcessEnv = process.env,
  stdin: {isTTY?: boolean} = process.stdin,
  stdout: {isTTY?: boolean} = process.stdout,
): boolean {
  if (env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI.toLowerCase() !== 'false') return false
  return Boolean(stdin.isTTY) && Boolean(stdout.isTTY)
}

import {Errors, Hook} from '@oclif/core'

import {commandSuggestion} from '../lib/text/nearest.js'

/**
 * An unknown command is a usage error: one line, a hint, exit 2 (oclif's default is a stack trace);
 * as a JSON error object when --json is on the line.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const known = opts.config.commandIDs.map((id) => id.replaceAll(':', ' '))
  const asked = opts.id.replaceAll(':', ' ')
  const message = `unknown command "${asked}".`
  const hint = commandSuggestion(asked, known)
  if ((opts.argv ?? []).includes('--json') || process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({error: {code: 'KINTO_USAGE', message: `Unknown command "${asked}".`, hint}}, null, 2) + '\n')
  } else {
    process.stderr.write(`Error: ${message}\nHint: ${hint}\n`)
  }
  throw new Errors.ExitError(2)
}

export default hook

import {Errors, Hook} from '@oclif/core'

import {hoistGlobalFlags} from '../global-flags.js'
import {scrubSecrets} from '../lib/monitoring/redact.js'
import {commandSuggestion} from '../lib/text/nearest.js'

/**
 * Global flags before the command (`kinto --ini X migrate`, upstream's order) run that command.
 * Any other unknown command is a usage error: one line, a hint, exit 2 (oclif's default is a stack
 * trace); as a JSON error object when --json is on the line.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const argv = opts.argv ?? []
  if (opts.id.startsWith('-')) {
    const hoisted = hoistGlobalFlags([opts.id, ...argv])
    if (hoisted) {
      // The longest run of words that names a command (`deploy nginx`), the other words are its arguments.
      for (let n = hoisted.words.length; n > 0; n--) {
        const id = hoisted.words.slice(0, n).join(':')
        if (opts.config.findCommand(id)) return opts.config.runCommand(id, [...hoisted.words.slice(n), ...hoisted.rest])
      }
    }
  }
  const known = opts.config.commandIDs.map((id) => id.replaceAll(':', ' '))
  // The words as typed are echoed: never a URL's password (`kinto migrate postgresql://u:pw@db/x`).
  const asked = scrubSecrets(opts.id).replaceAll(':', ' ')
  const message = `unknown command "${asked}".`
  const hint = commandSuggestion(asked, known)
  if (argv.includes('--json') || process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify({error: {code: 'KINTO_USAGE', message: `Unknown command "${asked}".`, hint}}, null, 2) + '\n')
  } else {
    process.stderr.write(`Error: ${message}\nHint: ${hint}\n`)
  }
  throw new Errors.ExitError(2)
}

export default hook

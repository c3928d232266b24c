import {Errors, Hook} from '@oclif/core'

/** An unknown command is a usage error: one line, a hint, exit 2 (oclif's default is a stack trace). */
const hook: Hook.CommandNotFound = async function (opts) {
  const known = opts.config.commandIDs.map((id) => id.replaceAll(':', ' '))
  const asked = opts.id.replaceAll(':', ' ')
  const close = known.filter((id) => id.startsWith(asked.slice(0, 3)) || asked.startsWith(id))
  process.stderr.write(`Error: unknown command "${asked}".\n`)
  process.stderr.write(close.length > 0 ? `Hint: did you mean ${close.map((c) => `\`kinto ${c}\``).join(' or ')}? See \`kinto --help\`.\n` : 'Hint: see `kinto --help` for the list of commands.\n')
  throw new Errors.ExitError(2)
}

export default hook

import {Args, loadHelpClass} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {exitCodes, UsageError} from '../lib/errors.js'
import {commandSuggestion} from '../lib/text/nearest.js'

/** `kinto help [COMMAND…]`: oclif's help (as @oclif/plugin-help's command does), with our exit codes. */
export default class Help extends BaseCommand<typeof Help> {
  static summary = 'Show help for kinto or for one of its commands.'
  static exitCodes = exitCodes({0: 'shown', 1: 'failed'})
  static strict = false
  static args = {
    command: Args.string({description: 'The command (or topic) to explain, e.g. `migrate` or `deploy nginx`.', required: false}),
  }

  static examples = ['<%= config.bin %> help', '<%= config.bin %> help deploy nginx']

  async run(): Promise<void> {
    const words = this.positional
    const id = words.join(':')
    if (words.length > 0 && !this.config.findCommand(id) && !this.config.findTopic(id)) {
      const known = this.config.commandIDs.map((c) => c.replaceAll(':', ' '))
      throw new UsageError(`unknown command "${words.join(' ')}".`, {hint: commandSuggestion(words.join(' '), known)})
    }
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? this.config.pjson.helpOptions).showHelp(words)
  }
}

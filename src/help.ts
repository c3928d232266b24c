import {Command, CommandHelp, Help} from '@oclif/core'

import type {ExitCodeTable} from './lib/errors.js'

/** A command's exit-code table as `[code, meaning]` rows, in code order. */
export function exitCodeRows(table: ExitCodeTable | undefined): Array<[string, string]> {
  return Object.entries(table ?? {})
    .map(([code, meaning]): [string, string] => [code, String(meaning)])
    .sort(([a], [b]) => Number(a) - Number(b))
}

/** oclif's command help plus an EXIT CODES section rendered from the command's `exitCodes` table. */
class KintoCommandHelp extends CommandHelp {
  protected sections(): ReturnType<CommandHelp['sections']> {
    const sections = super.sections()
    const at = sections.findIndex((s) => s.header === 'EXAMPLES')
    const exits = {
      header: 'EXIT CODES',
      generate: () => {
        const rows = exitCodeRows((this.command as Command.Loadable & {exitCodes?: ExitCodeTable}).exitCodes)
        return rows.length > 0 ? [{header: 'EXIT CODES', body: rows}] : []
      },
    }
    sections.splice(at < 0 ? sections.length : at, 0, exits)
    return sections
  }
}

export default class KintoHelp extends Help {
  CommandHelpClass = KintoCommandHelp
}

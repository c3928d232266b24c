import {Args, Flags} from '@oclif/core'

import {forFlag, iniFlag, reloadFlag} from '../flags.js'
import {resolveIniPath} from '../lib/config/index.js'
import {MAX_DURATION_SECONDS} from '../lib/config/duration.js'
import {UsageError} from '../lib/errors.js'
import {setToggle, type ToggleResult} from '../lib/ops/toggle.js'
import {ToggleCommand} from '../toggle-command.js'

export default class Backoff extends ToggleCommand<typeof Backoff> {
  static summary = 'Ask clients to back off (the Backoff header), or stop asking.'
  static description = `Sets kinto.backoff (and kinto.backoff_percentage) in [app:main] with a lossless edit (comments and every other line kept), then makes every running server of the ini apply it within a second (SIGHUP; no connection is refused, no request dropped) and prints which did. Clients such as kinto-http wait that many seconds before their next request.

--for makes it end by itself: kinto.backoff_expires = <date> is written beside it, and the servers drop the header when the date passes (upstream Kinto ignores that key). \`kinto backoff off\` removes the three keys.`

  static examples = [
    '<%= config.bin %> backoff 60 --for 2h',
    '<%= config.bin %> backoff 30 --percentage 10',
    '<%= config.bin %> backoff off',
    '<%= config.bin %> backoff 60 --ini /etc/kinto/kinto.ini --no-reload --json',
  ]

  static args = {
    seconds: Args.string({description: 'Seconds clients should wait, or `off`.', required: true}),
  }

  static flags = {
    ini: iniFlag,
    percentage: Flags.integer({
      summary: 'Send the header on this share of responses only (1-100; default: every response).',
      min: 1,
      max: 100,
      helpValue: 'P',
    }),
    for: forFlag,
    reload: reloadFlag,
  }

  async run(): Promise<ToggleResult> {
    const {args, flags} = this
    const off = args.seconds.trim().toLowerCase() === 'off'
    let seconds: number | undefined
    if (off) {
      if (flags.percentage !== undefined || flags.for !== undefined) throw new UsageError('`kinto backoff off` takes neither --percentage nor --for.')
    } else {
      if (!/^\d+$/.test(args.seconds.trim()) || Number(args.seconds) < 1) {
        throw new UsageError(`${JSON.stringify(args.seconds)} is not a number of seconds (1 or more) nor \`off\`.`, {hint: 'e.g. `kinto backoff 60`, `kinto backoff off`.'})
      }
      seconds = Number(args.seconds)
      if (seconds > MAX_DURATION_SECONDS) throw new UsageError(`${args.seconds.trim()} seconds is more than 100 years: at most ${MAX_DURATION_SECONDS}.`)
    }
    const result = await setToggle({
      iniPath: resolveIniPath(flags.ini),
      toggle: 'backoff',
      on: !off,
      seconds,
      percentage: flags.percentage,
      forSeconds: flags.for,
      reload: flags.reload,
    })
    return this.report(result)
  }
}

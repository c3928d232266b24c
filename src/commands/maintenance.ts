import {OnOffCommand} from '../toggle-command.js'

export default class Maintenance extends OnOffCommand {
  static summary = 'Pause writes for maintenance (503 with Retry-After), or resume them.'
  static description = `Sets kinto.maintenance in [app:main] (a kinto-ops setting; upstream Kinto ignores it) with a lossless edit, then makes every running server of the ini apply it within a second (SIGHUP) and prints which did. While it is on, writes are answered 503 (errno 201) with Retry-After (kinto.retry_after_seconds), reads are served, batches of reads too, hello shows "maintenance": true in its settings and the heartbeat answers 200 with "maintenance": true (its checks then only read).

--for makes it end by itself (kinto.maintenance_expires = <date>). \`kinto maintenance off\` removes both keys.`

  static examples = ['<%= config.bin %> maintenance on --for 15m', '<%= config.bin %> maintenance off']

  protected readonly toggle = 'maintenance' as const
}

import {OnOffCommand} from '../toggle-command.js'

export default class Readonly extends OnOffCommand {
  static summary = 'Turn read-only mode on or off (kinto.readonly).'
  static description = `Sets kinto.readonly in [app:main] with a lossless edit, then makes every running server of the ini apply it within a second (SIGHUP) and prints which did. In read-only mode writes are answered 405 (errno 115) as upstream, hello shows "readonly": true, heartbeats only read, and lists are served without writing anything (so a role made by \`kinto db grant-readonly\` or a replica serves every read). The cache still writes.

Read-only says the database cannot be written (a replica, a read-only role); for a pause in writes on a writable database (an upgrade), \`kinto maintenance on\` answers writes 503 with Retry-After instead.

--for makes it end by itself (kinto.readonly_expires = <date>, which upstream ignores).`

  static examples = ['<%= config.bin %> readonly on', '<%= config.bin %> readonly off', '<%= config.bin %> readonly on --for 30m --json']

  protected readonly toggle = 'readonly' as const
}

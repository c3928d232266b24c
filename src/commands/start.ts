import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'

export default class Start extends BaseCommand<typeof Start> {
  static summary = 'Serve the Kinto HTTP API (v1) as the ini file configures it.'
  static description = `Listens on the host and port of [server:main] (default 127.0.0.1:8888; --host and --port override them; --port is also the value of %(http_port)s in the file), or on its unix_socket (mode from unix_socket_perms; a stale socket file is removed first), and serves /v1/ with the configured storage, permission and cache backends. PostgreSQL schemas must be installed first (kinto migrate, or --migrate); the server refuses to start otherwise. An embedded database folder is locked while the server runs; kinto flush-cache, purge-deleted, create-user, db status, check, backup and migrate --check reach it through the server's control socket (.kinto-run/<pid>.sock beside the ini, mode 0600: the server's user only). --migrate migrates on the connection it then serves from (pglite:memory: is served that way).

Logs follow the ini's [loggers]/[handlers]/[formatters] sections: mozlog JSON lines where a handler uses kinto.core.JsonLogFormatter (on stdout with args = (sys.stdout,)), readable lines otherwise (on stderr without logging sections); one request.summary line per request. kinto.statsd_url = udp://host:port sends StatsD metrics (docs/monitoring.md).

Signals: SIGHUP re-reads the ini and applies what can change live (backoff, readonly, maintenance, end of service, CORS, principals, redirects, …) without refusing a connection; settings that need a restart (backend URLs, host, port, plugins…) are logged, and kinto status lists them. SIGTERM or SIGINT stops accepting connections, lets requests in flight finish (up to --shutdown-timeout; a second SIGTERM or SIGINT cuts them at once, exit 1), closes the database pools and exits. Each running server is recorded in .kinto-run/ beside the ini, which is how kinto backoff, readonly, maintenance, reload and status find it.

--workers N (default: [uwsgi] processes of the ini, else 1) runs N processes sharing the port (PostgreSQL backends only). Every signal reaches every worker; SIGUSR2 restarts the workers one at a time, so new code and restart-only settings are taken without downtime (a single-process server logs that it cannot, and serves on). A worker that crashes is replaced; one whose event loop is blocked (no word to its primary for --worker-timeout) is killed and replaced.`

  static exitCodes = exitCodes({0: 'stopped by a signal after finishing every request', 1: 'failed to start (invalid configuration, schema missing, address in use), or requests were cut at the shutdown deadline', 4: 'the embedded database folder is held by another process'})

  static examples = [
    '<%= config.bin %> start',
    '<%= config.bin %> start --ini /etc/kinto/kinto.ini --host 0.0.0.0 --port 8888',
    '<%= config.bin %> start --workers 4',
    '<%= config.bin %> start --migrate --ini config/kinto.ini',
  ]

  static flags = {
    ini: iniFlag,
    host: Flags.string({
      summary: 'Address to listen on (overrides [server:main] host).',
      env: 'KINTO_LISTEN_HOST',
      helpValue: 'HOST',
    }),
    port: Flags.integer({
      summary: 'TCP port to listen on (overrides [server:main] port; 0 picks a free one).',
      env: 'KINTO_LISTEN_PORT',
      min: 0,
      max: 65535,
      helpValue: 'PORT',
    }),
    workers: Flags.integer({
      summary: 'Processes sharing the port (default: [uwsgi] processes of the ini, else 1).',
      env: 'KINTO_WORKERS',
      min: 1,
      max: 256,
      helpValue: 'N',
    }),
    migrate: Flags.boolean({
      summary: 'Install or upgrade the PostgreSQL schemas before serving (as kinto migrate).',
      env: 'KINTO_START_MIGRATE',
      default: false,
    }),
    'serve-unreachable': Flags.boolean({
      summary: 'Serve even when a PostgreSQL database cannot be reached at start (503 until it answers, as upstream Kinto), instead of exiting 1.',
      description: 'Its schema is then not checked: run kinto migrate (or kinto check) once it answers; with --migrate, the server migrates it once it answers (503 until then). For a database started beside the server (compose, a pod) without a health check or a restart policy.',
      env: 'KINTO_START_SERVE_UNREACHABLE',
      default: false,
    }),
    reload: Flags.boolean({
      summary: 'Reload the ini when its content changes, as on SIGHUP (upstream: restart on a code or config change).',
      description: 'Settings that need a restart are named in the log line of each reload; with --workers, SIGUSR2 restarts the workers one by one.',
      env: 'KINTO_START_RELOAD',
      default: false,
    }),
    'worker-timeout': durationFlag({
      summary: 'With --workers: a worker that has not answered its primary for this long (its event loop blocked) is killed and replaced; 0: never.',
      env: 'KINTO_WORKER_TIMEOUT',
      default: 30,
    }),
    'shutdown-timeout': durationFlag({
      summary: 'On SIGTERM, how long requests in flight may run before they are cut.',
      env: 'KINTO_SHUTDOWN_TIMEOUT',
      default: 30,
    }),
  }

  async run(): Promise<void> {
    const {flags} = this
    const shutdownSeconds = flags['shutdown-timeout']
    // Port 0 (any free port) is no value for %(http_port)s; the listen call gets it.
    const httpPort = flags.port || undefined
    const config = loadConfig(resolveIniPath(flags.ini), {httpPort})
    for (const warning of config.warnings) this.logToStderr(`Warning: ${warning}`)
    // Loaded here, not at the top: oclif imports every command module to list commands, and the
    // runtime (Fastify, pg, PGlite, Ajv…) must not slow `kinto --version` or any other command.
    const {serve} = await import('../lib/serve/index.js')
    process.exitCode = await serve({
      config,
      host: flags.host,
      port: flags.port,
      httpPort,
      workers: flags.workers,
      migrate: flags.migrate,
      serveUnreachable: flags['serve-unreachable'],
      reload: flags.reload,
      shutdownTimeoutMs: shutdownSeconds * 1000,
      workerTimeoutMs: flags['worker-timeout'] * 1000,
      log: (line) => this.logToStderr(line),
    })
  }
}

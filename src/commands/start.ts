import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {startServer} from '../lib/server/start.js'

export default class Start extends BaseCommand<typeof Start> {
  static summary = 'Serve the Kinto HTTP API (v1) as the ini file configures it.'
  static description = `Listens on the host and port of [server:main] (default 127.0.0.1:8888; --host and --port override them; --port is also the value of %(http_port)s in the file) and serves /v1/ with the configured storage, permission and cache backends. PostgreSQL schemas must be installed first (kinto migrate); the server refuses to start otherwise.

Logs are JSON lines on stdout (one request.summary per request). SIGTERM or SIGINT stops accepting connections, lets requests in flight finish, closes the database pools and exits 0.

Exit codes: 0 stopped by a signal; 1 failed to start (invalid configuration, schema missing, address in use); 2 usage error.`

  static examples = [
    '<%= config.bin %> start',
    '<%= config.bin %> start --ini /etc/kinto/kinto.ini --host 0.0.0.0 --port 8888',
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
  }

  async run(): Promise<void> {
    const {flags} = this
    // Port 0 (any free port) is no value for %(http_port)s; the listen call gets it.
    const config = loadConfig(resolveIniPath(flags.ini), {httpPort: flags.port || undefined})
    for (const warning of config.warnings) this.logToStderr(`Warning: ${warning}`)
    // Signal handlers first: a signal arriving while starting (or right after the "Serving" line)
    // must stop the server cleanly, not kill the process.
    let stopSignal: NodeJS.Signals | undefined
    let wake: (() => void) | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      stopSignal ??= signal
      wake?.()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      const server = await startServer(config, {host: flags.host, port: flags.port})
      this.logToStderr(`Serving ${server.url} (${config.path}); SIGINT or SIGTERM to stop.`)
      if (!stopSignal) await new Promise<void>((resolve) => (wake = resolve))
      this.logToStderr(`${stopSignal}: finishing requests in flight, then stopping.`)
      try {
        await server.close()
      } catch (error) {
        this.logToStderr(`Error while stopping: ${(error as Error).message}`)
        process.exitCode = 1
      }
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}

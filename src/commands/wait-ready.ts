import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, iniFlag, nonEmpty} from '../flags.js'
import {resolveIniPath} from '../lib/config/index.js'
import {exitCodes} from '../lib/errors.js'
import {describeEndpointUrl, parseEndpoint} from '../lib/ops/endpoint.js'
import {targetFromIni, waitReady, type WaitReadyResult, type WaitTarget} from '../lib/ops/wait-ready.js'

export default class WaitReady extends BaseCommand<typeof WaitReady> {
  static summary = 'Wait until a Kinto answers its heartbeat with 200.'
  static description = `Polls <url>__heartbeat__ until every backend check passes (200), retrying refused connections and 503s, so CI scripts need no curl loop. Without --url: the running server of the ini (.kinto-run/), else the address of its [server:main] (unix_socket, or host and port; 0.0.0.0 read as 127.0.0.1).

A server in maintenance is ready (it serves reads; its heartbeat says "maintenance": true).`

  static exitCodes = exitCodes({0: 'ready', 1: 'not ready within --timeout (the error says what the last attempt saw)'})

  static examples = ['<%= config.bin %> wait-ready --timeout 60', '<%= config.bin %> wait-ready --url http://127.0.0.1:8888/v1/', '<%= config.bin %> wait-ready --url unix:/run/kinto/kinto.sock']

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    url: Flags.string({summary: 'Base URL of the API (http(s)://…/v1/ or unix:/path/to/socket).', env: 'KINTO_URL', helpValue: 'URL', parse: nonEmpty('--url')}),
    timeout: durationFlag({summary: 'Give up after this long (seconds, or 90s, 2m…).', env: 'KINTO_WAIT_TIMEOUT', default: 30, above: 0}),
    interval: Flags.integer({summary: 'Milliseconds between attempts.', default: 250, min: 10, helpValue: 'MS'}),
  }

  async run(): Promise<WaitReadyResult> {
    const {flags} = this
    const iniPath = resolveIniPath(flags.ini)
    const endpoint = flags.url ? parseEndpoint(flags.url) : () => targetFromIni(iniPath)
    const onTarget = (t: WaitTarget) => this.logToStderr(t.endpoint ? `Polling ${describeEndpointUrl(t.endpoint, '__heartbeat__')} (${t.why}).` : `Waiting: ${t.why}.`)
    const result = await waitReady({endpoint, timeoutMs: flags.timeout * 1000, intervalMs: flags.interval, onTarget: this.jsonEnabled() ? undefined : onTarget})
    if (!this.jsonEnabled()) this.log(`${result.url} is ready (${result.attempts} attempt${result.attempts === 1 ? '' : 's'}, ${(result.elapsedMs / 1000).toFixed(1)} s).`)
    return result
  }
}

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {
  deployAllowFlag,
  deployCheckFlag,
  deployListenFlag,
  deployMaxBodySizeFlag,
  deployOutputFlag,
  deployServerNameFlag,
  forceFlag,
  iniFlag,
} from '../../flags.js'
import {describeSettingSource, loadConfig, resolveIniPath} from '../../lib/config/index.js'
import {type DeployResult, deployNginx} from '../../lib/deploy/index.js'
import {reportDeployResult} from '../../lib/deploy/report.js'
import {exitCodes} from '../../lib/errors.js'

export default class DeployNginx extends BaseCommand<typeof DeployNginx> {
  static summary = 'Print an nginx reverse-proxy server block for this Kinto.'
  static description = `The block goes in nginx's http {} context (e.g. /etc/nginx/conf.d/kinto.conf). It proxies to the kinto runtime ([server:main] host and port, or its unix_socket), or with --uwsgi to upstream Kinto under uwsgi (uwsgi_pass). server_name comes from kinto.http_host. The private URLs (/v1/__heartbeat__ and the other __…__ ones) answer only the --allow addresses; every method (OPTIONS included) and Kinto's headers (ETag, Last-Modified, Expires, Next-Page, CORS) pass through. --cache adds a cache zone keyed on scheme, method, host and the whole URI, which honours Kinto's Cache-Control and skips authenticated requests.

Values that would break the file (a ';', a brace, a line break in a name) are refused. Output is deterministic, so --check can detect drift in CI.`

  static exitCodes = exitCodes({0: 'done (or up to date)', 1: 'failed (bad ini value, cannot write)', 2: 'usage error (bad flag, file exists without --force)', 6: '--check found a difference'})

  static examples = [
    '<%= config.bin %> deploy nginx --server-name kinto.example.com > /etc/nginx/conf.d/kinto.conf',
    '<%= config.bin %> deploy nginx --cache --allow 10.0.0.0/8 --output /etc/nginx/conf.d/kinto.conf --force',
    '<%= config.bin %> deploy nginx --uwsgi --upstream uwsgi+unix:/run/uwsgi/kinto.sock',
    '<%= config.bin %> deploy nginx --check deploy/nginx.conf',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    'server-name': deployServerNameFlag,
    listen: deployListenFlag,
    upstream: Flags.string({
      summary: 'Where Kinto listens: http://HOST:PORT, unix:/path.sock, uwsgi://HOST:PORT or uwsgi+unix:/path.sock. Default: [server:main] of the ini.',
      env: 'KINTO_DEPLOY_UPSTREAM',
      helpValue: 'URL',
    }),
    uwsgi: Flags.boolean({
      summary: 'Talk the uwsgi protocol to [server:main]’s address (upstream Kinto under uwsgi).',
      default: false,
    }),
    allow: deployAllowFlag,
    cache: Flags.boolean({summary: 'Cache anonymous reads that Kinto marks cacheable.', default: false}),
    'cache-path': Flags.string({
      summary: 'Folder of the nginx cache (implies --cache). Default: /var/cache/nginx/kinto.',
      env: 'KINTO_DEPLOY_CACHE_PATH',
      helpValue: 'DIR',
    }),
    'max-body-size': deployMaxBodySizeFlag,
    output: deployOutputFlag,
    check: deployCheckFlag,
    force: forceFlag,
  }

  async run(): Promise<DeployResult> {
    const {flags} = this
    const config = loadConfig(resolveIniPath(flags.ini))
    const result = await deployNginx({...config, describeSetting: (key) => describeSettingSource(config, key)}, flags, flags)
    const report = reportDeployResult(result)
    if (!this.jsonEnabled()) {
      if (report.stdout) process.stdout.write(report.stdout)
      if (report.stderr) this.logToStderr(report.stderr)
    }
    process.exitCode = report.exitCode
    return result
  }
}

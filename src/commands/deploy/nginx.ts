import {Flags} from '@oclif/core'

import {DeployCommand} from '../../deploy-command.js'
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
import {type DeployResult, deployNginx} from '../../lib/deploy/index.js'
import type {DeployConfig} from '../../lib/deploy/options.js'

export default class DeployNginx extends DeployCommand<typeof DeployNginx> {
  static summary = 'Print an nginx reverse-proxy server block for this Kinto.'
  static description = `The block goes in nginx's http {} context (e.g. /etc/nginx/conf.d/kinto.conf). It proxies to the kinto runtime ([server:main] host and port, or its unix_socket), or with --uwsgi to upstream Kinto under uwsgi (uwsgi_pass). server_name comes from kinto.http_host. The private URLs (/v1/__heartbeat__ and the other __…__ ones) answer only the --allow addresses; every method (OPTIONS included) and Kinto's headers (ETag, Last-Modified, Expires, Next-Page, CORS) pass through. --cache adds a cache zone keyed on scheme, method, host and the whole URI, which honours Kinto's Cache-Control and skips authenticated requests; a request with If-None-Match goes to Kinto untouched (its 304 as without the cache).

Values that would break the file (a ';', a brace, a line break in a name) are refused. The output depends only on the ini and the flags, so --check can detect drift in CI; one exception: while this ini's runtime runs on another port (kinto start --port), the proxy points at that port.`

  static examples = [
    '<%= config.bin %> deploy nginx --server-name kinto.example.com > /etc/nginx/conf.d/kinto.conf',
    '<%= config.bin %> deploy nginx --cache --allow 10.0.0.0/8 --output /etc/nginx/conf.d/kinto.conf --force',
    '<%= config.bin %> deploy nginx --upstream uwsgi+unix:/run/uwsgi/kinto.sock',
    '<%= config.bin %> deploy nginx --check deploy/nginx.conf',
  ]

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
      summary: 'Folder of the nginx cache (implies --cache). Default: /var/cache/nginx/kinto. nginx makes only this last folder: its parent must exist (Debian and Ubuntu have no /var/cache/nginx; a warning says so).',
      env: 'KINTO_DEPLOY_CACHE_PATH',
      helpValue: 'DIR',
    }),
    'max-body-size': deployMaxBodySizeFlag,
    output: deployOutputFlag,
    check: deployCheckFlag,
    force: forceFlag,
  }

  protected deploy(config: DeployConfig): Promise<DeployResult> {
    const {flags} = this
    return deployNginx(config, flags, flags)
  }
}

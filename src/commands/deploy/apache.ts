import {Flags} from '@oclif/core'

import {DeployCommand} from '../../deploy-command.js'
import {
  deployAllowFlag,
  deployAppWsgiFlag,
  deployCheckFlag,
  deployListenFlag,
  deployMaxBodySizeFlag,
  deployOutputFlag,
  deployServerNameFlag,
  deployVirtualenvFlag,
  deployWsgiFileFlag,
  forceFlag,
  iniFlag,
} from '../../flags.js'
import {type DeployResult, deployApache} from '../../lib/deploy/index.js'
import type {DeployConfig} from '../../lib/deploy/options.js'

export default class DeployApache extends DeployCommand<typeof DeployApache> {
  static summary = 'Print an Apache virtual host: mod_proxy in front of the runtime, or mod_wsgi running upstream Kinto.'
  static description = `--mode proxy (the default) proxies to the kinto runtime ([server:main] host and port, or its unix_socket) with mod_proxy_http, keeping the Host header. --mode wsgi runs upstream (Python) Kinto inside Apache with mod_wsgi: WSGIScriptAlias, WSGIPythonPath, SetEnv KINTO_INI and the Directory block; --app-wsgi gives the matching app.wsgi. In both modes the private URLs (/v1/__heartbeat__ and the other __…__ ones) answer only the --allow addresses, and ServerName comes from kinto.http_host.

Values that would break the file are refused. The output depends only on the ini and the flags, so --check can detect drift in CI; one exception: while this ini's runtime runs on another port (kinto start --port), the proxy points at that port.`

  static examples = [
    '<%= config.bin %> deploy apache --server-name kinto.example.com --output /etc/apache2/sites-available/kinto.conf',
    '<%= config.bin %> deploy apache --mode wsgi --virtualenv /srv/kinto/.venv',
    '<%= config.bin %> deploy apache --mode wsgi --app-wsgi --output /srv/kinto/config/app.wsgi',
  ]

  static flags = {
    ini: iniFlag,
    mode: Flags.string({
      summary: 'proxy: mod_proxy to the kinto runtime; wsgi: mod_wsgi running upstream Kinto.',
      options: ['proxy', 'wsgi'],
      default: 'proxy',
      env: 'KINTO_DEPLOY_APACHE_MODE',
    }),
    'app-wsgi': deployAppWsgiFlag,
    'server-name': deployServerNameFlag,
    listen: deployListenFlag,
    upstream: Flags.string({
      summary: '(proxy) Where the runtime listens: http://HOST:PORT or unix:/path.sock. Default: [server:main] of the ini.',
      env: 'KINTO_DEPLOY_UPSTREAM',
      helpValue: 'URL',
    }),
    allow: deployAllowFlag,
    'max-body-size': deployMaxBodySizeFlag,
    'wsgi-file': deployWsgiFileFlag,
    'python-path': Flags.string({
      summary: '(wsgi) WSGIPythonPath. Default: the folder of app.wsgi.',
      env: 'KINTO_DEPLOY_PYTHON_PATH',
      helpValue: 'DIR',
    }),
    virtualenv: deployVirtualenvFlag,
    output: deployOutputFlag,
    check: deployCheckFlag,
    force: forceFlag,
  }

  protected deploy(config: DeployConfig): Promise<DeployResult> {
    const {flags} = this
    return deployApache(config, {...flags, mode: flags.mode as 'proxy' | 'wsgi'}, flags)
  }
}

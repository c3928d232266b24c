import {Flags} from '@oclif/core'

import {DeployCommand} from '../../deploy-command.js'
import {
  deployAppWsgiFlag,
  deployCheckFlag,
  deployOutputFlag,
  deployVirtualenvFlag,
  deployWsgiFileFlag,
  forceFlag,
  iniFlag,
} from '../../flags.js'
import {type DeployResult, deployUwsgi} from '../../lib/deploy/index.js'
import type {DeployConfig} from '../../lib/deploy/options.js'

export default class DeployUwsgi extends DeployCommand<typeof DeployUwsgi> {
  static summary = 'Print the [uwsgi] section (or app.wsgi) to run upstream Kinto under uwsgi.'
  static description = `For WSGI deployments of upstream (Python) Kinto with the same ini. The section sets wsgi-file, virtualenv, socket, uid, gid, processes, master, harakiri, lazy-apps, the buffer sizes and the Python plugin, and exports KINTO_INI. The socket is [server:main]'s unix_socket, else its host and port (a wildcard host becomes 127.0.0.1: the uwsgi protocol must not face the network). Run it with \`uwsgi --ini FILE\`, or paste it into the ini. --app-wsgi gives the matching app.wsgi, which loads the ini named by $KINTO_INI, else this one.

Put nginx in front with \`kinto deploy nginx --uwsgi\`.`

  static examples = [
    '<%= config.bin %> deploy uwsgi --virtualenv /srv/kinto/.venv --output /etc/uwsgi/kinto.ini',
    '<%= config.bin %> deploy uwsgi --app-wsgi --output /srv/kinto/app.wsgi',
    '<%= config.bin %> deploy uwsgi --socket unix:/run/uwsgi/kinto.sock --socket-mode 660 --uid www-data --gid www-data',
  ]

  static flags = {
    ini: iniFlag,
    'app-wsgi': deployAppWsgiFlag,
    'wsgi-file': deployWsgiFileFlag,
    virtualenv: deployVirtualenvFlag,
    socket: Flags.string({
      summary: 'Where uwsgi listens: HOST:PORT or unix:/path.sock. Default: [server:main] of the ini.',
      env: 'KINTO_DEPLOY_SOCKET',
      helpValue: 'ADDR',
    }),
    'socket-mode': Flags.string({
      summary: 'Mode of a unix socket (chmod-socket), octal. Default: 666.',
      env: 'KINTO_DEPLOY_SOCKET_MODE',
      helpValue: 'MODE',
    }),
    uid: Flags.string({summary: 'User the workers run as. Default: kinto.', env: 'KINTO_DEPLOY_UID', helpValue: 'USER'}),
    gid: Flags.string({summary: 'Group the workers run as. Default: kinto.', env: 'KINTO_DEPLOY_GID', helpValue: 'GROUP'}),
    processes: Flags.integer({summary: 'Number of worker processes. Default: 3.', env: 'KINTO_DEPLOY_PROCESSES', min: 1}),
    harakiri: Flags.integer({summary: 'Seconds before a stuck request’s worker is recycled. Default: 120.', env: 'KINTO_DEPLOY_HARAKIRI', min: 1}),
    'buffer-size': Flags.integer({summary: 'buffer-size and post-buffering, bytes. Default: 65535.', env: 'KINTO_DEPLOY_BUFFER_SIZE', min: 1, max: 65535}),
    plugin: Flags.string({summary: 'uwsgi Python plugin. Default: python3.', env: 'KINTO_DEPLOY_PLUGIN', helpValue: 'NAME'}),
    output: deployOutputFlag,
    check: deployCheckFlag,
    force: forceFlag,
  }

  protected deploy(config: DeployConfig): Promise<DeployResult> {
    const {flags} = this
    return deployUwsgi(config, flags, flags)
  }
}

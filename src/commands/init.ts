import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {forceFlag, iniFlag, yesFlag} from '../flags.js'
import {CACHE_CHOICES, type CacheChoice, STORAGE_CHOICES, type StorageChoice, initConfig, interactiveInitPrompter} from '../lib/config/init.js'
import {resolveIniPath} from '../lib/config/index.js'
import {mayAsk} from '../lib/interactive.js'
import {exitCodes} from '../lib/errors.js'

export default class Init extends BaseCommand<typeof Init> {
  static summary = 'Write a new Kinto ini file (upstream layout, fresh secrets).'
  static description = `Creates the ini that every other command reads: [server:main], [app:main] with the chosen backends and two new random secrets, and the logging sections. The file gets mode 0600 and is written atomically; parent folders are created. With --force, the file it replaces is kept beside it (<file>.<UTC time>.bak, its mode kept): its secrets make the user ids of existing accounts.

Backends: embedded (the default) is PostgreSQL running in-process (PGlite), keeping its data in kinto-data beside the ini (pglite:%(here)s/kinto-data), so nothing needs installing; postgresql uses a server (upstream's URL postgresql://postgres:postgres@localhost/postgres unless --storage-url); memory keeps nothing. The cache follows the storage unless --cache-backend says otherwise: redis writes kinto.cache_url (--cache-url), memcached kinto.cache_hosts (--cache-hosts), as upstream's backends read them.

--public-url (https://kinto.example.com) writes kinto.http_scheme and kinto.http_host, which kinto check asks for in production; without it they stay commented out.

On a terminal, the backends (and the PostgreSQL password, masked) not given as flags are asked for. Without a terminal, with CI set, or with --yes, nothing is asked: flags or defaults are used and the choices are printed on stderr. The path written is printed on stdout, then the next steps (db create, migrate, check, start) on stderr; --json gives them as nextSteps.`

  static exitCodes = exitCodes({0: 'written', 1: 'the file exists (add --force) or cannot be written'})

  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --ini /etc/kinto/kinto.ini --backend postgresql --storage-url postgresql://kinto:secret@db/kinto --yes',
    '<%= config.bin %> init --backend memory --cache-backend memory --json',
    '<%= config.bin %> init --attachments /var/lib/kinto/attachments',
    '<%= config.bin %> init --backend postgresql --storage-url postgresql://kinto:secret@db/kinto --cache-backend redis --cache-url redis://:secret@cache:6379/0 --yes',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: {...iniFlag, summary: 'Kinto ini file to write.'},
    backend: Flags.string({
      summary: 'Storage and permission backend.',
      options: [...STORAGE_CHOICES],
      env: 'KINTO_INIT_BACKEND',
      helpValue: 'embedded|postgresql|memory',
    }),
    'cache-backend': Flags.string({
      summary: 'Cache backend (default: the same as --backend).',
      options: [...CACHE_CHOICES],
      env: 'KINTO_INIT_CACHE_BACKEND',
      helpValue: 'embedded|postgresql|memory|memcached|redis',
    }),
    'cache-url': Flags.string({
      summary: 'Redis URL for --cache-backend redis (default redis://127.0.0.1:6379/0).',
      env: 'KINTO_INIT_CACHE_URL',
      helpValue: 'redis://[:password@]host:port/db',
    }),
    'cache-hosts': Flags.string({
      summary: 'memcached servers for --cache-backend memcached, separated by spaces (default 127.0.0.1:11211).',
      env: 'KINTO_INIT_CACHE_HOSTS',
      helpValue: 'HOST:PORT ...',
    }),
    'storage-url': Flags.string({
      summary: 'Database URL: postgresql://user:password@host:5432/db, or pglite:<folder> with --backend embedded.',
      env: 'KINTO_INIT_STORAGE_URL',
      helpValue: 'URL',
    }),
    host: Flags.string({
      summary: 'Address the server listens on ([server:main] host).',
      env: 'KINTO_INIT_HOST',
      default: '127.0.0.1',
      helpValue: 'HOST',
    }),
    'public-url': Flags.string({
      summary: 'The URL clients use, e.g. https://kinto.example.com (written as kinto.http_scheme and kinto.http_host).',
      env: 'KINTO_INIT_PUBLIC_URL',
      helpValue: 'URL',
    }),
    attachments: Flags.string({
      summary: 'Turn attachments on (kinto_attachment), storing the files in this folder.',
      env: 'KINTO_INIT_ATTACHMENTS',
      helpValue: 'DIR',
    }),
    yes: yesFlag,
    force: forceFlag,
  }

  async run(): Promise<{path: string; backend: string; cacheBackend: string; host: string; previous?: string; nextSteps: string[]}> {
    const {flags} = this
    const json = this.jsonEnabled()
    const result = await initConfig({
      iniPath: resolveIniPath(flags.ini),
      iniArg: flags.ini,
      backend: flags.backend as StorageChoice | undefined,
      cacheBackend: flags['cache-backend'] as CacheChoice | undefined,
      cacheUrl: flags['cache-url'],
      cacheHosts: flags['cache-hosts'],
      storageUrl: flags['storage-url'],
      host: flags.host,
      publicUrl: flags['public-url'],
      attachments: flags.attachments,
      force: flags.force,
      prompter: !flags.yes && mayAsk(json) ? interactiveInitPrompter() : undefined,
      report: json ? undefined : (line) => this.logToStderr(line),
    })
    if (!json) this.log(result.path)
    const {path, backend, cacheBackend, host, previous, nextSteps} = result
    return {path, backend, cacheBackend, host, ...(previous ? {previous} : {}), nextSteps}
  }
}

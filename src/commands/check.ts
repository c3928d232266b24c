import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, iniFlag, nonEmpty} from '../flags.js'
import {type CheckReport, checkIni, DEFAULT_PROBE_ORIGIN, probeDeployment, renderReport} from '../lib/check/index.js'
import {resolveIniPath} from '../lib/config/index.js'
import {ExitCode, exitCodes, UsageError} from '../lib/errors.js'
import {colorEnabled} from '../lib/interactive.js'

export default class Check extends BaseCommand<typeof Check> {
  static summary = "Lint a Kinto ini against the production checklist, or probe a live deployment with --url."
  static description = `Without --url, reads the ini and reports each item of upstream's production checklist: http_scheme is https, http_host (behind a CDN), paginate_by, batch_max_requests, pool sizes, bucket_read_principals, weak or published secrets, the flush endpoint, memory backends, cors_origins entries no browser's Origin can match (a path, a trailing slash, no scheme), statsd_url (its form and that its host resolves: StatsD is UDP, so a listening daemon cannot be confirmed). Then, unless --no-db, it connects to each configured database (with timeouts; an unreachable one is an error finding) and checks encoding UTF8, time zone UTC, that migrations are current, that kinto.readonly matches the role's privileges, and that the pools fit in max_connections; and it pings a Redis or memcached cache (kinto.cache_url / kinto.cache_hosts) with its credentials.

With --url, probes the deployment from the outside instead (GET and OPTIONS only; never follows a redirect to another host): hello's url equals the public URL and does not follow a forged Host header, the CORS preflight answers, ETag, Last-Modified and Next-Page reach the client and browsers may read them, If-None-Match gives 304, responses differ by _limit, and the private __…__ URLs are not public. The list checks need a list with at least 2 objects that anonymous clients can read (pass it with --list), or that an account can read: KINTO_CHECK_AUTH=USER:PASSWORD (or --user) sends Basic credentials with the list's requests only; hello, the preflight and the private URLs are still probed anonymously. (A CDN usually passes authenticated requests to Kinto uncached: the list checks then see the proxy, not the cache.)

Every finding says what to change.`

  static exitCodes = exitCodes({0: 'no errors (warnings allowed)', 1: 'at least one error'})

  static examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --ini /etc/kinto/kinto.ini --json',
    '<%= config.bin %> check --no-db',
    '<%= config.bin %> check --url https://kinto.example.com --list /buckets/main/collections/articles/records',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    db: Flags.boolean({
      summary: 'Connect to the configured databases and cache servers (--no-db: settings only).',
      env: 'KINTO_CHECK_DB',
      default: true,
      allowNo: true,
    }),
    url: Flags.string({
      summary: 'Probe this live deployment (its public root, e.g. https://kinto.example.com) instead of reading the ini.',
      env: 'KINTO_CHECK_URL',
      helpValue: 'URL',
      parse: nonEmpty('--url'),
    }),
    list: Flags.string({
      summary: 'With --url: a list anonymous clients may read, holding 2 objects or more. Default: /buckets.',
      env: 'KINTO_CHECK_LIST',
      helpValue: 'PATH',
    }),
    origin: Flags.string({
      summary: `With --url: the Origin sent in CORS requests (one that kinto.cors_origins allows). Default: ${DEFAULT_PROBE_ORIGIN}.`,
      env: 'KINTO_CHECK_ORIGIN',
      helpValue: 'ORIGIN',
    }),
    user: Flags.string({
      summary: 'With --url: read the list as this account (Basic auth); prefer the environment variable, which stays out of the process list.',
      env: 'KINTO_CHECK_AUTH',
      helpValue: 'USER:PASSWORD',
    }),
    timeout: durationFlag({
      summary: 'How long to wait for each connection, DNS answer or HTTP response (a database gets four times this in all).',
      env: 'KINTO_CHECK_TIMEOUT',
      default: 5,
      min: 1,
      max: 300,
    }),
    quiet: Flags.boolean({
      char: 'q',
      summary: 'Show only errors and warnings.',
      default: false,
    }),
  }

  async run(): Promise<CheckReport> {
    const {flags} = this
    // Their environment twins may be set for every run (a CI job's secrets): only the command
    // line's flags need --url.
    const urlOnly = ['list', 'origin', 'user'].filter((name) => this.argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`)))
    if (!flags.url && urlOnly.length > 0) {
      throw new UsageError(`${urlOnly.map((n) => `--${n}`).join(', ')} only ${urlOnly.length === 1 ? 'applies' : 'apply'} with --url.`, {hint: 'Add --url with the public root of the deployment, or drop them.'})
    }
    const timeoutMs = flags.timeout * 1000
    const report = flags.url
      ? await probeDeployment(flags.url, {timeoutMs, listPath: flags.list, origin: flags.origin, auth: flags.user})
      : await checkIni(resolveIniPath(flags.ini), {db: flags.db, timeoutMs})
    if (!this.jsonEnabled()) {
      process.stdout.write(renderReport(report, {color: colorEnabled(), problemsOnly: flags.quiet}))
    }
    process.exitCode = report.summary.errors > 0 ? ExitCode.FAILED : ExitCode.OK
    return report
  }
}

import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {durationFlag, dryRunFlag, iniFlag} from '../flags.js'
import {loadConfig, resolveIniPath} from '../lib/config/index.js'
import {ExitCode, exitCodes} from '../lib/errors.js'
import {richProgress} from '../lib/interactive.js'
import {viaServerWhenHeld} from '../lib/ops/control.js'
import {describeDrift} from '../lib/schema/migrator.js'
import {migrate, type MigrateEvent, type MigrateMode, type MigrateResult} from '../lib/schema/migrate.js'

export default class Migrate extends BaseCommand<typeof Migrate> {
  static summary = 'Install or upgrade the PostgreSQL schema of the configured backends.'
  static description = `For each configured PostgreSQL backend, in upstream's order (cache, storage, permission), reads the installed schema version and installs or upgrades it to the current one: the same tables, functions, triggers and version rows as upstream Kinto, so either can serve the database. Memory, memcached and redis backends, and an in-memory embedded database (pglite:memory:, served with kinto start --migrate), are skipped with a line saying so.

The lock is a session advisory lock whose key is the first 8 bytes of sha256("kinto-ops:migrate") as a signed int64 (1303967871420726987); advisory locks are per database. Each backend is migrated in one transaction (its steps and their version rows commit together, so a run killed half-way leaves the old version intact). Runs are serialised per database by a PostgreSQL advisory lock (a lock file beside an embedded database): a second run waits, saying which process holds the lock, for up to --lock-timeout seconds. A content hash of every step applied is recorded in metadata; a step applied with different SQL, or one this release does not ship, is drift (exit 5).

With kinto.readonly = true nothing is written and the command fails (upstream exits 0 here). --check and --dry-run only read.`

  static exitCodes = exitCodes({0: 'done (or up to date)', 1: 'failed (unreachable database, permission denied, readonly, schema newer than this release)', 3: 'pending (--check)', 4: 'lock timeout (or lock held with --no-wait), or a running server holds the embedded folder and the schema needs a change (use `kinto start --migrate`)', 5: 'drift: an applied step differs from the shipped one'})

  static examples = [
    '<%= config.bin %> migrate',
    '<%= config.bin %> migrate --ini /etc/kinto/kinto.ini --check',
    '<%= config.bin %> migrate --dry-run',
    '<%= config.bin %> migrate --lock-timeout 300 --json',
  ]

  static enableJsonFlag = true

  static flags = {
    ini: iniFlag,
    'dry-run': {...dryRunFlag, summary: 'Print the plan (each step and its SQL); change nothing.', exclusive: ['check']},
    check: Flags.boolean({
      summary: 'Change nothing; exit 0 when current, 3 when something is pending.',
      env: 'KINTO_MIGRATE_CHECK',
      default: false,
      exclusive: ['dry-run'],
    }),
    'lock-timeout': durationFlag({
      summary: 'How long to wait for another migration holding the lock (60, 5m…).',
      env: 'KINTO_MIGRATE_LOCK_TIMEOUT',
      default: 60,
      min: 0,
    }),
    'no-wait': Flags.boolean({
      summary: 'Fail at once (exit 4) when another migration holds the lock.',
      env: 'KINTO_MIGRATE_NO_WAIT',
      default: false,
    }),
  }

  async run(): Promise<MigrateResult> {
    const {flags} = this
    const json = this.jsonEnabled()
    const mode: MigrateMode = flags.check ? 'check' : flags['dry-run'] ? 'dry-run' : 'apply'
    const config = loadConfig(resolveIniPath(flags.ini))
    const options = {
      settings: config.settings,
      dir: config.dir,
      mode,
      lockTimeoutMs: flags['lock-timeout'] * 1000,
      noWait: flags['no-wait'],
    }

    // An embedded folder a running server holds: that server reads the schema (and answers "up to
    // date"; a change it refuses, pointing to `kinto start --migrate`).
    const run = (report?: (e: MigrateEvent) => void): Promise<MigrateResult> =>
      viaServerWhenHeld(config, 'migrate', {mode}, () => migrate({...options, report}), {onEvent: (e) => report?.(e as MigrateEvent)})

    let result: MigrateResult
    if (json) {
      result = await run()
    } else if (richProgress()) {
      const {Listr} = await import('listr2')
      let out: MigrateResult | undefined
      const list = new Listr(
        [
          {
            title: mode === 'apply' ? 'Migrating the PostgreSQL schema' : 'Reading the PostgreSQL schema',
            task: async (_ctx, task) => {
              out = await run((e) => (task.output = describeEvent(e, mode)))
              task.title = mode === 'apply' ? 'PostgreSQL schema migrated' : 'PostgreSQL schema read'
            },
            rendererOptions: {persistentOutput: true, outputBar: Infinity},
          },
        ],
        // listr2's own Ctrl-C handler exits 127; ours ends the display and dies of the signal, so the
        // shell sees 130 as without a terminal (a migration cut there leaves the old version intact).
        {rendererOptions: {collapseErrors: false}, exitOnError: true, registerSignalListeners: false},
      )
      const onInterrupt = () => {
        process.stderr.write('\u001B[?25h\n')
        process.kill(process.pid, 'SIGINT')
      }
      process.once('SIGINT', onInterrupt)
      try {
        await list.run()
      } finally {
        process.removeListener('SIGINT', onInterrupt)
      }
      result = out!
    } else {
      result = await run((e) => this.logToStderr(describeEvent(e, mode)))
    }

    if (!json) this.printSummary(result)
    if (result.drift.length > 0) process.exitCode = ExitCode.DRIFT
    else if (mode === 'check' && result.pending) process.exitCode = ExitCode.PENDING
    return result
  }

  private printSummary(result: MigrateResult): void {
    for (const b of result.backends) {
      if (b.skipped) {
        this.log(`${b.backend}: skipped (${b.skipped})`)
        continue
      }
      const where = `on ${b.database}`
      const cache = b.backend === 'cache'
      const target = cache ? '' : ` version ${b.current}`
      const steps = `${b.steps!.length} step(s)`
      if (b.state === 'current') this.log(`${b.backend}: up to date${target} ${where}`)
      else if (b.installed === null) this.log(`${b.backend}: ${result.mode === 'apply' ? 'installed' : 'would install'}${target} ${where}`)
      else this.log(`${b.backend}: ${result.mode === 'apply' ? 'upgraded' : 'would upgrade'} ${b.installed} -> ${b.current} (${steps}) ${where}`)
      if (result.mode === 'dry-run') {
        for (const step of b.steps ?? []) {
          this.log(`-- ${b.backend} ${step.name}: ${step.file} (${step.hash})`)
          this.log(step.sql!.trimEnd())
        }
      }
    }
    for (const d of result.drift) this.logToStderr(`Drift: ${describeDrift(d)}.`)
    if (result.mode === 'check') this.log(result.pending ? 'Migrations are pending.' : 'Schema is current.')
    if (result.mode === 'dry-run') this.log('Dry run: nothing was changed.')
  }
}

function describeEvent(e: MigrateEvent, mode: MigrateMode): string {
  switch (e.type) {
    case 'skip':
      return `${e.backend}: skipped (${e.reason})`
    case 'lock-wait':
      return `Waiting for the migration lock on ${e.database}, held by ${e.holder}…`
    case 'lock-acquired':
      return `Migration lock taken on ${e.database}.`
    case 'plan': {
      const p = e.plan
      if (e.backend === 'cache') {
        const todo = p.state === 'missing' ? (mode === 'apply' ? 'not installed; installing' : 'not installed; would install') : 'installed'
        return `cache on ${e.database}: ${todo}`
      }
      const what =
        p.state === 'current'
          ? `up to date (version ${p.current})`
          : p.state === 'missing'
            ? `not installed; ${mode === 'apply' ? 'installing' : 'would install'} version ${p.current}`
            : p.state === 'newer'
              ? `version ${p.installed}, newer than ${p.current}`
              : `version ${p.installed}; ${mode === 'apply' ? 'upgrading' : 'would upgrade'} to ${p.current} in ${p.steps.length} step(s)`
      return `${e.backend} on ${e.database}: ${what}`
    }
    case 'warning':
      return `Warning (${e.backend}): ${e.message}`
    case 'step':
      return `${e.backend}: applying ${e.file}`
    case 'done':
      return `${e.backend}: committed version ${e.to} (${e.steps} step(s))`
  }
}

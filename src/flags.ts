import {Args, Flags, type Interfaces} from '@oclif/core'

import {FOLDER_LOCK_SECONDS} from './lib/backup/index.js'
import {DURATION_FORMAT, MAX_DURATION_SECONDS, tryParseDuration} from './lib/config/duration.js'
import {UsageError} from './lib/errors.js'

/**
 * The parse of a flag or argument that names something (a file, a URL): an empty value given on the
 * command line is a usage error, not the current folder (`-o ""`) nor "not given" (`--url "$UNSET"`
 * checked the ini instead of the URL). An empty environment variable stays unset (oclif skips it).
 */
export function nonEmpty(name: string, hint = `Give a value, or leave ${name} out.`): (input: string) => Promise<string> {
  return async (input) => {
    if (input.trim() === '') throw new UsageError(`${name} is empty.`, {hint})
    return input
  }
}

/**
 * The parse of a flag or argument naming a file that kinto reads or writes by name: not empty, and
 * not `-`, which Unix tools read as standard input or output; here it would have been a file
 * called `-` in the current folder (a backup written there while the pipe got nothing). `./-`
 * still names such a file.
 */
export function filePath(name: string, hint: string): (input: string) => Promise<string> {
  const present = nonEmpty(name, `${hint}.`)
  return async (input) => {
    if (input.trim() === '-') throw new UsageError(`${name} is '-': it names a file here, not standard input or output.`, {hint: `${hint} (./- names a file called '-').`})
    return present(input)
  }
}

/** Shared flags, defined once. Every command that reads config takes --ini. */
export const iniFlag = Flags.string({
  summary: 'Kinto ini file to read.',
  description: 'Defaults to $KINTO_INI, else config/kinto.ini relative to the current folder.',
  env: 'KINTO_INI',
  default: 'config/kinto.ini',
  helpValue: 'FILE',
})

export const yesFlag = Flags.boolean({
  char: 'y',
  summary: 'Answer yes to every question; never prompt.',
  env: 'KINTO_YES',
  default: false,
})

export const forceFlag = Flags.boolean({
  summary: 'Overwrite or destroy what exists.',
  default: false,
})

export const adminUrlFlag = Flags.string({
  summary: 'PostgreSQL URL of a role allowed to create databases and roles.',
  description: 'Defaults to the storage URL of the ini.',
  env: 'KINTO_ADMIN_URL',
  helpValue: 'URL',
})

export const dryRunFlag = Flags.boolean({
  summary: 'Print what would be done; change nothing.',
  default: false,
})

/**
 * A duration flag (`90s`, `2m`, `1h30m`, or seconds), the one type of every duration the CLI takes;
 * its value is in seconds. `min`/`max` bound it (in seconds), `above` excludes a lower bound.
 */
interface DurationOptions {
  summary: string
  env?: string
  default?: number
  min?: number
  max?: number
  above?: number
  description?: string
}
export function durationFlag(options: DurationOptions & {default: number}): Interfaces.OptionFlag<number>
export function durationFlag(options: DurationOptions): Interfaces.OptionFlag<number | undefined>
export function durationFlag(options: DurationOptions): Interfaces.OptionFlag<number | undefined> {
  const {min, max, above, ...rest} = options
  return Flags.custom<number>({
    helpValue: 'DURATION',
    ...rest,
    async parse(input, _context, flag) {
      const name = `--${flag.name}`
      const seconds = tryParseDuration(input)
      if (seconds === null) throw new UsageError(`${name}: ${JSON.stringify(input)} is not a duration; expected ${DURATION_FORMAT}.`)
      if (above !== undefined && seconds <= above) throw new UsageError(`${name} must be longer than ${above} s.`)
      if (min !== undefined && seconds < min) throw new UsageError(`${name} must be at least ${min} s.`)
      if (max !== undefined && seconds > max) throw new UsageError(`${name} must be at most ${max} s.`)
      if (seconds > MAX_DURATION_SECONDS) throw new UsageError(`${name} must be at most ${MAX_DURATION_SECONDS} s (100 years).`)
      return seconds
    },
  })()
}

/**
 * --lock-timeout of backup, restore and db copy (`env` names its variable): how long to wait for
 * another kinto command using the database (in seconds; default FOLDER_LOCK_SECONDS).
 */
export function folderLockTimeoutFlag(env: string): Interfaces.OptionFlag<number> {
  return durationFlag({
    summary: `How long to wait for another kinto command (a migration, backup, restore or copy) using the database (${FOLDER_LOCK_SECONDS}, 1m…).`,
    env,
    default: FOLDER_LOCK_SECONDS,
    min: 0,
  })
}

// ---- `kinto deploy nginx | uwsgi | apache` (shared by the three commands)

export const deployOutputFlag = Flags.string({
  char: 'o',
  summary: "Write the snippet to this file instead of printing it (an existing file needs --force); '-' prints it.",
  helpValue: 'FILE',
  parse: nonEmpty('--output'),
})

export const deployCheckFlag = Flags.string({
  summary: 'Compare FILE with what would be generated; print a diff and exit 6 when they differ.',
  helpValue: 'FILE',
  parse: filePath('--check', 'Give the path of the file the snippet was written to'),
})

export const deployServerNameFlag = Flags.string({
  summary: 'Public host name (repeatable). Default: kinto.http_host of the ini.',
  helpValue: 'NAME',
  multiple: true,
})

export const deployListenFlag = Flags.string({
  summary: 'Port or ADDR:PORT the proxy listens on. Default: 80. The block has no TLS: terminate TLS in front of it, or add the certificate directives (a warning says so for 443).',
  env: 'KINTO_DEPLOY_LISTEN',
  helpValue: 'PORT|ADDR:PORT',
})

export const deployAllowFlag = Flags.string({
  summary: 'Address or network allowed to reach the private __…__ URLs (repeatable; `none` for nobody). Default: 127.0.0.1 and ::1.',
  helpValue: 'ADDR',
  multiple: true,
})

export const deployMaxBodySizeFlag = Flags.string({
  summary: 'Largest request body accepted, nginx syntax (75m, 512k, bytes). Default: 75m, or kinto.attachment.max_size_bytes (the largest, plus 1 MiB) when more.',
  env: 'KINTO_DEPLOY_MAX_BODY_SIZE',
  helpValue: 'SIZE',
})

export const deployVirtualenvFlag = Flags.string({
  summary: 'Python virtualenv where upstream Kinto is installed (absolute path).',
  env: 'KINTO_DEPLOY_VIRTUALENV',
  helpValue: 'DIR',
})

export const deployWsgiFileFlag = Flags.string({
  summary: 'Absolute path of app.wsgi. Default: app.wsgi beside the ini.',
  env: 'KINTO_DEPLOY_WSGI_FILE',
  helpValue: 'FILE',
})

export const deployAppWsgiFlag = Flags.boolean({
  summary: 'Print (or write, or check) the app.wsgi entry point instead of the server configuration.',
  default: false,
})

// ---- `kinto backoff | readonly | maintenance` (running servers and expiring toggles)

export const reloadFlag = Flags.boolean({
  summary: 'Make running servers of the ini apply the change (SIGHUP) and report it; --no-reload only edits the file.',
  env: 'KINTO_RELOAD',
  default: true,
  allowNo: true,
})

export const forFlag = durationFlag({
  summary: 'Turn it off by itself after this long (e.g. 30m, 2h); the ini says until when.',
  above: 0,
})

/** The flags of `kinto readonly|maintenance` (backoff adds --percentage). */
export const toggleFlags = {ini: iniFlag, for: forFlag, reload: reloadFlag}

/** The `on`/`off` argument of `kinto readonly|maintenance` (any case: `ON`, `Off`). */
export const onOffArg = Args.custom<'on' | 'off'>({
  description: '`on` or `off`.',
  required: true,
  async parse(input) {
    const value = input.trim().toLowerCase()
    if (value !== 'on' && value !== 'off') throw new UsageError(`${JSON.stringify(input)} is neither \`on\` nor \`off\`.`)
    return value
  },
})()

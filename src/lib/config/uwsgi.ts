/**
 * The `[uwsgi]` section, read as uWSGI reads it. PasteDeploy (upstream's `kinto start`) never
 * reads this section; uWSGI does, with its own expansions and not configparser's `%(name)s`:
 * `$(NAME)` is the environment variable NAME, `%(name)` another option of the section, `%k` the
 * number of CPU cores, `%%` a '%'. Other magic variables (`%d`, `%n`…) are left as written.
 * [DEFAULT] is configparser's idea: uWSGI does not read it into this section.
 */
import {availableParallelism} from 'node:os'

import type {IniDocument} from './ini.js'

export interface UwsgiReadOptions {
  env?: NodeJS.ProcessEnv
  /** `%k`; the machine's cores by default. */
  cpus?: number
}

/** uWSGI resolves placeholders that refer to placeholders; a loop ends here. */
const MAX_DEPTH = 10

/** The name of the [uwsgi] section as written (blanks around it allowed), if the ini has one. */
export function uwsgiSection(ini: IniDocument): string | undefined {
  return ini.sectionNames().find((n) => n.trim() === 'uwsgi')
}

/**
 * The value of `key` in [uwsgi] after uWSGI's expansions, or undefined when the section or the key
 * is not there.
 */
export function uwsgiOption(ini: IniDocument, key: string, options: UwsgiReadOptions = {}): string | undefined {
  const section = uwsgiSection(ini)
  if (section === undefined) return undefined
  const env = options.env ?? process.env
  const cpus = options.cpus ?? availableParallelism()
  const own = (name: string) => ini.ownEntry(section, name)?.value
  const expand = (value: string, depth: number): string =>
    value.replace(/\$\(([^)]*)\)|%\(([^)]*)\)|%([k%])/g, (whole, envName?: string, option?: string, magic?: string) => {
      if (envName !== undefined) return env[envName] ?? ''
      if (option !== undefined) {
        const v = own(option)
        return v === undefined ? whole : depth < MAX_DEPTH ? expand(v, depth + 1) : v
      }
      return magic === 'k' ? String(cpus) : '%'
    })
  const raw = own(key)
  return raw === undefined ? undefined : expand(raw, 1)
}

/** A temporary ini pointing the postgresql backends at one test database, for CLI tests. */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface IniOptions {
  storage?: boolean
  permission?: boolean
  cache?: boolean
  extra?: string
}

export function writeTestIni(url: string, opts: IniOptions = {}): {dir: string; ini: string; cleanup(): void} {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-schema-ini-'))
  const ini = path.join(dir, 'kinto.ini')
  const pg = (b: string, on = true) =>
    on
      ? `kinto.${b}_backend = kinto.core.${b}.postgresql\nkinto.${b}_url = ${url}\n`
      : `kinto.${b}_backend = kinto.core.${b}.memory\n`
  writeFileSync(
    ini,
    `[app:main]\nuse = egg:kinto\n${pg('storage', opts.storage ?? true)}${pg('permission', opts.permission ?? true)}${pg('cache', opts.cache ?? true)}${opts.extra ?? ''}\n`,
  )
  return {dir, ini, cleanup: () => rmSync(dir, {recursive: true, force: true})}
}

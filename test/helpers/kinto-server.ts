/**
 * A `kinto start` subprocess on memory backends (its ini written into a temporary folder, waited
 * for until __lbheartbeat__ answers) and the headless chromium the browser tests drive. Processes
 * are stopped by deploy-servers' stopAll().
 */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import type {Browser} from 'playwright-core'

import {cliBin} from './cli.js'
import {findBinary, freePort, httpRequest, startProcess, tempDir, waitFor} from './deploy-servers.js'

export interface KintoServer {
  /** http://127.0.0.1:PORT (no /v1). */
  base: string
  dir: string
  ini: string
  /** What the server printed so far. */
  output: () => string
}

/**
 * Starts `kinto start` with memory backends and these `[app:main]` lines, on `port` when given
 * (a caller that must know the URL first, e.g. for an OpenID redirect URI), else a free one; `env`
 * is added to the process's environment (KINTO_* overrides).
 */
export async function startMemoryKinto(name: string, lines: string[], port?: number, env: NodeJS.ProcessEnv = {}): Promise<KintoServer> {
  const dir = tempDir(name)
  port ??= await freePort()
  const base = `http://127.0.0.1:${port}`
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(
    ini,
    [
      '[server:main]',
      'use = egg:waitress#main',
      'host = 127.0.0.1',
      `port = ${port}`,
      '',
      '[app:main]',
      'use = egg:kinto',
      'kinto.storage_backend = kinto.core.storage.memory',
      'kinto.permission_backend = kinto.core.permission.memory',
      'kinto.cache_backend = kinto.core.cache.memory',
      ...lines,
      '',
    ].join('\n'),
    {mode: 0o600},
  )
  const kinto = startProcess(process.execPath, [cliBin, 'start', '--ini', ini], {cwd: dir, env: {...env, NO_COLOR: '1', CI: 'true'}})
  await waitFor(async () => (await httpRequest(`${base}/v1/__lbheartbeat__`, {timeoutMs: 2000})).status === 200, 45_000, () => `kinto start: ${kinto.output()}`)
  return {base, dir, ini, output: kinto.output}
}

/** Debian's chromium, or undefined. */
export const chromiumPath = findBinary('chromium')
/** '' when chromium is there, else the SKIPPED line the browser tests print. */
export const chromiumSkip = chromiumPath ? '' : 'SKIPPED: chromium not installed (CI installs the Debian chromium package)'

/** A headless chromium (no sandbox when running as root, as in CI containers). */
export async function launchChromium(): Promise<Browser> {
  const {chromium} = await import('playwright-core')
  return chromium.launch({executablePath: chromiumPath, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [], timeout: 30_000})
}

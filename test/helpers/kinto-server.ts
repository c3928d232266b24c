/**
 * A `kinto start` subprocess on memory backends (its ini written into a temporary folder, waited
 * for until __lbheartbeat__ answers, on a port or a unix socket) and the headless chromium the
 * browser tests drive. Processes are stopped by deploy-servers' stopAll().
 */
import {existsSync, writeFileSync} from 'node:fs'
import {request} from 'node:http'
import path from 'node:path'

import type {Browser} from 'playwright-core'

import {cliBin} from './cli.js'
import {findBinary, freePort, httpRequest, startProcess, tempDir, waitFor} from './deploy-servers.js'

export interface KintoServer {
  /** http://127.0.0.1:PORT (no /v1); '' when it listens on a unix socket. */
  base: string
  /** Its port; undefined on a unix socket. */
  port?: number
  /** The unix socket it listens on (absolute), when asked for one. */
  socket?: string
  dir: string
  ini: string
  /** What the server printed so far. */
  output: () => string
}

export interface MemoryKintoOptions {
  /** The port to listen on (a caller that must know the URL first, e.g. for an OpenID redirect URI), else a free one. */
  port?: number
  /** Listen on this unix socket (`unix_socket`, relative to the ini's folder) instead of a port. */
  unixSocket?: string
  /** The ini's folder (one the caller made, e.g. because its lines name files in it), else a new temporary one. */
  dir?: string
  /** Sections after [app:main], e.g. logging ones (their lines, headers included). */
  sections?: string[]
  /** Added to the process's environment (KINTO_* overrides). */
  env?: NodeJS.ProcessEnv
}

/**
 * The text of an ini on memory backends: [server:main] with these `listen` lines (host/port or
 * unix_socket), [app:main] with these lines, then the other sections' lines.
 */
export function memoryIniText(listen: string[], lines: string[], sections: string[] = []): string {
  return [
    '[server:main]',
    'use = egg:waitress#main',
    ...listen,
    '',
    '[app:main]',
    'use = egg:kinto',
    'kinto.storage_backend = kinto.core.storage.memory',
    'kinto.permission_backend = kinto.core.permission.memory',
    'kinto.cache_backend = kinto.core.cache.memory',
    ...lines,
    '',
    ...(sections.length > 0 ? [...sections, ''] : []),
  ].join('\n')
}

/** Answers true when GET /v1/__lbheartbeat__ over this unix socket is a 200. */
function socketHeartbeat(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(socketPath)) return resolve(false)
    const req = request({socketPath, path: '/v1/__lbheartbeat__'}, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.end()
  })
}

/**
 * Starts `kinto start` with memory backends and these `[app:main]` lines, on a free port unless
 * options say otherwise, and waits until __lbheartbeat__ answers.
 */
export async function startMemoryKinto(name: string, lines: string[], options: MemoryKintoOptions = {}): Promise<KintoServer> {
  const dir = options.dir ?? tempDir(name)
  const socket = options.unixSocket === undefined ? undefined : path.resolve(dir, options.unixSocket)
  const port = socket ? undefined : (options.port ?? (await freePort()))
  const base = port === undefined ? '' : `http://127.0.0.1:${port}`
  const listen = socket ? [`unix_socket = ${options.unixSocket}`] : ['host = 127.0.0.1', `port = ${port}`]
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, memoryIniText(listen, lines, options.sections), {mode: 0o600})
  const kinto = startProcess(process.execPath, [cliBin, 'start', '--ini', ini], {cwd: dir, env: {...options.env, NO_COLOR: '1', CI: 'true'}})
  const ready = socket ? () => socketHeartbeat(socket) : async () => (await httpRequest(`${base}/v1/__lbheartbeat__`, {timeoutMs: 2000})).status === 200
  await waitFor(ready, 45_000, () => `kinto start on ${socket ?? base}: ${kinto.output()}`)
  return {base, port, socket, dir, ini, output: kinto.output}
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

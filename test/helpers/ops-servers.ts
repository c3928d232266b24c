/**
 * Helpers of the ops tests: inis in temporary folders over memory, an embedded folder or a fresh
 * PostgreSQL database (schema installed), and `kinto start` as a real process.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {BACKEND_KINDS, backendSettings, type BackendKind, iniText} from '../client/helpers.js'
import {cliBin, repoRoot} from './cli.js'
import type {TestDatabase} from './db.js'

export type OpsKind = BackendKind

/** The kinds this run can test (PostgreSQL when KINTO_TEST_DATABASE_URL is set). */
export const OPS_KINDS: OpsKind[] = BACKEND_KINDS

export interface OpsIni {
  dir: string
  ini: string
  db?: TestDatabase
  cleanup(): Promise<void>
}

/** An ini over a database of this kind (schema installed), plus extra settings and sections. */
export async function opsIni(kind: OpsKind, extra: Record<string, string> = {}, tail = ''): Promise<OpsIni> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-'))
  const {settings, db} = await backendSettings(kind)
  const ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, iniText({'kinto.userid_hmac_secret': 'ops-tests', ...settings, ...extra}) + tail)
  return {
    dir,
    ini,
    db,
    async cleanup() {
      await db?.drop()
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

export interface Started {
  child: ChildProcess
  pid: number
  url: string
  /** stdout and stderr as they came. */
  output(): string
  stdout(): string
  stderr(): string
  exit: Promise<{code: number | null; signal: NodeJS.Signals | null}>
  /** SIGTERM, then the exit status (SIGKILL after 30 s). */
  stop(): Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

/** Spawns `kinto start ARGS` (in `cwd`, else the repository) and waits for its "Serving <url>" line (stdout and stderr collected). */
export function spawnStart(args: string[], env: NodeJS.ProcessEnv = {}, cwd = repoRoot): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, 'start', ...args], {
      cwd,
      env: {...process.env, NO_COLOR: '1', ...env},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const exit = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((res) => child.on('exit', (code, signal) => res({code, signal})))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`kinto start did not start: ${output}`))
    }, 90_000)
    const onData = (d: Buffer) => {
      output += d
      // the line `kinto start` prints once it listens (`Serving <url> (<ini>…`), not a warning that
      // starts with the same word ("Serving without checking the schema: …")
      const m = /Serving (\S+) \(/.exec(output)
      if (m) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        child.stderr!.off('data', onData)
        child.stdout!.on('data', (x) => (output += x))
        child.stderr!.on('data', (x) => (output += x))
        resolve({
          child,
          pid: child.pid!,
          url: m[1],
          output: () => output,
          stdout: () => stdout,
          stderr: () => stderr,
          exit,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
            const kill = setTimeout(() => child.kill('SIGKILL'), 30_000)
            const status = await exit
            clearTimeout(kill)
            return status
          },
        })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    void exit.then(({code}) => {
      clearTimeout(timer)
      reject(new Error(`kinto start exited (${code}) before serving: ${output}`))
    })
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

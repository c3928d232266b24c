/**
 * `kinto wait-ready` follows the run registry while it polls: a server of the ini that is still
 * starting is waited for, even when another server answers on [server:main]'s port meanwhile.
 */
import {spawn} from 'node:child_process'
import {createServer} from 'node:http'
import {readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import type {AddressInfo} from 'node:net'
import path from 'node:path'

import {describe, expect, test} from 'vitest'

import {listRuns} from '../../src/lib/runs/registry.js'
import {cliBin, repoRoot, runCli} from '../helpers/cli.js'
import {opsIni, sleep} from '../helpers/ops-servers.js'
import {tempFolders} from '../helpers/tmp.js'

const tempDir = tempFolders('wait-ready')

describe('kinto wait-ready', () => {
  test('waits for the server of the ini (registered, starting on another port), not for whoever answers on [server:main]', async () => {
    // Another server answers 200 on the port the ini names.
    const other = createServer((_req, res) => res.end('{"storage": true}'))
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()))
    const port = (other.address() as AddressInfo).port
    const i = await opsIni('pglite')
    const text = readFileSync(i.ini, 'utf8')
    writeFileSync(i.ini, text.replace('port = %(http_port)s', `port = ${port}`))
    const folder = /kinto\.storage_url = pglite:(.*)/.exec(text)![1].trim()
    // This process holds the folder's lock (as a migration would): the server registers, then waits.
    const lock = `${folder.replace(/\/+$/, '')}.kinto-migrate.lock`
    writeFileSync(lock, String(process.pid))
    const start = spawn(process.execPath, [cliBin, 'start', '--ini', i.ini, '--port', '0'], {cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe']})
    let startOutput = ''
    start.stdout.on('data', (d) => (startOutput += d))
    start.stderr.on('data', (d) => (startOutput += d))
    try {
      const deadline = Date.now() + 90_000
      while (!listRuns(i.ini).some((e) => e.pid === start.pid) && Date.now() < deadline) await sleep(100)
      expect(listRuns(i.ini).find((e) => e.pid === start.pid)?.url, startOutput).toBeNull()
      const waiting = runCli(['wait-ready', '--ini', i.ini, '--timeout', '90s', '--json'])
      await sleep(3000)
      unlinkSync(lock)
      const r = await waiting
      expect(r.code, r.stderr).toBe(0)
      const url = (JSON.parse(r.stdout) as {url: string}).url
      expect(url).not.toContain(`:${port}/`)
      expect(url).toBe(listRuns(i.ini).find((e) => e.pid === start.pid)?.url)
      const text = await runCli(['wait-ready', '--ini', i.ini, '--timeout', '5s'])
      expect(text.stderr).toContain(`Polling ${url}__heartbeat__ (server pid ${start.pid} of this ini, from the run registry).`)
    } finally {
      if (start.exitCode === null && start.signalCode === null) {
        start.kill('SIGTERM')
        await new Promise((r) => start.on('exit', r))
      }
      other.close()
      await i.cleanup()
      try {
        unlinkSync(lock)
      } catch {}
    }
  }, 240_000)

  test('--url unix:SOCKET: the progress line names the heartbeat it polls on that socket', async () => {
    const socket = path.join(tempDir(), 'kinto.sock')
    const paths: string[] = []
    const server = createServer((req, res) => {
      paths.push(req.url ?? '')
      res.setHeader('Content-Type', 'application/json')
      res.end('{"storage": true}')
    })
    await new Promise<void>((r) => server.listen(socket, () => r()))
    try {
      const r = await runCli(['wait-ready', '--url', `unix:${socket}`, '--timeout', '10s'])
      expect(r.code, r.stderr).toBe(0)
      expect(paths).toContain('/v1/__heartbeat__')
      expect(r.stderr).toContain(`Polling /v1/__heartbeat__ on unix:${socket} (given with --url).`)
    } finally {
      server.close()
    }
  })
})

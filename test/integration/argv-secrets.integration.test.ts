/**
 * A password given in a URL flag is masked in the command line other users of the machine read
 * (`ps`, /proc/<pid>/cmdline) once the command has started, and so is the password of `check
 * --user`: checked while the command waits on a server that accepts the connection and never answers.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {cliBin, repoRoot} from '../helpers/cli.js'

const PASSWORD = 'Argv-4kQ9-wZ2p'
const skip = process.platform === 'linux' ? null : 'reads /proc/<pid>/cmdline (Linux only)'

describe.skipIf(skip !== null)(`the command line of a running command${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-argv-'))
  const servers: Array<{server: Server; sockets: Socket[]}> = []
  afterAll(() => {
    for (const {server, sockets} of servers) {
      for (const socket of sockets) socket.destroy()
      server.close()
    }
    rmSync(dir, {recursive: true, force: true})
  })

  /** Starts `kinto ARGS(port)` against a server that never answers and returns its command line. */
  async function commandLineWhileWaiting(args: (port: number) => string[]): Promise<string> {
    const sockets: Socket[] = []
    let connected!: () => void
    const reached = new Promise<void>((resolve) => (connected = resolve))
    const server = createServer((socket) => {
      sockets.push(socket)
      connected()
    })
    servers.push({server, sockets})
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as {port: number}).port
    const child = spawn(process.execPath, [cliBin, ...args(port)], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1'}, stdio: 'ignore'})
    try {
      await reached
      return readFileSync(`/proc/${child.pid}/cmdline`, 'utf8')
    } finally {
      child.kill('SIGKILL')
    }
  }

  it('shows the password of --admin-url masked', async () => {
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto@127.0.0.1:1/kinto\n', {mode: 0o600})
    let port = 0
    const cmdline = await commandLineWhileWaiting((p) => {
      port = p
      return ['db', 'create', '--ini', ini, '--admin-url', `postgresql://postgres:${PASSWORD}@127.0.0.1:${p}/postgres`]
    })
    expect(cmdline).toContain(`--admin-url postgresql://postgres:***@127.0.0.1:${port}/postgres`)
    expect(cmdline).not.toContain(PASSWORD)
  })

  it.each([
    ['--user USER:PASSWORD', ['--user', `admin:${PASSWORD}`], '--user admin:***'],
    ['--user=USER:PASSWORD', [`--user=admin:${PASSWORD}`], '--user=admin:***'],
  ])('shows the password of check %s masked', async (_form, user, shown) => {
    const cmdline = await commandLineWhileWaiting((p) => ['check', '--url', `http://127.0.0.1:${p}/v1/`, ...user, '--timeout', '30'])
    expect(cmdline).toContain(shown)
    expect(cmdline).not.toContain(PASSWORD)
  })
})

/**
 * A password given in a URL flag is masked in the command line other users of the machine read
 * (`ps`, /proc/<pid>/cmdline) once the command has started: checked while `kinto db create
 * --admin-url` waits on a server that accepts the connection and never answers.
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
  const sockets: Socket[] = []
  let server: Server | undefined
  afterAll(() => {
    for (const socket of sockets) socket.destroy()
    server?.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('shows the password of --admin-url masked', async () => {
    // A PostgreSQL that takes the connection and never answers: the command waits, with its
    // arguments already parsed, while the test reads them.
    const connected = new Promise<void>((resolve) => {
      server = createServer((socket) => {
        sockets.push(socket)
        resolve()
      })
    })
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const port = (server!.address() as {port: number}).port
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = postgresql://kinto@127.0.0.1:1/kinto\n', {mode: 0o600})
    const adminUrl = `postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`
    const child = spawn(process.execPath, [cliBin, 'db', 'create', '--ini', ini, '--admin-url', adminUrl], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1'}, stdio: 'ignore'})
    try {
      await connected
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8')
      expect(cmdline).toContain(`--admin-url postgresql://postgres:***@127.0.0.1:${port}/postgres`)
      expect(cmdline).not.toContain(PASSWORD)
    } finally {
      child.kill('SIGKILL')
    }
  })
})

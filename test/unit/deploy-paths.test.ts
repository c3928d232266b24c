/** deploy commands that do what they say: the running server's port, a warned-about catch-all server_name, Apache's Listen. */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {RunRecord} from '../../src/lib/runs/registry.js'
import {runCliInProcess as runCli} from '../helpers/cli-in-process.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('deploy-paths')

function ini(): string {
  const file = path.join(tmp(), 'kinto.ini')
  writeFileSync(file, '[app:main]\nkinto.userid_hmac_secret = deploy-paths\n\n[server:main]\nhost = 127.0.0.1\nport = %(http_port)s\n')
  return file
}

describe('kinto deploy', () => {
  it('proxies to the port the server of the ini runs on (run registry), not %(http_port)s', async () => {
    const file = ini()
    const before = await runCli(['deploy', 'nginx', '--ini', file, '--server-name', 'kinto.example.com'])
    expect(before.stdout).toContain('server 127.0.0.1:8888')
    // This process stands for a server of that ini listening on 8877.
    const record = new RunRecord({role: 'server', ini: file, url: 'http://127.0.0.1:8877/v1/', configHash: '', needRestart: []}, {})
    try {
      const r = await runCli(['deploy', 'nginx', '--ini', file, '--server-name', 'kinto.example.com'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toContain('server 127.0.0.1:8877')
      const apache = await runCli(['deploy', 'apache', '--ini', file, '--server-name', 'kinto.example.com'])
      expect(apache.stdout).toContain('http://127.0.0.1:8877/')
    } finally {
      record.remove()
    }
  })

  it('says so when no server name is known (server_name _)', async () => {
    const r = await runCli(['deploy', 'nginx', '--ini', ini()])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('server_name _;')
    expect(r.stderr).toContain('Warning: no server name (--server-name or kinto.http_host)')
  })

  it('apache --listen writes the Listen directive', async () => {
    const r = await runCli(['deploy', 'apache', '--ini', ini(), '--server-name', 'kinto.example.com', '--listen', '8080'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Listen 8080\n<VirtualHost \*:8080>/m)
    const plain = await runCli(['deploy', 'apache', '--ini', ini(), '--server-name', 'kinto.example.com'])
    expect(plain.stdout).not.toMatch(/^Listen /m)
  })
})

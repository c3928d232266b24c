/** `kinto deploy nginx | uwsgi | apache` as a user runs them (in-process, the same contract as a subprocess: no TTY). */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCliInProcess as runCli} from '../helpers/cli-in-process.js'

let dir: string
let ini: string

const INI = `[server:main]
use = egg:waitress#main
host = 0.0.0.0
port = %(http_port)s

[app:main]
use = egg:kinto
kinto.http_host = kinto.example.com
`

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-deploy-cli-'))
  ini = path.join(dir, 'kinto.ini')
  writeFileSync(ini, INI)
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const noStack = /\n\s+at /

describe('the examples of each deploy command\'s help', () => {
  const commands = [
    ['nginx', () => import('../../src/commands/deploy/nginx.js')],
    ['uwsgi', () => import('../../src/commands/deploy/uwsgi.js')],
    ['apache', () => import('../../src/commands/deploy/apache.js')],
  ] as const
  it.each(commands)('kinto deploy %s: each example runs as written (files under a temporary folder)', async (name, load) => {
    const examples = (await load()).default.examples as string[]
    expect(examples.length).toBeGreaterThan(0)
    for (const [i, example] of examples.entries()) {
      // `> FILE` is the shell's; paths given to --output or --check are moved into the temporary folder.
      const words = example.replace('<%= config.bin %> ', '').replace(/\s*>.*$/, '').split(/\s+/)
      const args = words.map((w, j) => (['--output', '--check'].includes(words[j - 1]) ? path.join(dir, `example-${name}-${i}-${path.basename(w)}`) : w))
      const r = await runCli([...args, '--ini', ini])
      expect([0, 6], `${example}\n${r.stderr}`).toContain(r.code)
    }
  })
})

describe('kinto deploy nginx', () => {
  it('prints the block from the ini; --output writes the same bytes; --check agrees, then reports drift', async () => {
    const printed = await runCli(['deploy', 'nginx', '--ini', ini])
    expect(printed.stderr).toBe('')
    expect(printed.code).toBe(0)
    expect(printed.stdout).toContain('server_name kinto.example.com;')
    expect(printed.stdout).toContain('server 127.0.0.1:8888;')

    const file = path.join(dir, 'nginx.conf')
    const written = await runCli(['deploy', 'nginx', '--ini', ini, '--output', file])
    expect(written.code).toBe(0)
    expect(written.stderr.trim()).toBe(`Wrote ${file}.`)
    expect(readFileSync(file, 'utf8')).toBe(printed.stdout)

    const again = await runCli(['deploy', 'nginx', '--ini', ini, '--output', file, '--cache'])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`${file} already exists; it was left unchanged.`)
    expect(again.stderr).toContain('Add --force')
    expect(readFileSync(file, 'utf8')).toBe(printed.stdout)

    const same = await runCli(['deploy', 'nginx', '--ini', ini, '--check', file])
    expect(same.code).toBe(0)
    expect(same.stdout).toBe('')
    expect(same.stderr.trim()).toBe(`${file} is up to date.`)

    const drift = await runCli(['deploy', 'nginx', '--ini', ini, '--check', file, '--allow', '10.0.0.0/8'])
    expect(drift.code).toBe(6)
    expect(drift.stdout).toContain(`--- ${file}\n+++ generated\n`)
    expect(drift.stdout).toMatch(/^-        allow 127\.0\.0\.1;$/m)
    expect(drift.stdout).toMatch(/^\+        allow 10\.0\.0\.0\/8;$/m)
    expect(drift.stderr).toContain('differs from what would be generated')

    const forced = await runCli(['deploy', 'nginx', '--ini', ini, '--output', file, '--force', '--cache-path', path.join(dir, 'cache')])
    expect(forced.code).toBe(0)
    expect(forced.stderr.trim()).toBe(`Replaced ${file}.`)
    expect(readFileSync(file, 'utf8')).toContain(`proxy_cache_path ${path.join(dir, 'cache')} `)
  })

  it.each([
    ['kinto.example.com;', "';'"],
    ['kinto.example.com}', 'a brace'],
    ['kinto.example.com\nlisten 81', 'a line break'],
  ])('refuses the server name %j: exit 2, one clear line, no stack', async (name, problem) => {
    const r = await runCli(['deploy', 'nginx', '--ini', ini, '--server-name', name])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`(from --server-name): it contains ${problem}, which would break the generated file.`)
    expect(r.stderr).not.toMatch(noStack)
  })

  it('refuses a bad value from the ini with exit 1, naming the line', async () => {
    const bad = path.join(dir, 'bad.ini')
    writeFileSync(bad, INI.replace('kinto.example.com', 'kinto.example.com;include /etc/shadow'))
    const r = await runCli(['deploy', 'nginx', '--ini', bad])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/\(from .*bad\.ini, line 8, key 'kinto\.http_host'\)/)
    expect(r.stderr).not.toMatch(noStack)
  })

  it('refuses an upstream with credentials without echoing the password (it was shown as a bad port)', async () => {
    for (const upstream of ['http://kinto:s3cr3t@app:8888', 'kinto:s3cr3t@app:8888']) {
      const r = await runCli(['deploy', 'nginx', '--ini', ini, '--upstream', upstream, '--json'])
      expect(r.code, upstream).toBe(2)
      expect(r.stdout + r.stderr, upstream).not.toContain('s3cr3t')
      expect(JSON.parse(r.stdout).error.message, upstream).toMatch(/^Invalid upstream ".*\*\*\*@app:8888" \(from --upstream\): it carries credentials/)
    }
  })

  it('refuses --output with --check, and --uwsgi with --upstream (exit 2)', async () => {
    const a = await runCli(['deploy', 'nginx', '--ini', ini, '--output', path.join(dir, 'x'), '--check', path.join(dir, 'y')])
    expect(a.code).toBe(2)
    expect(a.stderr).toContain('--output and --check cannot be used together.')
    const b = await runCli(['deploy', 'nginx', '--ini', ini, '--uwsgi', '--upstream', 'uwsgi://127.0.0.1:3031'])
    expect(b.code).toBe(2)
    expect(b.stderr).toContain('--uwsgi and --upstream cannot be used together.')
  })

  it('--cache-path whose parent folder is missing here: a warning (nginx -t would fail: nginx makes only the last folder), the block all the same', async () => {
    const missingParent = path.join(dir, 'no-such-folder', 'kinto')
    const r = await runCli(['deploy', 'nginx', '--ini', ini, '--cache-path', missingParent])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`proxy_cache_path ${missingParent} `)
    expect(r.stderr).toContain(`Warning: ${path.join(dir, 'no-such-folder')} does not exist`)
    expect(r.stderr).toContain(`mkdir -p ${path.join(dir, 'no-such-folder')}`)
    const json = await runCli(['deploy', 'nginx', '--ini', ini, '--cache-path', missingParent, '--json'])
    expect(JSON.parse(json.stdout)).toMatchObject({action: 'print', warnings: [expect.stringContaining('does not exist')]})
    const fine = await runCli(['deploy', 'nginx', '--ini', ini, '--cache-path', path.join(dir, 'cache-zone')])
    expect(fine.stderr).toBe('')
  })

  it.each([['nginx'], ['apache']])('deploy %s --listen 443: a warning that the block serves plain HTTP there (no TLS in it)', async (server) => {
    const r = await runCli(['deploy', server, '--ini', ini, '--listen', '443'])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('Warning: port 443 is HTTPS')
    const plain = await runCli(['deploy', server, '--ini', ini, '--listen', '127.0.0.1:8080'])
    expect(plain.stderr).not.toContain('443')
  })

  it('--json returns the snippet, or the check with its diff', async () => {
    const r = await runCli(['deploy', 'nginx', '--ini', ini, '--json', '--uwsgi', '--server-name', 'a.example.com'])
    expect(r.code).toBe(0)
    const result = JSON.parse(r.stdout) as {snippet: string; action: string; content: string}
    expect(result.snippet).toBe('nginx')
    expect(result.action).toBe('print')
    expect(result.content).toContain('uwsgi_pass kinto_backend;')
    const missing = await runCli(['deploy', 'nginx', '--ini', ini, '--json', '--check', path.join(dir, 'absent.conf')])
    expect(missing.code).toBe(6)
    expect(JSON.parse(missing.stdout)).toMatchObject({action: 'check', upToDate: false, missing: true})
  })
})

describe('kinto deploy uwsgi', () => {
  it('prints the section from the ini, and app.wsgi with --app-wsgi', async () => {
    const section = await runCli(['deploy', 'uwsgi', '--ini', ini, '--virtualenv', '/srv/kinto/.venv', '--processes', '5'])
    expect(section.code).toBe(0)
    expect(section.stdout).toContain(`[uwsgi]\nplugin = python3\nwsgi-file = ${path.join(dir, 'app.wsgi')}\nvirtualenv = /srv/kinto/.venv\nenv = KINTO_INI=${ini}\nsocket = 127.0.0.1:8888\n`)
    expect(section.stdout).toContain('processes = 5\n')
    const app = await runCli(['deploy', 'uwsgi', '--ini', ini, '--app-wsgi'])
    expect(app.code).toBe(0)
    expect(app.stdout).toContain(`os.environ.get("KINTO_INI") or ${JSON.stringify(ini)}`)
  })

  it('refuses a uid that would break the section', async () => {
    const r = await runCli(['deploy', 'uwsgi', '--ini', ini, '--uid', 'kinto\nmaster = false'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Invalid uid')
    expect(r.stderr).not.toMatch(noStack)
  })
})

describe('kinto deploy apache', () => {
  it('proxy mode over the ini’s unix socket; wsgi mode with the Directory block', async () => {
    const sock = path.join(dir, 'sock.ini')
    writeFileSync(sock, INI.replace('port = %(http_port)s', 'port = %(http_port)s\nunix_socket = run/kinto.sock'))
    const proxy = await runCli(['deploy', 'apache', '--ini', sock])
    expect(proxy.code).toBe(0)
    expect(proxy.stdout).toContain(`ProxyPass "/" "unix:${path.join(dir, 'run/kinto.sock')}|http://localhost/"`)
    const wsgi = await runCli(['deploy', 'apache', '--ini', ini, '--mode', 'wsgi'])
    expect(wsgi.code).toBe(0)
    expect(wsgi.stdout).toContain(`SetEnv KINTO_INI "${ini}"`)
    expect(wsgi.stdout).toContain(`<Directory "${dir}">`)
  })

  it('refuses a flag of the other mode (exit 2)', async () => {
    const r = await runCli(['deploy', 'apache', '--ini', ini, '--virtualenv', '/srv/venv'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--virtualenv does not apply to --mode proxy.')
  })
})

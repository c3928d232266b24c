/** Ctrl-C under a terminal: the command needs a process (and a terminal) of its own. */
import {spawn, spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {cliBin} from '../helpers/cli.js'
import {tempFolders} from '../helpers/tmp.js'

const tmp = tempFolders('cli-terminal')

describe('progress on a terminal', () => {
  it('Ctrl-C during `kinto migrate` on a terminal dies of SIGINT (130), as without a terminal', async (ctx) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      ctx.skip('SKIPPED: no `script` (util-linux) to give the command a terminal')
    }
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = pglite:data\n')
    // A live process (this one) holds the migration lock: migrate waits there, showing its progress.
    writeFileSync(path.join(dir, 'data.kinto-migrate.lock'), String(process.pid))
    const command = `stty rows 24 cols 80; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cliBin)} migrate --ini ${JSON.stringify(ini)}`
    // CI unset: with CI set the command shows plain lines, not the terminal's progress (CI sets it).
    const child = spawn('script', ['-qefc', command, '/dev/null'], {env: {...process.env, TERM: 'xterm', CI: ''}, stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise<number | null>((resolve) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 40_000)
      const poll = setInterval(() => {
        if (!out.includes('Migrating the PostgreSQL schema')) return
        clearInterval(poll)
        child.stdin.write('\u0003')
      }, 100)
      child.on('close', (c) => {
        clearTimeout(killer)
        clearInterval(poll)
        resolve(c)
      })
    })
    expect(out).toContain('Migrating the PostgreSQL schema')
    expect(code).toBe(130)
  }, 60_000)

  it('`kinto create-user --json` on a terminal asks nothing: the missing flags as the one JSON document, exit 2', async (ctx) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      ctx.skip('SKIPPED: no `script` (util-linux) to give the command a terminal')
    }
    const dir = tmp()
    const ini = path.join(dir, 'kinto.ini')
    writeFileSync(ini, '[app:main]\nkinto.includes = kinto.plugins.accounts\nkinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = pglite:data\n')
    const command = `stty rows 24 cols 80; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(cliBin)} create-user --json --ini ${JSON.stringify(ini)}`
    const child = spawn('script', ['-qefc', command, '/dev/null'], {env: {...process.env, TERM: 'xterm', CI: ''}, stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise<number | null>((resolve) => {
      // A question waits for an answer: end it, so the test fails instead of hanging.
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      child.on('close', (c) => {
        clearTimeout(killer)
        resolve(c)
      })
    })
    expect(out).not.toContain('Username')
    expect(JSON.parse(out.replaceAll('\r\n', '\n'))).toEqual({
      error: {
        code: 'KINTO_NO_TTY',
        message: 'Missing --username NAME and --password-stdin or --generate-password (--json asks no questions).',
        hint: expect.any(String),
      },
    })
    expect(code).toBe(2)
  }, 60_000)
})

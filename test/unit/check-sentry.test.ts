/**
 * `kinto check` and kinto.sentry_dsn: a DSN of the wrong form is an error; a DSN whose host
 * answers HTTP (a loopback listener here) is ok; one whose host does not answer (a closed
 * loopback port) is a warning; the DSN's public key never appears in a finding.
 */
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {checkSentry, parseSentryDsn} from '../../src/lib/check/sentry-check.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {freePort} from '../helpers/deploy-servers.js'

const KEY = 'f00dfeedf00dfeedf00dfeedf00dfeed'
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function config(dsn: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-check-sentry-'))
  dirs.push(dir)
  const file = path.join(dir, 'kinto.ini')
  writeFileSync(file, `[app:main]\nuse = egg:kinto\nkinto.userid_hmac_secret = abc\nkinto.sentry_dsn = ${dsn}\n`)
  chmodSync(file, 0o600)
  return loadConfig(file, {env: {}})
}

describe('kinto check: sentry', () => {
  it('parses DSNs', () => {
    expect(parseSentryDsn(`https://${KEY}@o1.ingest.sentry.io/42`)).toEqual({origin: 'https://o1.ingest.sentry.io', project: '42'})
    expect(parseSentryDsn('https://o1.ingest.sentry.io/42')).toEqual({problem: expect.stringMatching(/no public key/)})
    expect(parseSentryDsn(`udp://${KEY}@host/1`)).toEqual({problem: expect.stringMatching(/scheme is udp/)})
  })

  it('ok when the host answers, warning when it does not, error when malformed; no key in findings', async () => {
    const server = createServer((_req, res) => res.writeHead(404).end())
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const {port} = server.address() as {port: number}
      const up = await checkSentry(config(`http://${KEY}@127.0.0.1:${port}/7`), {timeoutMs: 3000})
      expect(up).toMatchObject([{id: 'sentry', level: 'ok'}])
      const closed = await freePort()
      const down = await checkSentry(config(`http://${KEY}@127.0.0.1:${closed}/7`), {timeoutMs: 3000})
      expect(down).toMatchObject([{id: 'sentry', level: 'warning'}])
      expect(down[0].message).toMatch(/ECONNREFUSED/)
      const bad = await checkSentry(config('not a dsn'), {timeoutMs: 3000})
      expect(bad).toMatchObject([{id: 'sentry', level: 'error'}])
      for (const f of [...up, ...down, ...bad]) expect(JSON.stringify(f)).not.toContain(KEY)
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})

/**
 * Attachments behind the real nginx: `kinto start` (a subprocess) with kinto_attachment on local
 * storage, `kinto deploy nginx` from the same ini, nginx started on its output. A file uploaded
 * through nginx is stored by kinto start and downloaded through nginx — served from base_path by
 * nginx itself (long cache headers) — byte-identical; hidden (in-progress) files are never served.
 */
import {createHash, randomBytes} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {nginxOptionsFrom, renderNginx} from '../../src/lib/deploy/index.js'
import {freePort, missing, nginxTest, readLog, startNginx, stopAll, tempDir} from '../helpers/deploy-servers.js'
import {startMemoryKinto} from '../helpers/kinto-server.js'

const skipReason = missing('nginx')
const AUTH = `Basic ${Buffer.from('uploader:secret').toString('base64')}`

afterAll(stopAll)

describe.skipIf(skipReason !== '')(`attachments through nginx ${skipReason}`, () => {
  let base = ''
  let files = ''
  let snippet = ''
  let logs: () => string = () => ''

  beforeAll(async () => {
    const dir = tempDir('attach-nginx')
    files = path.join(dir, 'files')
    const nginxPort = await freePort()
    base = `http://127.0.0.1:${nginxPort}`
    const {ini, output} = await startMemoryKinto(
      'attach-nginx',
      [
        `kinto.userid_hmac_secret = ${randomBytes(16).toString('hex')}`,
        'multiauth.policies = basicauth',
        'kinto.bucket_create_principals = system.Authenticated',
        'kinto.includes = kinto_attachment',
        `kinto.attachment.base_path = ${files}`,
        `kinto.attachment.base_url = ${base}/attachments/`,
        'kinto.attachment.folder = {bucket_id}/{collection_id}',
      ],
      {dir},
    )
    const conf = await runCli(['deploy', 'nginx', '--ini', ini, '--listen', `127.0.0.1:${nginxPort}`])
    expect(conf.code, conf.stderr).toBe(0)
    snippet = conf.stdout
    const nginx = await startNginx(snippet, nginxPort)
    logs = () => `${output()}\n${readLog(nginx.setup.errorLog)}`
  }, 90_000)

  it('the snippet serves base_path at base_url’s path', () => {
    expect(snippet).toContain('location ^~ /attachments/ {')
    expect(snippet).toContain(`alias ${files}/;`)
  })

  it('a file uploaded through nginx is downloaded through nginx, byte-identical, with long cache headers', async () => {
    const put = async (p: string) => {
      const r = await fetch(`${base}${p}`, {method: 'PUT', headers: {Authorization: AUTH}})
      expect(r.status, `${await r.text()} ${logs()}`).toBe(201)
    }
    await put('/v1/buckets/site')
    await put('/v1/buckets/site/collections/assets')
    const content = randomBytes(3 * 1024 * 1024 + 17)
    const body = new FormData()
    body.append('attachment', new Blob([content], {type: 'application/pdf'}), 'manual.pdf')
    body.append('data', JSON.stringify({title: 'Manual'}))
    const up = await fetch(`${base}/v1/buckets/site/collections/assets/records/manual/attachment`, {method: 'POST', headers: {Authorization: AUTH}, body})
    const attachment = (await up.json()) as Record<string, any>
    expect(up.status, JSON.stringify(attachment)).toBe(201)
    expect(attachment.hash).toBe(createHash('sha256').update(content).digest('hex'))
    expect(attachment.location).toMatch(new RegExp(`^${base}/attachments/site/assets/[0-9a-f-]{36}\\.pdf$`))

    const down = await fetch(attachment.location)
    expect(down.status, logs()).toBe(200)
    expect(Buffer.from(await down.arrayBuffer()).equals(content)).toBe(true)
    // nginx answered from the disk (kinto start sends max-age=3600, never `immutable`).
    expect(down.headers.get('server')).toMatch(/nginx/)
    expect(down.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(down.headers.get('x-content-type-options')).toBe('nosniff')

    const ranged = await fetch(attachment.location, {headers: {Range: 'bytes=10-19'}})
    expect(ranged.status).toBe(206)
    expect(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20))).toBe(true)
  })

  it('a file nginx serves runs no script in the origin (an uploaded SVG could)', async () => {
    const body = new FormData()
    body.append('attachment', new Blob(['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'], {type: 'image/svg+xml'}), 'logo.svg')
    const up = await fetch(`${base}/v1/buckets/site/collections/assets/records/logo/attachment`, {method: 'POST', headers: {Authorization: AUTH}, body})
    const attachment = (await up.json()) as Record<string, any>
    expect(up.status, JSON.stringify(attachment)).toBe(201)
    const down = await fetch(attachment.location)
    expect(down.headers.get('server')).toMatch(/nginx/)
    expect(down.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; sandbox")
  })

  it('hidden files and writes are refused by the files location', async () => {
    writeFileSync(path.join(files, 'site', 'assets', '.upload-pending.tmp'), 'partial')
    expect((await fetch(`${base}/attachments/site/assets/.upload-pending.tmp`)).status).toBe(404)
    expect((await fetch(`${base}/attachments/site/assets/x.pdf`, {method: 'PUT', body: 'x'})).status).toBe(403)
  })

  it('the uwsgi and cache variants with attachments pass nginx -t', () => {
    const settings = {includes: 'kinto_attachment', 'attachment.base_path': files, 'attachment.base_url': 'https://cdn.example.test/files/'}
    for (const uwsgi of [false, true]) {
      const out = renderNginx(
        nginxOptionsFrom({path: '/etc/kinto/kinto.ini', dir: '/etc/kinto', settings, server: {host: '127.0.0.1', port: 8888}}, {uwsgi, cache: true, 'cache-path': path.join(files, '..', 'nginx-cache'), listen: '127.0.0.1:18099'}),
      )
      expect(out).toContain(`${uwsgi ? 'uwsgi' : 'proxy'}_request_buffering off;`)
      const result = nginxTest(out)
      expect(result.code, result.output).toBe(0)
    }
  })
})

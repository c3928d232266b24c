/**
 * `kinto check` on kinto_attachment (base_path writable, base_url reachable and serving
 * base_path, probed against a running kinto start) and `kinto init --attachments DIR`.
 */
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, test} from 'vitest'

import {checkIni} from '../../src/lib/check/index.js'
import {loadConfig} from '../../src/lib/config/index.js'
import {initConfig} from '../../src/lib/config/init.js'
import {freePort} from '../helpers/deploy-servers.js'
import {runCliInProcess as runCli} from '../helpers/cli-in-process.js'
import {tempFolders} from '../helpers/tmp.js'
import {iniText, startTestServer, type TestServer} from '../client/helpers.js'

const tmp = tempFolders('attach-check')

function attachmentIni(dir: string, basePath: string, baseUrl: string): string {
  const file = path.join(dir, `kinto-${Math.random().toString(16).slice(2)}.ini`)
  writeFileSync(file, iniText({'kinto.userid_hmac_secret': 'x', 'kinto.includes': 'kinto_attachment', 'kinto.attachment.base_path': basePath, 'kinto.attachment.base_url': baseUrl}))
  return file
}

async function attachmentFindings(ini: string) {
  const report = await checkIni(ini, {db: false, timeoutMs: 3000})
  return Object.fromEntries(report.findings.filter((f) => f.id.startsWith('attachments')).map((f) => [f.id, f]))
}

describe('kinto check and attachments', () => {
  let srv: TestServer
  let files: string
  let dir: string

  beforeAll(async () => {
    dir = tmp()
    files = path.join(dir, 'files')
    mkdirSync(files)
    srv = await startTestServer('memory', {'kinto.includes': 'kinto_attachment', 'kinto.attachment.base_path': files, 'kinto.attachment.base_url': '/attachments/'})
  }, 60_000)
  afterAll(async () => srv?.close())

  test('base_url served by kinto start from base_path: both ok, and the probe file is gone', async () => {
    const origin = new URL(srv.remote).origin
    const found = await attachmentFindings(attachmentIni(dir, files, `${origin}/attachments/`))
    expect(found['attachments-base-path'].level).toBe('ok')
    expect(found['attachments-base-url']).toMatchObject({level: 'ok'})
    expect(readdirSync(files)).toEqual([])
  })

  test('base_url serving another folder: an error saying it does not serve base_path', async () => {
    const other = path.join(dir, 'other')
    mkdirSync(other)
    const origin = new URL(srv.remote).origin
    const found = await attachmentFindings(attachmentIni(dir, other, `${origin}/attachments/`))
    expect(found['attachments-base-url'].level).toBe('error')
    expect(found['attachments-base-url'].message).toMatch(/does not serve base_path: a file written to .* answered 404/)
    expect(readdirSync(other)).toEqual([])
  })

  test('base_url where nothing listens: an error saying it is not reachable', async () => {
    const port = await freePort()
    const found = await attachmentFindings(attachmentIni(dir, files, `http://127.0.0.1:${port}/attachments/`))
    expect(found['attachments-base-url'].level).toBe('error')
    expect(found['attachments-base-url'].message).toMatch(/is not reachable: connection refused/)
  })

  test('base_path that is not a folder: an error; a missing one below a writable folder: ok', async () => {
    const notFolder = path.join(dir, 'a-file')
    writeFileSync(notFolder, 'x')
    const bad = await attachmentFindings(attachmentIni(dir, path.join(notFolder, 'files'), 'http://127.0.0.1:1/attachments/'))
    expect(bad['attachments-base-path'].level).toBe('error')
    expect(bad['attachments-base-path'].message).toMatch(/cannot take uploads: .*a-file is not a folder/)
    const later = await attachmentFindings(attachmentIni(dir, path.join(dir, 'not-yet', 'files'), 'http://127.0.0.1:1/attachments/'))
    expect(later['attachments-base-path']).toMatchObject({level: 'ok', message: expect.stringMatching(/will be created/)})
  })

  test('an ini without kinto_attachment gets no attachment finding', async () => {
    const file = path.join(dir, 'plain.ini')
    writeFileSync(file, iniText({'kinto.userid_hmac_secret': 'x'}))
    expect(await attachmentFindings(file)).toEqual({})
  })
})

describe('kinto init --attachments', () => {
  test('the ini includes kinto_attachment with base_path (absolute) and a base_url kinto start serves', async () => {
    const cwd = tmp()
    const result = await initConfig({iniPath: 'kinto.ini', cwd, backend: 'memory', attachments: 'files'})
    const config = loadConfig(result.path, {env: {}})
    expect(String(config.settings.includes).split(/\s+/)).toContain('kinto_attachment')
    expect(config.settings['attachment.base_path']).toBe(path.join(cwd, 'files'))
    expect(config.settings['attachment.base_url']).toBe('http://127.0.0.1:8888/attachments/')
  })

  test('with --public-url, base_url is below the public URL (not the loopback clients cannot reach)', async () => {
    const cwd = tmp()
    const result = await initConfig({iniPath: 'kinto.ini', cwd, backend: 'memory', attachments: 'files', publicUrl: 'https://Kinto.Example.com:443'})
    const config = loadConfig(result.path, {env: {}})
    expect(config.settings['attachment.base_url']).toBe('https://kinto.example.com/attachments/')
    expect(config.settings.http_host).toBe('kinto.example.com')
    const other = await initConfig({iniPath: 'kinto.ini', cwd: tmp(), backend: 'memory', attachments: 'files', publicUrl: 'http://10.0.0.5:8443'})
    expect(loadConfig(other.path, {env: {}}).settings['attachment.base_url']).toBe('http://10.0.0.5:8443/attachments/')
  })

  test('without the flag the plugin stays commented out', async () => {
    const cwd = tmp()
    const result = await initConfig({iniPath: 'kinto.ini', cwd, backend: 'memory'})
    const text = readFileSync(result.path, 'utf8')
    expect(text).toContain('#                kinto_attachment')
    expect(String(loadConfig(result.path, {env: {}}).settings.includes)).not.toContain('kinto_attachment')
  })

  test('the command line: kinto init --attachments DIR --json', async () => {
    const cwd = tmp()
    const run = await runCli(['init', '--ini', path.join(cwd, 'kinto.ini'), '--backend', 'memory', '--attachments', path.join(cwd, 'att'), '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({path: path.join(cwd, 'kinto.ini')})
    expect(readFileSync(path.join(cwd, 'kinto.ini'), 'utf8')).toContain(`kinto.attachment.base_path = ${path.join(cwd, 'att')}`)
  }, 60_000)
})

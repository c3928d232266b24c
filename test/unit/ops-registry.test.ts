/**
 * The run registry (entries per ini, stale and reused pids, the fallback folder), waiting for a
 * reload, endpoint parsing, and the toggle state with deadlines.
 */
import {spawnSync} from 'node:child_process'
import {chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, test} from 'vitest'

import {parseEndpoint} from '../../src/lib/ops/endpoint.js'
import {listRuns, processStartTime, RunRecord, waitForConfig} from '../../src/lib/runs/registry.js'
import {activeState, formatDeadline, parseDeadline, serviceStateFrom} from '../../src/lib/state/toggles.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function folder(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kinto-ops-registry-'))
  dirs.push(d)
  return d
}

function ini(dir: string, name = 'kinto.ini'): string {
  const file = path.join(dir, name)
  writeFileSync(file, '[app:main]\n')
  return file
}

const base = {role: 'server' as const, url: 'http://127.0.0.1:1/v1/', configHash: 'h1', needRestart: []}

describe('run registry', () => {
  test('entries are found per ini, beside it; removed entries are gone', () => {
    const dir = folder()
    const a = ini(dir, 'a.ini')
    const b = ini(dir, 'b.ini')
    const rec = new RunRecord({...base, ini: a}, {})
    expect(rec.path).toBe(path.join(dir, '.kinto-run', `${process.pid}.json`))
    expect(listRuns(a, {}).map((e) => e.pid)).toEqual([process.pid])
    expect(listRuns(b, {})).toEqual([])
    rec.update({configHash: 'h2'})
    expect(listRuns(a, {})[0].configHash).toBe('h2')
    rec.remove()
    expect(listRuns(a, {})).toEqual([])
  })

  test('entries of dead processes, and of a reused pid, are ignored and removed', () => {
    const dir = folder()
    const file = ini(dir)
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!
    const run = path.join(dir, '.kinto-run')
    new RunRecord({...base, ini: file}, {}).remove() // creates the folder
    // A server killed outright also leaves its control socket (here a file in its place).
    const socket = path.join(run, `${dead}.sock`)
    writeFileSync(socket, '')
    writeFileSync(path.join(run, `${dead}.json`), JSON.stringify({...base, pid: dead, ini: file, startedAt: '', control: socket}))
    const reused = {...base, pid: process.pid, ini: file, startedAt: '', procStart: 'not-the-start-time'}
    writeFileSync(path.join(run, `${process.pid}.json`), JSON.stringify(reused))
    expect(listRuns(file, {})).toEqual(processStartTime(process.pid) === undefined ? [expect.objectContaining({pid: process.pid})] : [])
    expect(existsSync(path.join(run, `${dead}.json`))).toBe(false)
    expect(existsSync(socket)).toBe(false)
  })

  // Every user may write a kinto-run-* folder in the shared temporary folder, and every such
  // folder is read: an entry written by another user than the process it names must not make an
  // operator (root) signal that process, nor delete the path it names as its socket.
  test.skipIf(process.getuid?.() !== 0)(`an entry whose file another user wrote is ignored: not listed (so never signalled), its socket path not removed${process.getuid?.() === 0 ? '' : ' (SKIPPED: needs root to write a file as another user)'}`, () => {
    const dir = folder()
    const file = ini(dir)
    const run = path.join(dir, '.kinto-run')
    new RunRecord({...base, ini: file}, {}).remove() // creates the folder
    const victim = path.join(dir, 'precious')
    writeFileSync(victim, 'keep me')
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!
    const planted = [
      // names this (root) process, with its true start time: a target for SIGHUP
      {...base, pid: process.pid, ini: file, startedAt: '', procStart: processStartTime(process.pid)},
      // a dead pid whose "socket" is a file of root's
      {...base, pid: dead, ini: file, startedAt: '', control: victim},
    ]
    for (const entry of planted) {
      const f = path.join(run, `${entry.pid}.json`)
      writeFileSync(f, JSON.stringify(entry))
      chownSync(f, 65534, 65534)
    }
    expect(listRuns(file, {})).toEqual([])
    expect(readFileSync(victim, 'utf8')).toBe('keep me')
  })

  test('when the folder beside the ini cannot be made, the per-user temporary folder is used and still found', () => {
    const dir = folder()
    const file = ini(dir)
    writeFileSync(path.join(dir, '.kinto-run'), 'a file where the folder would go')
    const rec = new RunRecord({...base, ini: file}, {})
    try {
      expect(rec.error).toBeNull()
      expect(rec.path).toMatch(new RegExp(`${os.tmpdir()}/kinto-run-[^/]+/${process.pid}\\.json$`))
      expect(listRuns(file, {}).map((e) => e.pid)).toEqual([process.pid])
    } finally {
      rec.remove()
    }
  })

  test('waitForConfig: reloaded when the hash is reported, failed on a reload error, timeout otherwise', async () => {
    const dir = folder()
    const file = ini(dir)
    const rec = new RunRecord({...base, ini: file}, {})
    try {
      const slow = await waitForConfig(file, [process.pid], 'h9', {timeoutMs: 100, env: {}})
      expect(slow).toEqual([expect.objectContaining({pid: process.pid, outcome: 'timeout'})])
      setTimeout(() => rec.update({configHash: 'h9'}), 50)
      expect((await waitForConfig(file, [process.pid], 'h9', {timeoutMs: 2000, env: {}}))[0].outcome).toBe('reloaded')
      rec.update({reloadError: {configHash: 'h10', message: 'bad value', at: ''}})
      expect(await waitForConfig(file, [process.pid], 'h10', {timeoutMs: 2000, env: {}})).toEqual([
        expect.objectContaining({outcome: 'failed', message: 'bad value'}),
      ])
      expect(await waitForConfig(file, [999_999_999], 'h10', {timeoutMs: 100, env: {}})).toEqual([{pid: 999_999_999, outcome: 'gone'}])
    } finally {
      rec.remove()
    }
  })
})

describe('endpoints', () => {
  test('base URLs get /v1/; unix sockets; bad input is a usage error', () => {
    expect(parseEndpoint('http://127.0.0.1:8888').base).toBe('http://127.0.0.1:8888/v1/')
    expect(parseEndpoint('https://kinto.example/v1').base).toBe('https://kinto.example/v1/')
    expect(parseEndpoint('https://example.org/kinto/v1/?x=1').base).toBe('https://example.org/kinto/v1/')
    expect(parseEndpoint('https://example.org/kinto').base).toBe('https://example.org/kinto/v1/')
    expect(parseEndpoint('unix:/run/kinto.sock')).toEqual({display: 'unix:/run/kinto.sock', base: 'http://localhost/v1/', socketPath: '/run/kinto.sock'})
    for (const bad of ['unix:relative.sock', 'ftp://x', 'not a url']) expect(() => parseEndpoint(bad)).toThrow(expect.objectContaining({exit: 2}))
    // Credentials in the URL are refused, and never shown in a message.
    expect(() => parseEndpoint('http://admin:UrlSecretPW@127.0.0.1:8888/v1/')).toThrow(expect.objectContaining({exit: 2, message: '--url must not carry credentials.'}))
    expect(() => parseEndpoint('ftp://admin:UrlSecretPW@host/')).toThrow(expect.objectContaining({message: '--url "ftp://admin:***@host/": only http, https and unix: URLs are supported.'}))
  })
})

describe('toggle state', () => {
  test('deadlines: parsed as ISO dates, applied at the instant, written to the second', () => {
    const at = Date.parse('2030-01-01T00:00:00Z')
    const state = serviceStateFrom({
      backoff: 30,
      backoff_percentage: 50,
      backoff_expires: '2030-01-01T00:00:00Z',
      readonly: true,
      maintenance: 'true',
      maintenance_expires: '2030-01-01T00:30:00+01:00',
    })
    expect(activeState(state, at - 1)).toEqual({backoff: 30, backoffPercentage: 50, readonly: true, maintenance: false})
    expect(activeState(state, at)).toEqual({backoff: null, backoffPercentage: null, readonly: true, maintenance: false})
    expect(activeState(state, at - 1_800_001).maintenance).toBe(true)
    expect(formatDeadline(at + 1)).toBe('2030-01-01T00:00:01Z')
    expect(() => parseDeadline('backoff_expires', 'tomorrow')).toThrow(/backoff_expires.*not a date/)
    expect(() => parseDeadline('backoff_expires', '12')).toThrow(/not a date/)
    expect(parseDeadline('backoff_expires', '')).toBeNull()
  })
})

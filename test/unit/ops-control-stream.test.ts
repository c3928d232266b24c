/**
 * The control channel streaming a long result (a backup of a served embedded folder): the client
 * waits as long as bytes keep coming, and a client that stops reading cannot hold the server (whose
 * one database connection the snapshot holds) for longer than the stall limit.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {createConnection} from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {type ControlServer, runViaServer, startControlServer} from '../../src/lib/ops/control.js'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0)) await fn()
})

function socketIn(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kctl-'))
  cleanup.push(async () => rmSync(dir, {recursive: true, force: true}))
  return path.join(dir, 's.sock')
}

async function serve(operations: Parameters<typeof startControlServer>[1], options?: Parameters<typeof startControlServer>[2]): Promise<ControlServer> {
  const server = await startControlServer(socketIn(), operations, options)
  cleanup.push(() => server.close())
  return server
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('control channel streams', () => {
  it('a result that keeps streaming is not cut by the answer timeout (it counts silence, not the whole run)', async () => {
    const server = await serve({
      slow: async (_args, stream) => {
        for (let i = 0; i < 8; i++) {
          await stream.chunk(Buffer.from(`part ${i}\n`))
          await sleep(100)
        }
        return {parts: 8}
      },
    })
    const got: string[] = []
    const result = await runViaServer(server.path, 'slow', {}, {timeoutMs: 400, onChunk: (c) => void got.push(c.toString())})
    expect(result).toEqual({parts: 8})
    expect(got).toHaveLength(8)
  })

  it('a server that takes the request and answers nothing (busy, or hung) is said once, then still waited for', async () => {
    const server = await serve({mute: async () => sleep(600)})
    const notes: string[] = []
    const result = await runViaServer(server.path, 'mute', {}, {timeoutMs: 2000, waitNoticeMs: 150, onWaiting: (m) => notes.push(m)})
    expect(result).toBeNull()
    expect(notes).toEqual([`The server at ${server.path} has not answered mute for 0.15 s: it is busy (a long statement) or hung. Still waiting, up to 2 s of silence; Ctrl-C stops waiting.`])
  })

  it('a server that answers before the notice is not said to be slow', async () => {
    const server = await serve({quick: async () => ({ok: true})})
    const notes: string[] = []
    expect(await runViaServer(server.path, 'quick', {}, {waitNoticeMs: 150, onWaiting: (m) => notes.push(m)})).toEqual({ok: true})
    await sleep(300)
    expect(notes).toEqual([])
  })

  it('still gives up on a server silent for longer than the timeout', async () => {
    const server = await serve({mute: async () => sleep(1000)})
    await expect(runViaServer(server.path, 'mute', {}, {timeoutMs: 200})).rejects.toMatchObject({code: 'KINTO_CONTROL_FAILED'})
  })

  it('a client that stops reading (Ctrl-Z, a hung disk) is dropped after the stall limit: the operation fails and releases what it holds', async () => {
    let failure: unknown
    let sent = 0
    const server = await serve(
      {
        flood: async (_args, stream) => {
          try {
            for (;;) {
              await stream.chunk(Buffer.alloc(64 * 1024, 1))
              sent++
            }
          } catch (error) {
            failure = error
            throw error
          }
        },
      },
      {stallMs: 300},
    )
    const socket = createConnection(server.path)
    cleanup.push(async () => void socket.destroy())
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()))
    socket.write(`${JSON.stringify({op: 'flood', args: {}})}\n`)
    socket.pause() // reads nothing: the server's writes back up
    const started = Date.now()
    while (failure === undefined && Date.now() - started < 5000) await sleep(50)
    expect(failure, `the server still waits on a stalled client after ${sent} chunks`).toMatchObject({code: 'KINTO_CONTROL_STALLED'})
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('an onChunk that returns a promise (a full pipe: backup -o -) pauses the connection: the server waits for it, and a rejection fails the run', async () => {
    let sent = 0
    const server = await serve({
      flood: async (_args, stream) => {
        for (let i = 0; i < 200; i++) {
          await stream.chunk(Buffer.alloc(64 * 1024, 1))
          sent++
        }
        return {sent}
      },
    })
    // the sink takes one chunk and then is full for 400 ms: the server must not run ahead
    let received = 0
    let release: () => void = () => {}
    const blocked = new Promise<void>((resolve) => (release = resolve))
    const run = runViaServer(server.path, 'flood', {}, {onChunk: (c) => ((received += c.length), received > 64 * 1024 ? blocked : undefined)})
    await sleep(400)
    // socket buffers hold a few chunks at most, never the 200 (12.8 MB)
    expect(sent).toBeLessThan(60)
    release()
    expect(await run).toEqual({sent: 200})
    expect(received).toBe(200 * 64 * 1024)

    const failing = runViaServer(server.path, 'flood', {}, {onChunk: () => Promise.reject(Object.assign(new Error('write EPIPE'), {code: 'EPIPE'}))})
    await expect(failing).rejects.toMatchObject({code: 'EPIPE'})
  })
})

#!/usr/bin/env node
// Benchmark (not a test): the memory a large attachment upload costs `kinto start`. Starts the
// built server (node bin/run.js start, memory backend, kinto_attachment), then uploads files of
// 1 MB and 50 MB (multipart, streamed by this process in 64 kB chunks) and samples the server's
// RSS every 20 ms: idle RSS, peak RSS during each upload, and the peak's growth over the idle
// figure against the file's size. Then downloads the 50 MB file from the server and checks it.
// Prints a Markdown section for bench/ANALYSIS.md (hand-written results). Uses the built dist/ (npm run build).
//
//   node bench/attachment-upload.js [--mb 50]
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

import {basic, freePort, kintoBin, machine, note, round, rssMb, rssSampler, sleep} from './lib/util.js'

const args = process.argv.slice(2)
const bigMb = Number(args.includes('--mb') ? args[args.indexOf('--mb') + 1] : 50)
const AUTH = basic('bench', 'bench')

/** POSTs a multipart body with one `attachment` file of `size` bytes, generated while sending. */
function upload(port, recordPath, size) {
  const boundary = `----bench${randomBytes(8).toString('hex')}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="big.json"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const chunk = randomBytes(64 * 1024)
  const hash = createHash('sha256')
  return new Promise((resolve, reject) => {
    const req = http.request(
      {host: '127.0.0.1', port, method: 'POST', path: `/v1${recordPath}/attachment`, headers: {Authorization: AUTH, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + size + tail.length}},
      (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({status: res.statusCode, body: JSON.parse(body), hash: hash.digest('hex')}))
      },
    )
    req.on('error', reject)
    req.write(head)
    let sent = 0
    const pump = () => {
      while (sent < size) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - sent))
        hash.update(part)
        sent += part.length
        if (!req.write(part)) return req.once('drain', pump)
      }
      req.end(tail)
    }
    pump()
  })
}

async function request(port, method, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {method, headers: {Authorization: AUTH}})
  return {status: res.status, bytes: Buffer.from(await res.arrayBuffer())}
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'kinto-bench-attach-'))
const files = path.join(dir, 'files')
const port = await freePort()
const ini = path.join(dir, 'kinto.ini')
writeFileSync(
  ini,
  [
    '[app:main]',
    'use = egg:kinto',
    `kinto.userid_hmac_secret = ${randomBytes(16).toString('hex')}`,
    'kinto.bucket_create_principals = system.Authenticated',
    'kinto.includes = kinto_attachment',
    `kinto.attachment.base_path = ${files}`,
    `kinto.attachment.base_url = http://127.0.0.1:${port}/attachments/`,
    'kinto.attachment.extensions = any',
    '',
    '[server:main]',
    'use = egg:waitress#main',
    'host = 127.0.0.1',
    `port = ${port}`,
    '',
  ].join('\n'),
)
const child = spawn(process.execPath, [kintoBin(), 'start', '--ini', ini], {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, NO_COLOR: '1'}})
let stderr = ''
child.stderr.on('data', (d) => (stderr += d))
try {
  for (let i = 0; ; i++) {
    try {
      if ((await request(port, 'GET', '/v1/__lbheartbeat__')).status === 200) break
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error(`kinto start did not answer: ${stderr}`)
    await sleep(100)
  }
  await request(port, 'PUT', '/v1/buckets/bench')
  await request(port, 'PUT', '/v1/buckets/bench/collections/files')
  // Warm the upload path once, then let the heap settle.
  await upload(port, '/buckets/bench/collections/files/records/warm', 64 * 1024)
  await sleep(1000)
  const idle = rssMb(child.pid)
  const rows = []
  for (const [label, size] of [['1 MB', 1024 * 1024], [`${bigMb} MB`, bigMb * 1024 * 1024]]) {
    const sampler = rssSampler(child.pid, 20)
    const started = performance.now()
    const res = await upload(port, `/buckets/bench/collections/files/records/r${size}`, size)
    const seconds = (performance.now() - started) / 1000
    const peak = sampler.stop()
    if (res.status !== 201 || res.body.hash !== res.hash || res.body.size !== size) throw new Error(`upload of ${label}: ${res.status} ${JSON.stringify(res.body)}`)
    rows.push({label, size, seconds, peak, location: res.body.location, hash: res.hash})
    await sleep(500)
  }
  const big = rows[1]
  const download = await request(port, 'GET', new URL(big.location).pathname)
  const downloadOk = download.status === 200 && createHash('sha256').update(download.bytes).digest('hex') === big.hash
  const leftovers = readdirSync(files, {recursive: true}).filter((f) => String(f).includes('.upload-'))
  const m = machine()
  const lines = [
    '## Attachment upload memory (bench/attachment-upload.js)',
    '',
    `Run by hand (not part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${m.cores} cores, ${m.node}; \`node bin/run.js start\`, memory backend, kinto_attachment on local disk. Each file is one multipart POST streamed by the bench process over loopback; the server's RSS is sampled every 20 ms. Idle RSS (after one small upload): ${round(idle)} MB.`,
    '',
    '| upload | seconds | MB/s | server peak RSS MB | peak − idle MB | (peak − idle) / file size |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${round(r.seconds, 2)} | ${round(r.size / 1048576 / r.seconds)} | ${round(r.peak)} | ${round(r.peak - idle)} | ${round((r.peak - idle) / (r.size / 1048576), 2)} |`),
    '',
    `The ${big.label} file came back byte-identical from kinto start (GET of its location): ${downloadOk ? 'yes' : 'NO'}; temporary files left: ${leftovers.length}.`,
    '',
  ]
  process.stdout.write(lines.join('\n'))
  note('done')
} finally {
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
  rmSync(dir, {recursive: true, force: true})
}

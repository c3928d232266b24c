#!/usr/bin/env node
// The cost of keeping integers beyond 2^53 exact (dist/lib/json.js) on the hot path, as ratios to
// plain JSON.parse / JSON.stringify in one run: a stored record read back (PostgreSQL's jsonb
// parser), a response body written (a page of 10 records). Alternating rounds, median ratio.
//
//   npm run build && node bench/json-codec.js [--rounds 7] [--iterations 20000]
import {performance} from 'node:perf_hooks'

const {parseJson, stringifyJson} = await import('../dist/lib/json.js')

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const rounds = opt('--rounds', 7)
const iterations = opt('--iterations', 20000)

const record = {
  title: 'A record of a usual size',
  tags: ['one', 'two', 'three'],
  count: 42,
  ratio: 0.75,
  nested: {a: 1, b: [1, 2, 3], c: {d: 'text with some words in it', e: null, f: true}},
  id: '4b9c5e7a-6c7d-4a36-a7d6-3d5c0e1f2a3b',
  last_modified: 1733356800000,
}
const text = JSON.stringify(record)
const page = {data: Array.from({length: 10}, (_, i) => ({...record, count: i}))}
const bigText = text.replace('"count":42', '"count":12345678901234567890')
const bigPage = {data: page.data.map(() => parseJson(bigText))}

function time(fn) {
  const start = performance.now()
  for (let i = 0; i < iterations; i++) fn()
  return performance.now() - start
}

const cases = [
  ['parse a stored record', () => JSON.parse(text), () => parseJson(text)],
  ['write a page of 10 records', () => JSON.stringify(page), () => stringifyJson(page)],
  ['parse a record holding a big integer', () => JSON.parse(bigText), () => parseJson(bigText)],
  ['write a page holding big integers', () => JSON.stringify(bigPage), () => stringifyJson(bigPage)],
]

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`| case | JSON (µs/op) | codec (µs/op) | codec / JSON (median of ${rounds}) |`)
console.log('|---|---|---|---|')
for (const [name, plain, codec] of cases) {
  time(plain)
  time(codec)
  const a = []
  const b = []
  const ratios = []
  for (let r = 0; r < rounds; r++) {
    const x = time(plain)
    const y = time(codec)
    a.push(x)
    b.push(y)
    ratios.push(y / x)
  }
  const us = (ms) => ((ms * 1000) / iterations).toFixed(2)
  console.log(`| ${name} | ${us(median(a))} | ${us(median(b))} | ${median(ratios).toFixed(2)} |`)
}

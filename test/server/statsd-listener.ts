/** A real StatsD daemon for tests: a UDP socket that keeps every line it receives. */
import dgram from 'node:dgram'

export interface StatsdListener {
  port: number
  url: string
  lines: string[]
  /** Metric names received (`kinto.view.hello.GET`), without value and type. */
  names(): Set<string>
  /** Waits until a line matches (or fails after timeoutMs, listing what came). */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<string>
  close(): Promise<void>
}

export async function statsdListener(): Promise<StatsdListener> {
  const socket = dgram.createSocket('udp4')
  const lines: string[] = []
  socket.on('message', (msg) => lines.push(...msg.toString('utf8').split('\n').filter(Boolean)))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  const port = socket.address().port
  const matches = (line: string, pattern: RegExp | string) => (typeof pattern === 'string' ? line.startsWith(`${pattern}:`) : pattern.test(line))
  return {
    port,
    url: `udp://127.0.0.1:${port}`,
    lines,
    names: () => new Set(lines.map((l) => l.slice(0, l.indexOf(':')))),
    async waitFor(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = lines.find((l) => matches(l, pattern))
        if (found) return found
        if (Date.now() > deadline) throw new Error(`No StatsD line matching ${pattern} within ${timeoutMs} ms; received:\n${lines.join('\n')}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}

/**
 * A small TCP proxy on 127.0.0.1 for fault tests, in one of three modes:
 * - `pass`: bytes flow both ways;
 * - `drop`: every connection (open and new) is reset at once (RST);
 * - `blackhole`: connections stay open but nothing flows either way (a dead peer, a cut cable, a
 *   NAT that forgot the flow); new connections are accepted and then hear nothing.
 * It also counts round trips (`turns`).
 */
import net from 'node:net'

export type ProxyMode = 'pass' | 'drop' | 'blackhole'

export interface TcpProxy {
  port: number
  mode: ProxyMode
  setMode(mode: ProxyMode): void
  /** Connections accepted so far. */
  accepted: number
  /**
   * Round trips so far, over all connections: the times a client sent bytes first or after the
   * server had answered (statements sent together count once; a client's bytes that came in
   * several chunks before any answer count once).
   */
  turns: number
  close(): Promise<void>
}

interface Pair {
  client: net.Socket
  upstream: net.Socket
  /** Whether the last bytes that passed came from the client. */
  clientSpokeLast: boolean
}

export function startProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>()
  const reset = (p: Pair) => {
    p.client.resetAndDestroy()
    p.upstream.resetAndDestroy()
    pairs.delete(p)
  }
  const server = net.createServer((client) => {
    proxy.accepted++
    client.on('error', () => {})
    if (proxy.mode === 'drop') {
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect(targetPort, targetHost)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    const pair: Pair = {client, upstream, clientSpokeLast: false}

    pairs.add(pair)
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (from === client && !pair.clientSpokeLast) proxy.turns++
        pair.clientSpokeLast = from === client
        if (proxy.mode === 'pass') to.write(chunk)
        // blackhole: swallowed; drop: the pair is already reset
      })
      from.on('close', () => {
        // A blackholed peer never hears the goodbye either (until traffic passes again).
        if (proxy.mode !== 'blackhole') to.destroy()
        if (pair.client.destroyed && pair.upstream.destroyed) pairs.delete(pair)
      })
    }
    forward(client, upstream)
    forward(upstream, client)
  })
  const proxy: TcpProxy = {
    port: 0,
    mode: 'pass',
    accepted: 0,
    turns: 0,
    setMode(mode) {
      proxy.mode = mode
      if (mode === 'drop') for (const p of [...pairs]) reset(p)
      // The goodbyes held back while blackholed now arrive.
      if (mode === 'pass') for (const p of [...pairs]) if (p.client.destroyed || p.upstream.destroyed) reset(p)
    },
    close() {
      for (const p of [...pairs]) reset(p)
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      proxy.port = (server.address() as net.AddressInfo).port
      resolve(proxy)
    })
  })
}

/** The process signals of `kinto start`, taken from the moment it begins so that none is lost while it starts. */
import type {RunningServer} from '../server/start.js'

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

/** Signal handlers installed before anything starts: a signal while starting is not lost. */
export function signalQueue() {
  let stop: NodeJS.Signals | undefined
  let wake: (() => void) | undefined
  let again: ((s: NodeJS.Signals) => void) | undefined
  const handlers: Array<[NodeJS.Signals, (s: NodeJS.Signals) => void]> = []
  const on = (signal: NodeJS.Signals, fn: (s: NodeJS.Signals) => void) => {
    process.on(signal, fn)
    handlers.push([signal, fn])
  }
  for (const s of STOP_SIGNALS) {
    on(s, (signal) => {
      if (stop) again?.(signal)
      stop ??= signal
      wake?.()
    })
  }
  return {
    on,
    get stopSignal() {
      return stop
    },
    /** `fn` runs on each stop signal after the first (a second Ctrl-C: stop waiting for requests). */
    onRepeatedStop(fn: (s: NodeJS.Signals) => void) {
      again = fn
    },
    stopped: () => new Promise<NodeJS.Signals>((resolve) => (stop ? resolve(stop) : (wake = () => resolve(stop!)))),
    dispose() {
      for (const [s, fn] of handlers) process.off(s, fn)
    },
  }
}

export type SignalQueue = ReturnType<typeof signalQueue>

/** SIGHUP on a running server: reload the ini and say what was taken. */
export function reloadAndLog(server: RunningServer, log: (line: string) => void, who = ''): void {
  const r = server.reload()
  if (!r.ok) {
    log(`SIGHUP${who}: the ini was not reloaded (${r.error}); the settings in force are kept.`)
    return
  }
  const parts = [r.applied.length ? `applied ${r.applied.join(', ')}` : 'nothing changed']
  if (r.needRestart.length) parts.push(`needs a restart for ${r.needRestart.join(', ')}`)
  log(`SIGHUP${who}: reloaded; ${parts.join('; ')}.`)
}

/** Progress of a long backup, restore or copy on a terminal: one line rewritten at most twice a second. */
import type {TableName} from './format.js'

export interface ProgressLine {
  update(table: TableName, done: number, total: number | null): void
  /** Ends the line (call once, before printing anything else). */
  end(): void
}

export function progressLine(write: (text: string) => void, verb: string, everyMs = 500): ProgressLine {
  let last = 0
  let shown = false
  return {
    update(table, done, total) {
      const now = Date.now()
      if (now - last < everyMs && done !== total) return
      last = now
      const of = total === null ? '' : ` of ${total.toLocaleString('en')}`
      const pct = total ? ` (${Math.floor((100 * done) / total)}%)` : ''
      write(`\r\x1b[2K${verb} ${table}: ${done.toLocaleString('en')}${of} rows${pct}`)
      shown = true
    },
    end() {
      if (shown) write('\r\x1b[2K')
      shown = false
    },
  }
}

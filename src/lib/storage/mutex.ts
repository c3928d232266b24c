/** A FIFO async mutex: the memory backends run one transaction at a time. Not reentrant. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve()

  async run<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void
    const previous = this.tail
    this.tail = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

/** Undo steps recorded by a memory transaction, replayed newest first on rollback. */
export type Journal = Array<() => void>

export function rollback(journal: Journal): void {
  for (let i = journal.length - 1; i >= 0; i--) journal[i]()
  journal.length = 0
}

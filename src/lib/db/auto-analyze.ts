/**
 * The embedded engine has no autovacuum, so nothing gathers its planner statistics: a table that
 * grew through the API keeps the estimates of the empty table `kinto migrate` made, and plans
 * built on them can go quadratic (a plural DELETE of a 10,000-record page: 17.5 s, against 1.5 s
 * once analyzed; the delete joins its page back to the table through the list's index, once per
 * row). A long-lived process on it (`kinto start`) does the analyze part of autovacuum: at start,
 * the tables never analyzed; then, every minute, each table changed by more than autovacuum's
 * default threshold (50 rows + 10 %) since its last ANALYZE (counts of changes do not outlive the
 * engine; between two runs, the planner scales the row counts it knows to the tables' sizes).
 *
 * Only the columns plans depend on: the keys, not `data` (with it, the ANALYZE of a 50,000-record
 * folder grew the server's memory by 15–19 MB for good, the engine's memory does not shrink; ~10
 * MB without), nor the cache.
 */
import type {SqlClient} from './types.js'

/** Kinto's tables (storage, permission) and the columns analyzed: those present are watched. */
export const KINTO_TABLES: Readonly<Record<string, string>> = {
  objects: '(id, parent_id, resource_name, last_modified, deleted)',
  timestamps: '',
  access_control_entries: '',
  user_principals: '',
}

/** autovacuum_analyze_threshold and autovacuum_analyze_scale_factor, PostgreSQL's defaults. */
const THRESHOLD_ROWS = 50
const SCALE_FACTOR = 0.1

export interface AutoAnalyzeOptions {
  /** Between two checks (default 60 s). */
  intervalMs?: number
  /** What a failed check or ANALYZE says (the next check tries again). */
  onError?: (err: unknown) => void
  /** Told which tables were analyzed, when some were. */
  onAnalyzed?: (tables: string[]) => void
}

export interface AutoAnalyze {
  /** Stops the checks; resolves when the one under way (if any) has ended. */
  stop(): Promise<void>
}

interface TableStat {
  relname: string
  n_mod_since_analyze: string | number | null
  reltuples: string | number | null
  analyzed: boolean
}

/**
 * Changes counted at each table's last ANALYZE here: an ANALYZE of some columns leaves
 * PostgreSQL's count of changes since the last one running (only a whole-table one resets it).
 */
export type Baselines = Map<string, number>

/**
 * The tables to analyze now: those without statistics (reltuples -1: never analyzed with a row in
 * them), unless analyzed since this engine opened, and those changed enough since their last one.
 */
async function dueTables(client: SqlClient, baselines: Baselines): Promise<Array<{table: string; changes: number}>> {
  const res = await client.query<TableStat>(
    `SELECT s.relname, s.n_mod_since_analyze, c.reltuples, s.last_analyze IS NOT NULL AS analyzed
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])`,
    [Object.keys(KINTO_TABLES)],
  )
  return res.rows
    .map((r) => ({r, changes: Number(r.n_mod_since_analyze ?? 0)}))
    .filter(({r, changes}) => {
      const rows = Number(r.reltuples ?? -1)
      if (rows < 0 && !r.analyzed) return true
      return changes - (baselines.get(r.relname) ?? 0) > THRESHOLD_ROWS + SCALE_FACTOR * Math.max(0, rows)
    })
    .map(({r, changes}) => ({table: r.relname, changes}))
    .sort((a, b) => (a.table < b.table ? -1 : 1))
}

/** One check: analyzes what is due; returns the tables analyzed. */
export async function analyzeDue(client: SqlClient, baselines: Baselines = new Map()): Promise<string[]> {
  const due = await dueTables(client, baselines)
  // The names and columns are ours (KINTO_TABLES), never the database's: nothing to quote.
  if (due.length > 0) await client.exec(`ANALYZE ${due.map(({table}) => `${table} ${KINTO_TABLES[table]}`.trim()).join(', ')}`)
  for (const {table, changes} of due) baselines.set(table, changes)
  return due.map(({table}) => table)
}

/** Starts the checks on an embedded engine's client (at once, then every intervalMs). */
export function startAutoAnalyze(client: SqlClient, options: AutoAnalyzeOptions = {}): AutoAnalyze {
  let stopped = false
  const baselines: Baselines = new Map()
  let running: Promise<void> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  const check = () => {
    running = (async () => {
      try {
        const tables = await analyzeDue(client, baselines)
        if (tables.length > 0) options.onAnalyzed?.(tables)
      } catch (err) {
        if (!stopped) options.onError?.(err)
      }
    })()
    return running
  }
  const schedule = () => {
    if (stopped) return
    timer = setTimeout(() => void check().then(schedule), options.intervalMs ?? 60_000)
    // Never what keeps the process alive.
    timer.unref()
  }
  void check().then(schedule)
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}

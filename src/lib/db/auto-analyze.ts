/**
 * The embedded engine has no autovacuum, so nothing gathers its planner statistics: a table that
 * grew through the API keeps the estimates of the empty table `kinto migrate` made, and plans
 * built on them can go quadratic (a plural DELETE of a 10,000-record page: 17.5 s, against 1.5 s
 * once analyzed; the delete joins its page back to the table through the list's index, once per
 * row). A long-lived process on it (`kinto start`) does the analyze part of autovacuum: every table
 * at start (counts of changes do not outlive the engine), then, every minute, each table changed by
 * more than autovacuum's default threshold (50 rows + 10 %) since its last ANALYZE.
 */
import type {SqlClient} from './types.js'

/** Kinto's tables (storage, permission, cache): those present are watched. */
export const KINTO_TABLES = ['objects', 'timestamps', 'access_control_entries', 'user_principals', 'cache'] as const

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
}

/** The tables to analyze now: all of them at the first check, then those changed enough. */
async function dueTables(client: SqlClient, first: boolean): Promise<string[]> {
  const res = await client.query<TableStat>(
    `SELECT s.relname, s.n_mod_since_analyze, c.reltuples
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])`,
    [[...KINTO_TABLES]],
  )
  return res.rows
    .filter((r) => first || Number(r.n_mod_since_analyze ?? 0) > THRESHOLD_ROWS + SCALE_FACTOR * Math.max(0, Number(r.reltuples ?? 0)))
    .map((r) => r.relname)
    .sort()
}

/** One check: analyzes what is due; returns the tables analyzed. */
export async function analyzeDue(client: SqlClient, first: boolean): Promise<string[]> {
  const tables = await dueTables(client, first)
  // The names are ours (KINTO_TABLES), never the database's: nothing to quote.
  if (tables.length > 0) await client.exec(`ANALYZE ${tables.join(', ')}`)
  return tables
}

/** Starts the checks on an embedded engine's client (at once, then every intervalMs). */
export function startAutoAnalyze(client: SqlClient, options: AutoAnalyzeOptions = {}): AutoAnalyze {
  let stopped = false
  let first = true
  let running: Promise<void> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  const check = () => {
    running = (async () => {
      try {
        const tables = await analyzeDue(client, first)
        first = false
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

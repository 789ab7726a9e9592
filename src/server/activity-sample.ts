// One sample of pg_stat_activity: client backends by state and by whether this process owns them,
// and the age of the oldest idle-in-transaction backend.
//
// What a role without pg_read_all_stats sees: every backend's pid, datid, usesysid and
// application_name, but state, backend_type, state_change and query only for sessions of roles it
// is a member of. Other roles' sessions therefore count as state "unknown", are told apart from
// background processes by having a database and no parallel leader, and do not take part in the
// idle-in-transaction age.

export const STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
  'unknown',
] as const;
export type BackendState = (typeof STATES)[number];
export type Owner = 'this_process' | 'other';

export interface ActivitySample {
  /** Counts per state, for this process's backends and the others'. */
  counts: Map<BackendState, Record<Owner, number>>;
  /** Seconds; 0 when no visible backend is idle in a transaction. */
  oldestIdleInTransaction: number;
}

// The sampling backend itself is idle in its pool apart from this query, so it counts as idle.
export const ACTIVITY_SQL = `SELECT CASE WHEN pid = pg_backend_pid() THEN 'idle' ELSE state END AS state,
  pid = ANY($1::int[]) AS mine,
  count(*)::int AS n,
  extract(epoch FROM max(clock_timestamp() - state_change)
    FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS oldest_idle_in_transaction
FROM pg_stat_activity
WHERE coalesce(backend_type = 'client backend', datid IS NOT NULL AND leader_pid IS NULL)
GROUP BY 1, 2`;

function stateOf(raw: unknown): BackendState {
  return typeof raw === 'string' && (STATES as readonly string[]).includes(raw) ? (raw as BackendState) : 'unknown';
}

export function parseActivity(rows: Record<string, unknown>[]): ActivitySample {
  const counts = new Map<BackendState, Record<Owner, number>>();
  for (const s of STATES) counts.set(s, { this_process: 0, other: 0 });
  let oldest = 0;
  for (const row of rows) {
    const n = Number(row.n);
    if (!Number.isFinite(n) || n < 0) continue;
    const entry = counts.get(stateOf(row.state));
    if (entry) entry[row.mine === true ? 'this_process' : 'other'] += n;
    const age = Number(row.oldest_idle_in_transaction);
    if (row.oldest_idle_in_transaction != null && Number.isFinite(age) && age > oldest) oldest = age;
  }
  return { counts, oldestIdleInTransaction: oldest };
}

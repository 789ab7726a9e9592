// One sample of a server, read in one round trip on the package's own monitoring connection: who
// the server is, its connection limits (fresh at every sample: they change on restart), and its
// client backends by state and by whether this process owns them.
//
// The query is sent with the simple query protocol (no parameters), so that it also runs through
// PgBouncer in transaction mode. The pids of this process's backends are inlined as integers.
//
// What a role without pg_read_all_stats sees: every backend's pid, datid, usesysid and
// application_name, but state, backend_type, state_change and query only for sessions of roles it
// is a member of. Other roles' sessions therefore count as state "unknown", are told apart from
// background processes by having a database and no parallel leader, and do not take part in the
// idle-in-transaction age. The monitoring backend itself is left out of every count.

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
/** `unknown`: the server was reached through a connection pooler, whose backends are nobody's in particular. */
export const OWNERS = ['this_process', 'other', 'unknown'] as const;
export type Owner = (typeof OWNERS)[number];

export interface ServerLimits {
  maxConnections: number;
  superuserReserved: number;
  /** PostgreSQL 16's reserved_connections (slots for pg_use_reserved_connections); 0 before 16. */
  reserved: number;
  version: string;
}

export interface ActivitySample {
  /** Counts per state and owner. */
  counts: Map<BackendState, Record<Owner, number>>;
  /** Seconds; 0 when no visible backend is idle in a transaction. */
  oldestIdleInTransaction: number;
}

export interface ServerSample {
  /** Who the server is, whatever address reached it: system identifier, port and start time. */
  identity: string;
  /** The server's own address and port for this connection (the address is empty over a Unix socket). */
  address: string;
  port: number;
  /** pg_backend_pid() of the monitoring session: not the pid the connection announced behind a pooler. */
  backendPid: number;
  limits: ServerLimits;
  activity: ActivitySample;
}

/**
 * The sample query. current_setting(name, true) returns NULL for a setting the server lacks;
 * system_identifier only where the role may read pg_control_system() (the start time and port
 * still tell two servers apart, and a primary from its replicas, which share the identifier).
 */
export function sampleSql(ownPids: Iterable<number>): string {
  const pids = [...new Set([...ownPids].filter((p) => Number.isInteger(p) && p > 0 && p < 2 ** 31))];
  const mine = pids.length > 0 ? `pid IN (${pids.join(',')})` : 'false';
  return `SELECT
  CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
    THEN (SELECT system_identifier::text FROM pg_control_system()) END AS system_identifier,
  pg_postmaster_start_time()::text AS started,
  coalesce(host(inet_server_addr()), '') AS address,
  current_setting('port') AS port,
  pg_backend_pid() AS backend_pid,
  current_setting('max_connections') AS max_connections,
  current_setting('superuser_reserved_connections') AS superuser_reserved,
  coalesce(current_setting('reserved_connections', true), '0') AS reserved,
  current_setting('server_version') AS version,
  (SELECT coalesce(json_agg(json_build_array(s.state, s.mine, s.n, s.oldest)), '[]')::text FROM (
    SELECT state, ${mine} AS mine, count(*)::int AS n,
      extract(epoch FROM max(clock_timestamp() - state_change)
        FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS oldest
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
      AND coalesce(backend_type = 'client backend', datid IS NOT NULL AND leader_pid IS NULL)
    GROUP BY 1, 2) s) AS activity`;
}

function stateOf(raw: unknown): BackendState {
  return typeof raw === 'string' && (STATES as readonly string[]).includes(raw) ? (raw as BackendState) : 'unknown';
}

function int(row: Record<string, unknown>, key: string): number {
  const n = Number(row[key]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`unexpected ${key} in the server sample: ${String(row[key])}`);
  return n;
}

/** Every value is read as text: the application may have replaced pg's type parsers. */
export function parseSample(row: Record<string, unknown> | undefined, pooled: (backendPid: number) => boolean): ServerSample {
  if (!row) throw new Error('the server sample query returned no row');
  const backendPid = int(row, 'backend_pid');
  const viaPooler = pooled(backendPid);
  const counts = new Map<BackendState, Record<Owner, number>>();
  for (const s of STATES) counts.set(s, { this_process: 0, other: 0, unknown: 0 });
  let oldest = 0;
  const groups: unknown = JSON.parse(String(row.activity ?? '[]'));
  for (const g of Array.isArray(groups) ? groups : []) {
    if (!Array.isArray(g)) continue;
    const [state, mine, n, age] = g as [unknown, unknown, unknown, unknown];
    const count = Number(n);
    if (!Number.isFinite(count) || count < 0) continue;
    const owner: Owner = viaPooler ? 'unknown' : mine === true ? 'this_process' : 'other';
    counts.get(stateOf(state))![owner] += count;
    const seconds = Number(age);
    if (age != null && Number.isFinite(seconds) && seconds > oldest) oldest = seconds;
  }
  const port = int(row, 'port');
  return {
    identity: `${String(row.system_identifier ?? '')}|${port}|${String(row.started ?? '')}`,
    address: String(row.address ?? ''),
    port,
    backendPid,
    limits: {
      maxConnections: int(row, 'max_connections'),
      superuserReserved: int(row, 'superuser_reserved'),
      reserved: int(row, 'reserved'),
      version: String(row.version ?? '').slice(0, 64),
    },
    activity: { counts, oldestIdleInTransaction: oldest },
  };
}

// Runbook text, one section per alert, rendered to docs/runbooks.md. Kept beside the rules (typed
// by AlertName) so that a new alert cannot ship without its runbook.
import type { AlertName } from './config';

interface Runbook {
  meaning: string;
  confirm: string[];
  causes: string[];
  fix: string[];
}

const SQL_BY_CLIENT = `SELECT usename, application_name, client_addr, state, count(*)
FROM pg_stat_activity WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;`;
const SQL_LONG_RUNNING = `SELECT pid, application_name, client_addr, state, wait_event_type, wait_event,
       now() - query_start AS running_for, left(query, 80) AS query
FROM pg_stat_activity WHERE backend_type = 'client backend' AND state <> 'idle'
ORDER BY query_start;`;
const SQL_IDLE_IN_TX = `SELECT pid, application_name, client_addr, state, now() - xact_start AS in_transaction_for,
       now() - state_change AS idle_for, left(query, 80) AS last_query
FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' ORDER BY xact_start;`;
const SQL_LIMITS = `SELECT name, setting FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections');`;

// Indented so that the code block stays inside its list item.
const sql = (q: string) => '\n\n  ```sql\n  ' + q.replace(/\n/g, '\n  ') + '\n  ```';
const svc = (panel: string) => `the service dashboard's **${panel}** panel`;
/** Where an exhausted pool's runbook starts: the report naming who holds it, and its panel. */
const EXHAUSTION_REPORT =
  'Start from the exhaustion report in the service log (`[pg-pool-otel] WARN pool "<name>" exhausted`): who held the pool when a checkout timed out or waited past `PG_POOL_OTEL_SLOW_WAIT_MS`, grouped by acquisition site (the `pool.connect()` line, or the `pool.query()` SQL), largest first, with the oldest hold and the stack. The waiting request\'s trace has the same as a `pg_pool.exhaustion` event.';
const WHO_HOLDS = `${svc('Who holds the pool')}: the site whose band fills the pool is the one to fix (one site with many holds: a leak or a slow query; holds spread over many sites: too much traffic for \`max\`).`;
const srv = (panel: string) => `the server dashboard's **${panel}** panel`;

const RUNBOOKS: Record<AlertName, Runbook> = {
  PgPoolRequestsQueued: {
    meaning: 'For most of the window, at least one `pool.connect()`/`pool.query()` call in this process had to wait because every connection of the pool was checked out. Each waiting request adds its wait to the response time.',
    confirm: [
      EXHAUSTION_REPORT,
      WHO_HOLDS,
      `${svc('Waiting requests')} stays above zero; ${svc('Connections by state vs max')} shows used at max.`,
      `On the database, see whether this service's connections are busy (active) or idle in transaction:${sql(SQL_BY_CLIENT)}`,
    ],
    causes: [
      'More concurrent work than `max` connections (traffic growth, a batch job, a retry storm).',
      'Slow queries holding connections longer (see **Hold time percentiles** and **Query duration percentiles by operation**).',
      'Connections held across slow non-database work (HTTP calls inside a transaction), or leaked checkouts.',
    ],
    fix: [
      'Fix what the exhaustion report names first: release a leaking site in `finally`, speed up or cancel the slow query it names; then look at hold time and leaks.',
      'Raise the pool `max` only if the server has headroom (server dashboard, **Fleet budget** row).',
      'Shed or limit concurrency upstream instead of queueing indefinitely; set `connectionTimeoutMillis`.',
    ],
  },
  PgPoolWaitTimeHigh: {
    meaning: 'The 95th percentile of the time to obtain a connection from the pool is above the threshold: checkouts are slow, either because they queue or because opening new connections is slow.',
    confirm: [
      EXHAUSTION_REPORT,
      WHO_HOLDS,
      `${svc('Wait time percentiles')} and ${svc('Wait time heatmap')}; compare with ${svc('Connection create time percentiles')}.`,
      `If the pool is full, the queue is the cause (see PgPoolRequestsQueued); otherwise check connection setup (TLS, DNS, authentication, server load).`,
    ],
    causes: ['Pool saturation (queueing).', 'Slow connection establishment: network, TLS, authentication, a server near its limit.', 'Event-loop blocking in the process delaying callbacks.'],
    fix: ['Remove the cause of saturation: the site the exhaustion report names (see PgPoolSaturated).', 'Keep a warm minimum of idle connections (`min`, longer `idleTimeoutMillis`) when connection setup is slow.'],
  },
  PgPoolSaturated: {
    meaning: 'Every connection the pool may open is checked out. Any further checkout waits for a release.',
    confirm: [EXHAUSTION_REPORT, WHO_HOLDS, `${svc('Connections by state vs max')} (used at the max line) and ${svc('Waiting requests')}.`, `What the connections are doing:${sql(SQL_LONG_RUNNING)}`],
    causes: ['Load above what `max` connections can serve at the current query latency.', 'Slow queries or lock waits (see `wait_event_type` above).', 'Leaked checkouts or connections held across non-database work.'],
    fix: ['Fix the site the exhaustion report and **Who holds the pool** name (a leak, a slow query, a transaction held across other work), and slow queries and lock contention; then size `max` to the load, within the server budget.', 'Release clients promptly (`try { ... } finally { client.release() }`).'],
  },
  PgPoolAcquireTimeouts: {
    meaning: 'Checkouts gave up after `connectionTimeoutMillis` without getting a connection. Each one is a failed request in the application.',
    confirm: [EXHAUSTION_REPORT, WHO_HOLDS, `${svc('Checkout timeouts')}, together with ${svc('Waiting requests')} and ${svc('Connections by state vs max')}.`, `${svc('Connection errors by type')} shows whether opening new connections failed instead (error type \`timeout\`, 53300, ECONNREFUSED).`],
    causes: ['The pool is saturated for longer than the timeout.', 'The server is slow to accept or refuses new connections.', 'Leaked checkouts shrinking the usable pool.'],
    fix: ['Fix the site the exhaustion report names; otherwise treat as PgPoolSaturated and check leaks (PgPoolCheckoutLeaked).', 'If the server refuses connections, see PgPoolServerRefusingConnections.'],
  },
  PgPoolCheckoutLeaked: {
    meaning: 'Clients have been checked out of the pool for longer than the configured leak threshold without being released. The process logged a warning with the stack trace of the checkout for each one.',
    confirm: [`${svc('Leaked checkouts')} and ${svc('Oldest checkout age')}.`, 'Search the service logs for `[pg-pool-otel] WARN possible connection leak: pool "<name>"`: the `Taken at:` stack shows where the client was checked out (the trace of the checkout also gets a leak event with the stack).', `On the server, a leaked client is often idle or idle in transaction for a long time:${sql(SQL_IDLE_IN_TX)}`],
    causes: ['A code path that calls `pool.connect()` and never `release()` (an early return or a thrown error before release).', 'A long-running job legitimately holding a client longer than the threshold.'],
    fix: ['Release in `finally`; prefer `pool.query()` for single statements.', 'For legitimate long holds, raise the leak threshold (`PG_POOL_OTEL_LEAK_THRESHOLD_MS`, default 30000).', 'Restarting the process frees the connections, but the leak returns.'],
  },
  PgPoolCheckoutLeaksGrowing: {
    meaning: 'The number of leaked checkouts keeps going up. The pool is losing connections and will run out.',
    confirm: [`${svc('Leaked checkouts')} rising; ${svc('Waiting requests')} will follow.`, '`possible connection leak` warnings with their `Taken at:` stacks in the service logs.'],
    causes: ['A leaking code path that runs regularly (per request or per job).'],
    fix: ['Find the stack in the logs and release the client in `finally`.', 'As a stop-gap, restart the affected instances; they will leak again at the same rate.'],
  },
  PgPoolReleasedInTransaction: {
    meaning: 'Clients were released to the pool while a transaction was open (`BEGIN` without `COMMIT`/`ROLLBACK`), or after a failed statement inside one. The next user of that connection runs inside someone else\'s transaction: its writes can be lost or it fails with 25P02.',
    confirm: [
      `${svc('Released inside a transaction')} by \`transaction_status\`.`,
      'The service log has `client released inside a transaction` once per acquisition site, with the `Taken at:` stack.',
      `Idle-in-transaction sessions on the server:${sql(SQL_IDLE_IN_TX)}`,
    ],
    causes: ['A transaction helper that does not roll back on error before release.', 'An early return between `BEGIN` and `COMMIT`.'],
    fix: ['Wrap transactions so that every path ends in `COMMIT` or `ROLLBACK` before `release()`; release with an error (`client.release(err)`) to destroy a connection in an unknown state.', 'Until fixed, `PG_POOL_OTEL_RELEASE_IN_TRANSACTION=destroy` closes such clients instead of reusing them.'],
  },
  PgPoolConnectionChurn: {
    meaning: 'The pool closes connections for idle timeout and opens new ones at a rate larger than its own size. Every new connection costs a round-trip, authentication and a new server process.',
    confirm: [`${svc('Connections closed by reason')} (\`idle_timeout\`) and ${svc('Connections opened')}.`],
    causes: ['`idleTimeoutMillis` shorter than the gaps in bursty traffic.', '`min` idle connections set to 0.'],
    fix: ['Raise `idleTimeoutMillis` above the typical gap between bursts, or keep a minimum of idle connections.'],
  },
  PgPoolServerConnectionsNearLimit: {
    meaning: 'The PostgreSQL server has most of its usable connections (`max_connections - superuser_reserved_connections - reserved_connections`) open, or refused the package\'s monitoring connection with 53300 (`pg_pool_server_full`). At the limit it refuses new connections with 53300 for every client, including other services.',
    confirm: [`${srv('Server connections by state vs usable limit')}, ${srv('Headroom')}, and ${srv('Connections held by service')}.`, `Who holds them:${sql(SQL_BY_CLIENT)}`, `The limits:${sql(SQL_LIMITS)}`],
    causes: ['More instances or larger pools than the server budget (see PgPoolFleetBudgetOvercommitted).', 'Idle-in-transaction sessions or leaks holding connections.', 'Clients that are not pooled (scripts, migrations, other tools).'],
    fix: ['Reduce pool sizes or instance counts, or put a pooler (PgBouncer) in front.', 'Terminate stuck idle-in-transaction sessions (`pg_terminate_backend(pid)`) and set `idle_in_transaction_session_timeout`.', 'Raise `max_connections` only with memory to spare (it needs a restart).'],
  },
  PgPoolServerConnectionsFillingUp: {
    meaning: 'A linear extrapolation of the server\'s open connections reaches the usable limit within the horizon.',
    confirm: [`${srv('Server connections by state vs usable limit')} trend, and ${srv('Connections held by instance')} for the instances that grow.`],
    causes: ['A scale-out in progress (more instances, each with a full pool).', 'A slow leak or accumulating idle-in-transaction sessions.'],
    fix: ['As for PgPoolServerConnectionsNearLimit, before the limit is reached.'],
  },
  PgPoolFleetBudgetOvercommitted: {
    meaning: 'If every instrumented pool connecting to this server directly grew to its `max`, together they would need more connections than the server accepts. Today\'s traffic may fit; a spike or a scale-out will see 53300 refusals. Pools behind a pooler (their address has `pg_pool_pooler_info`) are a budget against the pooler\'s `max_client_conn`, not against `max_connections`, and are not counted.',
    confirm: [`${srv('Pool maxima by service vs usable limit')} and ${srv('Budget commitment')}.`, 'Only instrumented processes are counted: other clients make the real budget tighter.'],
    causes: ['Pool `max` chosen per service without a shared budget.', 'Autoscaling multiplying pools.'],
    fix: ['Give each service a share: instances × `max` per service summing below the usable limit, with room for migrations and admin sessions.', 'Use a pooler (PgBouncer) between many instances and the server.'],
  },
  PgPoolServerRefusingConnections: {
    meaning: 'New connections to the server fail with SQLSTATE 53300 (`sorry, too many clients already`). Every service using this server is affected; pool alerts for this server are a consequence, not the cause.',
    confirm: [`${srv('Connection refusals (53300) by service')} and ${srv('Server connections by state vs usable limit')}.`, `As a superuser (reserved slots still accept superusers):${sql(SQL_BY_CLIENT)}`],
    causes: ['The server is at its connection limit: too many pools, leaks, idle-in-transaction sessions, or an unpooled client opening connections in a loop.'],
    fix: ['Free connections now: terminate idle-in-transaction sessions, restart leaking instances, scale down the largest consumer.', 'Then fix the budget (PgPoolFleetBudgetOvercommitted).'],
  },
  PgPoolPoolsGrowing: {
    meaning: 'A process keeps creating `pg.Pool` objects: the number of live pools grows, or many are created and ended. This is the pool-per-request anti-pattern: no connection is reused and every pool holds its own connections.',
    confirm: [`${svc('Live pools per process')}; ${svc('Connections opened')} will be high too.`, 'The service log has one `pools were created within` warning with the stack of the latest pool\'s first use.'],
    causes: ['`new Pool()` inside a request handler or a function called per request.', 'Per-tenant pools without a bound.'],
    fix: ['Create one pool per database at startup and share it; end pools you no longer need.'],
  },
  PgPoolServerSampleStale: {
    meaning: 'No process has successfully read `pg_stat_activity` from this server recently, so the server headroom and budget alerts work on old numbers (the gauges keep their last good values).',
    confirm: [`${srv('Server sample age')}; \`pg_pool_server_sample_failures_total\` rising means samples fail (the service log says why), flat means no process samples this server any more.`],
    causes: [
      'The monitoring connection cannot be opened (network, authentication, `57P03` while the server starts or stops) or the sampling query fails (e.g. `permission denied`); the service log says why, once per kind of failure.',
      'No process uses this server any more: sampling stops with the last pool or client (the series then disappear).',
      'Sampling turned off (`PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS=0`) or set to an interval longer than the threshold.',
    ],
    fix: [
      'Fix the logged error. No privilege beyond login is needed; `GRANT pg_read_all_stats TO <role>` makes every session\'s state visible instead of `unknown`.',
    ],
  },
};

const list = (items: string[]) => items.map((i) => `- ${i.charAt(0).toUpperCase()}${i.slice(1)}`).join('\n');

/**
 * The `first_steps` annotation: the runbook's checks and fixes as plain numbered lines (bold
 * panel names quoted, SQL on one line), so that an alert says what to do without its link.
 */
export function firstSteps(alert: AlertName): string {
  const plain = (item: string) => {
    const text = item
      .replace(/\n\n {2}```sql\n([\s\S]*?)\n {2}```/g, (_m, q: string) => ' ' + q.replace(/\s+/g, ' ').trim())
      .replace(/\*\*([^*]+)\*\*/g, '"$1"');
    return text.charAt(0).toUpperCase() + text.slice(1);
  };
  const numbered = (items: string[]) => items.map((item, i) => `${i + 1}. ${plain(item)}`).join('\n');
  const rb = RUNBOOKS[alert];
  return `Confirm:\n${numbered(rb.confirm)}\nFix:\n${numbered(rb.fix)}`;
}

/** What a runbook shows of a generated rule (the rules are built from these runbooks, not the reverse). */
export interface RuledAlert {
  alert: AlertName;
  for?: string;
  labels: { severity: string };
}

/** docs/runbooks.md for the rules generated (their severities and pending periods are shown). */
export function renderRunbooks(rules: RuledAlert[]): string {
  const out = [
    '# pg-pool-otel runbooks',
    '',
    '<!-- Generated by `pg-pool-otel generate` from src/cli/runbooks.ts; edit that file, not this one. -->',
    '',
    'One section per alert in `alerts/pg-pool-otel.rules.yml`. Pool alerts carry the labels `job` (the service), `instance`, `db_client_connection_pool_name`, `server_address` and `server_port`; server alerts carry `server_address` and `server_port`.',
    '',
  ];
  const seen = new Set<AlertName>();
  for (const rule of rules) {
    if (seen.has(rule.alert)) continue;
    seen.add(rule.alert);
    const variants = rules.filter((r) => r.alert === rule.alert);
    const rb = RUNBOOKS[rule.alert];
    out.push(
      `## ${rule.alert}`,
      '',
      `**Severity:** ${variants.map((r) => `${r.labels.severity}, ${r.for ? `after ${r.for}` : 'at once'}`).join('; ')}.`,
      '',
      rb.meaning,
      '',
      '**Confirm**',
      '',
      list(rb.confirm),
      '',
      '**Usual causes**',
      '',
      list(rb.causes),
      '',
      '**Fix**',
      '',
      list(rb.fix),
      ''
    );
  }
  return out.join('\n').replace(/\n\n\n+/g, '\n\n');
}

// The one catalogue of metrics: OpenTelemetry name, kind, unit, description and bucket boundaries.
// The instruments (producer and SDK fallback), docs/metrics.md's test and the dashboard / alert
// generator (src/cli) all read it; the Prometheus names are derived the way
// @opentelemetry/exporter-prometheus derives them, so nothing is spelled twice.

/**
 * `updowncounter` and `gauge` are both read at collection time; they differ only in the OTLP data
 * type (a non-monotonic Sum or a Gauge), which keeps what earlier releases exported.
 */
export type MetricKind = 'counter' | 'updowncounter' | 'gauge' | 'histogram';

export interface MetricDef {
  readonly name: string;
  readonly kind: MetricKind;
  readonly unit: string;
  readonly description: string;
  /** Histograms only: explicit bucket boundaries, in the metric's unit. */
  readonly buckets?: readonly number[];
}

/** Seconds, from 100 µs to a minute: pool waits and holds are often sub-millisecond. */
export const POOL_TIME_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;
/** Seconds: opening a connection includes TCP, TLS and authentication. */
export const CREATE_TIME_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
/** The stable database conventions' advice for db.client.operation.duration. */
export const OPERATION_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] as const;

const C = '{connection}';
const def = (name: string, kind: MetricKind, unit: string, description: string, buckets?: readonly number[]): MetricDef =>
  Object.freeze({ name, kind, unit, description, ...(buckets ? { buckets } : {}) });

export const METRICS = {
  // Pools: OpenTelemetry database semantic conventions (connection pool metrics).
  connectionCount: def('db.client.connection.count', 'updowncounter', C, 'Connections of the pool, by state (idle or used).'),
  connectionMax: def('db.client.connection.max', 'updowncounter', C, 'The most connections the pool may open.'),
  connectionIdleMax: def('db.client.connection.idle.max', 'updowncounter', C, 'The most idle connections the pool keeps.'),
  connectionIdleMin: def('db.client.connection.idle.min', 'updowncounter', C, 'The fewest idle connections the pool keeps.'),
  pendingRequests: def('db.client.connection.pending_requests', 'updowncounter', '{request}', 'Checkouts queued, waiting for a connection.'),
  timeouts: def('db.client.connection.timeouts', 'counter', '{timeout}', 'Checkouts that failed because the acquire timeout passed.'),
  createTime: def('db.client.connection.create_time', 'histogram', 's', 'Time to open a new connection.', CREATE_TIME_BUCKETS),
  waitTime: def('db.client.connection.wait_time', 'histogram', 's', 'Time from the checkout request to the connection being handed over.', POOL_TIME_BUCKETS),
  useTime: def('db.client.connection.use_time', 'histogram', 's', 'Time from the connection being handed over to its release.', POOL_TIME_BUCKETS),
  operationDuration: def('db.client.operation.duration', 'histogram', 's', 'Duration of database client operations.', OPERATION_DURATION_BUCKETS),
  // Pools: this package's own, for what the conventions lack.
  waits: def('pg_pool.connection.waits', 'counter', '{checkout}', 'Checkouts that had to queue because every connection was in use and the pool was full.'),
  closed: def('pg_pool.connection.closed', 'counter', C, 'Connections closed by the pool, by reason.'),
  connectionErrors: def('pg_pool.connection.errors', 'counter', '{error}', 'Failed attempts to open a connection, by error type (SQLSTATE when the server gave one).'),
  clientConnections: def('pg_pool.client.connection.count', 'updowncounter', C, 'Open connections of bare pg.Client instances (not owned by a pg-pool Pool).'),
  // Leaks and misuse.
  leaked: def('pg_pool.checkout.leaked', 'gauge', '{checkout}', 'Checkouts currently held past the leak threshold (reported, not yet released).'),
  leakDetections: def('pg_pool.checkout.leak_detections', 'counter', '{checkout}', 'Checkouts reported as leaked: held longer than the leak threshold.'),
  leakReturns: def('pg_pool.checkout.leak_returns', 'counter', '{checkout}', 'Checkouts reported as leaked that were released later.'),
  oldestAge: def('pg_pool.checkout.oldest_age', 'gauge', 's', 'Age of the oldest current checkout, long-lived ones excepted; 0 when none.'),
  releasedInTransaction: def('pg_pool.checkout.released_in_transaction', 'counter', '{checkout}', 'Clients released to the pool inside an open (T) or failed (E) transaction.'),
  checkoutHolders: def('pg_pool.checkout.holders', 'gauge', C, 'Connections checked out now, by acquisition site (first application frame, or the SQL of pool.query()).'),
  exhaustionReports: def('pg_pool.exhaustion.reports', 'counter', '{report}', 'Exhaustion reports written (who holds the pool), by trigger: a checkout timed out or waited past PG_POOL_OTEL_SLOW_WAIT_MS.'),
  pools: def('pg_pool.pools', 'gauge', '{pool}', 'Pools alive in this process (used at least once, not ended, not garbage-collected).'),
  poolsCreated: def('pg_pool.pools.created', 'counter', '{pool}', 'Pools created (counted at first use) since the process started.'),
  // Server headroom.
  serverMaxConnections: def('pg_pool.server.max_connections', 'gauge', C, "The server's max_connections, read at every sample."),
  serverSuperuserReserved: def('pg_pool.server.superuser_reserved_connections', 'gauge', C, 'Slots only superusers may use (superuser_reserved_connections).'),
  serverReserved: def('pg_pool.server.reserved_connections', 'gauge', C, 'Slots for roles with pg_use_reserved_connections (PostgreSQL 16+, else 0).'),
  serverInfo: def('pg_pool.server.info', 'gauge', '1', 'Always 1; server_version carries the server version.'),
  serverConnectionCount: def('pg_pool.server.connection.count', 'gauge', C, "Client backends by state and owner (this_process, other; unknown behind a pooler), from the last good sample; the package's monitoring session is not counted."),
  serverIdleInTransactionOldestAge: def('pg_pool.server.idle_in_transaction.oldest_age', 'gauge', 's', 'Age of the oldest visible idle-in-transaction backend (0 if none).'),
  serverSampleTimestamp: def('pg_pool.server.sample.timestamp', 'gauge', 's', 'Unix time of the last sample: a good one, or a monitoring connection refused because the server is full.'),
  serverFull: def('pg_pool.server.full', 'gauge', '1', '1 while the last monitoring connection was refused because the server is full (SQLSTATE 53300), else 0.'),
  serverSampleFailures: def('pg_pool.server.sample.failures', 'counter', '{sample}', 'Samples that failed, by the address dialled; the gauges keep their last good values.'),
  poolerInfo: def('pg_pool.pooler.info', 'gauge', '1', 'Always 1, for each address this process dials that turned out to be a connection pooler (PgBouncer or similar).'),
} as const satisfies Record<string, MetricDef>;

export type MetricKey = keyof typeof METRICS;

/** The name as @opentelemetry/exporter-prometheus writes it: dots to underscores, `_total` on counters. */
export function prometheusName(d: MetricDef): string {
  const base = d.name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return d.kind === 'counter' ? `${base}_total` : base;
}

/** Every sample name a scrape shows for the metric: histograms have `_bucket`, `_sum` and `_count`. */
export function prometheusSamples(d: MetricDef): string[] {
  const base = prometheusName(d);
  return d.kind === 'histogram' ? [`${base}_bucket`, `${base}_sum`, `${base}_count`] : [base];
}

/** Looks a metric up by its Prometheus name (for the generator, which writes PromQL). */
export function byPrometheusName(name: string): MetricDef | undefined {
  return Object.values(METRICS).find((d) => prometheusSamples(d).includes(name));
}

/** The OpenTelemetry name of every metric, by key: the public `METRIC` export. */
export const METRIC = Object.freeze(
  Object.fromEntries(Object.entries(METRICS).map(([k, d]) => [k, d.name])) as { [K in MetricKey]: (typeof METRICS)[K]['name'] }
);

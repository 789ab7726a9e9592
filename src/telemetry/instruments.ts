// Every instrument the package records, in one place: names, units and bucket boundaries.
// docs/metrics.md lists the same names, and test/metrics-doc.test.ts keeps the two in step.
import type { Counter, Histogram, Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter } from '@opentelemetry/api';

/** Seconds, from 100 µs to a minute: pool waits and holds are often sub-millisecond. */
export const POOL_TIME_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Seconds: opening a connection includes TCP, TLS and authentication. */
export const CREATE_TIME_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** The stable database conventions' advice for db.client.operation.duration. */
export const OPERATION_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

export const METRIC = {
  connectionCount: 'db.client.connection.count',
  connectionMax: 'db.client.connection.max',
  connectionIdleMax: 'db.client.connection.idle.max',
  connectionIdleMin: 'db.client.connection.idle.min',
  pendingRequests: 'db.client.connection.pending_requests',
  timeouts: 'db.client.connection.timeouts',
  createTime: 'db.client.connection.create_time',
  waitTime: 'db.client.connection.wait_time',
  useTime: 'db.client.connection.use_time',
  operationDuration: 'db.client.operation.duration',
  waits: 'pg_pool.connection.waits',
  closed: 'pg_pool.connection.closed',
  connectionErrors: 'pg_pool.connection.errors',
  clientConnections: 'pg_pool.client.connection.count',
} as const;

export interface Instruments {
  connectionCount: ObservableUpDownCounter;
  connectionMax: ObservableUpDownCounter;
  connectionIdleMax: ObservableUpDownCounter;
  connectionIdleMin: ObservableUpDownCounter;
  pendingRequests: ObservableUpDownCounter;
  clientConnections: ObservableUpDownCounter;
  timeouts: Counter;
  waits: ObservableCounter;
  closed: Counter;
  connectionErrors: Counter;
  createTime: Histogram;
  waitTime: Histogram;
  useTime: Histogram;
  operationDuration: Histogram;
}

/** Instruments observed at collection time; the pool tracker registers one batch callback for them. */
export function observableInstruments(i: Instruments): (ObservableUpDownCounter | ObservableGauge | ObservableCounter)[] {
  return [i.connectionCount, i.connectionMax, i.connectionIdleMax, i.connectionIdleMin, i.pendingRequests, i.clientConnections, i.waits];
}

export function createInstruments(meter: Meter): Instruments {
  const connections = (name: string, description: string) =>
    meter.createObservableUpDownCounter(name, { unit: '{connection}', description });
  const seconds = (name: string, description: string, buckets: number[]) =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: buckets } });
  return {
    connectionCount: connections(METRIC.connectionCount, 'Connections of the pool, by state (idle or used).'),
    connectionMax: connections(METRIC.connectionMax, 'The most connections the pool may open.'),
    connectionIdleMax: connections(METRIC.connectionIdleMax, 'The most idle connections the pool keeps.'),
    connectionIdleMin: connections(METRIC.connectionIdleMin, 'The fewest idle connections the pool keeps.'),
    pendingRequests: meter.createObservableUpDownCounter(METRIC.pendingRequests, {
      unit: '{request}',
      description: 'Checkouts queued, waiting for a connection.',
    }),
    clientConnections: connections(
      METRIC.clientConnections,
      'Open connections of bare pg.Client instances (not owned by a pg-pool Pool).'
    ),
    timeouts: meter.createCounter(METRIC.timeouts, {
      unit: '{timeout}',
      description: 'Checkouts that failed because connectionTimeoutMillis passed.',
    }),
    // Counted in a plain field and observed at collection: in a saturated pool every checkout
    // waits, and an SDK add() per checkout costs more than the rest of the bookkeeping.
    waits: meter.createObservableCounter(METRIC.waits, {
      unit: '{checkout}',
      description: 'Checkouts that had to queue because every connection was in use and the pool was full.',
    }),
    closed: meter.createCounter(METRIC.closed, {
      unit: '{connection}',
      description: 'Connections closed by the pool, by reason.',
    }),
    connectionErrors: meter.createCounter(METRIC.connectionErrors, {
      unit: '{error}',
      description: 'Failed attempts to open a connection, by error type (SQLSTATE when the server gave one).',
    }),
    createTime: seconds(METRIC.createTime, 'Time to open a new connection.', CREATE_TIME_BUCKETS),
    waitTime: seconds(METRIC.waitTime, 'Time from pool.connect() to the connection being handed over.', POOL_TIME_BUCKETS),
    useTime: seconds(METRIC.useTime, 'Time from the connection being handed over to its release.', POOL_TIME_BUCKETS),
    operationDuration: seconds(METRIC.operationDuration, 'Duration of database client operations.', OPERATION_DURATION_BUCKETS),
  };
}

// The metrics floor: the least code that keeps per-pool histograms of checkout wait, connection
// use and query duration, with no OpenTelemetry SDK on the hot path. It patches pg-pool's
// `Pool.prototype.connect` (wait: from the call to the client handed out; `pool.query()` goes
// through it too), pg-pool's internal `Pool.prototype._release` (use: from hand-out to release)
// and pg's `Client.prototype.query` (duration: call to settle, promise and callback forms). Each
// measurement is a few additions into plain arrays; a MetricProducer turns them into OTLP-shaped
// histograms when the reader collects, as this package's own producer does. No leak detection, no
// attributes beyond the pool name, no span, no error breakdown: what is left is the physical
// limit of "metrics per pool", which `ours-metrics` is measured against.
import { ValueType } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

/** The semantic conventions' advice for db.client.* durations, in seconds. */
const BOUNDARIES = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

class Hist {
  readonly counts = new Array<number>(BOUNDARIES.length + 1).fill(0);
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  record(v: number): void {
    let i = 0;
    while (i < BOUNDARIES.length && BOUNDARIES[i]! < v) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }
}

class PoolHists {
  readonly wait = new Hist();
  readonly use = new Hist();
  readonly duration = new Hist();
  constructor(readonly name: string) {}
}

const HISTS = Symbol('metrics-floor.hists');
const ACQUIRED = Symbol('metrics-floor.acquired');
const POOL = Symbol('metrics-floor.pool');

type Callback = (err: unknown, ...rest: unknown[]) => void;
type ConnectCallback = (err: unknown, client: FloorClient, done: unknown) => void;
interface FloorPool {
  [HISTS]?: PoolHists;
}
interface FloorClient {
  [ACQUIRED]?: number;
  [POOL]?: PoolHists;
}

const METRICS = [
  ['db.client.connection.wait_time', 'wait'],
  ['db.client.connection.use_time', 'use'],
  ['db.client.operation.duration', 'duration'],
] as const;

/** Patches pg and pg-pool; returns the producer to hand the reader and the function that restores them. */
export function installMetricsFloor(pg: typeof import('pg')): { producer: MetricProducer; uninstall: () => void } {
  const all: PoolHists[] = [];
  const histsOf = (pool: FloorPool) => {
    let h = pool[HISTS];
    if (!h) all.push((h = pool[HISTS] = new PoolHists(`pool-${all.length + 1}`)));
    return h;
  };

  const poolProto = pg.Pool.prototype as unknown as {
    connect(this: FloorPool, cb?: ConnectCallback): unknown;
    _release(this: FloorPool, client: FloorClient, ...rest: unknown[]): unknown;
  };
  const clientProto = pg.Client.prototype as unknown as { query: (this: FloorClient, ...args: unknown[]) => unknown };
  const connect = poolProto.connect;
  const release = poolProto._release;
  const query = clientProto.query;

  poolProto.connect = function floorConnect(this: FloorPool, cb?: ConnectCallback): unknown {
    const h = histsOf(this);
    const t0 = performance.now();
    const got = (client: FloorClient) => {
      const now = performance.now();
      h.wait.record((now - t0) / 1000);
      client[ACQUIRED] = now;
      client[POOL] = h;
    };
    if (typeof cb === 'function') {
      return connect.call(this, (err: unknown, client: FloorClient, done: unknown) => {
        if (!err) got(client);
        cb(err, client, done);
      });
    }
    return (connect.call(this) as Promise<FloorClient>).then((client) => {
      got(client);
      return client;
    });
  };

  poolProto._release = function floorRelease(this: FloorPool, client: FloorClient, ...rest: unknown[]): unknown {
    const at = client[ACQUIRED];
    if (at !== undefined) {
      client[POOL]!.use.record((performance.now() - at) / 1000);
      client[ACQUIRED] = undefined;
    }
    return release.call(this, client, ...rest);
  };

  clientProto.query = function floorQuery(this: FloorClient, config: unknown, values?: unknown, callback?: unknown): unknown {
    const h = this[POOL];
    if (h === undefined || config == null || typeof (config as { submit?: unknown }).submit === 'function') {
      return query.call(this, config, values, callback);
    }
    const t0 = performance.now();
    const end = () => h.duration.record((performance.now() - t0) / 1000);
    const userCallback = typeof values === 'function' ? values : typeof callback === 'function' ? callback : undefined;
    if (userCallback) {
      return query.call(this, config, typeof values === 'function' ? undefined : values, (err: unknown, res: unknown) => {
        end();
        (userCallback as Callback)(err, res);
      });
    }
    const result = query.call(this, config, values) as Promise<unknown>;
    result.then(end, end);
    return result;
  };

  const producer: MetricProducer = {
    async collect(): Promise<CollectionResult> {
      const now = millisToHrTime(Date.now());
      const metrics: MetricData[] = METRICS.map(([name, key]) => ({
        descriptor: { name, description: '', unit: 's', valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: all.map((p) => {
          const h = p[key];
          return {
            startTime: now,
            endTime: now,
            attributes: { 'db.client.connection.pool.name': p.name },
            value: {
              buckets: { boundaries: BOUNDARIES, counts: [...h.counts] },
              sum: h.sum,
              count: h.count,
              ...(h.count > 0 ? { min: h.min, max: h.max } : {}),
            },
          };
        }),
      }));
      return { resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: 'metrics-floor' }, metrics }] }, errors: [] };
    },
  };

  return {
    producer,
    uninstall() {
      poolProto.connect = connect;
      poolProto._release = release;
      clientProto.query = query;
    },
  };
}

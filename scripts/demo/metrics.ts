// Reads each service's real /metrics endpoint and turns the samples into the rows the live view
// and the summary show. Series the package does not (yet) export stay undefined: shown as n/a.
import { buckets, bucketDelta, labelValues, max, parsePrometheusText, quantile, sum, type Sample } from './prom-text';

const POOL = 'db_client_connection_pool_name';
/** Rates and the p95 wait look at this much history. */
const WINDOW_MS = 5000;

export interface PoolRow {
  service: string;
  pool: string;
  open?: number;
  used?: number;
  idle?: number;
  max?: number;
  waiting?: number;
  /** p95 of the checkout wait over the last few seconds, in seconds. */
  p95Wait?: number;
  timeouts?: number;
  leaked?: number;
  oldestAge?: number;
  /** Connections closed per second over the last few seconds. */
  closedPerSec?: number;
  errors?: number;
  releasedInTransaction?: number;
}

export interface ServerRow {
  connections?: number;
  maxConnections?: number;
  usable?: number;
  idleInTransactionAge?: number;
}

export interface Frame {
  at: number;
  pools: PoolRow[];
  server: ServerRow;
  /** Last samples of every service that answered. */
  samples: Map<string, Sample[]>;
  /** Services whose /metrics did not answer this time. */
  unreachable: string[];
}

interface Scrape {
  at: number;
  samples: Sample[];
}

function poolRow(service: string, pool: string, now: Scrape, old: Scrape | undefined): PoolRow {
  const s = now.samples;
  const m = { [POOL]: pool };
  const used = sum(s, 'db_client_connection_count', { ...m, db_client_connection_state: 'used' });
  const idle = sum(s, 'db_client_connection_count', { ...m, db_client_connection_state: 'idle' });
  const row: PoolRow = {
    service,
    pool,
    used,
    idle,
    open: used === undefined && idle === undefined ? undefined : (used ?? 0) + (idle ?? 0),
    max: sum(s, 'db_client_connection_max', m),
    waiting: sum(s, 'db_client_connection_pending_requests', m),
    timeouts: sum(s, 'db_client_connection_timeouts_total', m),
    leaked: sum(s, 'pg_pool_checkout_leaked', m),
    oldestAge: max(s, 'pg_pool_checkout_oldest_age', m),
    errors: sum(s, 'pg_pool_connection_errors_total', m),
    releasedInTransaction: sum(s, 'pg_pool_checkout_released_in_transaction_total', m),
  };
  if (old) {
    // Over the window only: the first checkouts also wait for the pool to open its connections.
    const wait = buckets(s, 'db_client_connection_wait_time', m);
    row.p95Wait = quantile(0.95, bucketDelta(wait, buckets(old.samples, 'db_client_connection_wait_time', m)));
    const closed = sum(s, 'pg_pool_connection_closed_total', m);
    if (closed !== undefined) {
      const before = sum(old.samples, 'pg_pool_connection_closed_total', m) ?? 0;
      row.closedPerSec = ((closed - before) * 1000) / Math.max(1, now.at - old.at);
    }
  }
  return row;
}

function serverRow(all: Sample[][]): ServerRow {
  // Every process reports the same server: take the largest view, never the sum.
  const per = (fn: (s: Sample[]) => number | undefined) => {
    const values = all.map(fn).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : Math.max(...values);
  };
  const maxConnections = per((s) => max(s, 'pg_pool_server_max_connections'));
  const reserved = per(
    (s) => (max(s, 'pg_pool_server_superuser_reserved_connections') ?? 0) + (max(s, 'pg_pool_server_reserved_connections') ?? 0)
  );
  return {
    connections: per((s) => sum(s, 'pg_pool_server_connection_count')),
    maxConnections,
    usable: maxConnections === undefined ? undefined : maxConnections - (reserved ?? 0),
    idleInTransactionAge: per((s) => max(s, 'pg_pool_server_idle_in_transaction_oldest_age')),
  };
}

export class Scraper {
  private history = new Map<string, Scrape[]>();

  async scrape(services: { name: string; metricsUrl: string }[]): Promise<Frame> {
    const at = Date.now();
    const frame: Frame = { at, pools: [], server: {}, samples: new Map(), unreachable: [] };
    await Promise.all(
      services.map(async (svc) => {
        try {
          const res = await fetch(svc.metricsUrl, { signal: AbortSignal.timeout(2000) });
          if (!res.ok) throw new Error(String(res.status));
          frame.samples.set(svc.name, parsePrometheusText(await res.text()));
        } catch {
          frame.unreachable.push(svc.name);
        }
      })
    );
    for (const svc of services) {
      const samples = frame.samples.get(svc.name);
      if (!samples) continue;
      const history = (this.history.get(svc.name) ?? []).filter((h) => at - h.at <= WINDOW_MS);
      const now = { at, samples };
      const pools = new Set([...labelValues(samples, 'db_client_connection_max', POOL), ...labelValues(samples, 'db_client_connection_count', POOL)]);
      for (const pool of pools) frame.pools.push(poolRow(svc.name, pool, now, history[0]));
      history.push(now);
      this.history.set(svc.name, history);
    }
    frame.server = serverRow([...frame.samples.values()]);
    return frame;
  }
}

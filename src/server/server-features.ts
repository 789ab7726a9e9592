// Server headroom features (issue 4): max_connections and reserved slots, pg_stat_activity sampling.
// Pools are grouped per server (address, port): one monitor, one timer and one sample per server,
// whichever pools and databases of this process talk to it. Only pools whose idle clients the
// sampler can borrow (pg-pool) take part.
import type { Feature, FeatureContext } from '../feature';
import type { PgPool } from '../pg-types';
import type { PoolEntry } from '../pool/pool-entry';
import type { TrackedPool } from '../pool/tracked-pool';
import { serverOfClient } from '../pool/pool-identity';
import { reportInternalError } from '../diag';
import type { MetricSink } from '../telemetry/series';
import { ServerMonitor } from './server-monitor';
import { collectServerGauges } from './server-gauges';
import { METRICS } from '../telemetry/catalogue';

export function createServerFeatures(ctx: FeatureContext, samplable: (pool: TrackedPool) => pool is TrackedPool<PgPool>): Feature[] {
  return [new ServerHeadroom(ctx, samplable)];
}

class ServerHeadroom implements Feature {
  private readonly monitors = new Map<string, ServerMonitor>();
  private readonly monitorOf = new WeakMap<TrackedPool, ServerMonitor>();
  private stopped = false;

  constructor(
    private readonly ctx: FeatureContext,
    private readonly samplable: (pool: TrackedPool) => pool is TrackedPool<PgPool>
  ) {}

  collect(sink: MetricSink): void {
    collectServerGauges(sink, this.monitors.values());
  }

  clientConnected(entry: PoolEntry): void {
    this.monitorFor(entry.pool);
  }

  released(entry: PoolEntry, err: unknown): void {
    this.monitorFor(entry.pool)?.released(entry.pool as TrackedPool<PgPool>, entry.client, err);
  }

  poolEnded(pool: TrackedPool): void {
    this.monitorOf.get(pool)?.removePool(pool as TrackedPool<PgPool>);
    this.monitorOf.delete(pool);
  }

  /** No more sampling; the last samples stay readable until the feature is replaced. */
  stop(): void {
    for (const m of this.monitors.values()) m.close();
    this.stopped = true;
  }

  /** The monitor of the pool's server, joining it on first sight (a connect, or a release). */
  private monitorFor(pool: TrackedPool): ServerMonitor | undefined {
    const known = this.monitorOf.get(pool);
    if (known || this.stopped || !pool.resolved || pool.ended || !this.samplable(pool)) return known;
    const { address, port } = pool.server;
    const key = `${address}|${port}`;
    let monitor = this.monitors.get(key);
    if (!monitor) {
      // The failure series exists from the start, so increase() sees the first failure.
      const failures = this.ctx.store.counter(METRICS.serverSampleFailures, { 'server.address': address, 'server.port': port });
      monitor = new ServerMonitor(address, port, {
        intervalMs: () => this.ctx.settings.serverSampleIntervalMs,
        barePids: (m) => this.barePids(m),
        sampleFailed: () => failures.add(),
      });
      this.monitors.set(key, monitor);
    }
    this.monitorOf.set(pool, monitor);
    monitor.addPool(pool);
    return monitor;
  }

  /** Backends of this process on the monitor's server that its own pools do not list. */
  private *barePids(monitor: ServerMonitor): IterableIterator<number> {
    const here = (address: string, port: number) => address === monitor.address && port === monitor.port;
    try {
      for (const client of this.ctx.bareClients.clientsOpen()) {
        if (typeof client.processID !== 'number') continue;
        const server = serverOfClient(client);
        if (here(server.address, server.port)) yield client.processID;
      }
      for (const t of this.ctx.registry.liveStates()) {
        const pool = t.pool;
        if (!pool || this.samplable(t) || !here(t.server.address, t.server.port)) continue;
        for (const c of t.kind.clients(pool)) if (typeof c.processID === 'number') yield c.processID;
      }
    } catch (e) {
      reportInternalError('bare client pids', e);
    }
  }

}

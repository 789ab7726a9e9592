// Server headroom features (issue 4): max_connections and reserved slots, pg_stat_activity sampling.
// Pools are grouped per server (address, port): one monitor, one timer and one sample per server,
// whichever pools and databases of this process talk to it.
import type { Meter } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import type { PgClient } from '../pg-types';
import type { PoolState } from '../pool/pool-state';
import { serverOfClient } from '../pool/pool-identity';
import { reportInternalError } from '../diag';
import { ServerMonitor } from './server-monitor';
import { createServerInstruments, type ServerInstruments } from './server-gauges';

export interface ServerFeatureContext extends FeatureContext {
  /** Open bare pg.Client instances (not in a pool), so their backends count as this process's. */
  bareClients?(): Iterable<PgClient>;
}

export function createServerFeatures(ctx: ServerFeatureContext): Feature[] {
  return [new ServerHeadroom(ctx)];
}

class ServerHeadroom implements Feature {
  private readonly monitors = new Map<string, ServerMonitor>();
  private readonly monitorOf = new WeakMap<PoolState, ServerMonitor>();
  private instruments: ServerInstruments | undefined;

  constructor(private readonly ctx: ServerFeatureContext) {}

  useMeter(meter: Meter): void {
    this.instruments?.detach();
    this.instruments = createServerInstruments(meter, () => this.monitors.values());
    for (const m of this.monitors.values()) this.instruments.sampleFailures.add(0, m.attributes);
  }

  clientConnected(state: PoolState): void {
    if (this.monitorOf.has(state) || !state.resolved || state.ended) return;
    const { address, port } = state.server;
    const key = `${address}|${port}`;
    let monitor = this.monitors.get(key);
    if (!monitor) {
      monitor = new ServerMonitor(address, port, {
        intervalMs: () => this.ctx.settings().serverSampleIntervalMs,
        barePids: (m) => this.barePids(m),
        sampleFailed: (attributes) => this.instruments?.sampleFailures.add(1, attributes),
      });
      this.monitors.set(key, monitor);
      // The failure series exists from the start, so increase() sees the first failure.
      this.instruments?.sampleFailures.add(0, monitor.attributes);
    }
    this.monitorOf.set(state, monitor);
    monitor.addPool(state);
  }

  released(state: PoolState): void {
    this.monitorOf.get(state)?.soon();
  }

  poolEnded(state: PoolState): void {
    this.monitorOf.get(state)?.removePool(state);
    this.monitorOf.delete(state);
  }

  stop(): void {
    for (const m of this.monitors.values()) m.stop();
    this.monitors.clear();
    this.instruments?.detach();
    this.instruments = undefined;
  }

  private *barePids(monitor: ServerMonitor): IterableIterator<number> {
    try {
      for (const client of this.ctx.bareClients?.() ?? []) {
        if (typeof client.processID !== 'number') continue;
        const server = serverOfClient(client);
        if (server.address === monitor.address && server.port === monitor.port) yield client.processID;
      }
    } catch (e) {
      reportInternalError('bare client pids', e);
    }
  }
}

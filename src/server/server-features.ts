// Server headroom features (issue 4): max_connections and reserved slots, pg_stat_activity sampling.
// Pools are grouped per server (address, port): one monitor, one timer and one sample per server,
// whichever pools and databases of this process talk to it.
import type { Meter } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import type { PoolState } from '../pool/pool-state';
import type { PgClient } from '../pg-types';
import { serverOfClient } from '../pool/pool-identity';
import { reportInternalError } from '../diag';
import { ServerMonitor } from './server-monitor';
import { createServerInstruments, type ServerInstruments } from './server-gauges';


export function createServerFeatures(ctx: FeatureContext): Feature[] {
  return [new ServerHeadroom(ctx)];
}

class ServerHeadroom implements Feature {
  private readonly monitors = new Map<string, ServerMonitor>();
  private monitorOf = new WeakMap<PoolState, ServerMonitor>();
  private instruments: ServerInstruments | undefined;
  /**
   * False after stop(). pg-pool's events still reach us when the instrumentation is disabled, but
   * checkouts only come through the patched pool.connect(): one means it is enabled again.
   */
  private active = true;

  constructor(private readonly ctx: FeatureContext) {}

  useMeter(meter: Meter): void {
    this.instruments?.detach();
    this.instruments = createServerInstruments(meter, () => this.monitors.values());
    for (const m of this.monitors.values()) this.instruments.sampleFailures.add(0, m.attributes);
  }

  checkedOut(): void {
    this.active = true;
  }

  clientConnected(state: PoolState): void {
    if (this.active) this.monitorFor(state);
  }

  released(state: PoolState, client: PgClient, _checkout: unknown, err: unknown): void {
    if (this.active) this.monitorFor(state)?.released(state, client, err);
  }

  poolEnded(state: PoolState): void {
    this.monitorOf.get(state)?.removePool(state);
    this.monitorOf.delete(state);
  }

  stop(): void {
    for (const m of this.monitors.values()) m.close();
    this.monitors.clear();
    // Pools seen so far get fresh monitors if the instrumentation is enabled again.
    this.monitorOf = new WeakMap();
    this.active = false;
  }

  /** The monitor of the pool's server, joining it on first sight (a connect, or a release). */
  private monitorFor(state: PoolState): ServerMonitor | undefined {
    const known = this.monitorOf.get(state);
    if (known || !state.resolved || state.ended) return known;
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
    return monitor;
  }

  private *barePids(monitor: ServerMonitor): IterableIterator<number> {
    try {
      for (const client of this.ctx.bareClients()) {
        if (typeof client.processID !== 'number') continue;
        const server = serverOfClient(client);
        if (server.address === monitor.address && server.port === monitor.port) yield client.processID;
      }
    } catch (e) {
      reportInternalError('bare client pids', e);
    }
  }
}

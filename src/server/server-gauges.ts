// Server headroom instruments, read from the monitors at collection time. A server that has not
// been sampled yet, or whose samples fail, keeps its last good values: never zeros.
import type { Attributes, BatchObservableCallback, Counter, Meter, ObservableGauge } from '@opentelemetry/api';
import { reportInternalError } from '../diag';
import { STATES } from './activity-sample';
import type { ServerMonitor } from './server-monitor';

export const SERVER_METRIC = {
  maxConnections: 'pg_pool.server.max_connections',
  superuserReserved: 'pg_pool.server.superuser_reserved_connections',
  reserved: 'pg_pool.server.reserved_connections',
  info: 'pg_pool.server.info',
  connectionCount: 'pg_pool.server.connection.count',
  oldestIdleInTransaction: 'pg_pool.server.idle_in_transaction.oldest_age',
  sampleTimestamp: 'pg_pool.server.sample.timestamp',
  sampleFailures: 'pg_pool.server.sample.failures',
} as const;

export interface ServerInstruments {
  sampleFailures: Counter;
  /** Removes the collection callback from its meter. */
  detach(): void;
}

export function createServerInstruments(meter: Meter, monitors: () => Iterable<ServerMonitor>): ServerInstruments {
  const gauge = (name: string, unit: string, description: string) => meter.createObservableGauge(name, { unit, description });
  const C = '{connection}';
  const maxConnections = gauge(SERVER_METRIC.maxConnections, C, "The server's max_connections.");
  const superuserReserved = gauge(SERVER_METRIC.superuserReserved, C, 'Slots only superusers may use (superuser_reserved_connections).');
  const reserved = gauge(SERVER_METRIC.reserved, C, 'Slots for roles with pg_use_reserved_connections (PostgreSQL 16+, else 0).');
  const info = gauge(SERVER_METRIC.info, '1', 'Always 1; server_version carries the server version.');
  const connectionCount = gauge(SERVER_METRIC.connectionCount, C, 'Client backends by state and owner, from the last good sample.');
  const oldest = gauge(SERVER_METRIC.oldestIdleInTransaction, 's', 'Age of the oldest visible idle-in-transaction backend (0 if none).');
  const timestamp = gauge(SERVER_METRIC.sampleTimestamp, 's', 'Unix time of the last good pg_stat_activity sample.');
  const sampleFailures = meter.createCounter(SERVER_METRIC.sampleFailures, {
    unit: '{sample}',
    description: 'pg_stat_activity samples that failed; the gauges keep their last good values.',
  });

  const observables: ObservableGauge[] = [maxConnections, superuserReserved, reserved, info, connectionCount, oldest, timestamp];
  const stateAttributes = new WeakMap<ServerMonitor, Map<string, Attributes>>();
  const withState = (m: ServerMonitor, state: string, owner: string): Attributes => {
    let byKey = stateAttributes.get(m);
    if (!byKey) stateAttributes.set(m, (byKey = new Map()));
    const key = `${state}|${owner}`;
    let a = byKey.get(key);
    if (!a) byKey.set(key, (a = Object.freeze({ ...m.attributes, state, owner })));
    return a;
  };

  const callback: BatchObservableCallback = (result) => {
    try {
      for (const m of monitors()) {
        const limits = m.limits;
        if (limits) {
          result.observe(maxConnections, limits.maxConnections, m.attributes);
          result.observe(superuserReserved, limits.superuserReserved, m.attributes);
          result.observe(reserved, limits.reserved, m.attributes);
          result.observe(info, 1, { ...m.attributes, server_version: limits.version });
        }
        const sample = m.sample;
        if (sample && m.sampledAt !== undefined) {
          for (const state of STATES) {
            const c = sample.counts.get(state);
            result.observe(connectionCount, c?.this_process ?? 0, withState(m, state, 'this_process'));
            result.observe(connectionCount, c?.other ?? 0, withState(m, state, 'other'));
          }
          result.observe(oldest, sample.oldestIdleInTransaction, m.attributes);
          result.observe(timestamp, m.sampledAt, m.attributes);
        }
      }
    } catch (e) {
      reportInternalError('server gauge collection', e);
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return {
    sampleFailures,
    detach: () => meter.removeBatchObservableCallback(callback, observables),
  };
}

// Server headroom gauges, read from the monitors at collection time. A server that has not been
// sampled yet, or whose samples fail, keeps its last good values: never zeros.
import type { Attributes } from '@opentelemetry/api';
import { METRICS } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import { STATES } from './activity-sample';
import type { ServerMonitor } from './server-monitor';

const stateAttributes = new WeakMap<ServerMonitor, Map<string, Attributes>>();

function withState(m: ServerMonitor, state: string, owner: string): Attributes {
  let byKey = stateAttributes.get(m);
  if (!byKey) stateAttributes.set(m, (byKey = new Map()));
  const key = `${state}|${owner}`;
  let a = byKey.get(key);
  if (!a) byKey.set(key, (a = Object.freeze({ ...m.attributes, state, owner })));
  return a;
}

export function collectServerGauges(sink: MetricSink, monitors: Iterable<ServerMonitor>): void {
  for (const m of monitors) {
    const limits = m.limits;
    if (limits) {
      sink.observe(METRICS.serverMaxConnections, limits.maxConnections, m.attributes);
      sink.observe(METRICS.serverSuperuserReserved, limits.superuserReserved, m.attributes);
      sink.observe(METRICS.serverReserved, limits.reserved, m.attributes);
      sink.observe(METRICS.serverInfo, 1, { ...m.attributes, server_version: limits.version });
    }
    const sample = m.sample;
    if (sample && m.sampledAt !== undefined) {
      for (const state of STATES) {
        const c = sample.counts.get(state);
        sink.observe(METRICS.serverConnectionCount, c?.this_process ?? 0, withState(m, state, 'this_process'));
        sink.observe(METRICS.serverConnectionCount, c?.other ?? 0, withState(m, state, 'other'));
      }
      sink.observe(METRICS.serverIdleInTransactionOldestAge, sample.oldestIdleInTransaction, m.attributes);
      sink.observe(METRICS.serverSampleTimestamp, m.sampledAt, m.attributes);
    }
  }
}

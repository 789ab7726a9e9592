// Server headroom gauges, read from the monitored servers at collection time. A server that has
// not been sampled yet, or whose samples fail, keeps its last good values: never zeros.
import type { Attributes } from '@opentelemetry/api';
import { METRICS } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import { STATES, type Owner } from './server-sample';
import type { MonitoredServer } from './monitored-server';

const stateAttributes = new WeakMap<MonitoredServer, Map<string, Attributes>>();

function withState(s: MonitoredServer, state: string, owner: Owner): Attributes {
  let byKey = stateAttributes.get(s);
  if (!byKey) stateAttributes.set(s, (byKey = new Map()));
  const key = `${state}|${owner}`;
  let a = byKey.get(key);
  if (!a) byKey.set(key, (a = Object.freeze({ ...s.attributes, state, owner })));
  return a;
}

const DIRECT: readonly Owner[] = ['this_process', 'other'];
const POOLED: readonly Owner[] = ['unknown'];

export function collectServerGauges(sink: MetricSink, servers: Iterable<MonitoredServer>): void {
  for (const s of servers) {
    const limits = s.limits;
    if (limits) {
      sink.observe(METRICS.serverMaxConnections, limits.maxConnections, s.attributes);
      sink.observe(METRICS.serverSuperuserReserved, limits.superuserReserved, s.attributes);
      sink.observe(METRICS.serverReserved, limits.reserved, s.attributes);
      sink.observe(METRICS.serverInfo, 1, { ...s.attributes, server_version: limits.version });
    }
    if (s.sampledAt !== undefined) {
      sink.observe(METRICS.serverSampleTimestamp, s.sampledAt, s.attributes);
      sink.observe(METRICS.serverFull, s.full ? 1 : 0, s.attributes);
    }
    const activity = s.activity;
    if (activity) {
      // Behind a pooler the backends are nobody's in particular: one owner, "unknown".
      const owners = s.viaPooler ? POOLED : DIRECT;
      for (const state of STATES) {
        const c = activity.counts.get(state);
        for (const owner of owners) sink.observe(METRICS.serverConnectionCount, c?.[owner] ?? 0, withState(s, state, owner));
      }
      sink.observe(METRICS.serverIdleInTransactionOldestAge, activity.oldestIdleInTransaction, s.attributes);
    }
  }
}

// Pool gauges, read from each pool's own state at collection time (PoolKind.counts): a pool's
// count can change without any event (pg-pool drops a failed connect silently), so counting events
// would drift. An ended pool reads zero until its name is taken again.
import { METRICS } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import type { PoolRegistry } from './pool-registry';

const POOL_GAUGES = [
  METRICS.connectionMax,
  METRICS.connectionIdleMax,
  METRICS.connectionIdleMin,
  METRICS.pendingRequests,
  METRICS.connectionCount,
] as const;

export function collectPoolGauges(sink: MetricSink, registry: PoolRegistry): void {
  for (const t of registry.liveStates()) {
    const pool = t.pool;
    if (!pool) continue;
    const c = t.kind.counts(pool);
    const idle = Math.min(c.total, c.idle);
    sink.observe(METRICS.connectionCount, idle, t.idleAttributes);
    sink.observe(METRICS.connectionCount, c.total - idle, t.usedAttributes);
    if (c.max !== undefined) {
      sink.observe(METRICS.connectionMax, c.max, t.attributes);
      // pg-pool keeps every idle connection up to max; min only stops idle eviction below it.
      sink.observe(METRICS.connectionIdleMax, c.max, t.attributes);
    }
    sink.observe(METRICS.connectionIdleMin, c.min, t.attributes);
    sink.observe(METRICS.pendingRequests, c.pending, t.attributes);
  }
  registry.observeRetiredAsZero(sink, POOL_GAUGES);
}

// Pool gauges, read from pg-pool's own counters at collection time. pg-pool's totalCount can drop
// without an event (a failed connect is filtered out silently), so counting events would drift.
import type { BatchObservableResult, Meter } from '@opentelemetry/api';
import type { Instruments } from '../telemetry/instruments';
import { observableInstruments } from '../telemetry/instruments';
import { reportInternalError } from '../diag';
import type { PoolTracker } from './pool-tracker';
import { lentIdleCount } from '../server/idle-lease';
import { poolMax, poolMin } from './pool-limits';
import type { ClientConnections } from '../client/client-connections';

export function registerPoolGauges(
  meter: Meter,
  instruments: Instruments,
  tracker: PoolTracker,
  clients: ClientConnections
): void {
  meter.addBatchObservableCallback((result: BatchObservableResult) => {
    try {
      for (const state of tracker.registry.liveStates()) {
        const pool = state.pool;
        if (!pool) continue;
        const attributes = tracker.attributesOf(state, pool);
        const total = Math.max(0, pool.totalCount | 0);
        // A client lent to the server sampler is off pg-pool's idle list for one query; the app did
        // not take it, so it still counts as idle.
        const idle = Math.min(total, Math.max(0, pool.idleCount | 0) + lentIdleCount(pool));
        const max = poolMax(pool);
        result.observe(instruments.connectionCount, idle, state.idleAttributes);
        result.observe(instruments.connectionCount, total - idle, state.usedAttributes);
        if (max !== undefined) {
          result.observe(instruments.connectionMax, max, attributes);
          // pg-pool keeps every idle connection up to max; min only stops idle eviction below it.
          result.observe(instruments.connectionIdleMax, max, attributes);
        }
        result.observe(instruments.connectionIdleMin, poolMin(pool, max), attributes);
        result.observe(instruments.pendingRequests, Math.max(0, pool.waitingCount | 0), attributes);
        result.observe(instruments.waits, state.waits, attributes);
      }
      for (const state of tracker.registry.retired.values()) {
        for (const instrument of [instruments.connectionMax, instruments.connectionIdleMax, instruments.connectionIdleMin, instruments.pendingRequests]) {
          result.observe(instrument, 0, state.attributes);
        }
        result.observe(instruments.waits, state.waits, state.attributes);
        result.observe(instruments.connectionCount, 0, state.idleAttributes);
        result.observe(instruments.connectionCount, 0, state.usedAttributes);
      }
      for (const [attributes, count] of clients.counts()) {
        result.observe(instruments.clientConnections, count, attributes);
      }
    } catch (e) {
      reportInternalError('pool gauge collection', e);
    }
  }, observableInstruments(instruments));
}

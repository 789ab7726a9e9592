// Pool-per-request: how many pools are alive, how many were ever created, and one warning when
// more than poolBurstCount are created within poolBurstWindowMs (a pool per request or per job
// opens a connection each time and defeats pooling). Pools are counted from their first use.
import { performance } from 'node:perf_hooks';
import type { Meter } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import { log, reportInternalError } from '../diag';
import type { PoolState } from './pool-state';
import { applicationFrames, seconds, takenAt } from './leak-report';
import { MISUSE_METRIC } from './misuse-metrics';

export class PoolCensus implements Feature {
  /** performance.now() of the most recent registrations, at most poolBurstCount + 1 of them. */
  private recent: number[] = [];
  private warned = false;

  constructor(private readonly ctx: FeatureContext) {}

  useMeter(meter: Meter): void {
    const live = meter.createObservableGauge(MISUSE_METRIC.pools, {
      unit: '{pool}',
      description: 'Pools alive in this process (used at least once, not ended, not garbage-collected).',
    });
    const created = meter.createObservableCounter(MISUSE_METRIC.poolsCreated, {
      unit: '{pool}',
      description: 'Pools created (counted at first use) since the process started.',
    });
    meter.addBatchObservableCallback((result) => {
      try {
        const registry = this.ctx.pools.registry;
        let count = 0;
        // liveStates() drops pools the garbage collector took.
        for (const _ of registry.liveStates()) count++;
        result.observe(live, count);
        result.observe(created, registry.created);
      } catch (e) {
        reportInternalError('pool census collection', e);
      }
    }, [live, created]);
  }

  poolRegistered(_state: PoolState): void {
    const { poolBurstCount, poolBurstWindowMs } = this.ctx.settings();
    if (poolBurstCount <= 0 || this.warned) return;
    const now = performance.now();
    this.recent.push(now);
    if (this.recent.length > poolBurstCount + 1) this.recent.shift();
    const first = this.recent[0];
    if (this.recent.length <= poolBurstCount || now - first > poolBurstWindowMs) return;
    this.warned = true;
    // Called from the first pool.connect()/pool.query() of the new pool: the stack shows who did it.
    const site: { stack?: string } = {};
    Error.captureStackTrace(site);
    log().warn(
      `${this.recent.length} pools were created within ${seconds(now - first)} s ` +
        `(more than ${poolBurstCount} in ${seconds(poolBurstWindowMs)} s): is a pool created per request? ` +
        `Create one pool per database at startup and share it; each new pool opens its own connections. ` +
        `Warned once. Latest pool first used at:${takenAt(site, applicationFrames(site))}`
    );
  }
}

// Pool-per-request: how many pools are alive, how many were ever created, and one warning when
// more than poolBurstCount are created within poolBurstWindowMs (a pool per request or per job
// opens a connection each time and defeats pooling). Pools are counted from their first use.
import { performance } from 'node:perf_hooks';
import type { Feature, FeatureContext } from '../feature';
import type { TrackedPool } from '../pool/tracked-pool';
import { log } from '../diag';
import { METRICS } from '../telemetry/catalogue';
import type { CounterSeries, MetricSink } from '../telemetry/series';
import { applicationFrames, seconds, takenAt } from './leak-report';

export class PoolCensus implements Feature {
  /** performance.now() of the most recent registrations, at most poolBurstCount + 1 of them. */
  private recent: number[] = [];
  private warned = false;
  private readonly created: CounterSeries;

  constructor(private readonly ctx: FeatureContext) {
    this.created = ctx.store.counter(METRICS.poolsCreated, {});
  }

  collect(sink: MetricSink): void {
    let count = 0;
    // liveStates() drops pools the garbage collector took.
    for (const _ of this.ctx.registry.liveStates()) count++;
    sink.observe(METRICS.pools, count, {});
  }

  poolRegistered(pool: TrackedPool): void {
    this.created.add();
    const { poolBurstCount, poolBurstWindowMs } = this.ctx.settings;
    if (poolBurstCount <= 0 || this.warned) return;
    const now = performance.now();
    this.recent.push(now);
    if (this.recent.length > poolBurstCount + 1) this.recent.shift();
    const first = this.recent[0];
    if (this.recent.length <= poolBurstCount || now - first > poolBurstWindowMs) return;
    this.warned = true;
    // Called from the first pool.connect()/pool.query() of the new pool: the stack shows who did it
    // (a pool registered later, from a promise callback, kept its first use). Once per process: a
    // deeper stack than usual, since the package's own frames come first.
    let site: { stack?: string } | undefined = pool.firstUse;
    if (!site) {
      site = {};
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 50;
      Error.captureStackTrace(site);
      Error.stackTraceLimit = limit;
    }
    log().warn(
      `${this.recent.length} pools were created within ${seconds(now - first)} s ` +
        `(more than ${poolBurstCount} in ${seconds(poolBurstWindowMs)} s): is a pool created per request? ` +
        `Create one pool per database at startup and share it; each new pool opens its own connections. ` +
        `Warned once. Latest pool first used at:${takenAt(site, applicationFrames(site), this.ctx.sites)}`
    );
  }
}

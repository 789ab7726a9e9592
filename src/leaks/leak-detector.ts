// Leaked checkouts: a checkout held past the threshold is reported once (WARN line, trace event,
// counter) and counted by a gauge until it comes back. The check runs on an unref'd interval that
// exists only while something is checked out, and walks each pool's checkouts in checkout order,
// stopping at the first one younger than the threshold: its cost follows the number of old
// checkouts, not traffic.
import { performance } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import { log, reportInternalError } from '../diag';
import { UnrefTimer } from '../unref-timer';
import { PoolEntry } from '../pool/pool-entry';
import type { TrackedPool } from '../pool/tracked-pool';
import { METRICS } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import { checkoutSources, type CheckoutSource, type OutstandingCheckout } from './checkout-sources';
import { applicationFrames, frameLocation, seconds, takenAt } from './leak-report';
import { recordLeakOnTrace } from './leak-trace';
import { holdersOf, type PoolHolders } from './holders';

const LEAK_GAUGES = [METRICS.leaked, METRICS.oldestAge] as const;

export class LeakDetector implements Feature, CheckoutSource {
  /** Pools (live or ended) that have at least one checkout out. */
  private readonly held = new Set<TrackedPool>();
  /** A pool known to be in `held`: its next checkouts skip the Set insertion (cleared with any removal). */
  private heldPool: TrackedPool | undefined;
  // Runs only while something is checked out; detection must never keep the process alive.
  private readonly timer = new UnrefTimer('leak check', () => this.check());

  constructor(private readonly ctx: FeatureContext) {
    checkoutSources().add(this);
  }

  collect(sink: MetricSink): void {
    const now = performance.now();
    const threshold = this.ctx.settings.leakThresholdMs;
    const seen = this.pools();
    for (const pool of seen) {
      const { count, oldestMs } = summarize(pool, now, threshold);
      sink.observe(METRICS.leaked, count, pool.attributes);
      sink.observe(METRICS.oldestAge, oldestMs / 1000, pool.attributes);
    }
    this.ctx.registry.observeRetiredAsZero(sink, LEAK_GAUGES, seen);
  }

  checkedOut(entry: PoolEntry): void {
    const pool = entry.pool;
    if (pool !== this.heldPool) {
      this.held.add(pool);
      this.heldPool = pool;
    }
    const { leakThresholdMs, leakCheckIntervalMs } = this.ctx.settings;
    if (leakThresholdMs > 0 && (!this.timer.running || this.timer.every !== leakCheckIntervalMs)) this.timer.repeat(leakCheckIntervalMs);
  }

  released(entry: PoolEntry, _err: unknown, wasCheckedOut: boolean): void {
    const pool = entry.pool;
    if (pool.checkedOut.size === 0) this.unhold(pool);
    if (!wasCheckedOut || entry.reportedAt === undefined) return;
    entry.reported(undefined);
    const heldMs = performance.now() - entry.acquiredAt;
    pool.series.lazyCounter(METRICS.leakReturns).add();
    const frames = applicationFrames(entry.site);
    const where = frames.length ? ` taken at ${frameLocation(frames[0]!)}` : '';
    log().info(`previously reported checkout returned after ${seconds(heldMs)} s: pool "${pool.name}"${where}`);
  }

  stop(): void {
    this.stopTimer();
    this.held.clear();
    this.heldPool = undefined;
    checkoutSources().delete(this);
  }

  /** One pass over every held checkout older than the threshold. */
  check(now = performance.now()): void {
    const threshold = this.ctx.settings.leakThresholdMs;
    if (threshold <= 0) return this.stopTimer();
    for (const pool of this.held) {
      if (pool.checkedOut.size === 0) {
        this.unhold(pool);
        continue;
      }
      for (const entry of pool.checkedOut) {
        const age = now - entry.acquiredAt;
        if (age < threshold) break;
        if (entry.reportedAt !== undefined || entry.longLived) continue;
        entry.reported(now);
        try {
          this.report(pool, entry, age, threshold);
        } catch (e) {
          reportInternalError('leak report', e);
        }
      }
    }
    if (this.held.size === 0) this.stopTimer();
  }

  outstanding(): OutstandingCheckout[] {
    const now = performance.now();
    const out: OutstandingCheckout[] = [];
    for (const pool of this.pools()) {
      for (const e of pool.checkedOut) {
        out.push({
          pool: pool.name,
          heldMs: now - e.acquiredAt,
          longLived: e.longLived,
          reported: e.reportedAt !== undefined,
          traceId: e.spanContext?.traceId,
          frames: applicationFrames(e.site),
          stackCaptured: e.site !== undefined,
        });
      }
    }
    return out;
  }

  holders(maxGroups: number): PoolHolders[] {
    const now = performance.now();
    return [...this.pools()].filter((p) => p.checkedOut.size > 0).map((p) => holdersOf(p, now, maxGroups));
  }

  poolsSeen(): number {
    return this.ctx.registry.created;
  }

  markLongLived(client: object, longLived: boolean): boolean {
    const entry = PoolEntry.of(client);
    if (!entry?.checkedOut) return false;
    entry.markLongLived(longLived);
    return true;
  }

  private report(pool: TrackedPool, entry: PoolEntry, ageMs: number, thresholdMs: number): void {
    const attributes = pool.attributes;
    pool.series.lazyCounter(METRICS.leakDetections).add();
    const frames = applicationFrames(entry.site);
    const traceId = entry.spanContext?.traceId;
    log().warn(
      `possible connection leak: pool "${pool.name}" checkout held for ${seconds(ageMs)} s without release ` +
        `(threshold ${seconds(thresholdMs)} s)${traceId ? `, trace ${traceId}` : ''}. Taken at:${takenAt(entry.site, frames, this.ctx.sites)}`
    );
    const eventAttributes: Attributes = {
      ...attributes,
      'pg_pool.checkout.held': ageMs / 1000,
      'code.stacktrace': frames.join('\n'),
    };
    recordLeakOnTrace(this.ctx.tracing.tracer, entry, eventAttributes);
  }

  /** Live pools, and ended ones that still have checkouts out. */
  private pools(): Set<TrackedPool> {
    return new Set([...this.ctx.registry.liveStates(), ...this.held]);
  }

  private unhold(pool: TrackedPool): void {
    this.held.delete(pool);
    if (this.heldPool === pool) this.heldPool = undefined;
  }

  private stopTimer(): void {
    this.timer.stop();
  }
}

/** Reported checkouts still held, and the age of the oldest one not marked long-lived. */
function summarize(pool: TrackedPool, now: number, thresholdMs: number): { count: number; oldestMs: number } {
  let count = 0;
  let oldestMs: number | undefined;
  for (const e of pool.checkedOut) {
    if (e.longLived) continue;
    const age = now - e.acquiredAt;
    oldestMs ??= age;
    // Checkouts are in checkout order: all the rest are younger, none of them reported.
    if (thresholdMs <= 0 || age < thresholdMs) break;
    if (e.reportedAt !== undefined) count++;
  }
  return { count, oldestMs: oldestMs ?? 0 };
}

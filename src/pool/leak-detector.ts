// Leaked checkouts: a checkout held past the threshold is reported once (WARN line, trace event,
// counter) and counted by a gauge until it comes back. The check runs on an unref'd interval
// that exists only while something is checked out, and walks each pool's checkouts in checkout
// order, stopping at the first one younger than the threshold: its cost follows the number of
// old checkouts, not traffic.
import { performance } from 'node:perf_hooks';
import { context, trace, type Attributes, type Counter, type Meter, type Span } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import { log, reportInternalError } from '../diag';
import type { PgClient } from '../pg-types';
import type { Checkout } from './checkout';
import type { PoolState } from './pool-state';
import { checkoutSources, type CheckoutSource, type OutstandingCheckout } from './checkout-sources';
import { applicationFrames, frameLocation, seconds, takenAt } from './leak-report';
import { recordLeakOnTrace } from './leak-trace';
import { MISUSE_METRIC } from './misuse-metrics';

export class LeakDetector implements Feature, CheckoutSource {
  /** Pools (live or ended) that have at least one checkout out. */
  private readonly held = new Set<PoolState>();
  private timer: NodeJS.Timeout | undefined;
  private timerEvery = 0;
  private detections: Counter | undefined;
  private returns: Counter | undefined;
  /** The span active at checkout, when it is the one the core recorded: it gets the leak event. */
  private readonly spans = new WeakMap<Checkout, Span>();
  /** Listed for markLongLived() and pg-pool-otel/testing; unlisted while disabled. */
  private listed = false;

  constructor(private readonly ctx: FeatureContext) {
    this.list();
  }

  useMeter(meter: Meter): void {
    this.detections = meter.createCounter(MISUSE_METRIC.leakDetections, {
      unit: '{checkout}',
      description: 'Checkouts reported as leaked: held longer than the leak threshold.',
    });
    this.returns = meter.createCounter(MISUSE_METRIC.leakReturns, {
      unit: '{checkout}',
      description: 'Checkouts reported as leaked that were released later.',
    });
    const leaked = meter.createObservableGauge(MISUSE_METRIC.leaked, {
      unit: '{checkout}',
      description: 'Checkouts currently held past the leak threshold (reported, not yet released).',
    });
    const oldest = meter.createObservableGauge(MISUSE_METRIC.oldestAge, {
      unit: 's',
      description: 'Age of the oldest current checkout, long-lived ones excepted; 0 when none.',
    });
    meter.addBatchObservableCallback((result) => {
      try {
        const now = performance.now();
        const threshold = this.ctx.settings().leakThresholdMs;
        const seen = this.states();
        for (const state of seen) {
          const { count, oldestMs } = summarize(state, now, threshold);
          const attributes = this.attributesOf(state);
          result.observe(leaked, count, attributes);
          result.observe(oldest, oldestMs / 1000, attributes);
        }
        // An ended pool keeps its last values in the SDK unless observed: report zero.
        for (const state of this.ctx.pools.registry.retired.values()) {
          if (seen.has(state)) continue;
          result.observe(leaked, 0, state.attributes);
          result.observe(oldest, 0, state.attributes);
        }
      } catch (e) {
        reportInternalError('leak gauge collection', e);
      }
    }, [leaked, oldest]);
  }

  checkedOut(checkout: Checkout): void {
    if (!this.listed) this.list(); // enabled again after a disable()
    this.held.add(checkout.pool);
    if (checkout.spanContext) {
      const active = trace.getSpan(context.active());
      if (active && active.spanContext().spanId === checkout.spanContext.spanId) this.spans.set(checkout, active);
    }
    const { leakThresholdMs, leakCheckIntervalMs } = this.ctx.settings();
    if (leakThresholdMs > 0 && (!this.timer || this.timerEvery !== leakCheckIntervalMs)) this.startTimer(leakCheckIntervalMs);
  }

  released(state: PoolState, _client: PgClient, checkout: Checkout | undefined): void {
    if (state.checkouts.size === 0) this.held.delete(state);
    if (checkout?.reportedAt === undefined) return;
    const heldMs = performance.now() - checkout.acquiredAt;
    this.returns?.add(1, this.attributesOf(state));
    const frames = applicationFrames(checkout.site);
    const where = frames.length ? ` taken at ${frameLocation(frames[0])}` : '';
    log().info(`previously reported checkout returned after ${seconds(heldMs)} s: pool "${state.name}"${where}`);
  }

  stop(): void {
    this.stopTimer();
    this.held.clear();
    checkoutSources().delete(this);
    this.listed = false;
  }

  /** One pass over every held checkout older than the threshold. */
  check(now = performance.now()): void {
    const threshold = this.ctx.settings().leakThresholdMs;
    if (threshold <= 0) return this.stopTimer();
    for (const state of this.held) {
      if (state.checkouts.size === 0) {
        this.held.delete(state);
        continue;
      }
      for (const checkout of state.checkouts.values()) {
        const age = now - checkout.acquiredAt;
        if (age < threshold) break;
        if (checkout.reportedAt !== undefined || checkout.longLived) continue;
        checkout.reportedAt = now;
        try {
          this.report(state, checkout, age, threshold);
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
    for (const state of this.states()) {
      for (const c of state.checkouts.values()) {
        out.push({
          pool: state.name,
          heldMs: now - c.acquiredAt,
          longLived: c.longLived,
          reported: c.reportedAt !== undefined,
          traceId: c.spanContext?.traceId,
          frames: applicationFrames(c.site),
          stackCaptured: c.site !== undefined,
        });
      }
    }
    return out;
  }

  poolsSeen(): number {
    return this.ctx.pools.registry.created;
  }

  markLongLived(client: object, longLived: boolean): boolean {
    const checkout = this.find(client as PgClient);
    if (checkout) checkout.longLived = longLived;
    return checkout !== undefined;
  }

  private find(client: PgClient): Checkout | undefined {
    const found = this.ctx.pools.poolOf(client)?.checkouts.get(client);
    if (found) return found;
    for (const state of this.held) {
      const c = state.checkouts.get(client);
      if (c) return c;
    }
    return undefined;
  }

  private report(state: PoolState, checkout: Checkout, ageMs: number, thresholdMs: number): void {
    const attributes = this.attributesOf(state);
    this.detections?.add(1, attributes);
    const frames = applicationFrames(checkout.site);
    const traceId = checkout.spanContext?.traceId;
    log().warn(
      `possible connection leak: pool "${state.name}" checkout held for ${seconds(ageMs)} s without release ` +
        `(threshold ${seconds(thresholdMs)} s)${traceId ? `, trace ${traceId}` : ''}. Taken at:${takenAt(checkout.site, frames)}`
    );
    const eventAttributes: Attributes = {
      ...attributes,
      'pg_pool.checkout.held': ageMs / 1000,
      'code.stacktrace': frames.join('\n'),
    };
    recordLeakOnTrace(this.ctx.tracer(), checkout, this.spans.get(checkout), eventAttributes);
  }

  private attributesOf(state: PoolState): Attributes {
    const pool = state.pool;
    return pool && !state.ended ? this.ctx.pools.attributesOf(state, pool) : state.attributes;
  }

  /** Live pools, and ended ones that still have checkouts out. */
  private states(): Set<PoolState> {
    return new Set([...this.ctx.pools.registry.liveStates(), ...this.held]);
  }

  private list(): void {
    checkoutSources().add(this);
    this.listed = true;
  }

  private startTimer(every: number): void {
    this.stopTimer();
    this.timerEvery = every;
    this.timer = setInterval(() => {
      try {
        this.check();
      } catch (e) {
        reportInternalError('leak check', e);
      }
    }, every);
    // Detection must never keep the process alive.
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Reported checkouts still held, and the age of the oldest one not marked long-lived. */
function summarize(state: PoolState, now: number, thresholdMs: number): { count: number; oldestMs: number } {
  let count = 0;
  let oldestMs: number | undefined;
  for (const c of state.checkouts.values()) {
    if (c.longLived) continue;
    const age = now - c.acquiredAt;
    oldestMs ??= age;
    // Checkouts are in checkout order: all the rest are younger, none of them reported.
    if (thresholdMs <= 0 || age < thresholdMs) break;
    if (c.reportedAt !== undefined) count++;
  }
  return { count, oldestMs: oldestMs ?? 0 };
}

// Pool exhaustion explained: when a queued checkout times out, or has waited longer than
// PG_POOL_OTEL_SLOW_WAIT_MS (still waiting or not), say who holds the pool: one WARN block naming
// the pool, the wait, the queue and the current checkouts grouped by acquisition site; the same
// grouping as an event on the waiting request's span; a counter of reports. A gauge of checkouts
// by site is read at collection time. Only requests that had to queue are followed, so a pool that
// never makes anyone wait costs nothing here.
import { performance } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import type { Feature, FeatureContext } from '../feature';
import { UnrefTimer } from '../unref-timer';
import { log, reportInternalError } from '../diag';
import type { PoolEntry } from '../pool/pool-entry';
import type { CheckoutRequest } from '../pool/checkout-request';
import type { TrackedPool } from '../pool/tracked-pool';
import { BoundedValues } from '../telemetry/bounded-values';
import { METRICS } from '../telemetry/catalogue';
import type { MetricSink } from '../telemetry/series';
import { describeGroups, describeUse, holdersOf, NOT_CAPTURED, siteKeyOf, type PoolHolders } from './holders';
import { seconds } from './leak-report';
import { recordOnTrace } from './leak-trace';
import { ReportLimiter } from './report-limiter';
import { NOT_FOLLOWED, RequestQueue, WAITING } from './request-queue';

export const EXHAUSTION_EVENT = 'pg_pool.exhaustion';
/** The zero-length child span that carries the event when the request's span has ended. */
export const EXHAUSTION_SPAN = 'pg_pool.exhaustion';

/** Sites listed per report and per span event; the rest are summed up in one line. */
export const MAX_GROUPS = 5;
/** Application frames printed per site. */
export const MAX_FRAMES = 3;
/** One report per pool, then at most one per this interval. */
export const REPORT_INTERVAL_MS = 60_000;
/** Across all pools: this many reports at once, then one per REFILL_MS. */
const BURST = 3;
const REFILL_MS = 10_000;
/** Distinct `site` label values on the gauge before the rest are reported as `other`. */
export const MAX_SITE_LABELS = 50;
/** Slow-wait checks are at least the limit divided by this apart. */
const CHECK_SPACING = 10;
/** Span events of unreported requests reuse the pool's last grouping while it is this fresh. */
const EVENT_REFRESH_MS = 1_000;

export type ExhaustionTrigger = 'timeout' | 'slow_wait';
/** Where the request stands when reported. */
type How = 'timed out' | 'waiting' | 'answered';

interface PoolState {
  /** Queued requests still waiting, in request order: those past the slow-wait setting (reported or not) first. */
  readonly queue: RequestQueue;
  /** Events since the last report that were not reported (rate limit). */
  suppressed: number;
  /** The grouping last put on a span, and when. */
  lastEvent: { at: number; attributes: Attributes } | undefined;
  /** Whether the pool is in `waitingPools`: a queued checkout then costs a field read, not a Set insertion. */
  waiting: boolean;
}

export class ExhaustionReport implements Feature {
  private readonly states = new WeakMap<TrackedPool, PoolState>();
  /** The state looked up last: most processes have one pool, whose checkouts then skip the WeakMap. */
  private lastPool: TrackedPool | undefined;
  private lastState: PoolState | undefined;
  /** Pools with requests in `waiting`: what the slow-wait timer looks at. */
  private readonly waitingPools = new Set<TrackedPool>();
  /** Queued requests followed now, all pools: 0 makes a checkout's visit here one comparison. */
  private following = 0;
  /** Due at the earliest deadline among waiting requests; reporting must never keep the process alive. */
  private readonly timer = new UnrefTimer('slow wait check', () => this.check());
  /** @internal Replaced by the package's own tests, which report several times within the limits. */
  limiter = new ReportLimiter<TrackedPool>(REPORT_INTERVAL_MS, BURST, REFILL_MS);
  private readonly siteLabels = new BoundedValues(MAX_SITE_LABELS);
  /** Gauge series observed at the last collection, so a site that let go reads 0 once. */
  private observed = new Map<TrackedPool, Set<string>>();

  constructor(private readonly ctx: FeatureContext) {}

  checkoutQueued(request: CheckoutRequest): void {
    const pool = request.pool;
    let state = pool === this.lastPool ? this.lastState : this.states.get(pool);
    if (!state) {
      state = this.stateOf(pool);
      // At 0 from the pool's first wait (no report can come before one), so that increase() sees the first report.
      const series = pool.series;
      for (const trigger of ['timeout', 'slow_wait'] satisfies ExhaustionTrigger[]) series.lazyCounter(METRICS.exhaustionReports, { trigger });
    }
    this.lastPool = pool;
    this.lastState = state;
    state.queue.push(request);
    this.following++;
    if (!state.waiting) {
      state.waiting = true;
      this.waitingPools.add(pool);
    }
    // A timer pending is due no later than this request's deadline: requests queue in order.
    if (!this.timer.running && this.ctx.settings.slowWaitMs > 0) this.schedule();
  }

  checkedOut(entry: PoolEntry, request: CheckoutRequest): void {
    // The hot path: most checkouts never queued.
    if (this.following === 0) return;
    const state = entry.pool === this.lastPool ? this.lastState : this.states.get(entry.pool);
    if (!state) return;
    const was = state.queue.settle(request);
    if (was === NOT_FOLLOWED) return;
    this.following--;
    if (was === WAITING) {
      const waited = entry.acquiredAt - request.requestedAt;
      const limit = this.ctx.settings.slowWaitMs;
      // Answered past the limit before the timer saw it (a busy event loop).
      if (limit > 0 && waited >= limit) this.event(request, 'slow_wait', waited, 'answered');
    }
  }

  checkoutFailed(request: CheckoutRequest, timedOut: boolean): void {
    const state = this.states.get(request.pool);
    if (!state) return;
    const queued = state.queue.settle(request) !== NOT_FOLLOWED;
    if (queued) this.following--;
    // A timeout of a request that did not queue is a slow new connection, not an exhausted pool.
    if (timedOut && queued) this.event(request, 'timeout', performance.now() - request.requestedAt, 'timed out');
  }

  poolEnded(pool: TrackedPool): void {
    // pg-pool never answers requests queued when end() is called: stop following them.
    const state = this.states.get(pool);
    if (state) {
      this.following -= state.queue.size;
      state.queue.clear();
      state.waiting = false;
    }
    this.waitingPools.delete(pool);
  }

  stop(): void {
    this.clearTimer();
    for (const pool of this.waitingPools) this.stateOf(pool).waiting = false;
    this.waitingPools.clear();
  }

  collect(sink: MetricSink): void {
    const now = new Map<TrackedPool, Set<string>>();
    for (const pool of this.ctx.registry.liveStates()) {
      if (pool.checkedOut.size === 0) continue;
      const counts = new Map<string, number>();
      for (const entry of pool.checkedOut) {
        const label = this.siteLabels.admit(siteKeyOf(entry));
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      for (const [site, n] of counts) sink.observe(METRICS.checkoutHolders, n, { ...pool.attributes, site });
      now.set(pool, new Set(counts.keys()));
    }
    // A reader keeps the last value of a series no longer observed: a site that let go reads 0.
    for (const [pool, sites] of this.observed) {
      const current = now.get(pool);
      for (const site of sites) if (!current?.has(site)) sink.observe(METRICS.checkoutHolders, 0, { ...pool.attributes, site });
    }
    this.observed = now;
  }

  /** The request timed out or waited too long: report (within the limits) and put it on its span. */
  private event(request: CheckoutRequest, trigger: ExhaustionTrigger, waitedMs: number, how: How): void {
    try {
      const pool = request.pool;
      const state = this.stateOf(pool);
      const now = performance.now();
      const report = this.limiter.allow(pool, now);
      let holders: PoolHolders | undefined;
      let last = state.lastEvent;
      const span = request.span;
      // In a storm most events are neither reported nor traced: they cost a count, nothing more.
      if (report || (span && (!last || now - last.at > EVENT_REFRESH_MS))) {
        holders = holdersOf(pool, now, MAX_GROUPS);
        last = state.lastEvent = { at: now, attributes: groupAttributes(pool, holders) };
      }
      if (span && last) {
        recordOnTrace(this.ctx.tracing.tracer, span, span.spanContext(), EXHAUSTION_SPAN, EXHAUSTION_EVENT, {
          ...last.attributes,
          'pg_pool.exhaustion.trigger': trigger,
          'pg_pool.checkout.waited': waitedMs / 1000,
        });
      }
      if (!report || !holders) {
        state.suppressed++;
        return;
      }
      pool.series.lazyCounter(METRICS.exhaustionReports, { trigger }).add();
      log().warn(this.message(request, trigger, waitedMs, how, holders, state.suppressed));
      state.suppressed = 0;
    } catch (e) {
      reportInternalError('exhaustion report', e);
    }
  }

  private message(
    request: CheckoutRequest,
    trigger: ExhaustionTrigger,
    waitedMs: number,
    how: How,
    holders: PoolHolders,
    suppressed: number
  ): string {
    const limit = this.ctx.settings.slowWaitMs;
    const what =
      trigger === 'timeout'
        ? `a checkout timed out after waiting ${seconds(waitedMs)} s`
        : how === 'answered'
          ? `a checkout waited ${seconds(waitedMs)} s for a connection (PG_POOL_OTEL_SLOW_WAIT_MS=${limit})`
          : `a checkout has waited ${seconds(waitedMs)} s and is still queued (PG_POOL_OTEL_SLOW_WAIT_MS=${limit})`;
    const traceId = request.span?.spanContext().traceId;
    const trace = traceId && !/^0+$/.test(traceId) ? `, trace ${traceId}` : '';
    const body = holders.held
      ? `Held by:\n${describeGroups(holders, MAX_FRAMES)}`
      : 'No checkout is held by the application (connections are being opened or closed).';
    // A holder taken without its stack (over the capture limit): say why, and capture from now on.
    const unnamed = holders.groups.some((g) => g.site === NOT_CAPTURED) ? `\n  (${this.ctx.sites.missing()})` : '';
    const more = suppressed
      ? `\n  (${suppressed} more timed out or waited too long since the last report of this pool)`
      : '';
    return (
      `pool "${request.pool.name}" exhausted: ${what}${trace}; ${describeUse(holders)}. ` +
      `Reported at most once per ${REPORT_INTERVAL_MS / 1000} s per pool. ${body}${unnamed}${more}`
    );
  }

  private stateOf(pool: TrackedPool): PoolState {
    let s = this.states.get(pool);
    if (!s) this.states.set(pool, (s = { queue: new RequestQueue(), suppressed: 0, lastEvent: undefined, waiting: false }));
    return s;
  }

  /** Requests now past the setting, still waiting: each is reported (within the limits) once. */
  private check(): void {
    const limit = this.ctx.settings.slowWaitMs;
    if (limit <= 0) return;
    const now = performance.now();
    for (const pool of this.waitingPools) {
      const queue = this.stateOf(pool).queue;
      for (let request = queue.firstWaiting(); request; request = queue.firstWaiting()) {
        const waited = now - request.requestedAt;
        if (waited < limit) break;
        queue.markOverdue(request);
        this.event(request, 'slow_wait', waited, 'waiting');
      }
    }
    this.schedule();
  }

  /** A timer for the earliest deadline among waiting requests, if any. */
  private schedule(): void {
    const limit = this.ctx.settings.slowWaitMs;
    let next = Infinity;
    for (const pool of this.waitingPools) {
      const state = this.stateOf(pool);
      const first = state.queue.firstWaiting();
      if (first) next = Math.min(next, first.requestedAt + limit);
      else {
        state.waiting = false;
        this.waitingPools.delete(pool);
      }
    }
    if (limit <= 0 || next === Infinity) return this.clearTimer();
    // Checks at least a tenth of the limit apart: in a storm the next deadline is microseconds
    // away after every check, and a report a tenth of the limit late says the same.
    const now = performance.now();
    const due = Math.max(next, now + limit / CHECK_SPACING);
    if (this.timer.running && this.timer.dueAt <= due) return;
    this.timer.once(Math.max(1, Math.ceil(due - now)), due);
  }

  private clearTimer(): void {
    this.timer.stop();
  }
}

/** The grouping as span attributes: parallel arrays, at most MAX_GROUPS long. */
function groupAttributes(pool: TrackedPool, h: PoolHolders): Attributes {
  return {
    ...pool.attributes,
    'pg_pool.checkout.held_count': h.held,
    'pg_pool.checkout.queued': h.pending,
    'pg_pool.holders.site': h.groups.map((g) => g.site),
    'pg_pool.holders.count': h.groups.map((g) => g.count),
    'pg_pool.holders.oldest_held': h.groups.map((g) => g.oldestMs / 1000),
    'pg_pool.holders.other_sites': h.otherSites,
    'pg_pool.holders.other_count': h.otherCount,
  };
}

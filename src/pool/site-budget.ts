// How many checkout sites are captured. A capture (Error.captureStackTrace) costs 3 to 15 µs
// however few frames it keeps (docs/benchmarks.md): on every checkout of a hot pool that is most
// of what the package costs. So at most `stackCapturesPerSecond` stacks are captured a second in a
// process: a quiet service still names every checkout, a hot one pays a bounded cost and names a
// sample. A report that meets a checkout taken without its stack lifts the limit for
// FULL_CAPTURE_MS, so the next occurrence of the same trouble is named.
import { performance } from 'node:perf_hooks';
import type { PgPoolOtelSettings } from '../settings';

/** How long every checkout is captured after a report missed a site. */
export const FULL_CAPTURE_MS = 10 * 60_000;

export class SiteBudget {
  private windowEnd = 0;
  private left = 0;
  private fullUntil = 0;

  constructor(private readonly settings: PgPoolOtelSettings) {}

  /** Whether a stack may be captured now (leak detection and capture being on). */
  take(): boolean {
    const perSecond = this.settings.stackCapturesPerSecond;
    if (perSecond === 0) return true;
    const now = performance.now();
    if (now >= this.windowEnd) {
      this.windowEnd = now + 1000;
      this.left = perSecond;
    }
    if (this.left > 0) {
      this.left--;
      return true;
    }
    return now < this.fullUntil;
  }

  /**
   * A report names a checkout taken without its stack: why, as the report's text. When the limit
   * is the reason, every checkout is captured for the next FULL_CAPTURE_MS.
   */
  missing(): string {
    const s = this.settings;
    if (!s.captureStacks || s.leakThresholdMs <= 0) {
      return 'acquisition stack not captured: PG_POOL_OTEL_CAPTURE_STACKS is false or leak detection is off';
    }
    const now = performance.now();
    const wasFull = now < this.fullUntil;
    this.fullUntil = now + FULL_CAPTURE_MS;
    return (
      `acquisition stack not captured: it was taken past the limit of ${s.stackCapturesPerSecond} stack captures a second ` +
      `(PG_POOL_OTEL_STACK_CAPTURES_PER_SECOND; 0 lifts it). ${wasFull ? 'Every checkout is already captured' : 'Every checkout is captured from now'} ` +
      `for ${FULL_CAPTURE_MS / 60_000} minutes, so the next one from the same code is named`
    );
  }
}

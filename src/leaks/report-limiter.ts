// How often a report may be written: at most once per interval for each key (a pool), and across
// all keys a token bucket (a burst, then one per refill period), so that a storm of events on many
// pools still writes only a few lines per second.
export class ReportLimiter<K extends object> {
  private readonly last = new WeakMap<K, number>();
  private tokens: number;
  private refilledAt: number | undefined;

  constructor(
    readonly perKeyMs: number,
    readonly burst: number,
    readonly refillMs: number
  ) {
    this.tokens = burst;
  }

  /** Whether a report for `key` may be written at `now` (ms); if so, it is counted as written. */
  allow(key: K, now: number): boolean {
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.perKeyMs) return false;
    if (this.refilledAt !== undefined) this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) / this.refillMs);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    this.last.set(key, now);
    return true;
  }
}

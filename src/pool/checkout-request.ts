// A checkout requested and not answered yet, from the request to the hand-over; the pool entry
// keeps it (or its site) while the checkout lasts. A pool.query() call's request is one object
// that is also its own site: pg-pool releases that checkout itself, so its SQL says where it was
// taken, and no stack is captured.
import { performance } from 'node:perf_hooks';
import type { Span } from '@opentelemetry/api';
import { sanitizeSql } from '../sql/sanitize';
import type { StackHolder } from './checkout-site';
import type { TrackedPool } from './tracked-pool';

export class CheckoutRequest {
  readonly requestedAt = performance.now();
  /** Whether the exhaustion report follows it while it waits (leaks/request-queue.ts, its one writer). */
  followed = 0;
  constructor(
    readonly pool: TrackedPool,
    /** Where it was taken: a captured stack, the request itself for a pool.query(), or none. */
    public site: StackHolder | undefined,
    readonly span: Span | undefined
  ) {}
}

/** The request of one pool.query() call: carried from its checkout to its query. */
export class PoolQueryCall extends CheckoutRequest implements StackHolder {
  /** `query`: the call's first argument (text or query config), or null when it had none. */
  constructor(pool: TrackedPool, span: Span | undefined, readonly query: unknown) {
    super(pool, undefined, span);
    this.site = this;
  }

  get stack(): string {
    return `Error\n    at pool.query (${this.sql})`;
  }

  /** The query text with literals removed, whitespace collapsed, at most 200 characters. */
  get sql(): string {
    const q = this.query;
    const text = typeof q === 'string' ? q : (q as { text?: unknown } | null)?.text;
    return typeof text === 'string' ? sanitizeSql(text).replace(/\s+/g, ' ').trim().slice(0, 200) : '(query object)';
  }
}

// One checkout: a client handed out by a pool and not yet released. Holds what a leak report
// needs; the stack is captured unformatted so the hot path pays no formatting cost.
import type { SpanContext } from '@opentelemetry/api';
import type { PgClient } from '../pg-types';
import type { PoolState } from './pool-state';
import { sanitizeSql } from '../query/sanitize';

/** An object whose `stack` V8 fills lazily; formatted only when a report is printed. */
export interface StackHolder {
  stack?: string;
}

export class Checkout {
  /** Set once the leak detector has reported this checkout. */
  reportedAt: number | undefined;
  /** Marked long-lived on purpose (LISTEN/NOTIFY, replication, a migration lock): never reported. */
  longLived = false;

  constructor(
    readonly client: PgClient,
    readonly pool: PoolState,
    /** performance.now() when pool.connect() was called */
    readonly requestedAt: number,
    /** performance.now() when the client was handed over */
    readonly acquiredAt: number,
    readonly site: StackHolder | undefined,
    readonly spanContext: SpanContext | undefined
  ) {}
}

/**
 * The site of a checkout made by pool.query(): the SQL it runs, rendered as a stack frame only when
 * a report needs it, so the hot path pays for one small object.
 */
export class QuerySite implements StackHolder {
  constructor(private readonly query: unknown) {}

  get stack(): string {
    const text = typeof this.query === 'string' ? this.query : (this.query as { text?: unknown } | null)?.text;
    const sql = typeof text === 'string' ? sanitizeSql(text).replace(/\s+/g, ' ').slice(0, 200) : '(query object)';
    return `Error\n    at pool.query (${sql})`;
  }
}

/** Captures the caller's stack above `above` without formatting it. */
export function captureSite(above: Function): StackHolder {
  const holder: StackHolder = {};
  Error.captureStackTrace(holder, above);
  return holder;
}

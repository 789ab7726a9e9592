// Where a checkout was taken: the application's stack captured at the call (formatted only when a
// report is printed), or the pool.query() call that took it.
import { sanitizeSql } from '../sql/sanitize';

/** An object whose `stack` V8 fills lazily; formatted only when a report is printed. */
export interface StackHolder {
  stack?: string;
}

/**
 * One pool.query() call, carried from its checkout to its query: the query span reads the wait,
 * and a leak or exhaustion report names the SQL (pg-pool releases the checkout itself, so a stack
 * would say nothing more than "pool.query").
 */
export class PoolQueryCall implements StackHolder {
  /** Seconds the checkout waited; set when the connection is handed over. */
  waited: number | undefined;

  constructor(readonly query: unknown) {}

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

/**
 * Frames captured per site: Node's default of 10. The site of a checkout an ORM or query builder
 * makes on the application's behalf is captured where the application called into it (hooks/knex.ts,
 * hooks/sequelize.ts), so deeper stacks are not needed; each frame more costs CPU on every
 * checkout (docs/benchmarks.md).
 */
export const SITE_FRAMES = 10;

/** Captures the caller's stack above `above` without formatting it. */
export function captureSite(above: Function): StackHolder {
  const holder: StackHolder = {};
  const limit = Error.stackTraceLimit;
  // The application's own larger limit is kept; Error is written to only when it must change.
  if (limit >= SITE_FRAMES) {
    Error.captureStackTrace(holder, above);
    return holder;
  }
  Error.stackTraceLimit = SITE_FRAMES;
  Error.captureStackTrace(holder, above);
  Error.stackTraceLimit = limit;
  return holder;
}

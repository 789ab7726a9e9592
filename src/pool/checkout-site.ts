// Where a checkout was taken: the application's stack captured at the call, formatted only when a
// report is printed (a pool.query() call is its own site: checkout-request.ts).

/** An object whose `stack` V8 fills lazily; formatted only when a report is printed. */
export interface StackHolder {
  stack?: string;
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

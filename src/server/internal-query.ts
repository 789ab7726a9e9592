// Runs the package's own monitoring queries so that no instrumentation sees them: they must not
// become app spans or db.client.operation.duration measurements.
import type { PgClient } from '../pg-types';

/** Also set on the query config, for hooks that check it instead of being bypassed. */
export const INTERNAL_QUERY = Symbol.for('pg-pool-otel.internal-query');

type QueryFn = (this: PgClient, ...args: unknown[]) => unknown;
export type Row = Record<string, unknown>;

/**
 * pg's own Client#query under every wrapper: @opentelemetry/instrumentation's shimmer (ours and
 * any other OpenTelemetry pg instrumentation) keeps the wrapped function as `__original`.
 */
function unwrappedQuery(client: PgClient): QueryFn {
  let fn = client.query as unknown as QueryFn & { __original?: unknown };
  for (let depth = 0; depth < 10 && typeof fn.__original === 'function'; depth++) {
    fn = fn.__original as QueryFn & { __original?: unknown };
  }
  return fn;
}

export interface InternalQueryResult {
  rows: Row[];
}

/**
 * Resolves with the rows, rejects on error or after `timeoutMs`; `timedOut` tells the caller the
 * client is still busy and must not be reused.
 */
export function internalQuery(client: PgClient, text: string, values: unknown[], timeoutMs: number): Promise<InternalQueryResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new InternalQueryTimeout(timeoutMs));
    }, timeoutMs);
    timer.unref();
    const callback = (err: unknown, result: { rows?: Row[] } | undefined) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve({ rows: Array.isArray(result?.rows) ? result.rows : [] });
    };
    try {
      unwrappedQuery(client).call(client, { text, values, [INTERNAL_QUERY]: true }, callback);
    } catch (e) {
      callback(e, undefined);
    }
  });
}

export class InternalQueryTimeout extends Error {
  constructor(ms: number) {
    super(`monitoring query did not finish within ${ms} ms`);
    this.name = 'InternalQueryTimeout';
  }
}

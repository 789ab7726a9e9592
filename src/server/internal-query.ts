// Runs the package's own monitoring queries so that no instrumentation sees them: they must not
// become app spans or db.client.operation.duration measurements.
import { INTERNAL_QUERY, type PgClient } from '../pg/pg-types';


type Fn = (this: PgClient, ...args: unknown[]) => unknown;
export type Row = Record<string, unknown>;

/**
 * pg's own Client method under every wrapper: @opentelemetry/instrumentation's shimmer (ours and
 * any other OpenTelemetry pg instrumentation) keeps the wrapped function as `__original`.
 */
export function unwrapped(client: PgClient, method: 'query' | 'connect'): Fn {
  let fn = client[method] as unknown as Fn & { __original?: unknown };
  for (let depth = 0; depth < 10 && typeof fn.__original === 'function'; depth++) {
    fn = fn.__original as Fn & { __original?: unknown };
  }
  return fn;
}

export interface InternalQueryResult {
  rows: Row[];
}

/**
 * Resolves with the rows, rejects on error or after `timeoutMs` (the client is then still busy
 * and must be dropped). No parameters: the simple query protocol, which poolers in transaction
 * mode and every PostgreSQL-speaking server accept.
 */
export function internalQuery(client: PgClient, text: string, timeoutMs: number): Promise<InternalQueryResult> {
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
      unwrapped(client, 'query').call(client, { text, [INTERNAL_QUERY]: true }, callback);
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

// Hooks into @neondatabase/serverless. Its Pool and Client are node-postgres classes from a copy of
// pg bundled inside it: they are patched like pg's (instrumentation.ts patchPgModule). Its neon()
// HTTP queries go over fetch, with no pool: each one is a NeonQueryPromise that runs when awaited
// (then, catch or finally), and gets a span and a db.client.operation.duration through the same
// QueryTracker as client.query(), on a stand-in client that carries the server's identity.
import type { Callback, PgClient } from '../pg/pg-types';
import { reportInternalError } from '../diag';
import { serverOfOptions } from '../pool/pool-identity';
import type { QueryTracker } from '../query/query-tracker';
import type { Wrap } from './pg-pool';

type Proto = Record<string | symbol, unknown>;
type Execute = (queryData: unknown, opts: unknown) => Promise<unknown>;

interface NeonQueryPromise {
  execute?: Execute;
  queryData?: { query?: unknown; toParameterizedQuery?: () => { query?: unknown } };
}

/** The identity of a neon() HTTP connection, where pool-identity.ts reads a client's. */
type HttpServer = Pick<PgClient, 'host' | 'port' | 'database' | 'user'>;

/** The server of each neon() function's query runner, learnt when neon() was called through the hook. */
const servers = new WeakMap<Execute, HttpServer>();
// Queries of a neon() whose connection string was not seen (loaded without the hook).
const UNKNOWN_SERVER: HttpServer = { host: 'unknown' };

export const NEON_QUERY_METHODS = ['then', 'catch', 'finally'];

/** NeonQueryPromise.prototype: each of then/catch/finally runs the query once, through `execute`. */
export function patchNeonQueryPromise(proto: Proto, wrap: Wrap, queries: QueryTracker): void {
  for (const method of NEON_QUERY_METHODS) {
    if (typeof proto[method] !== 'function') continue;
    wrap(proto, method, (original) =>
      function patchedNeonQuery(this: NeonQueryPromise, ...args: unknown[]) {
        const execute = this.execute;
        if (typeof execute !== 'function') return original.apply(this, args);
        // The instance's own runner, observed for this one call, then put back: the promise is
        // the app's object and may be awaited again.
        this.execute = (queryData, opts) => observe(queries, execute, queryData, opts);
        try {
          return original.apply(this, args);
        } finally {
          this.execute = execute;
        }
      }
    );
  }
}

function observe(queries: QueryTracker, execute: Execute, queryData: unknown, opts: unknown): Promise<unknown> {
  let text = '';
  let server = UNKNOWN_SERVER;
  try {
    text = textOf(queryData as NeonQueryPromise['queryData']);
    server = servers.get(execute) ?? UNKNOWN_SERVER;
  } catch (e) {
    reportInternalError('neon query text', e);
  }
  return new Promise((resolve, reject) => {
    const run = function runNeonQuery(_config: unknown, callback: unknown) {
      const done = callback as Callback;
      execute(queryData, opts).then(
        (result) => done(null, result),
        (err: unknown) => done(err)
      );
    };
    queries.run(server as PgClient, run, 2, { text }, (err: unknown, result: unknown) => (err ? reject(err) : resolve(result)), undefined);
  });
}

function textOf(queryData: NeonQueryPromise['queryData']): string {
  if (!queryData) return '';
  if (typeof queryData.query === 'string') return queryData.query;
  // A tagged template (SqlTemplate): neon itself turns it into "$1" text the same way.
  const q = typeof queryData.toParameterizedQuery === 'function' ? queryData.toParameterizedQuery().query : undefined;
  return typeof q === 'string' ? q : '';
}

/**
 * neon() wrapped to learn each query runner's server from the connection string. A runner is only
 * reachable through a query object, so one is made and never run (it is lazy: nothing is sent).
 */
export function wrapNeon(neon: Callback): Callback {
  return function neonObserved(this: unknown, ...args: unknown[]) {
    const sql = neon.apply(this, args) as { query?: (text: string) => NeonQueryPromise } | undefined;
    try {
      const connectionString = typeof args[0] === 'string' ? args[0] : undefined;
      const execute = typeof sql?.query === 'function' ? sql.query('').execute : undefined;
      if (connectionString && typeof execute === 'function') {
        const s = serverOfOptions({ connectionString }, {});
        servers.set(execute, { host: s.address, port: s.port, database: s.namespace });
      }
    } catch (e) {
      reportInternalError('neon() hook', e);
    }
    return sql;
  };
}

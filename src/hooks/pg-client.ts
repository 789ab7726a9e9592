// Hooks into pg's Client (JavaScript and native): query() for spans and durations, connect() for
// connection errors, bare-client counts and, for a client a pool is creating, its pool entry; on
// pg < 8.21 (no getTransactionStatus()), _handleReadyForQuery for the transaction status.
import type { Callback, PgClient } from '../pg/pg-types';
import { reportInternalError } from '../diag';
import type { ClientConnections } from '../client/client-connections';
import type { PoolTracker } from '../pool/pool-tracker';
import type { QueryTracker } from '../query/query-tracker';
import { promiseFromCallback, wrapCallback } from '../pg/callback-form';
import { PoolEntry } from '../pool/pool-entry';
import type { Wrap } from './pg-pool';

type Proto = Record<string | symbol, unknown>;

export function patchClient(proto: Proto, wrap: Wrap, pools: PoolTracker, clients: ClientConnections, queries: QueryTracker): void {
  wrap(proto, 'query', (query) =>
    // Named parameters, not rest arguments: this runs on every query.
    function patchedQuery(this: PgClient, config?: unknown, values?: unknown, callback?: unknown) {
      return queries.run(this, query, arguments.length, config, values, callback);
    }
  );

  // pg >= 8.21 keeps the transaction status of each ReadyForQuery itself (getTransactionStatus());
  // before that, the pooled client's entry is told here, before pg settles the query that the
  // ReadyForQuery ends (a callback that releases the client must see the status after it). pg binds
  // this method to the connection's 'readyForQuery' at connect, so clients connected from now on
  // are seen; for others the transaction check listens on the connection (transaction-check.ts).
  if (typeof proto.getTransactionStatus !== 'function' && typeof proto._handleReadyForQuery === 'function') {
    wrap(proto, '_handleReadyForQuery', (handle) =>
      function patchedReadyForQuery(this: PgClient, msg: unknown) {
        const entry = PoolEntry.of(this);
        const status = (msg as { status?: unknown } | undefined)?.status;
        if (entry !== undefined && typeof status === 'string') entry.readyForQuery(status);
        // pg calls it with the message only: no arguments object per ReadyForQuery.
        return handle.call(this, msg);
      }
    );
  }

  wrap(proto, 'connect', (connect) =>
    function patchedClientConnect(this: PgClient, ...args: unknown[]) {
      let finished: ((err: unknown) => void) | undefined;
      try {
        const pool = pools.creatingFor;
        if (pool) pools.connecting(pool, this);
        // No pool code on the stack, but a pool whose create code awaits may be creating: it may claim this client.
        finished = clients.connecting(this, pool, !pool && clients.asyncCreatesInFlight());
      } catch (e) {
        reportInternalError('client.connect hook', e);
      }
      if (!finished) return connect.apply(this, args);
      const done = finished;
      const cb = args[0];
      if (typeof cb === 'function') {
        return connect.call(this, wrapCallback(cb as Callback, (a) => done(a[0])));
      }
      const PromiseImpl = (this as { _Promise?: PromiseConstructor })._Promise;
      return promiseFromCallback<PgClient>(PromiseImpl, (settle) =>
        connect.call(this, (err: unknown) => {
          done(err);
          settle(err, this);
        })
      );
    }
  );
}

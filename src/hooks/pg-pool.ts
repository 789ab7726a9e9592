// Hooks into pg-pool (and so pg.Pool, which extends it): Pool.prototype's connect, query, end and
// newClient, and the pool's own events, attached once per pool. pg-pool's counts are read at
// collection time, never counted from events: totalCount can drop without any event.
import { EventEmitter, errorMonitor } from 'node:events';
import type { Context } from '@opentelemetry/api';
import { context } from '../otel-api';
import type { Callback, PgClient, PgPool } from '../pg/pg-types';
import { reportInternalError, warnOnce } from '../diag';
import { PoolEntry } from '../pool/pool-entry';
import type { CheckoutRequest } from '../pool/checkout-request';
import type { PoolTracker } from '../pool/pool-tracker';
import type { PoolKind, TrackedPool } from '../pool/tracked-pool';
import { closeReasonOnRelease } from '../pool/close-reason';
import { serverOfOptions } from '../pool/pool-identity';
import { mustWait, poolMax, poolMin } from './pg-pool-limits';
import { adviceFor } from '../leaks/config-advice';
import { promiseFromCallback } from '../pg/callback-form';
import { withSlot } from '../slot';

type Proto = Record<string | symbol, unknown>;
export type Wrap = (proto: Proto, name: string, wrapper: (original: Callback) => Callback) => void;

const TIMEOUT_MESSAGES = ['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout'];

export function isTimeout(err: unknown): boolean {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' && TIMEOUT_MESSAGES.includes(message);
}

export const pgPoolKind: PoolKind<PgPool> = {
  counts(pool) {
    const total = Math.max(0, pool.totalCount | 0);
    const max = poolMax(pool);
    return {
      total,
      idle: Math.min(total, Math.max(0, pool.idleCount | 0)),
      pending: Math.max(0, pool.waitingCount | 0),
      max,
      min: poolMin(pool, max),
    };
  },
  mustWait,
  serverOfOptions: (pool) => serverOfOptions(pool.options ?? {}),
  configuredName(pool) {
    const app = pool.options?.application_name;
    return typeof app === 'string' && app.trim() !== '' ? app.trim() : undefined;
  },
  createTimeoutMs: (pool) => pool.options?.connectionTimeoutMillis,
  advice: (pool) => (pool.options ? adviceFor(pool.options) : []),
  clients: (pool) => pool._clients ?? [],
  connectionOptions: (pool) => pool.options,
  // pg-pool tests client._ending right after emitting 'release' and then removes the client
  // (ending it itself) instead of putting it back.
  discardOnRelease(client) {
    client._ending = true;
  },
};

export class PgPoolHooks {
  /**
   * The first argument of the pool.query() call running now (null when it had none): its
   * synchronous this.connect() is that call's checkout. Undefined outside such a call.
   */
  call: unknown;

  constructor(private readonly tracker: PoolTracker) {}

  patch(proto: Proto, wrap: Wrap): void {
    const hooks = this;
    const tracker = this.tracker;

    // Without _release the checkouts' ends would go unseen, and every checkout would look leaked.
    if (typeof proto._release !== 'function') {
      warnOnce('pg-pool-release', 'pg-pool-otel: this pg-pool has no Pool.prototype._release; its pools are not instrumented (pg-pool 3.x is supported)');
      return;
    }
    // The release is seen at the prototype's _release, which the handed-out release function calls
    // (that function itself is never wrapped): every pg-pool 3.x has it, where 'release' is only
    // emitted from 3.6, and a listener would show on the app's pool and cost a dispatch per
    // checkout. It runs where 3.6 emits 'release', before pg-pool counts the use.
    wrap(proto, '_release', (original) =>
      function patchedRelease(this: PgPool, client: unknown, _idleListener: unknown, err: unknown) {
        const t = tracker.registry.owner(this);
        if (t) hooks.release(t, this, err, client as PgClient);
        // eslint-disable-next-line prefer-rest-params
        return original.apply(this, arguments as unknown as unknown[]);
      }
    );

    wrap(proto, 'connect', (connect) => {
      // Named parameters, not rest arguments: this runs on every checkout.
      return function patchedConnect(this: PgPool, cb?: unknown) {
        const call = hooks.call;
        hooks.call = undefined;
        let request: CheckoutRequest | undefined;
        let queued = false;
        let active: Context | undefined;
        try {
          if (!this.ending) {
            queued = mustWait(this);
            active = context.active();
            request = tracker.requestCheckout(hooks.track(this), queued, patchedConnect, call, active);
          }
        } catch (e) {
          reportInternalError('pool.connect hook', e);
        }
        // eslint-disable-next-line prefer-rest-params
        if (!request) return connect.apply(this, arguments as unknown as unknown[]);
        const req = request;
        if (typeof cb === 'function') {
          // A queued request's callback runs when another request releases a connection, in that
          // request's context: bind it to the caller's, so its queries get the caller's span as parent.
          const run = (queued && active ? context.bind(active, cb as Callback) : cb) as Callback;
          // pg-pool calls back with (err, client, release); named, so no arguments object per checkout.
          return connect.call(this, function checkedOut(this: unknown, err: unknown, client: unknown, release: unknown) {
            hooks.done(req, err, client);
            return run.call(this, err, client, release);
          });
        }
        const PromiseImpl = (this as { Promise?: PromiseConstructor }).Promise;
        return promiseFromCallback<PgClient>(PromiseImpl, (settle) =>
          connect.call(this, (err: unknown, client: PgClient) => {
            hooks.done(req, err, client);
            settle(err, client);
          })
        );
      };
    });

    wrap(proto, 'query', (query) =>
      function patchedPoolQuery(this: PgPool) {
        // eslint-disable-next-line prefer-rest-params
        return withSlot(hooks, 'call', arguments[0] ?? null, query, this, arguments);
      }
    );

    wrap(proto, 'end', (end) =>
      function patchedEnd(this: PgPool, ...args: unknown[]) {
        try {
          const pool = tracker.registry.get(this);
          if (pool) tracker.ending(pool);
        } catch (e) {
          reportInternalError('pool.end hook', e);
        }
        return end.apply(this, args);
      }
    );

    if (typeof proto.newClient === 'function') {
      wrap(proto, 'newClient', (newClient) =>
        function patchedNewClient(this: PgPool, ...args: unknown[]) {
          const pool = tracker.registry.get(this);
          return pool ? tracker.creating(pool, newClient, this, args) : newClient.apply(this, args);
        }
      );
    }
  }

  private done(request: CheckoutRequest, err: unknown, client: unknown): void {
    try {
      this.tracker.checkoutDone(request, err, client as PgClient | undefined, err ? isTimeout(err) : false);
    } catch (e) {
      reportInternalError('checkout bookkeeping', e);
    }
  }

  /** pg-pool takes `client` back: it counts this use after this point. */
  private release(t: TrackedPool<PgPool>, pool: PgPool, err: unknown, client: PgClient): void {
    try {
      if (client) this.tracker.released(t, client, err, closeReasonOnRelease(pool, client, err));
    } catch (e) {
      reportInternalError('pool release', e);
    }
  }

  // Made once: track() runs on every checkout.
  private readonly attachTo = (t: TrackedPool<PgPool>, pool: PgPool): void => this.attach(t, pool);

  private track(pool: PgPool): TrackedPool<PgPool> {
    return this.tracker.registry.track(pool, pgPoolKind, this.attachTo);
  }

  /** pg-pool's events, once per pool; detached when the instrumentation is disabled. */
  private attach(t: TrackedPool<PgPool>, pool: PgPool): void {
    const tracker = this.tracker;
    const onConnect = (client: PgClient) => {
      try {
        tracker.connected(PoolEntry.for(client, t));
      } catch (e) {
        reportInternalError('pool connect event', e);
      }
    };
    // pg-pool's `remove` never says why: the reason was decided at release, else it is the idle
    // timer or the pool ending.
    const onRemove = (client: PgClient) => {
      try {
        tracker.closed(t, client, pool.ending ? 'pool_end' : 'idle_timeout');
      } catch (e) {
        reportInternalError('pool remove event', e);
      }
    };
    // errorMonitor sees 'error' without counting as a listener: an app that has no handler still
    // crashes exactly as it would without this package.
    const onError = (_err: unknown, client?: PgClient) => {
      try {
        if (client) PoolEntry.for(client, t).markClosing('idle_error');
      } catch (e) {
        reportInternalError('pool error monitor', e);
      }
    };
    // EventEmitter's own on(): Neon's Pool overrides on() to turn its fetch query path
    // (neonConfig.poolQueryViaFetch) off for any listener but 'error'.
    const on = EventEmitter.prototype.on;
    on.call(pool, 'connect', onConnect);
    on.call(pool, 'remove', onRemove);
    on.call(pool, errorMonitor, onError);
    t.detach = () => {
      pool.removeListener('connect', onConnect);
      pool.removeListener('remove', onRemove);
      pool.removeListener(errorMonitor, onError);
    };
    tracker.registered(t);
  }
}

// Hooks into tarn, the pool under Knex (and so MikroORM, Objection, Strapi): Pool.prototype's
// acquire, release, destroy, the reaper (check), _create and _destroy. Knex's PostgreSQL dialects
// pool pg clients in it; its other dialects' pools are left alone (decided by the first
// connection, see resource-pool.ts). Counts are read from tarn's own arrays at collection time.
import { performance } from 'node:perf_hooks';
import { PoolEntry } from '../pool/pool-entry';
import { type StackHolder } from '../pool/checkout-site';
import type { PoolTracker } from '../pool/pool-tracker';
import type { PoolKind } from '../pool/tracked-pool';
import type { ClientConnections } from '../client/client-connections';
import type { CloseReason } from '../pool/close-reason';
import { ResourcePoolHooks, answeredAcquire, guard } from './resource-pool';
import type { Wrap } from './pg-pool';
import { withSlot } from '../slot';

type Proto = Record<string | symbol, unknown>;

/** The parts of tarn's Pool (3.x) read here. */
export interface TarnPool {
  min: number;
  max: number;
  destroyed: boolean;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
  free?: { resource: unknown }[];
  used?: { resource: unknown }[];
}

interface PendingOperation {
  promise: Promise<unknown>;
}

/** Knex's maxConnectionLifetimeMillis: the deadline it stamps on each connection (performance.now()). */
interface KnexConnection {
  __knexLifetimeLimit?: number | null;
}

export class TarnHooks {
  readonly resourceHooks: ResourcePoolHooks<TarnPool>;
  /** The pool whose reaper runs now: what it destroys was idle too long. */
  reaping: TarnPool | undefined;

  constructor(tracker: PoolTracker, clients: ClientConnections) {
    this.resourceHooks = new ResourcePoolHooks<TarnPool>(
      tracker,
      clients,
      {
        free: (p) => p.numFree(),
        used: (p) => p.numUsed(),
        waiting: (p) => p.numPendingAcquires(),
        creating: (p) => p.numPendingCreates(),
        max: (p) => (Number.isFinite(p.max) ? p.max : undefined),
        min: (p) => (Number.isFinite(p.min) ? Math.max(0, Math.min(p.min, p.max)) : 0),
        *resources(p) {
          for (const list of [p.free, p.used]) for (const item of list ?? []) yield item.resource;
        },
      },
      (t) => tracker.registered(t)
    );
  }

  get kind(): PoolKind<TarnPool> {
    return this.resourceHooks.kind;
  }

  /** Where a Knex instance created its tarn pool (see hooks/knex.ts). */
  poolCreatedAt(pool: object, site: StackHolder): void {
    this.resourceHooks.origin(pool as TarnPool, site);
  }

  /** Patches tarn's Pool.prototype; `TimeoutError` is that tarn copy's class for acquire timeouts. */
  patch(proto: Proto, wrap: Wrap, TimeoutError: Function | undefined): void {
    const hooks = this;
    const resourceHooks = this.resourceHooks;
    const isTimeout = (err: unknown) => typeof TimeoutError === 'function' && err instanceof TimeoutError;

    wrap(proto, 'acquire', (acquire) =>
      function patchedAcquire(this: TarnPool, ...args: unknown[]) {
        const request = this.destroyed ? undefined : guard('tarn acquire hook', () => resourceHooks.request(this, patchedAcquire))();
        const op = acquire.apply(this, args) as PendingOperation | undefined;
        if (!request || typeof op?.promise?.then !== 'function') return op;
        op.promise = answeredAcquire(resourceHooks, this, request, op.promise, isTimeout);
        return op;
      }
    );

    wrap(proto, 'release', (release) =>
      function patchedRelease(this: TarnPool, ...args: unknown[]) {
        guard('tarn release hook', () => {
          const t = resourceHooks.tracked(this);
          const entry = PoolEntry.of(args[0] as object | undefined);
          // tarn never closes a connection on release: no close reason, no error.
          if (t && entry?.pool === t) resourceHooks.tracker.released(t, entry.client, undefined, undefined);
        })();
        return release.apply(this, args);
      }
    );

    wrap(proto, 'destroy', (destroy) =>
      function patchedDestroy(this: TarnPool, ...args: unknown[]) {
        guard('tarn destroy hook', () => resourceHooks.ending(this))();
        return destroy.apply(this, args);
      }
    );

    // The reaper: every _destroy it calls closes a connection idle past idleTimeoutMillis.
    wrap(proto, 'check', (check) =>
      function patchedCheck(this: TarnPool, ...args: unknown[]) {
        return withSlot(hooks, 'reaping', this, check, this, args);
      }
    );

    wrap(proto, '_create', (create) =>
      function patchedCreate(this: TarnPool, ...args: unknown[]) {
        const op = resourceHooks.creating(this, () => create.apply(this, args)) as PendingOperation | undefined;
        if (typeof op?.promise?.then === 'function') {
          // tarn itself catches this promise (_doCreate), so a handler here changes nothing for it.
          op.promise.then(
            guard('tarn create bookkeeping', (resource: unknown) => resourceHooks.created(this, resource)),
            guard('tarn create bookkeeping', (err: unknown) => resourceHooks.createFailed(this, err))
          );
        }
        return op;
      }
    );

    wrap(proto, '_destroy', (destroyResource) =>
      function patchedDestroyResource(this: TarnPool, ...args: unknown[]) {
        guard('tarn _destroy hook', () => resourceHooks.closing(this, args[0], hooks.reason(this, args[0])))();
        return destroyResource.apply(this, args);
      }
    );
  }

  /**
   * Why tarn closes a connection: the pool is being destroyed, the reaper found it idle too long,
   * or (tarn's only other caller) it failed validation when about to be handed out, which under
   * Knex means dead (an error or end event) or past maxConnectionLifetimeMillis.
   */
  private reason(pool: TarnPool, resource: unknown): CloseReason {
    if (pool.destroyed) return 'pool_end';
    if (this.reaping === pool) return 'idle_timeout';
    const limit = (resource as KnexConnection | null)?.__knexLifetimeLimit;
    if (typeof limit === 'number' && performance.now() > limit) return 'max_lifetime';
    return 'broken';
  }
}
